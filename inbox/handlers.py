"""The public import path of the handler registry, for host projects (README, "Python handlers"):

    from inbox.handlers import handler, message_received

The registry lives with the rest of delivery in inbox/delivery/handlers.py; this module only
keeps the documented path working, and nothing in the inbox imports it.
"""

from __future__ import annotations

from inbox.delivery.handlers import (
    Handler,
    HandlerFunc,
    handler,
    handlers_for,
    message_received,
    register,
    registered_for,
    unregister,
)

__all__ = [
    "Handler",
    "HandlerFunc",
    "handler",
    "handlers_for",
    "message_received",
    "register",
    "registered_for",
    "unregister",
]
