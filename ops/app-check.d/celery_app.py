"""The Celery app of ops/app-check: the redis broker and result backend on $PORT."""

import os

from celery import Celery

port = int(os.environ["PORT"])
app = Celery("celery_app", broker=f"redis://127.0.0.1:{port}/0", backend=f"redis://127.0.0.1:{port}/1")
app.conf.update(broker_connection_retry_on_startup=True)


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def total(xs: list[int]) -> int:
    return sum(xs)
