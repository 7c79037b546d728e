"""Group commit: concurrent requests in one web process share one INSERT and one commit.

Each accepted message costs a database round trip and a commit (a WAL flush), and on a
busy receiver those are most of its cost. Request threads that arrive while an INSERT is
in flight queue their message; when it returns, the first of them leads: it writes every
queued message (up to `max_batch`) in one multi-row INSERT on its own connection, then
wakes the others with their outcome. A lone request never waits for company: it leads at
once, so at low load nothing changes, and under load the batch grows by itself.

Every thread answers only after the commit that holds its row, so "stored before 2xx"
holds for each request exactly as with one INSERT each.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from django.db import DatabaseError, DataError, IntegrityError, ProgrammingError

logger = logging.getLogger("inbox.receiver")

# Errors after which nothing of the statement was kept, caused by one row rather than by
# the database being unreachable. Anything else (an unreachable database, or an error
# raised after the commit) fails the whole batch: retrying could store a row twice.
RETRY_ONE_BY_ONE = (DataError, IntegrityError, ProgrammingError, TypeError, ValueError)


class GroupCommitError(DatabaseError):
    """The shared INSERT failed; the cause is the database's own error."""


class _Entry[T]:
    __slots__ = ("error", "inserted", "item", "lead", "ready")

    def __init__(self, item: T) -> None:
        self.item = item
        self.ready = threading.Event()
        self.lead = False
        self.inserted: bool | None = None
        self.error: BaseException | None = None


class GroupCommit[T]:
    def __init__(self, write: Callable[[list[T]], Sequence[bool]], max_batch: int = 64, timeout: float = 60.0) -> None:
        self._write = write
        self._max_batch = max_batch
        self._timeout = timeout
        self._lock = threading.Lock()
        self._queue: list[_Entry[T]] = []
        # Invariant: while nobody leads, the queue is empty (a leader that finishes with
        # entries waiting hands the lead to the first of them).
        self._leading = False

    def insert(self, item: T) -> bool:
        """Write `item` durably; True when stored, False when it was a duplicate."""
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
                for entry, inserted in zip(batch, outcomes, strict=True):
                    entry.inserted = inserted
            except RETRY_ONE_BY_ONE:
                if len(batch) == 1:
                    raise
                # The database refused the statement as a whole (so nothing of it was
                # kept) because of one row, or a row could not be prepared: write them one
                # at a time, so only that request fails, not its neighbours.
                logger.warning("group insert of %d refused; writing one by one", len(batch))
                for entry in batch:
                    try:
                        entry.inserted = self._write([entry.item])[0]
                    except Exception as exc:  # handed to that request's thread
                        entry.error = exc
        except Exception as exc:  # e.g. the database is unreachable: all answer 503
            for entry in batch:
                if entry.inserted is None and entry.error is None:
                    entry.error = exc
        finally:
            for entry in batch:
                if entry.inserted is None and entry.error is None:
                    entry.error = GroupCommitError("interrupted")
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
                entry.error = GroupCommitError("timed out waiting for the group insert")
                return
        # A leader already took it: its outcome comes with the INSERT that holds it.
        entry.ready.wait()

    @staticmethod
    def _outcome(entry: _Entry[T]) -> bool:
        if entry.error is not None:
            raise GroupCommitError("the group insert failed") from entry.error
        if entry.inserted is None:
            raise GroupCommitError("the group insert gave no outcome")
        return entry.inserted
