"""django-redis as Django's cache (ops/app-check)."""

import json
import sys

import django
from django.conf import settings

settings.configure(
    CACHES={
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{sys.argv[1]}/2",
        }
    }
)
django.setup()
from django.core.cache import cache  # noqa: E402  (after settings, as Django requires)

cache.clear()
out = []
cache.set("a", {"x": 1}, 30)
out.append(cache.get("a"))
cache.set_many({"b": 1, "c": 2})
out.append(cache.get_many(["a", "b", "c", "z"]))
out += [cache.incr("b", 5), cache.add("b", 9), cache.ttl("a") in (29, 30)]
out += [sorted(cache.keys("*")), cache.delete_pattern("b*"), cache.touch("a", 100), cache.ttl("a")]
with cache.lock("L", timeout=5):
    out.append(cache.client.get_client().exists(":1:L"))
out += [cache.persist("a"), cache.ttl("a"), sorted(cache.iter_keys("*"))]
print(json.dumps(out))
