"""The receiver's lean path: `/hooks/<slug>/` answered in front of Django's handler.

A delivery needs none of the dashboard's middleware (sessions, CSRF, auth, messages, htmx,
the audit scope), nor request signals or URL resolution, and together they cost about a
third of a delivery's CPU (docs/performance.md). `ReceiverDispatch` wraps Django's WSGI
handler (config/wsgi.py) and answers a path the receiver's URL pattern would match itself,
keeping every contract the full stack gives a receiver answer:

- the security headers: the same middleware objects' own `process_response` (security,
  CSP, common, clickjacking) run on the answer, so HSTS, `X-Content-Type-Options`,
  `X-Frame-Options`, `Referrer-Policy`, `Cross-Origin-Opener-Policy`, the CSP and
  `Content-Length` are what Django would add;
- anything the lean path would not answer exactly as Django does goes to Django, with the
  body still unread: a Host outside `ALLOWED_HOSTS` (400), an https redirect, an unknown or
  disabled slug (Http404: the same 404 page as any other), a path the pattern refuses (NUL,
  junk, a missing slash);
- logs: the slug is remembered for inbox/logs.py's filter while the request is served, a 5xx
  is logged by `django.request` as Django would, an exception escaping the view is answered
  by Django's own `response_for_exception` (logged with its traceback);
- database connections are recycled as `CONN_MAX_AGE` and health checks say, by the same
  check Django's `close_old_connections` makes on `request_started` and `request_finished`
  (on the receiver's one connection);
- an accepted delivery's answer (the endpoint's configured body, status and content type)
  is rendered through those steps once per endpoint and reused (`_accepted`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, cast

from django.conf import settings
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest, get_script_name
from django.core.signals import setting_changed
from django.db import connection, reset_queries
from django.dispatch import receiver as on_signal
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import set_script_prefix
from django.utils.log import log_response

from inbox import logs
from inbox.ingest import receiver
from inbox.models import Endpoint

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# What config/urls.py's `hooks/<hookslug:slug>/` matches, and nothing else.
RECEIVER_PATH = re.compile(r"/hooks/([A-Za-z0-9_-]{1,64})/")


def _never(request: HttpRequest) -> HttpResponseBase:
    raise AssertionError("the lean path calls the middleware's hooks itself")


class WireAnswer(NamedTuple):
    """A rendered answer, as the server sends it."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    content: bytes

    @classmethod
    def of(cls, response: HttpResponse) -> WireAnswer:
        cookies = (("Set-Cookie", c.OutputString()) for c in response.cookies.values())
        headers = (*response.items(), *cookies)
        return cls(response.status_code, response.reason_phrase, headers, response.content)


# Bumped when a test changes settings: the accepted answers built before are forgotten.
_settings_generation = itertools.count()
_generation = next(_settings_generation)


@on_signal(setting_changed, dispatch_uid="inbox.ingest.wsgi.settings_changed")
def _settings_changed(**kwargs: Any) -> None:
    global _generation  # noqa: PLW0603
    _generation = next(_settings_generation)


class ReceiverDispatch:
    """A WSGI application: receiver deliveries answered here, everything else by `django`."""

    def __init__(self, django: WSGIApp, *, recycle_connections: bool = True) -> None:
        self.django = django
        # Off only under Django's test client, which keeps the test's transaction open
        # across requests (its own handler disconnects close_old_connections too).
        self.recycle_connections = recycle_connections
        self.security = SecurityMiddleware(_never)
        self.csp = ContentSecurityPolicyMiddleware(_never)
        self.common = CommonMiddleware(_never)
        self.xframe = XFrameOptionsMiddleware(_never)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answered = self.answer(environ)
        if answered is None:
            return self.django(environ, start_response)
        answer = answered[1]
        start_response(f"{answer.status} {answer.reason}", list(answer.headers))
        # Rendered already (the receiver never streams); nothing is left to close.
        return [answer.content]

    def answer(self, environ: dict[str, Any]) -> tuple[WSGIRequest, WireAnswer] | None:
        """The request and the receiver's answer, or None when Django must answer it."""
        match = RECEIVER_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return None
        if self.recycle_connections:
            # request_started: the receiver uses only its own (default) connection, so only
            # that one is checked, as close_old_connections would check each.
            connection.close_if_unusable_or_obsolete()
            if settings.DEBUG:
                reset_queries()
        try:
            return self._answer(environ, match[1])
        finally:
            if self.recycle_connections:
                connection.close_if_unusable_or_obsolete()  # request_finished

    def _answer(self, environ: dict[str, Any], slug: str) -> tuple[WSGIRequest, WireAnswer] | None:
        set_script_prefix(get_script_name(environ))
        request = WSGIRequest(environ)
        try:
            if self.security.process_request(request) is not None or self.common.process_request(request) is not None:
                return None  # a redirect (https, a slash): Django's to give
        except Exception:  # DisallowedHost, a refused user agent: Django answers them
            return None
        self.csp.process_request(request)
        token = logs.remember_slug(slug)
        try:
            try:
                outcome = receiver.receive_delivery(request, slug)
            except Http404:
                return None  # the same 404 page as any path; the body is still unread
            except Exception as exc:  # answered and logged as Django would
                outcome = response_for_exception(request, exc)
            if isinstance(outcome, receiver.Accepted):
                return request, self._accepted(request, outcome.endpoint)
            response = receiver.response_for(outcome)
            if response.status_code >= 500:
                log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        finally:
            logs.forget_slug(token)
        return request, WireAnswer.of(self._finish(request, response))

    def _finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        # The full stack's order: innermost middleware's process_response first.
        response = self.xframe.process_response(request, response)
        # CommonMiddleware turns only a 404 into another answer, and the receiver's
        # 404s went to Django above: the response is still the one made here.
        response = cast(HttpResponse, self.common.process_response(request, response))
        response = self.csp.process_response(request, response)
        return self.security.process_response(request, response)

    def _accepted(self, request: HttpRequest, endpoint: Endpoint) -> WireAnswer:
        """The endpoint's answer to an accepted delivery, rendered by the same steps as any
        other answer the first time and kept on the endpoint's (cached) instance: it depends
        on nothing else in the request but whether it came over https (HSTS). An edited
        endpoint is a new instance (inbox/ingest/endpoints.py), so it is rendered anew."""
        key = (request.is_secure(), _generation)
        answers: dict[tuple[bool, int], WireAnswer] = endpoint.__dict__.setdefault("_inbox_accepted_answers", {})
        answer = answers.get(key)
        if answer is None:
            response = receiver.response_for(receiver.Accepted(endpoint))
            answer = answers[key] = WireAnswer.of(self._finish(request, response))
        return answer
