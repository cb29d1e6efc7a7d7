"""The task rq's scenario runs (ops/app-check): rq imports it by name in the worker."""


def add(x: int, y: int) -> int:
    return x + y
