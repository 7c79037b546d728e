"""Processing in the dashboard and on the command line: destinations, status, replay."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from inbox.models import Attempt, BulkJob, Destination, Endpoint, Message
from tests.conftest import Catcher, answer_confirmation, csrf_post, make_endpoint, make_message, run_worker

pytestmark = pytest.mark.django_db

DESTINATION = {"url": "https://staging.example.com/hooks/stripe?key=abc", "enabled": "on", "timeout_seconds": "10"}


def test_it_adds_edits_and_deletes_a_destination(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    response = csrf_post(
        staff_client,
        f"/endpoints/{endpoint.pk}/destinations/new/",
        {**DESTINATION, "forward_headers": "Stripe-Signature, user-agent"},
    )
    assert response.status_code == 302
    destination = Destination.objects.get()
    assert (destination.endpoint, destination.forward_headers) == (endpoint, "Stripe-Signature, user-agent")

    page = staff_client.get(endpoint.get_absolute_url()).content.decode()
    # The query string may hold the destination's own key: it is not shown on the page.
    assert "https://staging.example.com/hooks/stripe?…" in page
    assert "key=abc" not in page

    response = csrf_post(
        staff_client,
        f"/destinations/{destination.pk}/edit/",
        {**DESTINATION, "timeout_seconds": "5", "forward_headers": ""},
    )
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.timeout_seconds == 5
    assert destination.forward_headers == ""

    response = csrf_post(staff_client, f"/destinations/{destination.pk}/delete/", {"confirmed": "yes"})
    assert response.status_code == 302
    assert not Destination.objects.exists()


def test_it_refuses_bad_destination_input(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    response = csrf_post(
        staff_client,
        f"/endpoints/{endpoint.pk}/destinations/new/",
        {"url": "ftp://files.example.com/", "timeout_seconds": "0", "forward_headers": "X Bad"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Enter an http:// or https:// URL." in page
    assert "Ensure this value is greater than or equal to 1." in page
    assert "Enter an HTTP header name" in page
    assert not Destination.objects.exists()


def test_it_forwards_from_a_new_destination_at_once(staff_client: Client, provider: Client, catcher: Catcher) -> None:
    endpoint, token = make_endpoint()
    provider.post(endpoint.path, data=b"{}", content_type="application/json", headers={"X-Webhook-Token": token})
    csrf_post(staff_client, f"/endpoints/{endpoint.pk}/destinations/new/", {**DESTINATION, "url": catcher.url})
    # The receiver's cached copy of the endpoint is refreshed by the save.
    provider.post(endpoint.path, data=b"{}", content_type="application/json", headers={"X-Webhook-Token": token})
    assert list(Message.objects.order_by("pk").values_list("status", flat=True)) == ["skipped", "pending"]


def test_it_filters_the_list_by_processing_status(staff_client: Client, django_assert_num_queries: Any) -> None:
    endpoint, _ = make_endpoint()
    failed = make_message(endpoint, body=b'{"type": "failed.one"}', status="failed", attempts=6)
    make_message(endpoint, body=b'{"type": "processed.one"}', status="processed", attempts=1)
    make_message(endpoint, body=b'{"type": "skipped.one"}')

    with django_assert_num_queries(7):  # as unfiltered (tests/test_dashboard.py)
        response = staff_client.get("/?status=failed")
    page = response.content.decode()
    assert "failed.one" in page
    assert "processed.one" not in page
    assert "skipped.one" not in page
    assert f'value="{failed.pk}"' in page
    assert "6 attempts" in page

    response = staff_client.get("/?status=everything")
    assert "Select a valid choice" in response.content.decode()


def test_it_shows_every_attempt_on_the_message_page(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint, status="failed", attempts=2)
    Attempt.objects.create(
        message=message,
        endpoint=endpoint,
        number=1,
        target="destination:1",
        label="Forward to https://staging.example.com/hook",
        status="failed",
        status_code=502,
        duration_ms=87,
        response_excerpt="<html>Bad gateway</html>",
        error="answered 502, expected 2xx",
    )
    Attempt.objects.create(
        message=message,
        endpoint=endpoint,
        number=2,
        target="handler:shop.handlers.charge",
        label="Handler shop.handlers.charge",
        status="failed",
        duration_ms=3,
        error='Traceback (most recent call last):\n  File "shop/handlers.py"\nValueError: no customer',
    )
    page = staff_client.get(message.get_absolute_url()).content.decode()
    assert "Forward to https://staging.example.com/hook" in page
    assert "<code>502</code>" in page
    assert "87 ms" in page
    assert "&lt;html&gt;Bad gateway&lt;/html&gt;" in page
    assert "ValueError: no customer" in page


def test_it_replays_one_message(staff_client: Client, catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    Destination.objects.create(endpoint=endpoint, url=catcher.url)
    message = make_message(endpoint, status="processed", attempts=1)

    response = csrf_post(staff_client, f"/messages/{message.pk}/replay/")
    assert response.status_code == 302
    message.refresh_from_db()
    assert (message.status, message.replays, message.attempts) == ("pending", 1, 0)
    run_worker()

    assert len(catcher.requests) == 1
    message.refresh_from_db()
    assert message.status == "processed"
    [attempt] = message.processing_attempts.all()
    assert attempt.replay == 1
    page = staff_client.get(message.get_absolute_url()).content.decode()
    assert '#1 <span class="muted small">of replay 1</span>' in page


def test_it_replays_a_selection_in_the_background(staff_client: Client, catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    Destination.objects.create(endpoint=endpoint, url=catcher.url)
    chosen = [make_message(endpoint, status="failed") for _ in range(3)]
    untouched = make_message(endpoint, status="failed")

    response = csrf_post(staff_client, "/messages/bulk/", {"ids": [m.pk for m in chosen], "action": "replay"})
    job = BulkJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert "Waiting for the worker" in staff_client.get(response["Location"]).content.decode()

    run_worker()

    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.percent) == ("done", 3, 3, 100)
    assert sorted(int(r["headers"]["X-Webhook-Inbox-Message-Id"]) for r in catcher.requests) == [m.pk for m in chosen]
    assert Message.objects.get(pk=untouched.pk).status == "failed"
    page = staff_client.get(f"/jobs/{job.pk}/").content.decode()
    assert "3 of 3 messages replayed (100%)" in page
    assert "every 1s" not in page, "a finished job stops polling"


def test_it_replays_every_message_matching_the_filter(staff_client: Client, catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    other, _ = make_endpoint("other")
    Destination.objects.create(endpoint=endpoint, url=catcher.url)
    failed = [make_message(endpoint, status="failed") for _ in range(4)]
    make_message(endpoint, status="processed")
    make_message(other, status="failed")

    response = answer_confirmation(
        staff_client, f"/messages/bulk/?endpoint={endpoint.pk}&status=failed", {"action": "replay_all"}
    )
    job = BulkJob.objects.get()
    assert job.query == f"endpoint={endpoint.pk}&status=failed"
    progress = staff_client.get(response["Location"], headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' in progress, "an unfinished job polls for progress"
    assert "<html" not in progress

    run_worker()

    job.refresh_from_db()
    assert (job.status, job.done) == ("done", 4)
    assert len(catcher.requests) == 4
    assert set(Message.objects.filter(pk__in=[m.pk for m in failed]).values_list("status", flat=True)) == {"processed"}


def test_it_refuses_a_replay_without_a_selection(staff_client: Client) -> None:
    response = csrf_post(staff_client, "/messages/bulk/?status=failed", {"action": "replay"})
    assert response.status_code == 302
    assert response["Location"] == "/?status=failed"
    assert not BulkJob.objects.exists()


def test_it_keeps_replays_for_staff(outsider: User, client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    client.force_login(outsider)
    assert client.post(f"/messages/{message.pk}/replay/").status_code == 403
    assert client.post("/messages/bulk/", {"action": "replay_all"}).status_code == 403
    assert Client().post(f"/messages/{message.pk}/replay/").status_code == 302  # to the login page
    message.refresh_from_db()
    assert message.replays == 0


def test_it_shows_the_recent_failure_rate_on_the_endpoint_page(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    for number, status in enumerate(["failed", "failed", "failed", "succeeded"], start=1):
        Attempt.objects.create(message=message, endpoint=endpoint, number=number, target="t", label="t", status=status)
    Attempt.objects.create(
        message=message,
        endpoint=endpoint,
        number=9,
        target="t",
        label="t",
        status="failed",
        started_at=timezone.now() - timedelta(days=2),
    )
    page = staff_client.get(endpoint.get_absolute_url()).content.decode()
    assert "4 attempts to forward or handle a message, <strong>3 failed (75%)</strong>" in page


# --- Commands ---------------------------------------------------------------------------------
def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_it_creates_an_endpoint_that_forwards() -> None:
    data = json.loads(
        run(
            "create_endpoint",
            "relay",
            "--forward-to",
            "https://a.example.com/",
            "--forward-to",
            "http://b.test/x",
            "--json",
        )
    )
    assert data["forward_to"] == ["https://a.example.com/", "http://b.test/x"]
    assert sorted(Destination.objects.values_list("url", flat=True)) == ["http://b.test/x", "https://a.example.com/"]


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "file:///etc/passwd", "not a url"])
def test_it_refuses_a_bad_forward_target_and_creates_nothing(url: str) -> None:
    with pytest.raises(CommandError):
        run("create_endpoint", "relay", "--forward-to", url)
    assert not Endpoint.objects.exists()


def test_it_replays_from_the_command_line(catcher: Catcher) -> None:
    endpoint, _ = make_endpoint("stripe")
    Destination.objects.create(endpoint=endpoint, url=catcher.url)
    failed = make_message(endpoint, status="failed")
    processed = make_message(endpoint, status="processed")

    assert run("replay_messages", "--endpoint", "stripe", "--status", "failed") == "Queued 1 message for processing.\n"
    assert run("replay_messages", str(processed.pk)) == "Queued 1 message for processing.\n"
    run_worker()
    assert sorted(int(r["headers"]["X-Webhook-Inbox-Message-Id"]) for r in catcher.requests) == sorted(
        [failed.pk, processed.pk]
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((), "Give message ids or --endpoint NAME"),
        (("--endpoint", "nope"), 'No endpoint named "nope"'),
        (("999",), "No message with id 999"),
        (("1", "--status", "failed"), "--status goes with --endpoint"),
    ],
)
def test_it_refuses_bad_replay_arguments(args: tuple[str, ...], error: str) -> None:
    with pytest.raises(CommandError, match=error):
        run("replay_messages", *args)


def test_it_never_shows_a_token_in_a_destination_path(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    slack = "https://user:pw@hooks.slack.com/services/T0001/B0002/Zk9sQm0xY2VjcmV0VG9rZW4"
    Destination.objects.create(endpoint=endpoint, url=slack)
    page = staff_client.get(endpoint.get_absolute_url()).content.decode()
    assert "https://hooks.slack.com/services/T0001/B0002/Zk9s…" in page
    assert "Zk9sQm0xY2VjcmV0VG9rZW4" not in page
    assert "user:pw" not in page


@pytest.mark.parametrize("value", ["\u00b2", "9" * 5000, "-1"])
def test_it_ignores_ids_that_are_not_message_ids(staff_client: Client, value: str) -> None:
    response = csrf_post(staff_client, "/messages/bulk/", {"ids": value, "action": "replay"})
    assert response.status_code == 302
    assert not BulkJob.objects.exists()


def test_it_shows_an_endpoint_whose_destination_url_no_longer_parses(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    Destination.objects.bulk_create([Destination(endpoint=endpoint, url="http://example.com:65536/hook")])
    response = staff_client.get(endpoint.get_absolute_url())
    assert response.status_code == 200
    assert "(invalid URL)" in response.content.decode()
