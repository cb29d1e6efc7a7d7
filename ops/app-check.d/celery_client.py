"""Celery's canvas against a worker (ops/app-check starts it): a call, a chain, a group, a chord, a countdown."""

import json

from celery import chain, chord, group
from celery_app import add, total

print(
    json.dumps(
        {
            "call": add.delay(2, 3).get(timeout=20),
            "chain": chain(add.s(1, 1), add.s(10)).apply_async().get(timeout=20),
            "group": group(add.s(i, i) for i in range(5)).apply_async().get(timeout=20),
            "chord": chord((add.s(i, i) for i in range(5)), total.s()).apply_async().get(timeout=30),
            "countdown": add.apply_async((1, 2), countdown=1).get(timeout=20),
        }
    )
)
