"""Processing wake-ups: how the receiver, replays and retries queue a message for the worker.

The queue is django.tasks: a wake-up is the `process_message` task of inbox/tasks.py, and
queued rows name it by that path, so the task stays there. But tasks.py imports delivery,
so nothing in delivery or ingest may import tasks. They queue through this module instead,
and tasks.py plugs its task in when it is imported (`connect`), which inbox/apps.py makes
happen as the app starts: the dependency points down, the wiring happens once at the top.

A wake-up is only that: the message row carries the state (status, attempts, due time,
lease), so a lost or duplicated wake-up can neither lose a message nor run it twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

logger = logging.getLogger("inbox.tasks")


class Waker(Protocol):
    def wake(self, message_id: int, *, priority: int = 0, run_after: datetime | None = None) -> None:
        """Queue one processing attempt of the message, at `run_after` (None: now)."""

    def backlog(self) -> bool:
        """Whether wake-ups are due and waiting to be picked up."""


_waker: Waker | None = None


def connect(waker: Waker) -> None:
    global _waker  # noqa: PLW0603 - set once, as the app starts (see the module's docstring)
    _waker = waker


def _connected() -> Waker:
    if _waker is None:
        raise ImproperlyConfigured("No processing queue: inbox.tasks was not imported (InboxConfig.ready does it).")
    return _waker


def wake(message_id: int, *, priority: int = 0, run_after: datetime | None = None) -> None:
    """Queue a wake-up for the message; raises when the queue cannot take it."""
    _connected().wake(message_id, priority=priority, run_after=run_after)


def enqueue_processing(message_id: int, priority: int = 0) -> None:
    """Queue a wake-up for a pending message. A failure is logged, not raised: the message
    is stored as pending, and the recovery sweep queues it again."""
    try:
        wake(message_id, priority=priority)
    except DatabaseError:
        logger.exception("could not queue processing of message id=%s; the recovery sweep will", message_id)


def backlog() -> bool:
    """Whether wake-ups are due and waiting to be picked up (a backlog)."""
    return _connected().backlog()
