from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from inbox.models import ApiToken, Endpoint, Message
from tests.conftest import csrf_post, make_endpoint, make_message

pytestmark = pytest.mark.django_db

NEW_ENDPOINT = {
    "name": "Stripe production",
    "description": "Charges and refunds",
    "enabled": "on",
    "auth": "token",
    "token_header": "X-Webhook-Token",
    "allowed_methods": "POST",
    "rate_limit": "120/m",
    "rate_limit_fail_open": "on",
    "max_body_bytes": "1048576",
    "retention_days": "14",
    "max_messages": "",
    "response_status": "200",
    "max_retries": "5",
    "response_content_type": "text/plain",
    "response_body": "Message received.",
}


def shown_token(content: bytes) -> str | None:
    match = re.search(r'id="shown-token" class="mono token" value="([^"]+)"', content.decode())
    return match.group(1) if match else None


def test_it_creates_an_endpoint_and_shows_its_url_and_token_once(staff_client: Client) -> None:
    created = csrf_post(staff_client, "/endpoints/new/", NEW_ENDPOINT)
    endpoint = Endpoint.objects.get()
    # Post/redirect/get: the answer to the POST is a redirect, so a reload cannot create twice.
    assert (created.status_code, created["Location"]) == (302, f"/endpoints/{endpoint.pk}/")
    assert (endpoint.name, endpoint.rate_limit, endpoint.retention_days) == ("Stripe production", "120/m", 14)
    assert len(endpoint.slug) >= 22  # at least 128 bits of token_urlsafe
    response = staff_client.get(created["Location"])
    page = response.content.decode()
    assert f"http://127.0.0.1:8000/hooks/{endpoint.slug}/" in page
    token = shown_token(response.content)
    assert token is not None
    assert endpoint.check_token(token)
    assert token not in endpoint.token_digest  # only a digest is stored
    assert f"X-Webhook-Token: {token}" in page  # the curl example is ready to paste
    assert "no-store" in response["Cache-Control"]

    again = staff_client.get(f"/endpoints/{endpoint.pk}/")
    assert token not in again.content.decode()
    assert shown_token(again.content) is None
    assert "$X_WEBHOOK_TOKEN" in again.content.decode()


def test_it_shows_the_form_again_with_errors(staff_client: Client) -> None:
    bad = {**NEW_ENDPOINT, "rate_limit": "lots", "token_header": "X Bad Header", "response_status": "500"}
    response = csrf_post(staff_client, "/endpoints/new/", bad)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Enter a rate such as 120/m" in page
    assert "Enter an HTTP header name" in page
    assert "less than or equal to 299" in page
    assert not Endpoint.objects.exists()


def test_it_refuses_a_duplicate_name(staff_client: Client) -> None:
    make_endpoint("Stripe production")
    response = csrf_post(staff_client, "/endpoints/new/", NEW_ENDPOINT)
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Endpoint.objects.count() == 1


def test_it_rotates_the_token(staff_client: Client, provider: Client) -> None:
    endpoint, old_token = make_endpoint()
    rotated = csrf_post(staff_client, f"/endpoints/{endpoint.pk}/rotate/", {"grace_hours": "0"})
    assert (rotated.status_code, rotated["Location"]) == (302, f"/endpoints/{endpoint.pk}/")
    response = staff_client.get(rotated["Location"])
    assert "no-store" in response["Cache-Control"]
    new_token = shown_token(response.content)
    assert new_token
    assert new_token != old_token

    def status_with(token: str | None) -> int:
        headers = {"X-Webhook-Token": token} if token else {}
        return provider.post(endpoint.path, data=b"{}", content_type="application/json", headers=headers).status_code

    assert status_with(old_token) == 403
    assert status_with(new_token) == 200
    assert shown_token(staff_client.get(f"/endpoints/{endpoint.pk}/").content) is None


def test_it_says_which_credential_a_message_came_with_during_a_rotation(staff_client: Client, provider: Client) -> None:
    endpoint, old_token = make_endpoint()
    rotated = csrf_post(staff_client, f"/endpoints/{endpoint.pk}/rotate/", {"grace_hours": "24"})
    new_token = shown_token(staff_client.get(rotated["Location"]).content)
    for token in (old_token, new_token):
        sent = provider.post(endpoint.path, b"{}", content_type="application/json", headers={"X-Webhook-Token": token})
        assert sent.status_code == 200
    old, new = Message.objects.order_by("pk")
    assert "with the previous credential" in staff_client.get(old.get_absolute_url()).content.decode()
    assert "with the current credential" in staff_client.get(new.get_absolute_url()).content.decode()


def test_it_asks_before_rotating(staff_client: Client) -> None:
    endpoint, token = make_endpoint()
    page = staff_client.get(f"/endpoints/{endpoint.pk}/rotate/").content.decode()
    assert "Keep the old one valid for (hours)" in page
    endpoint.refresh_from_db()
    assert endpoint.check_token(token) == "current"


def test_it_edits_an_endpoint_without_touching_its_secret(staff_client: Client) -> None:
    endpoint, token = make_endpoint()
    edited = {**NEW_ENDPOINT, "name": "renamed", "rate_limit": "5/s", "allowed_methods": "post, get"}
    response = csrf_post(staff_client, f"/endpoints/{endpoint.pk}/edit/", edited)
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.rate_limit, endpoint.allowed_methods) == ("renamed", "5/s", "POST,GET")
    assert endpoint.check_token(token)


def test_it_makes_a_token_when_an_endpoint_switches_to_token_verification(staff_client: Client) -> None:
    endpoint, _ = make_endpoint(auth="none")
    response = csrf_post(staff_client, f"/endpoints/{endpoint.pk}/edit/", NEW_ENDPOINT, follow=True)
    assert response.redirect_chain == [(f"/endpoints/{endpoint.pk}/", 302)]
    token = shown_token(response.content)
    assert token is not None
    endpoint.refresh_from_db()
    assert endpoint.check_token(token)


def test_it_disables_an_endpoint(staff_client: Client, provider: Client) -> None:
    endpoint, token = make_endpoint()
    disabled = {key: value for key, value in NEW_ENDPOINT.items() if key != "enabled"}
    csrf_post(staff_client, f"/endpoints/{endpoint.pk}/edit/", disabled)
    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    response = provider.post(
        endpoint.path, data=b"{}", content_type="application/json", headers={"X-Webhook-Token": token}
    )
    assert response.status_code == 404


def test_it_deletes_an_endpoint_with_its_messages(staff_client: Client, provider: Client) -> None:
    endpoint, token = make_endpoint()
    make_message(endpoint)
    other, _ = make_endpoint("other")
    kept = make_message(other)
    assert (
        "every message it received is deleted" in staff_client.get(f"/endpoints/{endpoint.pk}/delete/").content.decode()
    )

    response = csrf_post(staff_client, f"/endpoints/{endpoint.pk}/delete/")
    assert response.status_code == 302
    assert not Endpoint.objects.filter(pk=endpoint.pk).exists()
    assert list(Message.objects.all()) == [kept]
    response = provider.post(
        endpoint.path, data=b"{}", content_type="application/json", headers={"X-Webhook-Token": token}
    )
    assert response.status_code == 404


def test_it_lists_endpoints_with_their_last_message(staff_client: Client) -> None:
    _quiet, _ = make_endpoint("quiet")
    busy, _ = make_endpoint("busy")
    make_message(busy)
    page = staff_client.get("/endpoints/").content.decode()
    assert "quiet" in page
    assert "never" in page
    assert f"/?endpoint={busy.pk}" in page


def test_it_keeps_the_slug_out_of_dashboard_urls(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint)
    for url in ["/", "/endpoints/", f"/endpoints/{endpoint.pk}/"]:
        hrefs = re.findall(r'href="([^"]+)"', staff_client.get(url).content.decode())
        assert not [href for href in hrefs if endpoint.slug in href], url


def test_it_applies_one_secret_rule_in_the_form_the_api_and_the_command(staff_client: Client) -> None:
    # A hand-picked token shorter than 16 characters is refused the same way on every path.
    response = csrf_post(staff_client, "/endpoints/new/", {**NEW_ENDPOINT, "secret": "short-token"})
    assert "A token needs at least 16 characters." in response.content.decode()
    token = ApiToken.objects.issue(User.objects.get(username="staff"), "t", "write")[1]
    api = Client(enforce_csrf_checks=True).post(
        "/api/v1/endpoints/",
        {"name": "api", "secret": "short-token"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert api.json() == {"secret": ["A token needs at least 16 characters."]}
    with pytest.raises(CommandError, match=r"A token needs at least 16 characters\."):
        call_command("create_endpoint", "cli", "--secret", "short-token", stdout=StringIO())
    assert not Endpoint.objects.exists()
