"""Whether a message has anything to be processed by, which the receiver asks for every
accepted message. Apart from inbox/delivery/processing.py so that the receiver loads only
this: processing reaches the message query language (destination filters, through
inbox/delivery/routing.py), which a request to /hooks/ must never load
(docs/architecture.md, "Layers")."""

from __future__ import annotations

from inbox.delivery import handlers
from inbox.models import Endpoint, Message


def has_work(endpoint: Endpoint, event_type: str) -> bool:
    """Whether a message of this event type has anything to be processed by: only then
    is a task enqueued for it (each enqueue is one more row written). A destination with a
    filter counts: the worker, not the receiver, evaluates filters."""
    return bool(
        endpoint.active_destinations
        or handlers.handlers_for(endpoint.name, event_type)
        or handlers.message_received.has_listeners(Message)
    )
