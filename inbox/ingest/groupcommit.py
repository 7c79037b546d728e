"""Group commit: concurrent requests in one web process share one INSERT and one commit.

Each accepted message costs a database round trip and a commit (a WAL flush), and on a
busy receiver those are most of its cost; with threads, each blocking call also costs a
hand-off of the GIL. Request threads that arrive while an INSERT is in flight queue their
item; when it returns, the first of them leads: it writes every queued item (up to
`max_batch`) in one multi-row INSERT and one commit on its own connection, then wakes the
others with their outcome. A lone request never waits for company: it leads at once, so at
low load nothing changes, and under load the batch grows by itself.

Every thread answers only after the commit that holds its item, so "stored before 2xx"
holds for each request exactly as with one INSERT each.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

from django.db import DatabaseError

logger = logging.getLogger("inbox.receiver")


class GroupCommitError(DatabaseError):
    """The shared INSERT failed; the cause is the database's own error."""


_PENDING = object()


class _Signal:
    """A one-shot event: a lock held until set. `threading.Event` builds a Condition and a
    fresh lock for every wait, and on a busy receiver each request waits once: this costs
    one lock and no allocation beyond it."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        with contextlib.suppress(RuntimeError):  # set already: a second set is a no-op, as with Event
            self._lock.release()

    def wait(self, timeout: float = -1) -> bool:
        if not self._lock.acquire(timeout=timeout):
            return False
        with contextlib.suppress(RuntimeError):  # a second set() released it already
            self._lock.release()  # it stays set for any later wait
        return True


class _Entry[T]:
    __slots__ = ("error", "item", "lead", "outcome", "ready")

    def __init__(self, item: T) -> None:
        self.item = item
        self.ready = _Signal()
        self.lead = False
        self.outcome: object = _PENDING
        self.error: BaseException | None = None

    @property
    def settled(self) -> bool:
        return self.outcome is not _PENDING or self.error is not None


class GroupCommit[T, R]:
    def __init__(
        self,
        write: Callable[[list[T]], Sequence[R]],
        *,
        retry_one_by_one: tuple[type[BaseException], ...] = (),
        error: type[Exception] = GroupCommitError,
        max_batch: int = 64,
        timeout: float = 60.0,
    ) -> None:
        """`write` sends a batch in one round trip and returns one outcome per item.
        `retry_one_by_one`: errors after which nothing of the batch was kept and one item
        is to blame (the database refused a row); the batch is then sent item by item, so
        only that request fails. Any other error (the server is unreachable, or it failed
        after the commit) fails the whole batch: retrying could write an item twice.
        `error` is what each request raises when its item failed, from the cause."""
        self._write = write
        self._retry_one_by_one = retry_one_by_one
        self._error = error
        self._max_batch = max_batch
        self._timeout = timeout
        self._lock = threading.Lock()
        self._queue: list[_Entry[T]] = []
        # Invariant: while nobody leads, the queue is empty (a leader that finishes with
        # entries waiting hands the lead to the first of them).
        self._leading = False

    def submit(self, item: T) -> R:
        """Send `item` with whatever else is waiting; its own outcome, once it is sent."""
        entry = _Entry(item)
        with self._lock:
            self._queue.append(entry)
            leads = not self._leading
            self._leading = True
        if not leads:
            if not entry.ready.wait(self._timeout):
                self._abandon(entry)
            if not entry.lead:
                return self._outcome(entry)
        try:
            self._write_batch()
        finally:
            self._hand_over()
        return self._outcome(entry)

    def _write_batch(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
        try:
            try:
                outcomes = self._write([entry.item for entry in batch])
            except self._retry_one_by_one:
                if len(batch) == 1:
                    raise
                logger.warning("group write of %d refused; writing one by one", len(batch))
                for entry in batch:
                    try:
                        entry.outcome = self._write([entry.item])[0]
                    except Exception as exc:  # handed to that request's thread
                        entry.error = exc
            else:
                # Outside the retry: the write has committed, a mismatch here must not
                # send the batch again.
                for entry, outcome in zip(batch, outcomes, strict=True):
                    entry.outcome = outcome
        except Exception as exc:  # e.g. the server is unreachable: every request fails
            for entry in batch:
                if not entry.settled:
                    entry.error = exc
        finally:
            for entry in batch:
                if not entry.settled:
                    entry.error = self._error("interrupted")
                entry.ready.set()

    def _hand_over(self) -> None:
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                successor.ready.set()
            else:
                self._leading = False

    def _abandon(self, entry: _Entry[T]) -> None:
        with self._lock:
            if entry in self._queue:
                self._queue.remove(entry)
                entry.error = self._error("timed out waiting for the group write")
                return
        # A leader already took it: its outcome comes with the round trip that holds it.
        entry.ready.wait()

    def _outcome(self, entry: _Entry[T]) -> R:
        if entry.error is not None:
            raise self._error("the group write failed") from entry.error
        if entry.outcome is _PENDING:
            raise self._error("the group write gave no outcome")
        return entry.outcome  # type: ignore[return-value]  # set from write(), an R
