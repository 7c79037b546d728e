"""The rate limiter's Redis cache: django-ratelimit's count in one round trip.

django-ratelimit counts a request with `cache.add(key, 1, timeout)` and, when the key
already exists (every request but the first of a window), `cache.incr(key)`: two round
trips to Redis per request on the receiver's hot path. This backend answers `add` with
one atomic script (INCR, and EXPIRE when the key is new) and hands the count it got to the
`incr` that django-ratelimit makes next in the same thread, so that call costs nothing.

Used only as the `ratelimit` cache alias (settings.RATELIMIT_USE_CACHE), never as the
default cache: `add` here always counts, which is what a rate limiter wants and nothing
else does.
"""

from __future__ import annotations

import threading
from typing import Any

from django_redis.cache import RedisCache

# INCR creates the key at 1; only then does it get its expiry, so the window is fixed
# from the first request, as with add(). Keys hold plain integers, which django-redis
# reads back as ints.
COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class RateLimitCache(RedisCache):  # type: ignore[misc]  # django-redis ships no types
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._counted = threading.local()
        self._script: Any = None

    def add(self, key: Any, value: Any, timeout: Any = None, version: int | None = None, **kwargs: Any) -> bool:
        if value != 1:  # Not a counter: behave as a plain cache.
            self._counted.last = None
            return bool(super().add(key, value, timeout, version=version, **kwargs))
        redis_key = self.client.make_key(key, version=version)
        if self._script is None:
            self._script = self.client.get_client(write=True).register_script(COUNT_SCRIPT)
        seconds = max(1, int(timeout if timeout is not None else self.default_timeout))
        count = int(self._script(keys=[redis_key], args=[seconds], client=self.client.get_client(write=True)))
        if count == 1:
            self._counted.last = None
            return True
        self._counted.last = (redis_key, count)
        return False

    def incr(self, key: Any, delta: int = 1, version: int | None = None, **kwargs: Any) -> int:
        last = getattr(self._counted, "last", None)
        self._counted.last = None
        if last is not None and delta == 1 and last[0] == self.client.make_key(key, version=version):
            return int(last[1])  # Already counted by add(), in the same round trip.
        return int(super().incr(key, delta, version=version, **kwargs))
