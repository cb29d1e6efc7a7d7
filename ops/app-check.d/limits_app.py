"""limits' three rate limiters on its redis storage (each a Lua script), 5 hits a minute (ops/app-check)."""

import json
import sys

from limits import parse, storage, strategies

store = storage.storage_from_string(f"redis://127.0.0.1:{sys.argv[1]}")
store.reset()
results = []
for kind in (
    strategies.MovingWindowRateLimiter,
    strategies.FixedWindowRateLimiter,
    strategies.SlidingWindowCounterRateLimiter,
):
    limiter, item = kind(store), parse("5/minute")
    hits = [limiter.hit(item, "user", kind.__name__) for _ in range(8)]
    stats = limiter.get_window_stats(item, "user", kind.__name__)
    tested = limiter.test(item, "user", kind.__name__)
    limiter.clear(item, "user", kind.__name__)
    results.append([kind.__name__, hits, stats.remaining, tested, limiter.hit(item, "user", kind.__name__)])
print(json.dumps(results))
