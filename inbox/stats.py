"""Per-endpoint counters for what the receiver refuses or does not store.

They live in the cache (Redis in production), not the database: a flood of 429s or
forged deliveries must not turn into a flood of database writes. They are operational
figures, so a cache restart resetting them is acceptable.
"""

from __future__ import annotations

import logging

from django.core.cache import cache

logger = logging.getLogger("inbox.stats")

RATE_LIMITED = "rate_limited"
REJECTED = "rejected"
DUPLICATE = "duplicate"
KINDS = (REJECTED, RATE_LIMITED, DUPLICATE)


def _key(endpoint_id: int, kind: str) -> str:
    return f"stats:{endpoint_id}:{kind}"


def bump(endpoint_id: int, kind: str) -> None:
    key = _key(endpoint_id, kind)
    try:
        if not cache.add(key, 1, timeout=None):
            cache.incr(key)
    except Exception:  # A counter is never worth failing a request for.
        logger.warning("could not count %s for endpoint=%s", kind, endpoint_id)


def counts(endpoint_id: int) -> dict[str, int]:
    try:
        found = cache.get_many([_key(endpoint_id, kind) for kind in KINDS])
    except Exception:
        found = {}
    return {kind: int(found.get(_key(endpoint_id, kind), 0)) for kind in KINDS}
