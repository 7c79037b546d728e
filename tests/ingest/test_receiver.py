from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import django_ratelimit.core
import pytest
import redis.connection
from django.db import OperationalError, close_old_connections, connection, models
from django.test import Client
from django.utils import timezone

from inbox import counters
from inbox.ingest import store
from inbox.models import Endpoint, Message, RejectedAttempt
from tests.conftest import is_postgres, make_endpoint

pytestmark = pytest.mark.django_db

ORDER = b'{"type": "order.created", "id": "evt_1", "data": {"total": 42}}'


def deliver(client: Client, endpoint: Endpoint, token: str | None, body: bytes = ORDER, **kwargs):
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers.setdefault(endpoint.token_header, token)
    kwargs.setdefault("content_type", "application/json")
    return client.post(endpoint.path, data=body, headers=headers, **kwargs)


def test_it_stores_every_field(provider: Client) -> None:
    endpoint, token = make_endpoint()
    before = timezone.now()
    response = provider.post(
        endpoint.path + "?attempt=1&source=test",
        data=ORDER,
        content_type="application/json",
        headers={"X-Webhook-Token": token, "Authorization": "Bearer s3cret", "X-Custom": "kept"},
    )

    assert response.status_code == 200
    assert response.content == b"Message received."
    assert response["Content-Type"].startswith("text/plain")
    message = Message.objects.get()
    assert message.endpoint == endpoint
    assert message.body == ORDER
    assert message.body_size == len(ORDER)
    assert message.method == "POST"
    assert message.content_type == "application/json"
    assert message.query_string == "attempt=1&source=test"
    assert message.json == {"type": "order.created", "id": "evt_1", "data": {"total": 42}}
    assert message.event_type == "order.created"
    assert message.remote_addr == "203.0.113.7"
    assert message.verification == "verified"
    assert before <= message.received_at <= timezone.now()
    assert message.headers["X-Custom"] == "kept"
    assert message.headers["X-Webhook-Token"] == "[redacted]"
    assert message.headers["Authorization"] == "[redacted]"
    assert token not in json.dumps(message.headers)
    assert "order.created" in message.preview


def test_it_redacts_a_custom_token_header(provider: Client) -> None:
    endpoint, token = make_endpoint(token_header="X-Hook-Secret")
    assert deliver(provider, endpoint, token).status_code == 200
    assert Message.objects.get().headers["X-Hook-Secret"] == "[redacted]"


def test_it_takes_the_event_type_from_the_github_header(provider: Client) -> None:
    endpoint, token = make_endpoint()
    deliver(provider, endpoint, token, body=b'{"action": "opened"}', headers={"X-GitHub-Event": "pull_request"})
    assert Message.objects.get().event_type == "pull_request"


def test_it_takes_the_event_type_from_the_payload_event_field(provider: Client) -> None:
    endpoint, token = make_endpoint()
    deliver(provider, endpoint, token, body=b'{"event": "charge.succeeded"}')
    assert Message.objects.get().event_type == "charge.succeeded"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, b"Missing X-Webhook-Token header."),
        ({"X-Webhook-Token": "whi_wrong"}, b"Invalid X-Webhook-Token."),
        ({"X-Webhook-Token": ""}, b"Missing X-Webhook-Token header."),
    ],
)
def test_it_refuses_a_missing_or_wrong_token(provider: Client, headers: dict[str, str], reason: bytes) -> None:
    endpoint, _ = make_endpoint()
    response = provider.post(endpoint.path, data=ORDER, content_type="application/json", headers=headers)
    assert response.status_code == 403
    assert response.content.strip() == reason
    assert not Message.objects.exists()


def test_it_accepts_the_secret_url_alone_when_the_endpoint_has_no_scheme(provider: Client) -> None:
    endpoint, token = make_endpoint(auth="none")
    assert token is None
    assert deliver(provider, endpoint, None).status_code == 200
    assert Message.objects.get().verification == "unverified"


def test_it_answers_404_alike_for_unknown_and_disabled_slugs(provider: Client) -> None:
    endpoint, token = make_endpoint(enabled=False)
    unknown = provider.post("/hooks/not-a-real-slug-at-all/", data=ORDER, content_type="application/json")
    disabled = deliver(provider, endpoint, token)
    assert unknown.status_code == disabled.status_code == 404
    assert unknown.content == disabled.content
    assert not Message.objects.exists()


def test_it_refuses_a_method_the_endpoint_does_not_allow(provider: Client) -> None:
    endpoint, _ = make_endpoint()
    response = provider.put(endpoint.path, data=ORDER, content_type="application/json")
    assert response.status_code == 405
    assert response["Allow"] == "POST, HEAD, OPTIONS", "HEAD and OPTIONS are answered too"
    assert not Message.objects.exists()


def test_it_stores_a_get_callback_with_its_query_string_when_get_is_allowed(provider: Client) -> None:
    endpoint, token = make_endpoint(allowed_methods="POST,GET")
    response = provider.get(endpoint.path + "?id=pay_123&status=paid", headers={"X-Webhook-Token": token})
    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.method, message.query_string, message.body) == ("GET", "id=pay_123&status=paid", b"")
    assert "id=pay_123" in message.preview


@pytest.mark.parametrize("method", ["head", "options"])
def test_it_answers_head_and_options_without_storing(provider: Client, method: str) -> None:
    endpoint, _ = make_endpoint()
    response = getattr(provider, method)(endpoint.path)
    assert response.status_code in (200, 204)
    assert "POST" in response["Allow"]
    assert not Message.objects.exists()


def test_it_refuses_a_body_over_the_limit_from_its_content_length(provider: Client) -> None:
    endpoint, token = make_endpoint(max_body_bytes=100)
    response = deliver(provider, endpoint, token, body=b'{"pad": "' + b"x" * 200 + b'"}')
    assert response.status_code == 413
    assert "100\xa0bytes" in response.content.decode()  # filesizeformat, as the Limits card writes it
    assert not Message.objects.exists()


def test_it_accepts_a_body_exactly_at_the_limit(provider: Client) -> None:
    body = b'{"pad": "' + b"x" * 88 + b'"}'
    endpoint, token = make_endpoint(max_body_bytes=len(body))
    assert deliver(provider, endpoint, token, body=body).status_code == 200


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_it_refuses_an_invalid_content_length(provider: Client, length: str) -> None:
    endpoint, token = make_endpoint()
    response = deliver(provider, endpoint, token, CONTENT_LENGTH=length)
    assert response.status_code == 400
    assert not Message.objects.exists()


def test_it_stores_invalid_json_as_text(provider: Client) -> None:
    endpoint, token = make_endpoint()
    assert deliver(provider, endpoint, token, body=b'{"type": "broken",').status_code == 200
    message = Message.objects.get()
    assert message.json is None
    assert message.body_text == '{"type": "broken",'


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"amount=10&currency=EUR", "application/x-www-form-urlencoded"),
        (b"<order><id>7</id></order>", "application/xml"),
        (b"plain words", "text/plain"),
    ],
)
def test_it_stores_non_json_bodies_as_text(provider: Client, body: bytes, content_type: str) -> None:
    endpoint, token = make_endpoint()
    assert deliver(provider, endpoint, token, body=body, content_type=content_type).status_code == 200
    message = Message.objects.get()
    assert (message.body, message.content_type, message.json) == (body, content_type, None)


def test_it_stores_a_non_utf8_body_byte_for_byte(provider: Client) -> None:
    endpoint, token = make_endpoint()
    body = bytes(range(256))
    assert deliver(provider, endpoint, token, body=body, content_type="application/octet-stream").status_code == 200
    message = Message.objects.get()
    assert message.body == body
    assert message.body_text is None
    assert "256\xa0bytes of binary data" in message.preview


def test_it_stores_json_holding_nul_and_lone_surrogates(provider: Client) -> None:
    # PostgreSQL's jsonb refuses \u0000 and unpaired surrogates; the parsed copy replaces
    # them, the raw body keeps them.
    endpoint, token = make_endpoint()
    body = b'{"type": "nul", "note": "a\\u0000b", "bad": "\\ud800", "\\u0000key": 1}'
    assert deliver(provider, endpoint, token, body=body).status_code == 200
    message = Message.objects.get()
    assert message.body == body
    assert message.json == {"type": "nul", "note": "a\ufffdb", "bad": "\ufffd", "\ufffdkey": 1}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 5000 + b"]" * 5000,  # deeper than any database wants
        b'{"n": 1e999}',  # infinity is not JSON any database stores
        b'{"n": NaN}',
        b'{"n": ' + b"9" * 5000 + b"}",  # beyond Python's int-from-string limit
    ],
)
def test_it_keeps_unstorable_json_as_raw_body_only(provider: Client, body: bytes) -> None:
    endpoint, token = make_endpoint()
    assert deliver(provider, endpoint, token, body=body).status_code == 200
    message = Message.objects.get()
    assert message.json is None
    assert message.body == body


NESTINGS = {
    "arrays": lambda n: b"[" * n + b"]" * n,
    "objects": lambda n: b'{"a":' * n + b"1" + b"}" * n,
    "objects-around-an-empty-one": lambda n: b'{"a":' * (n - 1) + b"{}" + b"}" * (n - 1),
    "arrays-around-a-number": lambda n: b"[" * n + b"1" + b"]" * n,
}


def test_it_keeps_json_nested_128_levels_and_not_129_arrays_and_objects_alike(provider: Client) -> None:
    # README: documents "nested deeper than 128 levels" are kept as raw body only; a level is
    # an array or an object, whatever the innermost one holds.
    endpoint, token = make_endpoint()
    sent = {f"{kind} {levels}": nested(levels) for kind, nested in NESTINGS.items() for levels in (128, 129)}
    for name, body in sent.items():
        assert deliver(provider, endpoint, token, body=body, headers={"X-Kind": name}).status_code == 200
    stored = {message.headers["X-Kind"]: message for message in Message.objects.all()}
    assert {name: message.body for name, message in stored.items()} == sent
    parsed = {name: message.json is not None for name, message in stored.items()}
    assert parsed == {name: name.endswith(" 128") for name in sent}
    assert stored["arrays 128"].json == json.loads(sent["arrays 128"])


def test_it_needs_no_csrf_token(provider: Client) -> None:
    # `provider` enforces CSRF checks like a browser would; the receiver is exempt.
    endpoint, token = make_endpoint()
    assert deliver(provider, endpoint, token).status_code == 200


def test_it_answers_with_the_endpoints_configured_response(provider: Client) -> None:
    endpoint, token = make_endpoint(
        response_status=202, response_body='{"ok":true}', response_content_type="application/json"
    )
    response = deliver(provider, endpoint, token)
    assert (response.status_code, response.content, response["Content-Type"]) == (
        202,
        b'{"ok":true}',
        "application/json",
    )


def test_it_names_the_charset_of_a_text_answer(provider: Client) -> None:
    endpoint, token = make_endpoint(response_body="Reçu, merci.", response_content_type="text/plain")
    response = deliver(provider, endpoint, token)
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode("utf-8") == "Reçu, merci."


# --- Rate limiting -------------------------------------------------------------------------
@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A clock for django-ratelimit's windows that the test moves by hand."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: now[0]))
    return now


def test_it_rate_limits_at_the_configured_rate_and_resets(provider: Client, clock: list[float]) -> None:
    endpoint, token = make_endpoint(rate_limit="3/m")
    statuses = [deliver(provider, endpoint, token).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = deliver(provider, endpoint, token)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert Message.objects.count() == 3

    clock[0] += 61
    assert deliver(provider, endpoint, token).status_code == 200
    assert Message.objects.count() == 4


def test_it_counts_each_sender_ip_separately(clock: list[float]) -> None:
    endpoint, token = make_endpoint(rate_limit="1/m")
    first, second = Client(REMOTE_ADDR="198.51.100.1"), Client(REMOTE_ADDR="198.51.100.2")
    assert deliver(first, endpoint, token).status_code == 200
    assert deliver(first, endpoint, token).status_code == 429
    assert deliver(second, endpoint, token).status_code == 200


def test_it_counts_each_endpoint_separately(provider: Client, clock: list[float]) -> None:
    shop, shop_token = make_endpoint("shop", rate_limit="1/m")
    crm, crm_token = make_endpoint("crm", rate_limit="1/m")
    assert deliver(provider, shop, shop_token).status_code == 200
    assert deliver(provider, shop, shop_token).status_code == 429
    assert deliver(provider, crm, crm_token).status_code == 200


def test_it_follows_the_endpoint_when_the_rate_limit_cache_is_down(
    provider: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionError("cache down")

    monkeypatch.setattr("inbox.ingest.receiver.get_usage", broken)
    open_endpoint, open_token = make_endpoint("open", rate_limit_fail_open=True)
    closed_endpoint, closed_token = make_endpoint("closed", rate_limit_fail_open=False)

    assert deliver(provider, open_endpoint, open_token).status_code == 200
    closed = deliver(provider, closed_endpoint, closed_token)
    assert closed.status_code == 503
    assert closed["Retry-After"]
    assert Message.objects.get().endpoint == open_endpoint


# --- Deduplication -------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["X-GitHub-Delivery", "webhook-id", "Idempotency-Key", "X-Shopify-Webhook-Id"])
def test_it_stores_a_redelivery_once(provider: Client, header: str) -> None:
    endpoint, token = make_endpoint()
    responses = [deliver(provider, endpoint, token, headers={header: "delivery-1"}) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 200]
    assert Message.objects.count() == 1
    assert deliver(provider, endpoint, token, headers={header: "delivery-2"}).status_code == 200
    assert Message.objects.count() == 2


def test_it_dedupes_on_the_payload_id_only_when_the_endpoint_opts_in(provider: Client) -> None:
    plain_endpoint, plain_token = make_endpoint("plain")
    opted, opted_token = make_endpoint("opted", dedupe_on_payload_id=True)
    for _ in range(2):
        deliver(provider, plain_endpoint, plain_token)
        deliver(provider, opted, opted_token)
    assert plain_endpoint.messages.count() == 2
    assert opted.messages.count() == 1


def test_it_keeps_the_same_key_apart_on_different_endpoints(provider: Client) -> None:
    shop, shop_token = make_endpoint("shop")
    crm, crm_token = make_endpoint("crm")
    deliver(provider, shop, shop_token, headers={"webhook-id": "msg_1"})
    deliver(provider, crm, crm_token, headers={"webhook-id": "msg_1"})
    assert Message.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_it_stores_concurrent_redeliveries_once() -> None:
    if not is_postgres():
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    endpoint, token = make_endpoint()
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def send() -> None:
        try:
            barrier.wait()
            response = deliver(Client(), endpoint, token, headers={"X-GitHub-Delivery": "same"})
            statuses.append(response.status_code)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert Message.objects.count() == 1


# --- Failure and cost ----------------------------------------------------------------------
def test_it_answers_503_and_stores_nothing_when_the_database_fails(
    provider: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, token = make_endpoint()

    def fail(rows: list[store.Row]) -> list[bool]:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(store, "insert_rows", fail)
    response = deliver(provider, endpoint, token)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_it_costs_one_query_per_accepted_message(provider: Client, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    endpoint, token = make_endpoint()
    deliver(provider, endpoint, token)  # warms the in-process endpoint cache
    with django_assert_num_queries(1):
        assert deliver(provider, endpoint, token).status_code == 200


def test_it_costs_one_redis_round_trip_per_delivery(
    provider: Client, settings, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    if settings.RATELIMIT_USE_CACHE != "ratelimit":
        pytest.skip("the shared rate-limit cache needs REDIS_URL")
    sent: list[object] = []
    original = redis.connection.Connection.send_packed_command

    def counting(self: object, command: object, check_health: bool = True) -> None:
        sent.append(command)
        original(self, command, check_health)  # type: ignore[arg-type]

    endpoint, token = make_endpoint(rate_limit="3/m")
    assert deliver(provider, endpoint, token).status_code == 200  # loads the counting script
    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    assert deliver(provider, endpoint, token).status_code == 200
    assert len(sent) == 1
    # ... and the counts it returns still trip the limit on time.
    assert deliver(provider, endpoint, token).status_code == 200
    assert len(sent) == 2
    assert deliver(provider, endpoint, token).status_code == 429


def test_it_applies_an_edit_at_once_in_this_process(provider: Client) -> None:
    endpoint, token = make_endpoint()
    assert deliver(provider, endpoint, token).status_code == 200
    endpoint.enabled = False
    endpoint.save()
    assert deliver(provider, endpoint, token).status_code == 404


def test_it_never_logs_the_slug_or_the_token(provider: Client, caplog: pytest.LogCaptureFixture) -> None:
    endpoint, token = make_endpoint(rate_limit="1/m")
    with caplog.at_level(logging.DEBUG):
        deliver(provider, endpoint, token)
        deliver(provider, endpoint, "whi_wrong")
        deliver(provider, endpoint, token)
        provider.put(endpoint.path)
    assert caplog.records, "refusals are logged"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert endpoint.slug not in logged
    assert token not in logged


def test_it_stamps_received_at_on_the_server(provider: Client) -> None:
    endpoint, token = make_endpoint()
    deliver(provider, endpoint, token, headers={"Date": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert timezone.now() - Message.objects.get().received_at < timedelta(minutes=1)


def test_it_refuses_a_body_shorter_than_its_content_length(provider: Client) -> None:
    # What a WSGI server hands over when the sender disconnects mid-body.
    endpoint, token = make_endpoint()
    stream = io.BytesIO(b'{"type": "cut')  # a real socket stream: reads past its end come back short
    response = deliver(provider, endpoint, token, body=b"x", CONTENT_LENGTH="500", **{"wsgi.input": stream})
    assert response.status_code == 400
    assert response.content == b"Incomplete body.\n"
    assert not Message.objects.exists()


def test_it_never_logs_the_slug_on_a_503(provider: Client, monkeypatch: pytest.MonkeyPatch, caplog) -> None:  # type: ignore[no-untyped-def]
    endpoint, token = make_endpoint()

    def fail(rows: list[store.Row]) -> list[bool]:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(store, "insert_rows", fail)
    with caplog.at_level(logging.DEBUG):
        assert deliver(provider, endpoint, token).status_code == 503
    assert caplog.records
    assert endpoint.slug not in "\n".join(r.getMessage() for r in caplog.records)


def test_it_answers_400_to_more_query_parameters_than_django_parses(provider: Client) -> None:
    endpoint, token = make_endpoint()
    query = "&".join(f"p{n}=1" for n in range(1100))
    response = provider.post(
        f"{endpoint.path}?{query}", ORDER, content_type="application/json", headers={"X-Webhook-Token": token}
    )
    assert response.status_code == 400
    assert not Message.objects.exists()


def test_it_builds_the_row_without_the_model_or_a_second_json_encoding(
    provider: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, token = make_endpoint()
    deliver(provider, endpoint, token)  # warms the endpoint cache (a model load)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the hot path must not get here")

    with monkeypatch.context() as patched:
        patched.setattr(Message, "__init__", refuse)
        patched.setattr(models.Field, "get_db_prep_save", refuse)
        patched.setattr(json, "dumps", refuse)
        body = b'{"type": "order.paid", "id": "evt_2", "data": {"total": 1.50, "tags": ["a", "\\u00e9"]}}'
        assert deliver(provider, endpoint, token, body=body).status_code == 200
    stored = Message.objects.get(event_type="order.paid")
    assert stored.body == body
    assert stored.json == json.loads(body)


@pytest.mark.django_db
def test_a_handshake_the_provider_got_wrong_is_refused_and_counted_like_any_refusal() -> None:
    endpoint, _ = make_endpoint("zoom-ep", secret="zoom-secret-token-0123456789", auth="zoom")
    body = b'{"event": "endpoint.url_validation", "payload": {}}'
    timestamp = str(int(time.time()))
    signature = hmac.new(b"zoom-secret-token-0123456789", f"v0:{timestamp}:".encode() + body, hashlib.sha256)
    response = Client().post(
        endpoint.path,
        body,
        content_type="application/json",
        headers={"x-zm-request-timestamp": timestamp, "x-zm-signature": "v0=" + signature.hexdigest()},
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    rejected = RejectedAttempt.objects.get()
    assert (rejected.endpoint, rejected.status) == (endpoint, 400)
    assert "plainToken" in rejected.reason
    assert not Message.objects.exists()
    assert counters.for_endpoint(endpoint.pk)["rejected"] == 1
