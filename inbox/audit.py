"""Every change to an endpoint or a destination reaches the audit log, whatever the path.

The dashboard's views write rich entries themselves (what changed, the grace period of a
rotation...). Other paths (the Django admin, any view added later) would write nothing, so
model signals (inbox.auditlog) write a plain entry for each save and delete made while a
request is served.
Within one request the two are merged: a view's own entry replaces the plain one written
for the same endpoint, and a plain entry is skipped when the view already wrote its own.
So a view that forgets to audit still leaves a trace, and none leaves two.

Outside requests (management commands, the worker, tests' factories) signals write
nothing: whoever runs those holds the server itself, beyond what an audit log can hold.

Messages have no signals: receivers on Message would turn every bulk and retention delete
into a row-by-row one. Their changes are audited where they are made (the dashboard, one
entry per bulk job, and the admin's own hooks in inbox.admin).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse


@dataclass
class Scope:
    """What one request wrote to the audit log so far, by endpoint id."""

    request: HttpRequest
    # Entries written by signals, {(model, pk): (endpoint id, entry)}, oldest first: the
    # view's own entry on the same endpoint replaces the latest of them.
    plain: dict[tuple[str, Any], tuple[int | None, Any]] = field(default_factory=dict)
    # Endpoints the view itself wrote an entry about: signals leave them alone.
    explained: set[int] = field(default_factory=set)

    @property
    def user(self) -> Any:
        user = getattr(self.request, "user", None)
        return user if user is not None and user.is_authenticated else None

    @property
    def via(self) -> str:
        return "admin" if self.request.path.startswith("/admin/") else "web"


_scope: ContextVar[Scope | None] = ContextVar("audit_scope", default=None)


def current() -> Scope | None:
    return _scope.get()


def audit_scope(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: open an audit scope for each request (after authentication)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        token = _scope.set(Scope(request))
        try:
            return get_response(request)
        finally:
            _scope.reset(token)

    return middleware
