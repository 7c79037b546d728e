"""What an endpoint's configuration can do to the dashboard's origin, and what it may not be.

A manager configures what the receiver answers; an admin's browser may load that answer from
the dashboard's origin. Nothing an endpoint answers may run there, and nonsense settings
(reserved token headers, invisible characters, duplicate destinations) are refused.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from inbox.models import Destination, Endpoint
from tests.conftest import csrf_post, make_endpoint
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
