from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from inbox.logs import redact

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
access_logger = logging.getLogger("inbox.access")
LINE = "%s %s %s %.1fms %s"
ADDRESS = re.compile(r"[0-9A-Fa-f.:]{2,45}")


def _printable(text: str) -> str:
    # PATH_INFO may hold any byte (%0A decodes to a newline): one request, one line.
    return text if text.isascii() and text.isprintable() else text.encode("unicode_escape").decode("ascii")


def with_access_log(app: WSGIApp, proxy_hops: int = 0) -> WSGIApp:
    """One line per request, written at the WSGI layer because the server's own access log
    would print the raw path, and a receiver's path holds its slug:

        GET /hooks/…/ 200 1.4ms 203.0.113.7

    method, path with the slug redacted (no query string: it may carry a credential such as
    Meta's hub.verify_token), status, milliseconds until the response was ready (for a
    streamed export: until its last byte), client address (X-Forwarded-For's trusted hop
    behind TRUSTED_PROXY_HOPS proxies).
    """

    def client(environ: dict[str, Any]) -> str:
        address = environ.get("REMOTE_ADDR", "")
        if proxy_hops:
            forwarded = environ.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if len(forwarded) >= proxy_hops:
                address = forwarded[-proxy_hops].strip()
        # A header is anyone's to write: print it only when it looks like an address.
        return address if ADDRESS.fullmatch(address) else "-"

    def log(environ: dict[str, Any], status: str, started: float) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        path = redact(_printable(environ.get("PATH_INFO", "")))
        method = _printable(environ.get("REQUEST_METHOD", "")[:16])
        elapsed = (time.perf_counter() - started) * 1000
        args = (method, path, status, elapsed, client(environ))
        # makeRecord + handle: logger.info would also look up the caller's frame, a
        # quarter of the cost of a line, for a file and line number nobody prints.
        access_logger.handle(access_logger.makeRecord(access_logger.name, logging.INFO, "", 0, LINE, args, None))

    def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        status = ["-"]

        def start(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = line[:3]
            return start_response(line, headers, exc_info)

        try:
            response = app(environ, start)
        except BaseException:
            log(environ, "500", started)
            raise
        if getattr(response, "streaming", False):
            return _LogWhenClosed(response, lambda: log(environ, status[0], started))
        # Rendered already: log now and hand the response over untouched.
        log(environ, status[0], started)
        return response

    return logged


class _LogWhenClosed:
    """A streamed response (an export) that writes its access line when the server closes it."""

    def __init__(self, response: Any, log: Callable[[], None]) -> None:
        self.response, self.log = response, log

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.response)

    def close(self) -> None:
        try:
            self.response.close()
        finally:
            self.log()


def without_length_on_204(app: WSGIApp) -> WSGIApp:
    """RFC 9110 8.6: a 204 carries no Content-Length, and CommonMiddleware gives every response
    one (`Content-Length: 0` on the dashboard's htmx polls that have nothing new, and on the
    receiver's OPTIONS and configured 204 answers): a strict client would wait for the bytes."""

    def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("204"):
                headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return call


def _wrap(app: WSGIApp) -> WSGIApp:
    return with_access_log(app, settings.TRUSTED_PROXY_HOPS) if settings.ACCESS_LOG else app


django_application = get_wsgi_application()

# Imported once the apps are loaded: the receiver imports the models.
from inbox.ingest.wsgi import ReceiverDispatch  # noqa: E402

# Deliveries to /hooks/<slug>/ are answered in front of Django's middleware, signals and
# URL resolution (inbox/ingest/wsgi.py); the access log sees them like any request.
application = _wrap(without_length_on_204(ReceiverDispatch(django_application)))
