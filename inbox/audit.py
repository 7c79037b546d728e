"""Every change to an endpoint or a destination reaches the audit log, whatever the path.

The dashboard's views write rich entries themselves (what changed, the grace period of a
rotation...). Other paths (the Django admin, any view added later) would write nothing, so
model signals (inbox.auditlog) write a plain entry for each save and delete made while a
request is served.
Within one request the two are merged: a view's own entry replaces the plain one written
for the same endpoint, and a plain entry is skipped when the view already wrote its own.
So a view that forgets to audit still leaves a trace, and none leaves two.

Management commands that change things open a scope too (`command_scope`, used by
`inbox.management.commands`): their entries name the command and the OS user
("manage.py create_endpoint (alice)") with `via: command`. Outside both (the worker,
tests' factories) signals write nothing.

Each entry is logged once, as `inbox.audit` "audit <action> ...": a plain entry a view may
still replace is logged when its scope ends, if it was not replaced.

Messages have no signals: receivers on Message would turn every bulk and retention delete
into a row-by-row one. Their changes are audited where they are made (the dashboard, one
entry per bulk job, and the admin's own hooks in inbox.admin).
"""

from __future__ import annotations

import functools
import getpass
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("inbox.audit")


def log_entry(entry: Any) -> None:
    """The one log line of an audit entry (an AuditEntry)."""
    logger.info("audit %s target=%r by user=%s", entry.action, entry.target[:100], entry.user_id or entry.username)


@dataclass
class Scope:
    """What one request (or command) wrote to the audit log so far, by endpoint id."""

    request: HttpRequest | None
    # For a management command: "manage.py create_endpoint (alice)".
    command: str = ""
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
        if self.request is None:
            return "command"
        return "admin" if self.request.path.startswith("/admin/") else "web"

    def flush(self) -> None:
        for _, entry in self.plain.values():
            log_entry(entry)
        self.plain.clear()


_scope: ContextVar[Scope | None] = ContextVar("audit_scope", default=None)


def current() -> Scope | None:
    return _scope.get()


def audit_scope(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: open an audit scope for each request (after authentication)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        scope = Scope(request)
        token = _scope.set(scope)
        try:
            return get_response(request)
        finally:
            _scope.reset(token)
            scope.flush()

    return middleware


def os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown user"


@contextmanager
def command_scope(command: str) -> Iterator[Scope]:
    """An audit scope for what a management command changes: entries name the command and
    the OS user who ran it, with `via: command`."""
    scope = Scope(None, command=f"manage.py {command} ({os_user()})")
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
        scope.flush()


def audited_command(handle: Callable[..., Any]) -> Callable[..., Any]:
    """Decorates a command's `handle`: what it changes is audited as that command."""

    @functools.wraps(handle)
    def wrapper(self: Any, *args: Any, **options: Any) -> Any:
        with command_scope(type(self).__module__.rpartition(".")[2]):
            return handle(self, *args, **options)

    return wrapper
