"""The rate limiter's Redis cache: django-ratelimit's counts, leased from Redis in batches.

django-ratelimit counts a request with `cache.add(key, 1, timeout)` and, when the key
already exists, `cache.incr(key)`. A Redis round trip per delivery is a blocking wait that
hands the GIL to another thread and costs a web process as much as the rest of a delivery
(docs/performance.md), so this backend counts in the process and asks Redis only for a
*lease*: one atomic script (COUNT_SCRIPT) takes up to `lease` counts of the window's shared
counter, never past the limit, and the process hands them out one per request. `add`
answers from the lease and gives the count it got to the `incr` django-ratelimit makes next
in the same thread.

The limit comes from the receiver (`expect`, called before django-ratelimit's `get_usage`);
without it (the login view) the lease is one count, one round trip per request, as before.
The lease is `limit // (16 * WEB_CONCURRENCY)`, between 1 and MAX_LEASE.

The error bound (docs/architecture.md, "The ingest pipeline"):
- **never more than the limit pass** in a window, whatever the number of processes: Redis
  grants at most `limit` counts per window in total and each is used once;
- **early refusals**: counts another process leased and has not used yet are not available
  to this one, so a request can be refused while fewer than `limit` have passed: by at most
  `(processes - 1) * (lease - 1)` requests per window and client, under 1/16 of the limit.
  At rates below 32 per window (with two processes) the lease is 1 and the limit is exact.

Used only as the `ratelimit` cache alias (settings.RATELIMIT_USE_CACHE), never as the
default cache: `add` here always counts, which is what a rate limiter wants and nothing
else does.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django_redis.cache import RedisCache

MAX_LEASE = 256
# A thread that finds another one fetching a lease for the same key waits this long for
# it before it asks Redis itself (a fetch takes well under a millisecond when Redis is up).
WAIT_FOR_LEASE_SECONDS = 0.6

# ARGV: counts wanted, the limit (0: unknown, grant what is asked), the key's expiry.
# Returns {the counter after, counts granted}; granted counts are after-granted+1 .. after.
# The expiry is set when the key is created, so the window is fixed from its first count.
COUNT_SCRIPT = """
local want = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = want
if limit > 0 then grant = math.max(0, math.min(want, limit - count)) end
if grant == 0 then return {count, 0} end
local after = redis.call('INCRBY', KEYS[1], grant)
if after == grant then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return {after, grant}
"""

_expected = threading.local()


def expect(rate: str) -> None:
    """The limit of the count about to be made in this thread (`N/period`)."""
    try:
        _expected.limit = max(0, int(rate.partition("/")[0]))
    except ValueError:
        _expected.limit = 0


def forget_expected() -> None:
    _expected.limit = 0


def lease_size(limit: int) -> int:
    if limit <= 0:
        return 1
    return max(1, min(MAX_LEASE, limit // (16 * max(1, settings.WEB_CONCURRENCY))))


class _Lease:
    """One window's counts held by this process."""

    __slots__ = ("deadline", "exhausted", "fetching", "last", "next")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.next = 1
        self.last = 0  # counts next..last are this process's to hand out
        self.exhausted = 0  # the shared count once Redis had nothing left to grant
        self.fetching: threading.Event | None = None


class RateLimitCache(RedisCache):  # type: ignore[misc]  # django-redis ships no types
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._counted = threading.local()
        self._script: Any = None
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}

    def add(self, key: Any, value: Any, timeout: Any = None, version: int | None = None, **kwargs: Any) -> bool:
        if value != 1:  # Not a counter: behave as a plain cache.
            self._counted.last = None
            return bool(super().add(key, value, timeout, version=version, **kwargs))
        redis_key = self.client.make_key(key, version=version)
        seconds = max(1, int(timeout if timeout is not None else self.default_timeout))
        limit = getattr(_expected, "limit", 0)
        count = self._count(str(redis_key), seconds, limit)
        if count == 1:
            self._counted.last = None
            return True
        self._counted.last = (redis_key, count)
        return False

    def clear(self) -> bool:
        with self._lock:
            self._leases.clear()
        return bool(super().clear())

    def incr(self, key: Any, delta: int = 1, version: int | None = None, **kwargs: Any) -> int:
        last = getattr(self._counted, "last", None)
        self._counted.last = None
        if last is not None and delta == 1 and last[0] == self.client.make_key(key, version=version):
            return int(last[1])  # Already counted by add().
        return int(super().incr(key, delta, version=version, **kwargs))

    def _count(self, redis_key: str, seconds: int, limit: int) -> int:
        """This request's count in the window: from the lease, else from a new one."""
        while True:
            with self._lock:
                now = time.monotonic()
                lease = self._leases.get(redis_key)
                if lease is None or lease.deadline <= now:
                    if len(self._leases) > 1000:  # windows past and forgotten
                        self._leases = {k: v for k, v in self._leases.items() if v.deadline > now}
                    lease = self._leases[redis_key] = _Lease(now + seconds)
                if lease.next <= lease.last:
                    lease.next += 1
                    return lease.next - 1
                if lease.exhausted:
                    lease.exhausted += 1  # over the limit until the window ends, no round trip
                    return lease.exhausted
                waiting = lease.fetching
                if waiting is None:
                    lease.fetching = fetched = threading.Event()
            if waiting is not None:
                # Another thread is asking Redis for this key: take from what it brings.
                waiting.wait(WAIT_FOR_LEASE_SECONDS)
                with self._lock:
                    if lease.fetching is waiting:
                        lease.fetching = None  # it gave up or hangs: ask ourselves
                continue
            try:
                after, granted = self._lease(redis_key, lease_size(limit), limit, seconds)
            finally:
                with self._lock:
                    lease.fetching = None
                fetched.set()
            with self._lock:
                if granted == 0:
                    lease.exhausted = max(lease.exhausted, after) + 1
                    return lease.exhausted
                # This request takes the first count, the process keeps the rest.
                lease.next, lease.last = after - granted + 2, after
                return after - granted + 1

    def _lease(self, redis_key: str, want: int, limit: int, seconds: int) -> tuple[int, int]:
        client = self.client.get_client(write=True)
        if self._script is None:
            self._script = client.register_script(COUNT_SCRIPT)
        after, granted = self._script(keys=[redis_key], args=[want, limit, seconds], client=client)
        return int(after), int(granted)
