"""Logging without receiver slugs: a receiver's path, `/hooks/<slug>/`, is its credential.

- RedactReceiverSlugs, a filter on the console handler (config/settings.py, LOGGING),
  rewrites every record it lets through: `/hooks/<anything>` becomes `/hooks/…` in the
  message and its traceback, and so does the slug of the request being served wherever it
  appears (an exception's text may quote it). Records from django.request also name the
  request's method and status: "Internal Server Error: /hooks/…/ method=POST status=500".
- QuietReceiver4xx, a filter on the django.request logger, drops its 4xx lines for
  receiver paths: the receiver logs each refusal itself by endpoint id and reason, and a
  flood of 429s or forged deliveries must not also write a second line each.
- OneLine4xx, a filter on the django.request logger, drops the traceback of its 4xx lines
  (Django logs a 403 from PermissionDenied with the exception attached): a refusal is one
  line; 5xx keep theirs.
- remember_receiver_slug, the first middleware, tells the filter which slug to look for;
  the receiver's lean path (inbox/ingest/wsgi.py) calls remember_slug/forget_slug itself.

config/wsgi.py's access log uses `redact` too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from contextvars import ContextVar, Token

from django.http import HttpRequest, HttpResponseBase

RECEIVER_PREFIX = "/hooks/"
# Any case: /HOOKS/<slug>/ is no receiver URL (a 404), but the slug in it may be a real one.
RECEIVER_PATH = re.compile(r"/hooks/[^/\s?#\"']+", re.IGNORECASE)
REDACTED_PATH = "/hooks/…"
# Shorter strings are not slugs new_slug() makes (22+ characters), and replacing them
# everywhere would garble the line: /hooks/a/ is redacted by RECEIVER_PATH alone.
MIN_SLUG = 16

# A path segment shaped like a slug (new_slug() makes 32 characters of [A-Za-z0-9_-]) under
# another prefix: a sender with a wrong URL (/api/v1/<slug>/) must not get its slug logged.
SLUG_SHAPED_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_-]{22,}(?=[/\s?#\"']|$)")

_slug: ContextVar[str | None] = ContextVar("receiver_slug", default=None)


def redact(text: str, slug: str | None = None) -> str:
    """`text` with receiver paths, and `slug` wherever it appears, replaced."""
    if slug and len(slug) >= MIN_SLUG and slug in text:
        text = text.replace(slug, "…")
    if RECEIVER_PREFIX in text.lower():
        text = RECEIVER_PATH.sub(REDACTED_PATH, text)
    return text


def slug_of(path: str) -> str | None:
    if path[: len(RECEIVER_PREFIX)].lower() != RECEIVER_PREFIX:
        return None
    return path[len(RECEIVER_PREFIX) :].partition("/")[0] or None


class RedactReceiverSlugs(logging.Filter):
    """Let every record through, with no receiver slug left in what it will print."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        path = getattr(request, "path", None)
        slug = (slug_of(path) if isinstance(path, str) else None) or _slug.get()
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format
            message = f"{record.msg!r} {record.args!r}"
        if request is not None and hasattr(record, "status_code"):
            # django.request: say which request failed, not just where.
            method = str(getattr(request, "method", "") or "")[:16].encode("unicode_escape").decode("ascii")
            message = f"{message} method={method} status={record.status_code}"
            # The request object carries the raw path to any other handler: drop it.
            record.request = None
        record.msg, record.args = SLUG_SHAPED_SEGMENT.sub("…", redact(message, slug)), ()
        if record.exc_info and not record.exc_text:
            # Formatted once here, redacted, and cached where the formatter looks for it.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, slug)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, slug)
        return True


class QuietReceiver4xx(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        path = getattr(getattr(record, "request", None), "path", "")
        return not (isinstance(status, int) and status < 500 and str(path).startswith(RECEIVER_PREFIX))


class OneLine4xx(logging.Filter):
    """A 4xx is the client's doing: one line, no traceback, and bounded (Django's refusal of a
    Host header quotes the header twice, so a 5 KB Host would write 10 KB a request)."""

    LIMIT = 500

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            try:
                message = record.getMessage()
            except Exception:  # arguments that do not fit the format: the next filter says so
                return True
            if len(message) > self.LIMIT:
                record.msg, record.args = f"{message[: self.LIMIT]}… ({len(message) - self.LIMIT} more characters)", ()
        return True


def remember_slug(slug: str) -> Token[str | None]:
    """Redact `slug` in every record until `forget_slug` (the receiver's lean path,
    inbox/ingest/wsgi.py, which runs without this module's middleware)."""
    return _slug.set(slug)


def forget_slug(token: Token[str | None]) -> None:
    _slug.reset(token)


def remember_receiver_slug(
    get_response: Callable[[HttpRequest], HttpResponseBase],
) -> Callable[[HttpRequest], HttpResponseBase]:
    """Middleware: while a receiver request is served, log records redact its slug too."""

    def middleware(request: HttpRequest) -> HttpResponseBase:
        slug = slug_of(request.path)
        if slug is None:
            return get_response(request)
        token = _slug.set(slug)
        try:
            return get_response(request)
        finally:
            _slug.reset(token)

    return middleware
