"""What an endpoint's configuration can do to the dashboard's origin, and what it may not be.

A manager configures what the receiver answers; an admin's browser may load that answer from
the dashboard's origin. Nothing an endpoint answers may run there, and nonsense settings
(reserved token headers, invisible characters, duplicate destinations) are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from inbox import audit
from inbox.models import AuditEntry, Destination, Endpoint, Message
from tests.conftest import csrf_post, make_endpoint, make_message
from tests.test_endpoints import NEW_ENDPOINT

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("content_type", ["text/html", "application/javascript", "image/svg+xml", "text/html; x=1"])
def test_it_refuses_an_answer_content_type_a_browser_would_run(staff_client: Client, content_type: str) -> None:
    response = csrf_post(staff_client, "/endpoints/new/", {**NEW_ENDPOINT, "response_content_type": content_type})
    assert response.status_code == 200
    assert "Answer with one of text/plain, application/json" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_it_accepts_an_inert_answer_content_type(staff_client: Client) -> None:
    data = {**NEW_ENDPOINT, "response_content_type": "application/json; charset=utf-8"}
    assert csrf_post(staff_client, "/endpoints/new/", data).status_code == 302


def test_create_endpoint_refuses_a_reserved_token_header() -> None:
    with pytest.raises(CommandError, match="token_header: Host is a standard HTTP header"):
        call_command("create_endpoint", "shop", "--header", "Host", stdout=StringIO())
    assert not Endpoint.objects.exists()


def test_it_answers_an_old_active_content_type_as_plain_text_with_a_sandbox(provider: Client) -> None:
    # Saved before the allowlist existed (no full_clean on this path).
    endpoint, _ = make_endpoint(
        "script", auth="none", allowed_methods="GET,POST", response_content_type="application/javascript"
    )
    Endpoint.objects.filter(pk=endpoint.pk).update(response_body="alert(document.domain)")
    response = provider.get(endpoint.path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_every_receiver_answer_is_sandboxed(provider: Client) -> None:
    endpoint, token = make_endpoint("shop")
    refused = provider.post(endpoint.path, b"{}", content_type="application/json")
    accepted = provider.post(endpoint.path, b"{}", content_type="application/json", HTTP_X_WEBHOOK_TOKEN=token)
    probed = provider.options(endpoint.path)
    assert [r.status_code for r in (refused, accepted, probed)] == [403, 200, 204]
    for response in (refused, accepted, probed):
        assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "header", ["Host", "Content-Type", "content-length", "Authorization", "Cookie", "Connection", "Transfer-Encoding"]
)
def test_it_refuses_a_token_header_servers_own(staff_client: Client, header: str) -> None:
    response = csrf_post(staff_client, "/endpoints/new/", {**NEW_ENDPOINT, "token_header": header})
    assert response.status_code == 200
    assert "is a standard HTTP header" in response.content.decode()
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "shop\x01"), ("name", "two\nlines"), ("description", "bell\x07")],
)
def test_it_refuses_invisible_control_characters(staff_client: Client, field: str, value: str) -> None:
    response = csrf_post(staff_client, "/endpoints/new/", {**NEW_ENDPOINT, field: value})
    assert response.status_code == 200
    assert "control characters" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_a_description_keeps_its_lines(staff_client: Client) -> None:
    data = {**NEW_ENDPOINT, "description": "Charges\r\n\tand refunds"}
    assert csrf_post(staff_client, "/endpoints/new/", data).status_code == 302


@pytest.mark.parametrize("name", ["shop\x01", "shop\udcff"])  # the second: undecodable bytes in argv
def test_create_endpoint_refuses_control_characters(name: str) -> None:
    with pytest.raises(CommandError, match="name: Remove the control characters"):
        call_command("create_endpoint", name, stdout=StringIO())


def test_it_refuses_a_second_destination_with_the_same_url(staff_client: Client) -> None:
    endpoint, _ = make_endpoint("shop")
    Destination.objects.create(endpoint=endpoint, url="https://example.com/hook")
    data = {"url": "https://example.com/hook", "enabled": "on", "timeout_seconds": "10", "forward_headers": "*"}
    response = csrf_post(staff_client, f"/endpoints/{endpoint.pk}/destinations/new/", data)
    assert response.status_code == 200
    assert "already forwards to this URL" in response.content.decode()
    assert endpoint.destinations.count() == 1


def test_create_endpoint_refuses_the_same_destination_twice() -> None:
    with pytest.raises(CommandError, match="already forwards to this URL"):
        call_command(
            "create_endpoint",
            "shop",
            "--forward-to",
            "https://example.com/hook",
            "--forward-to",
            "https://example.com/hook",
            stdout=StringIO(),
        )
    assert not Endpoint.objects.exists()


# --- What manage.py does reaches the audit log, and each entry is logged once --------------------
def test_create_endpoint_is_audited_as_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "os_user", lambda: "alice")
    call_command("create_endpoint", "shop", "--forward-to", "https://example.com/hook", stdout=StringIO())
    entries = list(AuditEntry.objects.order_by("pk").values_list("action", "username", "details__via"))
    assert entries == [
        ("endpoint.created", "manage.py create_endpoint (alice)", "command"),
        ("destination.added", "manage.py create_endpoint (alice)", "command"),
    ]


def test_replay_and_purge_by_hand_are_audited() -> None:
    endpoint, _ = make_endpoint("shop", retention_days=1)
    fresh = make_message(endpoint)
    old = make_message(endpoint)
    Message.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=3))
    call_command("replay_messages", str(fresh.pk), stdout=StringIO())
    call_command("purge_messages", stdout=StringIO())
    entries = list(AuditEntry.objects.order_by("pk").values_list("action", "target", "details__via"))
    assert entries == [
        ("messages.replayed", "1 message by id", "command"),
        ("messages.deleted", "1 messages past retention or cap", "command"),
    ]
    assert AuditEntry.objects.order_by("pk").first().username.startswith("manage.py replay_messages (")  # type: ignore[union-attr]


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def audit_lines() -> Iterator[list[str]]:
    handler = Lines()
    logging.getLogger("inbox.audit").addHandler(handler)
    yield handler.lines
    logging.getLogger("inbox.audit").removeHandler(handler)


def test_each_audit_entry_is_logged_once(staff_client: Client, audit_lines: list[str]) -> None:
    # The signal's plain entry was logged, then the view's entry that replaced it: two lines.
    csrf_post(staff_client, "/endpoints/new/", NEW_ENDPOINT)
    user_id = AuditEntry.objects.get(action="endpoint.created").user_id
    assert audit_lines == [f"audit endpoint.created target='Stripe production' by user={user_id}"]
    call_command("create_endpoint", "billing", stdout=StringIO())
    assert len(audit_lines) == 2
