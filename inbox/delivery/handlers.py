"""Python handlers: code in the host project that runs for each accepted message.

Two ways in, both run by the task worker, never inside the receiver's request:

    from inbox.handlers import handler, message_received

    @handler(endpoint="stripe-live", event_type="invoice.paid")
    def mark_invoice_paid(message):
        ...

    @receiver(message_received)
    def log_every_message(sender, message, **kwargs):
        ...

A handler that raises fails that attempt (its traceback is kept on the attempt) and the
message is retried with backoff like a forward, so handlers must be idempotent: a retry
or a replay runs them again.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

if TYPE_CHECKING:
    from inbox.models import Message

# Sent with sender=Message and message=<the Message>; every receiver is one target.
message_received = Signal()

HandlerFunc = Callable[["Message"], Any]


@dataclass(frozen=True)
class Handler:
    func: HandlerFunc
    endpoint: str | None
    event_type: str | None

    @property
    def name(self) -> str:
        return f"{self.func.__module__}.{self.func.__qualname__}"

    def matches(self, endpoint: str, event_type: str) -> bool:
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        # Event types match exactly or by shell pattern: "invoice.*", "*.deleted".
        return self.event_type is None or fnmatch.fnmatchcase(event_type, self.event_type)


_registry: list[Handler] = []


def register(func: HandlerFunc, *, endpoint: str | None = None, event_type: str | None = None) -> HandlerFunc:
    """Run `func(message)` for messages of `endpoint` (a name; None: every endpoint)
    whose event type matches `event_type` (None: every event)."""
    entry = Handler(func, endpoint, event_type)
    if entry not in _registry:
        _registry.append(entry)
    return func


def handler(*, endpoint: str | None = None, event_type: str | None = None) -> Callable[[HandlerFunc], HandlerFunc]:
    """Decorator form of `register`."""

    def decorate(func: HandlerFunc) -> HandlerFunc:
        return register(func, endpoint=endpoint, event_type=event_type)

    return decorate


def unregister(func: HandlerFunc) -> None:
    _registry[:] = [h for h in _registry if h.func is not func]


def handlers_for(endpoint: str, event_type: str) -> list[Handler]:
    return [h for h in _registry if h.matches(endpoint, event_type)]


def registered_for(endpoint: str) -> list[Handler]:
    """Every handler that may run for `endpoint`, whatever the event type."""
    return [h for h in _registry if h.endpoint in (None, endpoint)]
