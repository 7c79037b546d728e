"""Routing (issue 16): destination filters, transforms, signed forwards, pause and resume,
a rate held across workers, the circuit breaker, and event type patterns in the list."""

from __future__ import annotations

import html
import io
import json
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_redis.cache import RedisCache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from inbox.delivery import processing, routing
from inbox.filters import clean_destination_filter, matches
from inbox.models import Attempt, AuditEntry, Destination, Endpoint, Message
from tests.conftest import Catcher, csrf_post, is_postgres, make_endpoint, make_message, run_worker

pytestmark = pytest.mark.django_db


def invoice(kind: str = "invoice.paid", amount: int = 1200, **extra: Any) -> bytes:
    return json.dumps({"type": kind, "id": f"evt_{amount}", "data": {"object": {"amount": amount}}, **extra}).encode()


def pending(endpoint: Endpoint, body: bytes, **fields: Any) -> Message:
    return make_message(endpoint, body, status="pending", next_attempt_at=timezone.now(), **fields)


def destination(endpoint: Endpoint, url: str, **fields: Any) -> Destination:
    fields.setdefault("timeout_seconds", 2)
    return Destination.objects.create(endpoint=endpoint, url=url, **fields)


def attempts_of(message: Message) -> list[tuple[str, str]]:
    return list(message.processing_attempts.order_by("id").values_list("target", "status"))


# --- Filters ---------------------------------------------------------------------------------
def test_it_sends_only_what_the_filter_keeps_and_records_the_rest_as_skipped(
    catcher: Catcher, staff_client: Client
) -> None:
    endpoint, _ = make_endpoint()
    only_big = destination(endpoint, catcher.url, filter="event_type=invoice.*&json=data.object.amount>1000")
    big = pending(endpoint, invoice(amount=5000))
    small = pending(endpoint, invoice(amount=10))
    other = pending(endpoint, invoice("customer.created", amount=5000))

    for message in (big, small, other):
        processing.process(message.pk)

    assert [json.loads(r["body"])["id"] for r in catcher.requests] == ["evt_5000"]
    for message, status in ((big, "processed"), (small, "skipped"), (other, "skipped")):
        message.refresh_from_db()
        assert message.status == status, "a filtered-out message is not a failure"
    assert attempts_of(small) == [(only_big.target, "skipped")]
    assert endpoint.failure_rate(timezone.now() - timedelta(hours=1)) == (0, 1), "skips are not attempts to send"
    page = staff_client.get(small.get_absolute_url()).content.decode()
    assert "Skipped by filter" in page or "skipped" in page
    assert "the destination&#x27;s filter does not match this message" in page


def test_it_routes_one_endpoint_to_two_apps(catcher: Catcher) -> None:
    billing, crm = Catcher(), Catcher()
    try:
        endpoint, _ = make_endpoint("stripe")
        destination(endpoint, billing.url, filter="event_type=invoice.*")
        destination(endpoint, crm.url, filter="event_type=customer.*")
        for kind in ("invoice.paid", "customer.created", "invoice.finalized", "charge.refunded"):
            processing.process(pending(endpoint, invoice(kind)).pk)
        assert [json.loads(r["body"])["type"] for r in billing.requests] == ["invoice.paid", "invoice.finalized"]
        assert [json.loads(r["body"])["type"] for r in crm.requests] == ["customer.created"]
    finally:
        billing.close()
        crm.close()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("event_typo=invoice.paid", "unknown filter “event_typo”"),
        ("status=failed", "status is the inbox's own processing state"),
        ("json=data..x", "json"),
        ("event_type=invoice.[z-a]", "Not a valid event type pattern"),
        ("received_after=yesterday", "received_after"),
    ],
)
def test_it_refuses_a_filter_that_cannot_route(query: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        clean_destination_filter(query)
    assert reason in " ".join(caught.value.messages)


def test_it_refuses_a_filter_on_another_endpoint() -> None:
    shop, _ = make_endpoint("shop")
    other, _ = make_endpoint("other")
    with pytest.raises(ValidationError, match="another endpoint"):
        clean_destination_filter(f"endpoint={other.pk}", shop.pk)
    assert clean_destination_filter(f"endpoint={shop.pk}&event_type=&before=1_2", shop.pk) == f"endpoint={shop.pk}"


# The property: what the list page shows for a filter is exactly what a destination with
# that filter receives, on SQLite and on PostgreSQL (run the suite with DATABASE_URL).
KINDS = ["invoice.paid", "Invoice.paid", "customer.created", "a.b", "", "x*y"]  # x 8 bodies: one page of 50
BODIES = [
    {"data": {"object": {"amount": 1200, "status": "paid", "tags": ["a", "b"]}}},
    {"data": {"object": {"amount": 80, "status": "PAID"}}},
    {"data": {"object": {"amount": None}}},
    {"data": {"object": {"amount": "1200"}}},
    {"data": [1, 2, 3]},
    {"other": True},
    [],
    None,
]


def routing_filter() -> st.SearchStrategy[str]:
    event = st.sampled_from(["invoice.*", "invoice.paid", "?nvoice.paid", "[iI]nvoice.*", "[!i]*", "*.*", "*", "x*y"])
    path = st.sampled_from(
        [
            "data.object.amount>1000",
            "data.object.amount<=100",
            "data.object.amount=1200",
            "data.object.amount",
            "data.object.status=paid",
            "data.object.status~pai",
            "data.object.status!=paid",
            "data.object.tags.0=a",
            "data.1>1",
            "other",
        ]
    )
    search = st.sampled_from(["paid", "PAID", "1200", "customer"])
    parts = st.fixed_dictionaries(
        {},
        optional={
            "event_type": event,
            "json": path,
            "q": search,
            "method": st.sampled_from(["POST", "PUT"]),
            "content_type": st.sampled_from(["application/json", "text/"]),
        },
    )
    return parts.map(lambda d: "&".join(f"{k}={v}" for k, v in d.items()).replace("+", "%2B"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=routing_filter())
def test_it_sends_exactly_what_the_list_page_shows_for_the_same_filter(staff_client: Client, query: str) -> None:
    endpoint = Endpoint.objects.filter(name="prop").first()
    if endpoint is None:
        endpoint, _ = make_endpoint("prop")
        for i, kind in enumerate(KINDS):
            for j, body in enumerate(BODIES):
                raw = json.dumps({"type": kind, **body}) if isinstance(body, dict) else json.dumps(body)
                make_message(
                    endpoint,
                    raw.encode() if body is not None else b"not json: paid",
                    event_type=kind,
                    method="PUT" if (i + j) % 3 == 0 else "POST",
                    content_type="text/plain" if body is None else "application/json",
                )
    stored = clean_destination_filter(query, endpoint.pk)
    messages = list(endpoint.messages.all())
    routed = {m.pk for m in messages if matches(stored, m)}

    response = staff_client.get(f"/?endpoint={endpoint.pk}&{query}")
    assert response.status_code == 200
    listed = {int(pk) for pk in re.findall(r'href="/messages/(\d+)/', response.content.decode())}
    assert len(messages) < 50, "one list page holds them all"
    assert routed == listed, query


# --- Event type patterns in the list ------------------------------------------------------------
def test_it_filters_the_list_by_an_event_type_pattern(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    paid = make_message(endpoint, invoice("invoice.paid"))
    failed = make_message(endpoint, invoice("invoice.payment_failed"))
    customer = make_message(endpoint, invoice("customer.created"))
    dotted = make_message(endpoint, invoice("invoiceXpaid"))

    def listed(query: str) -> set[int]:
        page = staff_client.get(f"/?{query}").content.decode()
        return {int(pk) for pk in re.findall(r'href="/messages/(\d+)/', page)}

    assert listed("event_type=invoice.*") == {paid.pk, failed.pk}, "the dot is a dot, not any character"
    assert listed("event_type=invoice.paid") == {paid.pk}, "without * ? [ it stays an exact match"
    assert listed("event_type=*.created") == {customer.pk}
    assert listed("event_type=invoice%3Fpaid") == {paid.pk, dotted.pk}, "? is any one character"
    assert listed("event_type=invoice") == set()
    page = staff_client.get("/?event_type=invoice.%5Bz-a%5D")
    assert page.status_code == 200
    assert "Not a valid event type pattern" in page.content.decode()


# --- Transforms ----------------------------------------------------------------------------------
def test_it_forwards_the_transforms_result_as_json(catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    destination(endpoint, catcher.url, transform="{id: id, amount: data.object.amount, kind: type}")
    message = pending(endpoint, invoice(amount=4200))

    processing.process(message.pk)

    [got] = catcher.requests
    assert json.loads(got["body"]) == {"id": "evt_4200", "amount": 4200, "kind": "invoice.paid"}
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["headers"]["X-Webhook-Inbox-Message-Id"] == str(message.pk)


def test_it_fails_a_transform_of_a_body_that_is_not_json_with_the_reason(catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    destination(endpoint, catcher.url, transform="data")
    message = pending(endpoint, b"plain text", content_type="text/plain")

    processing.process(message.pk)

    assert catcher.requests == []
    attempt = Attempt.objects.get(message=message)
    assert attempt.status == "failed"
    assert "the body is not JSON" in attempt.error


def test_it_refuses_a_transform_that_does_not_compile() -> None:
    endpoint, _ = make_endpoint()
    bad = Destination(endpoint=endpoint, url="https://example.com/hook", transform="data.[")
    with pytest.raises(ValidationError, match="Not a JMESPath expression"):
        bad.full_clean()


# --- Signatures ----------------------------------------------------------------------------------
def test_it_signs_forwards_that_a_standard_webhooks_receiver_verifies(catcher: Catcher) -> None:
    endpoint, _ = make_endpoint("stripe-like")
    signed = destination(endpoint, catcher.url, sign="standard")
    secret = signed.set_signing_secret()
    signed.save()
    message = pending(endpoint, invoice(), headers={"Webhook-Signature": "v1,forged", "X-Webhook-Inbox-Verified": "x"})

    processing.process(message.pk)

    [got] = catcher.requests
    headers = {k.lower(): v for k, v in got["headers"].items()}
    assert secret.startswith("whsec_")
    Webhook(secret).verify(got["body"], headers, json_parse=False)  # raises when it does not verify
    assert headers["webhook-id"] == f"msg_{message.pk}"
    assert headers["x-webhook-inbox-verified"] == "token", "the preset that verified the original"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJD" * 8).verify(got["body"], headers, json_parse=False)


def test_it_signs_with_both_secrets_during_a_rotations_grace_period(catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    signed = destination(endpoint, catcher.url, sign="standard")
    old = signed.set_signing_secret()
    signed.save()
    new = signed.rotate_signing_secret(timedelta(hours=1))
    first = pending(endpoint, invoice())
    processing.process(first.pk)
    Destination.objects.filter(pk=signed.pk).update(previous_signing_expires_at=timezone.now() - timedelta(seconds=1))
    second = pending(endpoint, invoice(amount=7))
    processing.process(second.pk)

    during, after = (({k.lower(): v for k, v in r["headers"].items()}, r["body"]) for r in catcher.requests)
    assert len(during[0]["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during[1], during[0], json_parse=False)
    Webhook(new).verify(during[1], during[0], json_parse=False)
    Webhook(new).verify(after[1], after[0], json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after[1], after[0], json_parse=False)


def test_it_says_an_unverified_original_was_not_verified(catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    destination(endpoint, catcher.url)
    processing.process(pending(endpoint, invoice(), verification="unverified").pk)
    assert catcher.requests[0]["headers"]["X-Webhook-Inbox-Verified"] == "none"


def test_it_shows_a_signing_secret_once_and_rotates_it(staff_client: Client, catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    response = csrf_post(
        staff_client,
        f"/endpoints/{endpoint.pk}/destinations/new/",
        {
            "url": catcher.url,
            "enabled": "on",
            "sign": "standard",
            "timeout_seconds": 5,
            "forward_headers": "*",
            "breaker_threshold": 20,
            "_action": "save",
        },
    )
    added = Destination.objects.get(endpoint=endpoint)
    assert response.status_code == 302
    assert response["Location"] == f"/destinations/{added.pk}/edit/"
    assert "whsec_" not in response["Location"]
    shown = staff_client.get(response["Location"]).content.decode()
    [secret] = re.findall(r'value="(whsec_[^"]+)"', shown)
    assert "whsec_" not in staff_client.get(response["Location"]).content.decode(), "shown once"
    assert added.signing_secrets() == [secret]
    assert secret not in added.signing_secret_encrypted

    rotated = csrf_post(staff_client, f"/destinations/{added.pk}/rotate/", {"grace": 24})
    [new] = re.findall(r'value="(whsec_[^"]+)"', staff_client.get(rotated["Location"]).content.decode())
    added.refresh_from_db()
    assert new != secret
    assert added.signing_secrets() == [new, secret]
    assert AuditEntry.objects.filter(action="destination.rotated").exists()


# --- Pause and resume ----------------------------------------------------------------------------
def test_it_holds_messages_while_paused_and_sends_them_oldest_first_on_resume(
    catcher: Catcher, staff_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    endpoint, _ = make_endpoint()
    target = destination(endpoint, catcher.url, paused=True, paused_reason="paused by staff")
    now = timezone.now()
    held = [pending(endpoint, invoice(amount=n), received_at=now - timedelta(minutes=10 - n)) for n in (1, 2, 3)]
    for message in reversed(held):  # processed newest first: the order of resuming is the messages'
        assert processing.process(message.pk) == "held"

    assert catcher.requests == []
    for message in held:
        message.refresh_from_db()
        assert (message.status, message.attempts, message.next_attempt_at) == ("pending", 0, None)
        assert attempts_of(message) == [(target.target, "held")]
    assert processing.recover() == (0, 0), "the recovery sweep leaves held messages alone"
    page = staff_client.get(endpoint.get_absolute_url()).content.decode()
    assert "is paused" in page
    assert "Resume" in page

    response = csrf_post(staff_client, f"/destinations/{target.pk}/resume/")
    assert response.status_code == 302
    run_worker()

    assert [json.loads(r["body"])["id"] for r in catcher.requests] == ["evt_1", "evt_2", "evt_3"]
    assert set(Message.objects.values_list("status", flat=True)) == {"processed"}
    assert AuditEntry.objects.filter(action="destination.resumed", details__messages_held=3).exists()


def test_it_pauses_from_the_endpoint_page_without_asking(staff_client: Client, catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    target = destination(endpoint, catcher.url)
    csrf_post(staff_client, f"/destinations/{target.pk}/pause/")
    target.refresh_from_db()
    assert target.paused
    assert AuditEntry.objects.filter(action="destination.paused").exists()


# --- The circuit breaker -------------------------------------------------------------------------
def test_it_pauses_a_destination_after_its_failures_in_a_row_and_resumes(
    catcher: Catcher, staff_client: Client
) -> None:
    catcher.answers = [(500, b"down", {})]
    endpoint, _ = make_endpoint(max_retries=0)
    target = destination(endpoint, catcher.url, breaker_threshold=3)
    for n in range(3):
        processing.process(pending(endpoint, invoice(amount=n)).pk)
    target.refresh_from_db()
    assert target.paused
    assert "3 failed attempts in a row" in target.paused_reason
    entry = AuditEntry.objects.get(action="destination.paused")
    assert entry.username == "(system)"

    later = pending(endpoint, invoice(amount=99))
    assert processing.process(later.pk) == "held"
    assert len(catcher.requests) == 3, "nothing more is sent to a tripped destination"
    page = staff_client.get(endpoint.get_absolute_url()).content.decode()
    assert "the circuit breaker" in page

    catcher.answers = [(200, b"ok", {})]
    routing.resume(target, None)
    run_worker()
    later.refresh_from_db()
    assert later.status == "processed"
    target.refresh_from_db()
    assert (target.paused, target.consecutive_failures) == (False, 0)


def test_it_never_trips_a_breaker_set_to_zero(catcher: Catcher) -> None:
    catcher.answers = [(500, b"down", {})]
    endpoint, _ = make_endpoint(max_retries=0)
    target = destination(endpoint, catcher.url, breaker_threshold=0)
    for n in range(5):
        processing.process(pending(endpoint, invoice(amount=n)).pk)
    target.refresh_from_db()
    assert not target.paused
    assert target.consecutive_failures == 5


# --- Rate --------------------------------------------------------------------------------------
def test_it_reschedules_over_the_rate_instead_of_failing(catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    target = destination(endpoint, catcher.url, max_rate="2/h")
    messages = [pending(endpoint, invoice(amount=n)) for n in range(3)]
    outcomes = [processing.process(m.pk) for m in messages]

    assert outcomes == ["processed", "processed", "rescheduled"]
    assert len(catcher.requests) == 2
    late = Message.objects.get(pk=messages[2].pk)
    assert late.status == "pending", "waiting for a turn uses up no retry"
    assert late.attempts == 0, "waiting for a turn uses up no retry"
    assert late.next_attempt_at is not None
    assert late.next_attempt_at > timezone.now()
    assert attempts_of(late) == [(target.target, "deferred")]


def test_it_gives_turns_in_order_across_windows() -> None:
    endpoint, _ = make_endpoint()
    target = destination(endpoint, "https://example.com/hook", max_rate="2/m")
    moment = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    dues = [routing.take_turn(target, moment) for _ in range(6)]
    assert dues[:2] == [None, None]
    assert dues[2:] == [
        datetime(2026, 1, 1, 12, 1, 0, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 1, 30, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 2, 0, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 2, 30, tzinfo=UTC),
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_holds_the_rate_across_two_workers() -> None:
    if not is_postgres():
        pytest.skip("concurrent workers need PostgreSQL (SQLite serialises them)")
    endpoint, _ = make_endpoint()
    target = destination(endpoint, "https://example.com/hook", max_rate="7/h")
    moment = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    barrier = threading.Barrier(2)
    turns: list[datetime | None] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            for _ in range(10):
                turns.append(routing.take_turn(Destination.objects.get(pk=target.pk), moment))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert turns.count(None) == 7, "seven turns in the hour, whichever worker asked"
    later = sorted(t for t in turns if t is not None)
    assert len(set(later)) == 13, "every waiting forward has a turn of its own"
    # Redis counts when the inbox has one (REDIS_URL), the destination's row otherwise.
    counted_in_row = Destination.objects.get(pk=target.pk).rate_count
    assert counted_in_row == (0 if isinstance(caches["default"], RedisCache) else 20)


# --- The command ---------------------------------------------------------------------------------
def test_it_adds_a_destination_from_the_command_line() -> None:
    endpoint, _ = make_endpoint("stripe")
    out = io.StringIO()
    call_command(
        "add_destination",
        "stripe",
        "https://billing.example.com/hooks",
        "--filter",
        "event_type=invoice.*",
        "--transform",
        "{id: id}",
        "--sign",
        "standard",
        "--max-rate",
        "10/s",
        "--paused",
        "--headers",
        "Stripe-Signature,Content-Type",
        "--timeout",
        "5",
        "--json",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    added = Destination.objects.get(pk=data["id"])
    assert data["signing_secret"].startswith("whsec_")
    assert added.signing_secrets() == [data["signing_secret"]]
    assert (added.filter, added.transform, added.max_rate, added.paused) == (
        "event_type=invoice.*",
        "{id: id}",
        "10/s",
        True,
    )
    assert added.forward_headers == "Stripe-Signature, Content-Type"
    assert added.timeout_seconds == 5
    assert endpoint.destinations.count() == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--filter", "status=failed"], "--filter"),
        (["--transform", "data.["], "--transform"),
        (["--max-rate", "fast"], "--max-rate"),
        (["--headers", "Bad Header"], "--headers"),
        (["--timeout", "0"], "--timeout"),
    ],
)
def test_it_refuses_an_invalid_option_and_creates_nothing(args: list[str], says: str) -> None:
    make_endpoint("stripe")
    with pytest.raises(CommandError) as caught:
        call_command("add_destination", "stripe", "https://billing.example.com/hooks", *args)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not Destination.objects.exists()


def test_it_keeps_create_endpoint_forward_to_working() -> None:
    out = io.StringIO()
    call_command("create_endpoint", "legacy", "--forward-to", "https://a.example.com/x", "--json", stdout=out)
    [kept] = Destination.objects.filter(endpoint__name="legacy")
    assert (kept.url, kept.filter, kept.sign, kept.paused) == ("https://a.example.com/x", "", "", False)


# --- The dashboard -------------------------------------------------------------------------------
def test_it_refuses_a_bad_filter_or_transform_on_the_form_and_saves_nothing(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    form = {"url": "https://a.example.com/x", "enabled": "on", "timeout_seconds": 5, "forward_headers": "*"}
    response = csrf_post(
        staff_client,
        f"/endpoints/{endpoint.pk}/destinations/new/",
        {**form, "filter": "status=failed", "transform": "data.["},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "status is the inbox&#x27;s own processing state" in page
    assert "Not a JMESPath expression" in page
    assert not Destination.objects.exists()


def test_it_dry_runs_a_filter_over_the_last_messages(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    for kind in ["invoice.paid", "customer.created", "invoice.voided"]:
        make_message(endpoint, invoice(kind))
    response = csrf_post(
        staff_client,
        f"/endpoints/{endpoint.pk}/destinations/new/",
        {"filter": "event_type=invoice.*", "_action": "dry_run", "timeout_seconds": 5},
    )
    page = response.content.decode()
    assert "Of the last 3 messages (all this endpoint has), these 2 would have been sent." in page
    assert not Destination.objects.exists(), "a dry run saves nothing"


def test_it_offers_to_forward_the_lists_filter_to_managers_only(staff_client: Client, viewer_client: Client) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint, invoice())
    page = staff_client.get(f"/?endpoint={endpoint.pk}&event_type=invoice.*&json=data.object.amount%3E10").content
    [href] = re.findall(r'id="route-these" href="([^"]+)"', page.decode())
    path, _, query = html.unescape(href).partition("?")
    assert path == f"/endpoints/{endpoint.pk}/destinations/new/"
    assert parse_qs(query) == {"filter": ["event_type=invoice.*&json=data.object.amount>10"]}
    form = staff_client.get(html.unescape(href)).content.decode()
    assert 'value="event_type=invoice.*&amp;json=data.object.amount&gt;10"' in form
    assert "Forward messages like these" not in staff_client.get("/?event_type=invoice.*").content.decode()
    assert "Forward messages like these" not in viewer_client.get(f"/?endpoint={endpoint.pk}").content.decode()


def test_it_lets_only_managers_pause_and_resume(viewer_client: Client, catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    target = destination(endpoint, catcher.url)
    assert csrf_post(viewer_client, f"/destinations/{target.pk}/pause/").status_code == 403
    target.refresh_from_db()
    assert not target.paused
