"""Processing: forwarding with retries, handlers, the recovery sweep, two workers."""

from __future__ import annotations

import itertools
import json
import random
import socket
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from inbox import addresses
from inbox.addresses import validate_destination_url
from inbox.delivery import forwarding, handlers, processing
from inbox.models import Attempt, Destination, Endpoint, Message
from inbox.tasks import process_message
from tests.conftest import Catcher, csrf_post, is_postgres, make_due, make_endpoint, make_message, run_worker

pytestmark = pytest.mark.django_db

ORDER = b'{"type": "order.paid", "id": "evt_9", "amount": 1200}'


def endpoint_forwarding_to(url: str, **fields: Any) -> tuple[Endpoint, str | None]:
    timeout = fields.pop("timeout", 2)
    endpoint, token = make_endpoint(**fields)
    Destination.objects.create(endpoint=endpoint, url=url, timeout_seconds=timeout)
    return endpoint, token


def deliver(provider: Client, endpoint: Endpoint, token: str | None, capture: Any, body: bytes = ORDER) -> Message:
    with capture(execute=True):
        response = provider.post(
            endpoint.path,
            data=body,
            content_type="application/json",
            headers={"X-Webhook-Token": token, "X-Shop-Domain": "example.myshop.test", "Cookie": "session=abc"},
        )
    assert response.status_code == 200
    return Message.objects.latest("pk")


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def no_private(settings: Any) -> None:
    settings.FORWARD_ALLOW_PRIVATE = False


# --- Forwarding ------------------------------------------------------------------------------
def test_it_forwards_the_original_request(
    provider: Client, catcher: Catcher, django_capture_on_commit_callbacks: Any
) -> None:
    endpoint, token = endpoint_forwarding_to(catcher.url)
    message = deliver(provider, endpoint, token, django_capture_on_commit_callbacks)
    assert message.status == "pending"

    run_worker()

    [got] = catcher.requests
    assert got["body"] == ORDER
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["headers"]["X-Webhook-Inbox-Message-Id"] == str(message.pk)
    assert got["headers"]["X-Shop-Domain"] == "example.myshop.test"
    # The endpoint's own credential and the sender's cookies never travel on.
    assert "X-Webhook-Token" not in got["headers"]
    assert "Cookie" not in got["headers"]
    assert token not in json.dumps(got["headers"])
    message.refresh_from_db()
    assert message.status == "processed"
    [attempt] = message.processing_attempts.all()
    assert attempt.status == "succeeded"
    assert attempt.status_code == 200
    assert attempt.response_excerpt == "thanks"
    assert attempt.duration_ms is not None
    assert attempt.label == f"Forward to {catcher.url}"


def test_it_passes_on_only_the_chosen_headers(
    provider: Client, catcher: Catcher, django_capture_on_commit_callbacks: Any
) -> None:
    endpoint, token = make_endpoint()
    Destination.objects.create(endpoint=endpoint, url=catcher.url, forward_headers="x-shop-domain")
    deliver(provider, endpoint, token, django_capture_on_commit_callbacks)
    run_worker()
    headers = catcher.requests[0]["headers"]
    assert headers["X-Shop-Domain"] == "example.myshop.test"
    assert "X-Webhook-Inbox-Message-Id" in headers
    assert "Cookie" not in headers


def test_it_enqueues_nothing_for_an_endpoint_with_nothing_to_do(
    provider: Client, django_capture_on_commit_callbacks: Any
) -> None:
    endpoint, token = make_endpoint()
    message = deliver(provider, endpoint, token, django_capture_on_commit_callbacks)
    assert message.status == "skipped"
    assert not DBTaskResult.objects.filter(task_path=process_message.module_path).exists()


def test_it_retries_after_a_500_and_then_succeeds(
    provider: Client, catcher: Catcher, django_capture_on_commit_callbacks: Any
) -> None:
    catcher.answers = [(500, b"database is down", {}), (200, b"ok now", {})]
    endpoint, token = endpoint_forwarding_to(catcher.url)
    message = deliver(provider, endpoint, token, django_capture_on_commit_callbacks)

    before = timezone.now()
    run_worker()
    message.refresh_from_db()
    assert message.status == "pending"
    # The first retry comes within a minute (40 s +-20%).
    assert before + timedelta(seconds=31) < message.next_attempt_at < before + timedelta(seconds=50)
    retry_task = DBTaskResult.objects.get(status="READY", task_path=process_message.module_path)
    assert retry_task.run_after == message.next_attempt_at
    [failed] = message.processing_attempts.all()
    assert (failed.status, failed.status_code) == ("failed", 500)
    assert failed.response_excerpt == "database is down"
    assert "expected 2xx" in failed.error

    run_worker()  # not due yet: nothing happens
    assert len(catcher.requests) == 1

    make_due(message)
    run_worker()
    message.refresh_from_db()
    assert message.status == "processed"
    assert len(catcher.requests) == 2
    assert [a.status for a in message.processing_attempts.all()] == ["failed", "succeeded"]
    assert [a.number for a in message.processing_attempts.all()] == [1, 2]


def test_it_gives_up_after_the_endpoints_retries(catcher: Catcher) -> None:
    catcher.answers = [(503, b"", {})]
    endpoint, _ = endpoint_forwarding_to(catcher.url, max_retries=2)
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now())
    process_message.enqueue(message.pk)
    for _ in range(3):
        run_worker()
        make_due(message)
    message.refresh_from_db()
    assert message.status == "failed"
    assert message.processing_attempts.count() == 3
    assert len(catcher.requests) == 3
    assert not DBTaskResult.objects.filter(status="READY").exists()


def test_it_records_a_timeout(catcher: Catcher) -> None:
    catcher.delay = 1.5
    endpoint, _ = endpoint_forwarding_to(catcher.url, timeout=1)
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now())
    assert processing.process(message.pk) == "retry"
    attempt = message.processing_attempts.get()
    assert attempt.status == "failed"
    assert attempt.error == "timed out after 1 s"
    assert attempt.status_code is None
    assert 900 <= attempt.duration_ms < 1500


def test_it_records_a_refused_connection() -> None:
    endpoint, _ = endpoint_forwarding_to(f"http://127.0.0.1:{refused_port()}/")
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now())
    processing.process(message.pk)
    attempt = message.processing_attempts.get()
    assert attempt.status == "failed"
    assert attempt.error.startswith("connection failed:")


def test_it_reads_only_the_start_of_a_huge_answer(catcher: Catcher) -> None:
    catcher.answers = [(200, b"x" * 5_000_000, {})]
    endpoint, _ = endpoint_forwarding_to(catcher.url)
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now())
    processing.process(message.pk)
    attempt = message.processing_attempts.get()
    assert attempt.status == "succeeded"
    assert len(attempt.response_excerpt) == forwarding.EXCERPT_BYTES


# --- SSRF -------------------------------------------------------------------------------------
@pytest.mark.usefixtures("no_private")
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/", "loopback or private"),
        ("http://10.0.0.1/", "loopback or private"),
        ("http://[::1]/", "loopback or private"),
        ("http://[::ffff:127.0.0.1]/", "loopback or private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local or cloud metadata"),
        ("http://0.0.0.0/", "not a unicast"),
        ("http://localhost:9/", "loopback or private"),
    ],
)
def test_it_refuses_private_destinations_at_send(url: str, reason: str) -> None:
    outcome = forwarding.post(url, b"{}", {}, timeout=2)
    assert not outcome.ok
    assert outcome.error.startswith("refused destination")
    assert reason in outcome.error


@pytest.mark.usefixtures("no_private")
def test_it_refuses_a_hostname_that_resolves_to_a_private_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forwarding, "resolve", lambda host, port: ["93.184.215.14", "10.1.2.3"])
    outcome = forwarding.post("https://hooks.example.test/", b"{}", {}, timeout=2)
    assert not outcome.ok
    assert "10.1.2.3 is a loopback or private address" in outcome.error


def test_it_refuses_metadata_addresses_even_when_private_ones_are_allowed(settings: Any) -> None:
    assert settings.FORWARD_ALLOW_PRIVATE
    outcome = forwarding.post("http://169.254.169.254/latest/meta-data/", b"", {}, timeout=2)
    assert "link-local or cloud metadata" in outcome.error


def test_it_checks_every_redirect_hop(catcher: Catcher, monkeypatch: pytest.MonkeyPatch) -> None:
    real_resolve = forwarding.resolve
    monkeypatch.setattr(
        forwarding,
        "resolve",
        lambda host, port: ["169.254.169.254"] if host == "metadata.internal.test" else real_resolve(host, port),
    )
    catcher.answers = [(307, b"", {"Location": "http://metadata.internal.test/latest/meta-data/"})]
    outcome = forwarding.post(catcher.url, b"{}", {}, timeout=2)
    assert not outcome.ok
    assert "refused destination metadata.internal.test" in outcome.error
    assert len(catcher.requests) == 1


def test_it_follows_a_method_preserving_redirect(catcher: Catcher) -> None:
    catcher.answers = [(308, b"", {"Location": "/moved"}), (202, b"accepted", {})]
    outcome = forwarding.post(catcher.url, b'{"a": 1}', {"Content-Type": "application/json"}, timeout=2)
    assert outcome.ok
    assert outcome.status_code == 202
    assert [r["path"] for r in catcher.requests] == ["/hook", "/moved"]
    assert catcher.requests[1]["body"] == b'{"a": 1}'


def test_it_does_not_turn_a_forward_into_a_get(catcher: Catcher) -> None:
    catcher.answers = [(302, b"", {"Location": "/elsewhere"})]
    outcome = forwarding.post(catcher.url, b"{}", {}, timeout=2)
    assert not outcome.ok
    assert outcome.status_code == 302
    assert len(catcher.requests) == 1


@pytest.mark.usefixtures("no_private")
def test_it_refuses_a_private_literal_when_saved(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    response = csrf_post(
        staff_client,
        f"/endpoints/{endpoint.pk}/destinations/new/",
        {"url": "http://10.0.0.1/hook", "enabled": "on", "timeout_seconds": "10", "forward_headers": "*"},
    )
    assert response.status_code == 200
    assert "Refused destination: 10.0.0.1 is a loopback or private address" in response.content.decode()
    assert not Destination.objects.exists()


def test_it_refuses_a_metadata_hostname_when_saved_even_when_private_ones_are_allowed(settings: Any) -> None:
    assert settings.FORWARD_ALLOW_PRIVATE
    for url in ("http://metadata.google.internal/computeMetadata/v1/", "http://METADATA.google.internal./"):
        with pytest.raises(ValidationError, match="cloud metadata service"):
            validate_destination_url(url)
    validate_destination_url("http://localhost:9/")  # allowed in development


@pytest.mark.usefixtures("no_private")
def test_it_refuses_localhost_when_saved_in_production() -> None:
    for url in ("http://localhost:9/", "http://api.localhost/"):
        with pytest.raises(ValidationError, match="loopback"):
            validate_destination_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://xn--a.com/",
        "http://xn--/",
        "https://xn--zz.example.com/hook",
        "http://a..b/",
        "http://%zz/",
        "http://-a.com/",
        "http://x.com:0/",
        "http://" + "a" * 64 + ".com/",
    ],
)
def test_it_refuses_a_malformed_host_as_an_invalid_url(url: str) -> None:
    with pytest.raises(ValidationError, match="Enter a valid URL"):
        validate_destination_url(url)


def test_it_refuses_a_metadata_literal_written_with_a_trailing_dot(settings: Any) -> None:
    with pytest.raises(ValidationError, match="link-local or cloud metadata"):
        validate_destination_url("http://169.254.169.254./latest/meta-data/")
    for url in ("https://münchen.example/hook", "http://my_host.internal/", "https://example.com./x"):
        validate_destination_url(url)


def test_it_shows_an_ipv6_destination_with_brackets() -> None:
    destination = Destination(url="http://[2001:db8::1]:8080/hook?token=secret")
    assert destination.display_url == "http://[2001:db8::1]:8080/hook?…"


# --- Handlers -------------------------------------------------------------------------------
@pytest.fixture
def registered() -> Any:
    added: list[Any] = []

    def register(func: Any, **kwargs: Any) -> Any:
        handlers.register(func, **kwargs)
        added.append(func)
        return func

    yield register
    for func in added:
        handlers.unregister(func)


def test_it_runs_a_handler_for_its_endpoint_and_event(
    registered: Any, provider: Client, django_capture_on_commit_callbacks: Any
) -> None:
    seen: list[int] = []
    registered(lambda message: seen.append(message.pk), endpoint="shop", event_type="order.*")
    endpoint, token = make_endpoint("shop")
    other, other_token = make_endpoint("other")

    message = deliver(provider, endpoint, token, django_capture_on_commit_callbacks)
    elsewhere = deliver(provider, other, other_token, django_capture_on_commit_callbacks)
    unmatched = deliver(provider, endpoint, token, django_capture_on_commit_callbacks, body=b'{"type": "refund"}')
    run_worker()

    assert seen == [message.pk]
    message.refresh_from_db()
    assert message.status == "processed"
    assert Message.objects.get(pk=elsewhere.pk).status == "skipped"
    assert Message.objects.get(pk=unmatched.pk).status == "skipped"


def test_it_keeps_the_traceback_of_a_handler_that_raises(registered: Any) -> None:
    def charge(message: Message) -> None:
        raise ValueError(f"cannot charge for message {message.pk}")

    registered(charge, endpoint="shop")
    endpoint, _ = make_endpoint("shop", max_retries=0)
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now())

    assert processing.process(message.pk) == "failed"
    message.refresh_from_db()
    assert message.status == "failed"
    attempt = message.processing_attempts.get()
    assert attempt.label.endswith("charge")
    assert attempt.error.startswith("Traceback (most recent call last):")
    assert f"ValueError: cannot charge for message {message.pk}" in attempt.error


def test_it_sends_the_message_received_signal(provider: Client, django_capture_on_commit_callbacks: Any) -> None:
    got: list[Message] = []

    def on_message(sender: Any, message: Message, **kwargs: Any) -> None:
        got.append(message)

    handlers.message_received.connect(on_message)
    try:
        endpoint, token = make_endpoint()
        message = deliver(provider, endpoint, token, django_capture_on_commit_callbacks)
        run_worker()
    finally:
        handlers.message_received.disconnect(on_message)
    assert [m.pk for m in got] == [message.pk]
    assert got[0].body == ORDER


def test_it_retries_only_what_failed(registered: Any, catcher: Catcher) -> None:
    calls: list[int] = []
    registered(lambda message: calls.append(message.pk), endpoint="shop")
    catcher.answers = [(500, b"", {}), (200, b"", {})]
    endpoint, _ = endpoint_forwarding_to(catcher.url)
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now())

    processing.process(message.pk)
    make_due(message)
    processing.process(message.pk)

    assert len(calls) == 1, "the handler succeeded the first time and is not run again"
    assert len(catcher.requests) == 2
    message.refresh_from_db()
    assert message.status == "processed"


# --- Backoff, claims and recovery ---------------------------------------------------------------
def test_it_backs_off_exponentially_with_jitter() -> None:
    rng = random.Random(7)
    for _ in range(200):
        delays = [processing.retry_delay(n, rng).total_seconds() for n in range(1, 6)]
        assert delays[0] < 60, "the first retry comes within a minute"
        assert all(later > earlier * 1.5 for earlier, later in itertools.pairwise(delays))
        assert 40 * 60 <= sum(delays) <= 75 * 60, "five retries span about an hour"
    firsts = {round(processing.retry_delay(1, rng).total_seconds()) for _ in range(50)}
    assert len(firsts) > 10, "jitter spreads retries out"


def test_it_processes_a_message_once_when_woken_twice(catcher: Catcher) -> None:
    endpoint, _ = endpoint_forwarding_to(catcher.url)
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now())
    process_message.enqueue(message.pk)
    process_message.enqueue(message.pk)
    run_worker()
    assert len(catcher.requests) == 1
    assert message.processing_attempts.count() == 1


def test_it_recovers_a_message_whose_worker_was_killed(catcher: Catcher, settings: Any) -> None:
    endpoint, _ = endpoint_forwarding_to(catcher.url)
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now())
    # What a worker killed mid-attempt leaves: the message claimed, an attempt open.
    lease = timedelta(seconds=settings.INBOX_PROCESSING_LEASE_SECONDS)
    assert message.claim(lease)
    Attempt.objects.create(message=message, endpoint=endpoint, number=1, target="x", label="x")
    assert processing.process(message.pk) == "not due", "the lease still holds"
    assert processing.recover() == (0, 0)

    later = timezone.now() + lease + timedelta(seconds=1)
    assert processing.recover(now=later) == (1, 1)
    Message.objects.filter(pk=message.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    run_worker()

    message.refresh_from_db()
    assert message.status == "processed"
    assert [a.status for a in message.processing_attempts.all()] == ["failed", "succeeded"]
    assert "worker stopped" in message.processing_attempts.first().error
    assert len(catcher.requests) == 1


def test_it_requeues_a_message_whose_enqueue_was_lost(catcher: Catcher) -> None:
    endpoint, _ = endpoint_forwarding_to(catcher.url)
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert processing.recover() == (0, 1)
    assert processing.recover() == (0, 0), "a queued wake-up is a backlog, not a loss"
    run_worker()
    message.refresh_from_db()
    assert message.status == "processed"


def test_it_answers_2xx_when_the_queue_cannot_be_written(
    provider: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("queue table locked")

    monkeypatch.setattr(type(process_message), "enqueue", broken)
    endpoint, token = endpoint_forwarding_to("http://127.0.0.1:9/")
    message = deliver(provider, endpoint, token, django_capture_on_commit_callbacks)
    assert message.status == "pending", "stored as pending; the recovery sweep queues it later"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_never_lets_two_workers_process_the_same_attempt(catcher: Catcher) -> None:
    if not is_postgres():
        pytest.skip("concurrent workers need PostgreSQL (SQLite serialises them)")
    catcher.delay = 0.2
    endpoint, _ = endpoint_forwarding_to(catcher.url)
    messages = [make_message(endpoint, status="pending", next_attempt_at=timezone.now()) for _ in range(10)]
    for message in messages:
        for _ in range(3):  # duplicate wake-ups, as a recovery sweep racing a worker makes
            process_message.enqueue(message.pk)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            run_worker()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    assert len(catcher.requests) == 10
    assert sorted(int(r["headers"]["X-Webhook-Inbox-Message-Id"]) for r in catcher.requests) == sorted(
        m.pk for m in messages
    )
    assert Attempt.objects.count() == 10
    assert set(Message.objects.values_list("status", flat=True)) == {"processed"}


# --- Found in review: each of these once looped, crashed or leaked --------------------------------
def test_it_stores_an_answer_that_holds_a_nul_byte(catcher: Catcher) -> None:
    # PostgreSQL text refuses NUL: the attempt could not be saved and the message was
    # forwarded again by every recovery sweep.
    catcher.answers = [(200, b"ok\x00\xff", {})]
    endpoint, _ = endpoint_forwarding_to(catcher.url, max_retries=1)
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now())
    assert processing.process(message.pk) == "processed"
    assert message.processing_attempts.get().response_excerpt == "ok\ufffd\ufffd"


def test_it_fails_an_attempt_that_crashes_instead_of_leaving_it_claimed(registered: Any) -> None:
    def broken(message: Message) -> None:
        raise ValueError("handler bug")

    endpoint, _ = make_endpoint("shop", max_retries=1)
    # Saved before validation was strict; urlsplit cannot even parse it.
    Destination.objects.bulk_create([Destination(endpoint=endpoint, url="http://example.com:65536/hook")])
    registered(broken, endpoint="shop")
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now())
    assert processing.process(message.pk) == "retry"
    message.refresh_from_db()
    assert message.lease_until is None
    make_due(message)
    assert processing.process(message.pk) == "failed"


def test_it_gives_up_on_a_message_that_keeps_killing_its_worker(catcher: Catcher) -> None:
    endpoint, _ = endpoint_forwarding_to(catcher.url, max_retries=1)
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now(), attempts=1 + 1 + 3)
    assert processing.process(message.pk) == "failed"
    assert not catcher.requests


def test_it_survives_a_message_deleted_mid_attempt(registered: Any) -> None:
    registered(lambda message: Message.objects.filter(pk=message.pk).delete(), endpoint="shop")
    endpoint, _ = make_endpoint("shop")
    message = make_message(endpoint, status="pending", next_attempt_at=timezone.now())
    processing.process(message.pk)  # no exception escapes into the worker
    assert not Message.objects.filter(pk=message.pk).exists()


def drip_server(header_delay: float, byte_every: float, nbytes: int) -> str:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            time.sleep(header_delay)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % nbytes)
                for _ in range(nbytes):
                    time.sleep(byte_every)
                    conn.sendall(b"x")
            except OSError:
                pass
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/"


def test_it_holds_the_timeout_as_a_deadline_for_a_trickling_answer() -> None:
    outcome = forwarding.post(drip_server(0, 0.3, 50), b"{}", {}, timeout=1)
    assert outcome.ok, "the 200 arrived in time"
    assert outcome.duration_ms < 1500
    assert 0 < len(outcome.excerpt) < 50


def test_it_holds_the_timeout_as_a_deadline_for_slow_headers() -> None:
    outcome = forwarding.post(drip_server(3, 0, 1), b"{}", {}, timeout=1)
    assert not outcome.ok
    assert outcome.error == "timed out after 1 s"
    assert outcome.duration_ms < 1500


@pytest.mark.usefixtures("no_private")
@pytest.mark.parametrize(
    "address",
    ["64:ff9b::a9fe:a9fe", "64:ff9b::10.0.0.5", "::169.254.169.254", "::ffff:0:169.254.169.254", "2002:a9fe:a9fe::1"],
)
def test_it_refuses_private_addresses_inside_ipv6_ones(address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="embeds"):
        addresses.validate_destination_url(f"http://[{address}]/latest/meta-data/")
    monkeypatch.setattr(forwarding, "resolve", lambda host, port: [address])
    assert "embeds" in forwarding.post("http://dns64.example.test/", b"", {}, timeout=1).error


@pytest.mark.usefixtures("no_private")
@pytest.mark.parametrize("url", ["http://2130706433/", "http://0x7f.1/", "http://127.1/", "http://10.1/"])
def test_it_refuses_legacy_numeric_addresses_when_saved(url: str) -> None:
    with pytest.raises(ValidationError, match="loopback or private"):
        addresses.validate_destination_url(url)


@pytest.mark.parametrize("url", ["http://example.com:65536/hook", "http://us\u2100er@example.com/hook", "http:///x"])
def test_it_refuses_urls_the_dashboard_could_not_show(url: str) -> None:
    with pytest.raises(ValidationError):
        addresses.validate_destination_url(url)


def test_it_tries_the_next_address_when_one_does_not_connect(catcher: Catcher, monkeypatch: pytest.MonkeyPatch) -> None:
    # 127.0.0.2 is loopback too, but the catcher listens on 127.0.0.1 only: refused.
    monkeypatch.setattr(forwarding, "resolve", lambda host, port: ["127.0.0.2", "127.0.0.1"])
    port = catcher.url.split(":")[2].split("/")[0]
    outcome = forwarding.post(f"http://catcher.test:{port}/hook", b"{}", {}, timeout=2)
    assert outcome.ok
    assert catcher.requests[0]["headers"]["Host"] == f"catcher.test:{port}"


def test_it_checks_the_certificate_of_every_hostname_on_a_shared_address(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection verified for a.test must not carry a forward to b.test on the same
    address: b.test's certificate is checked on a connection of its own."""
    ca_file, cert_file, key_file = _certificates(tmp_path, "a.test")
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    port = server.server_address[1]
    monkeypatch.setattr(forwarding, "resolve", lambda host, p: ["127.0.0.1"])
    monkeypatch.setattr(forwarding, "verify", ssl.create_default_context(cafile=str(ca_file)))
    try:
        assert forwarding.post(f"https://a.test:{port}/", b"{}", {}, 3).ok
        second = forwarding.post(f"https://b.test:{port}/", b"{}", {}, 3)
    finally:
        server.shutdown()
        server.server_close()
    assert not second.ok
    assert "certificate" in second.error.lower()
    assert hosts == [f"a.test:{port}"]


def _certificates(directory: Any, hostname: str) -> tuple[Any, Any, Any]:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "leaf.pem", directory / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file
