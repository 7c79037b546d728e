"""The benchmark's WSGI application: the project's own, plus the LEAN reference.

`/bench/lean/` is served by a second Django handler built with only the security and common
middleware (no sessions, CSRF, auth, messages, CSP or rate-limit middleware): the cost of
one raw INSERT in Django with the least a deployment would keep, the yardstick for a
receiver that runs outside the dashboard's middleware (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

from config.wsgi import application as project_application

LEAN_MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"]


def _lean_handler() -> WSGIHandler:
    full = settings.MIDDLEWARE
    settings.MIDDLEWARE = LEAN_MIDDLEWARE
    try:
        return WSGIHandler()
    finally:
        settings.MIDDLEWARE = full


_lean = _lean_handler()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO", "").startswith("/bench/lean/"):
        return _lean(environ, start_response)
    return project_application(environ, start_response)
