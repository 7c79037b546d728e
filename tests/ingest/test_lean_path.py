"""The receiver's lean path (inbox/ingest/wsgi.py): answered in front of Django's handler,
with the same answers, headers, logs and connection handling as the full stack."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.core.handlers.base import BaseHandler
from django.db import DatabaseError, connection
from django.test import Client, RequestFactory, override_settings

from config import wsgi
from inbox.ingest import receiver
from inbox.models import Message
from tests.conftest import full_stack_client, make_endpoint

ORDER = b'{"type": "order.created", "id": "evt_1", "data": {"total": 42}}'
PRODUCTION_HEADERS = {
    "SECURE_HSTS_SECONDS": 31536000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
    "SECURE_SSL_REDIRECT": True,
}
# Headers that differ between two answers whatever the path (none of them today).
VARYING: set[str] = set()


def call(app: Any, method: str, path: str, body: bytes = b"", **extra: str) -> tuple[int, dict[str, str], bytes]:
    """One request through a WSGI application, as a server makes it."""
    environ = RequestFactory().generic(method, path, data=body, content_type="application/json", **extra).environ
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    started: list[Any] = []
    chunks = app(environ, lambda status, headers, exc_info=None: started.extend([status, headers]))
    content = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return int(started[0][:3]), dict(started[1]), content


@pytest.fixture
def no_full_stack() -> Iterator[mock.MagicMock]:
    """Django's middleware chain and URL resolution: the lean path never calls them."""
    with mock.patch.object(BaseHandler, "get_response", side_effect=AssertionError("full stack")) as patched:
        yield patched


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """What the console handler writes (django.request does not propagate to caplog)."""
    handler = next(h for h in logging.getLogger("django.request").handlers if isinstance(h, logging.StreamHandler))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)  # type: ignore[arg-type]


def headers_of(response: Any) -> dict[str, str]:
    return {name: value for name, value in response.items() if name not in VARYING}


@pytest.mark.django_db
@override_settings(**PRODUCTION_HEADERS)
@pytest.mark.parametrize(
    ("what", "extra", "status"),
    [
        ("accepted", {}, 200),
        ("wrong token", {"HTTP_X_WEBHOOK_TOKEN": "nope"}, 403),
        ("method", {"method": "PUT"}, 405),
        ("unknown slug", {"slug": "x" * 32}, 404),
        ("junk slug", {"path": "/hooks/a%00b/"}, 404),
        ("bad host", {"HTTP_HOST": "evil.example"}, 400),
    ],
)
def test_it_answers_like_the_full_stack_with_the_same_headers(what: str, extra: dict[str, str], status: int) -> None:
    endpoint, token = make_endpoint()
    method = extra.pop("method", "POST")
    path = extra.pop("path", None) or (f"/hooks/{extra.pop('slug')}/" if "slug" in extra else endpoint.path)
    extra.setdefault("HTTP_X_WEBHOOK_TOKEN", token or "")
    answers = []
    for client in (Client(REMOTE_ADDR="203.0.113.7"), full_stack_client(REMOTE_ADDR="203.0.113.7")):
        # HTTPS as behind the proxy production expects, so HSTS applies.
        answers.append(client.generic(method, path, ORDER, "application/json", secure=True, **extra))
    lean, full = answers
    assert lean.status_code == full.status_code == status, what
    assert lean.content == full.content
    assert headers_of(lean) == headers_of(full)
    assert lean["X-Content-Type-Options"] == "nosniff"
    if status != 400:  # a bad Host is refused before the clickjacking middleware, in both
        assert lean["X-Frame-Options"] == "DENY"
    assert lean["Referrer-Policy"] == "same-origin"
    assert lean["Strict-Transport-Security"].startswith("max-age=31536000")
    policy = lean["Content-Security-Policy"]
    # A stored answer carries the receiver's sandbox; a refusal raised as an exception gets
    # the dashboard's strict policy from the middleware, as on the full stack.
    assert policy == "default-src 'none'; sandbox" or "default-src 'self'" in policy, policy
    assert "unsafe" not in policy
    if status == 200:
        assert policy == "default-src 'none'; sandbox", "what an endpoint answers may never run"


@pytest.mark.django_db(transaction=True)
def test_it_serves_deliveries_through_the_wsgi_application_without_the_full_stack(
    no_full_stack: mock.MagicMock,
) -> None:
    endpoint, token = make_endpoint()
    status, headers, body = call(wsgi.application, "POST", endpoint.path, ORDER, HTTP_X_WEBHOOK_TOKEN=token or "")
    assert status == 200
    assert headers["Content-Length"] == str(len(body))
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert Message.objects.get().body == ORDER
    no_full_stack.assert_not_called()


@pytest.mark.django_db(transaction=True)
def test_it_hands_an_unknown_slug_and_a_bad_host_to_django() -> None:
    endpoint, _ = make_endpoint()
    status, _, page = call(wsgi.application, "POST", "/hooks/" + "x" * 32 + "/", ORDER)
    _, _, other_404 = call(wsgi.application, "GET", "/no/such/page/")
    assert (status, page) == (404, other_404)
    status, _, _ = call(wsgi.application, "POST", endpoint.path, ORDER, HTTP_HOST="evil.example")
    assert status == 400
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
@override_settings(ACCESS_LOG=True)
def test_the_access_log_sees_receiver_requests_without_their_slug(caplog: pytest.LogCaptureFixture) -> None:
    endpoint, token = make_endpoint()
    app = wsgi._wrap(wsgi.application)
    with caplog.at_level(logging.INFO, logger="inbox.access"):
        status, _, _ = call(app, "POST", endpoint.path, ORDER, HTTP_X_WEBHOOK_TOKEN=token or "")
    assert status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "inbox.access"]
    assert lines == [lines[0]]
    assert lines[0].startswith("POST /hooks/…/ 200")
    assert endpoint.slug not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_it_recycles_connections_as_django_does_around_a_request(no_full_stack: mock.MagicMock) -> None:
    endpoint, token = make_endpoint()
    connection.ensure_connection()
    # Django's request_started and request_finished both run close_old_connections, which
    # closes a connection past CONN_MAX_AGE (or broken, or left in a transaction).
    with mock.patch.object(
        connection, "close_if_unusable_or_obsolete", wraps=connection.close_if_unusable_or_obsolete
    ) as recycle:
        status, _, _ = call(wsgi.application, "POST", endpoint.path, ORDER, HTTP_X_WEBHOOK_TOKEN=token or "")
    assert status == 200
    assert recycle.call_count == 2
    no_full_stack.assert_not_called()


@pytest.mark.django_db(transaction=True)
def test_it_answers_503_and_logs_the_5xx_with_its_traceback(no_full_stack: mock.MagicMock, log: io.StringIO) -> None:
    endpoint, token = make_endpoint()
    with mock.patch.object(receiver, "store", side_effect=DatabaseError(f"down {endpoint.slug}")):
        status, headers, _ = call(wsgi.application, "POST", endpoint.path, ORDER, HTTP_X_WEBHOOK_TOKEN=token or "")
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert "database unavailable while receiving" in log.getvalue()
    assert "Traceback (most recent call last)" in log.getvalue()
    assert "Service Unavailable: /hooks/…/ method=POST status=503" in log.getvalue()
    assert endpoint.slug not in log.getvalue()


@pytest.mark.django_db(transaction=True)
def test_an_exception_outside_the_view_is_a_logged_500(no_full_stack: mock.MagicMock, log: io.StringIO) -> None:
    endpoint, token = make_endpoint()
    with mock.patch.object(receiver, "receive_delivery", side_effect=RuntimeError("boom " + endpoint.slug)):
        status, _, _ = call(wsgi.application, "POST", endpoint.path, ORDER, HTTP_X_WEBHOOK_TOKEN=token or "")
    assert status == 500
    assert "Internal Server Error: /hooks/…/ method=POST status=500" in log.getvalue()
    assert "RuntimeError: boom …" in log.getvalue()
    assert endpoint.slug not in log.getvalue()


@pytest.mark.django_db
@override_settings(**PRODUCTION_HEADERS)
def test_it_renders_an_endpoint_s_answer_once_and_gives_each_delivery_the_same() -> None:
    endpoint, token = make_endpoint()
    client = Client(REMOTE_ADDR="203.0.113.7", HTTP_X_WEBHOOK_TOKEN=token or "")
    with mock.patch.object(receiver, "accepted_response", wraps=receiver.accepted_response) as render:
        first, second = (client.post(endpoint.path, ORDER, "application/json", secure=True) for _ in range(2))
    assert render.call_count == 1
    assert (first.status_code, first.content, headers_of(first)) == (200, second.content, headers_of(second))
    assert Message.objects.count() == 2
    full = full_stack_client(REMOTE_ADDR="203.0.113.7").post(
        endpoint.path, ORDER, "application/json", secure=True, HTTP_X_WEBHOOK_TOKEN=token or ""
    )
    assert headers_of(second) == headers_of(full)


@pytest.mark.django_db
@override_settings(**PRODUCTION_HEADERS)
def test_it_answers_hsts_only_over_https_whichever_came_first() -> None:
    endpoint, token = make_endpoint()
    client = Client(REMOTE_ADDR="203.0.113.7", HTTP_X_WEBHOOK_TOKEN=token or "")
    over_https = client.post(endpoint.path, ORDER, "application/json", secure=True)
    # Behind a proxy that does not say https, SECURE_SSL_REDIRECT sends it to Django (301).
    with override_settings(SECURE_SSL_REDIRECT=False):
        plain_http = client.post(endpoint.path, ORDER, "application/json")
    assert over_https.status_code == plain_http.status_code == 200
    assert "Strict-Transport-Security" in over_https
    assert "Strict-Transport-Security" not in plain_http


@pytest.mark.django_db
def test_an_edited_answer_applies_to_the_next_delivery() -> None:
    endpoint, token = make_endpoint()
    client = Client(REMOTE_ADDR="203.0.113.7", HTTP_X_WEBHOOK_TOKEN=token or "")
    before = client.post(endpoint.path, ORDER, "application/json")
    endpoint.response_status, endpoint.response_body = 202, '{"queued": true}'
    endpoint.save()
    after = client.post(endpoint.path, ORDER, "application/json")
    assert (before.status_code, after.status_code) == (200, 202)
    assert after.content == b'{"queued": true}'
    assert after["Content-Length"] == str(len(after.content))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("status", "length"), [(204, None), (205, "0")])
def test_a_configured_no_content_answer_carries_none(status: int, length: str | None) -> None:
    endpoint, token = make_endpoint(response_status=status)  # the default body, "Message received."
    answered, headers, body = call(wsgi.application, "POST", endpoint.path, ORDER, HTTP_X_WEBHOOK_TOKEN=token or "")
    assert (answered, body) == (status, b"")
    assert headers.get("Content-Length") == length, "RFC 9110: no Content-Length on a 204, nothing after it"
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("OPTIONS", 204)])
def test_a_probe_is_answered_as_plain_text_like_every_other_answer(method: str, status: int) -> None:
    endpoint, _ = make_endpoint()
    answered, headers, _ = call(wsgi.application, method, endpoint.path)
    assert answered == status
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Allow"] == "POST, HEAD, OPTIONS"
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_dashboard_204_carries_no_content_length_either(django_user_model: Any) -> None:
    endpoint, _ = make_endpoint()
    staff = django_user_model.objects.create_superuser("staff", password="x" * 20)
    client = Client()
    client.force_login(staff)
    cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
    poll = f"/endpoints/{endpoint.pk}/first-delivery/?refused=0"  # nothing yet: 204
    status, headers, body = call(wsgi.application, "GET", poll, HTTP_COOKIE=cookie, HTTP_HX_REQUEST="true")
    assert (status, body) == (204, b"")
    assert "Content-Length" not in headers
