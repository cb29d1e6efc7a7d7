"""Version strings: redactor's own and the Redis version whose behaviour it follows.

Kept apart from the dispatcher so that the launcher, INFO, the RDB writer and the config error banner can
name the version without importing the server.
"""

from __future__ import annotations

VERSION = "0.1.0"
# The Redis version whose behaviour redactor follows; clients read redis_version from INFO.
REDIS_VERSION = "7.0.15"
