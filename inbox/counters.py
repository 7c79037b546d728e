"""Durable counters, counted in memory and written every few seconds.

The receiver counts what it accepts, refuses, rate-limits and stores as a duplicate, and the
worker counts forward attempts. Counting must cost the receiver nothing it can measure: no
database round trip per accepted message (its budget is one, the INSERT) and no database
write per 429 (a flood of them must not become a flood of writes). So `add` only bumps a
dict under a lock, and a daemon thread per process, started at the first count, adds the
deltas to the `Counter` table every `INBOX_COUNTER_FLUSH_SECONDS` in one statement
(`CounterQuerySet.add`), and once more when the process exits normally (atexit).

A flush that fails keeps its deltas for the next one. What a crash can lose: the counts
one process made since its last flush (at most that many seconds of them) when it is
killed hard (kill -9, the OOM killer). A flush whose commit reached the database but whose
answer did not (the connection broke at that instant) is retried and counted twice.

With `INBOX_COUNTER_FLUSH_SECONDS = 0` no thread is started and nothing is written at exit
(the tests: a thread of its own would write outside the test's transaction); readers in this process (the endpoint page,
/metrics) call `flush()` first either way, so they always see this process's own counts.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection

from inbox.models import Counter, CounterKind, SeriesKey

logger = logging.getLogger("inbox.counters")

RECEIVED = CounterKind.RECEIVED.value
REJECTED = CounterKind.REJECTED.value
RATE_LIMITED = CounterKind.RATE_LIMITED.value
DUPLICATE = CounterKind.DUPLICATE.value
FORWARD_ATTEMPTS = CounterKind.FORWARD_ATTEMPTS.value

_lock = threading.Lock()
_pending: dict[SeriesKey, int] = {}
_started = False
_background = False  # a thread writes the counts (and atexit what it had not yet)


def add(kind: str, endpoint_id: int, n: int = 1) -> None:
    """Count `n` of `kind` for an endpoint: a dict update, no I/O."""
    _count((kind, endpoint_id, 0, ""), n)


def add_forward_attempt(destination_id: int, outcome: str) -> None:
    """Count one forward attempt to a destination by its outcome (an AttemptStatus value)."""
    _count((FORWARD_ATTEMPTS, 0, destination_id, outcome), 1)


def _count(key: SeriesKey, n: int) -> None:
    with _lock:
        _pending[key] = _pending.get(key, 0) + n
    if not _started:
        _start_flusher()


def pending() -> dict[SeriesKey, int]:
    """What this process counted and has not written yet (a copy)."""
    with _lock:
        return dict(_pending)


def clear() -> None:
    """Forget this process's unwritten counts (the tests, between tests)."""
    with _lock:
        _pending.clear()


def flush() -> bool:
    """Write this process's deltas now; False (and the deltas kept) when the database refused."""
    global _pending  # swapped under the lock: no count lands in a dict already taken
    with _lock:
        deltas, _pending = _pending, {}
    if not deltas:
        return True
    try:
        Counter.objects.add(deltas)
    except Exception:  # Any failure (database down, a bug): keep the counts for the next try.
        logger.warning("could not write %d counter series; kept for the next flush", len(deltas), exc_info=True)
        with _lock:
            for key, n in deltas.items():
                _pending[key] = _pending.get(key, 0) + n
        return False
    return True


def for_endpoint(endpoint_id: int) -> dict[str, int]:
    """An endpoint's counts by kind, this process's latest included (the others' within a flush)."""
    flush()
    return Counter.objects.for_endpoint(endpoint_id)


def _start_flusher() -> None:
    global _started, _background  # noqa: PLW0603 - one thread per process, started once
    seconds = float(settings.INBOX_COUNTER_FLUSH_SECONDS)
    with _lock:
        if _started:
            return
        _started = True
        _background = seconds > 0
    if _background:
        threading.Thread(target=_run, args=(seconds,), name="inbox-counters", daemon=True).start()


def _run(seconds: float) -> None:
    while True:
        time.sleep(seconds)
        try:
            # The thread's own connection, recycled as CONN_MAX_AGE and health checks say.
            close_old_connections()
            if not flush():
                connection.close()  # a broken connection is replaced at the next try
        except Exception:  # The thread must outlive anything a tick meets: it is the only one.
            logger.exception("counter flush thread: unexpected error")


@atexit.register
def _flush_at_exit() -> None:
    # Not without the thread (the tests): their counts belong to a test database gone by now.
    if _background and _pending:
        flush()


def _after_fork_in_child() -> None:
    # A forked child (a server's worker process) starts with none of its parent's counts
    # (the parent writes those) and without its thread (threads do not survive a fork).
    global _lock, _pending, _started, _background  # noqa: PLW0603
    _lock = threading.Lock()
    _pending = {}
    _started = _background = False


os.register_at_fork(after_in_child=_after_fork_in_child)
