"""The receiver URL is a credential: shown in full once (after a create, a quick create and
a new URL), masked afterwards, and every curl after that reads it from "$RECEIVER_URL"; the
copy-paste commands expand their variables when pasted into a shell."""

from __future__ import annotations

import os
import re
import subprocess
from html import unescape
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from inbox.models import AuditEntry, Endpoint, Message
from tests.conftest import csrf_post, make_endpoint, make_message
from tests.test_endpoints import NEW_ENDPOINT

pytestmark = pytest.mark.django_db


def curl_of(page: str) -> str:
    match = re.search(r'<pre id="curl-example" class="plain">(.*?)</pre>', page, re.S)
    assert match is not None
    return unescape(match.group(1))


def test_it_shows_the_url_once_after_a_create(staff_client: Client) -> None:
    created = csrf_post(staff_client, "/endpoints/new/", NEW_ENDPOINT)
    endpoint = Endpoint.objects.get()
    first = staff_client.get(created["Location"]).content.decode()
    assert f'value="{endpoint.url}"' in first
    assert f"curl -X POST '{endpoint.url}'" in curl_of(first)

    again = staff_client.get(created["Location"]).content.decode()
    assert endpoint.slug not in again
    assert f"http://127.0.0.1:8000/hooks/{endpoint.slug[:4]}…/" in again
    assert "it was shown once" in again
    assert curl_of(again).startswith('curl -X POST "$RECEIVER_URL"')
    assert '-H "X-Webhook-Token: $X_WEBHOOK_TOKEN"' in curl_of(again)


def test_it_shows_the_url_of_a_quick_endpoint_once(staff_client: Client) -> None:
    created = csrf_post(staff_client, "/endpoints/quick/")
    endpoint = Endpoint.objects.get()
    assert endpoint.url in staff_client.get(created["Location"]).content.decode()
    assert endpoint.slug not in staff_client.get(created["Location"]).content.decode()


def test_it_shows_the_url_of_an_endpoint_without_a_secret_once(staff_client: Client) -> None:
    created = csrf_post(staff_client, "/endpoints/new/", {**NEW_ENDPOINT, "auth": "none"})
    endpoint = Endpoint.objects.get()
    assert endpoint.url in staff_client.get(created["Location"]).content.decode()
    assert endpoint.slug not in staff_client.get(created["Location"]).content.decode()


def test_it_keeps_the_slug_off_the_message_page_even_for_managers(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    page = staff_client.get(message.get_absolute_url()).content.decode()
    assert endpoint.slug not in page
    assert 'curl -X POST "$RECEIVER_URL"' in unescape(page)


def test_a_new_url_asks_first_then_shows_the_new_one_once(staff_client: Client, provider: Client) -> None:
    endpoint, token = make_endpoint("shop")
    old_path = endpoint.path
    headers = {"X-Webhook-Token": token or ""}
    # The old URL in use (so the receiver's endpoint cache holds it) until the new one is made.
    assert provider.post(old_path, b"{}", content_type="application/json", headers=headers).status_code == 200
    asked = staff_client.get(f"/endpoints/{endpoint.pk}/new-url/")
    assert "Give “shop” a new receiver URL?" in asked.content.decode()
    assert "stops working at once" in asked.content.decode()
    assert endpoint.slug not in asked.content.decode()
    # Dismissed (no confirmed=yes): nothing changes.
    csrf_post(staff_client, f"/endpoints/{endpoint.pk}/new-url/")
    assert Endpoint.objects.get().slug == endpoint.slug

    made = csrf_post(staff_client, f"/endpoints/{endpoint.pk}/new-url/", {"confirmed": "yes"})
    assert made["Location"] == f"/endpoints/{endpoint.pk}/"
    endpoint.refresh_from_db()
    assert endpoint.path != old_path
    first = staff_client.get(made["Location"]).content.decode()
    assert f'value="{endpoint.url}"' in first
    assert endpoint.slug not in staff_client.get(made["Location"]).content.decode()

    assert provider.post(old_path, b"{}", content_type="application/json", headers=headers).status_code == 404
    assert provider.post(endpoint.path, b"{}", content_type="application/json", headers=headers).status_code == 200
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target, entry.details) == ("endpoint.rotated", "shop", {"secret": "receiver URL"})


def test_a_viewer_cannot_make_a_new_url(viewer_client: Client) -> None:
    endpoint, _ = make_endpoint()
    assert viewer_client.get(f"/endpoints/{endpoint.pk}/new-url/").status_code == 403


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("auth", ["token", "basic", "none"])
def test_the_endpoint_pages_curl_expands_its_variables_in_a_shell(
    live_server: Any, settings: Any, staff: User, auth: str
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    endpoint = Endpoint(name="shop", auth=auth)
    shown = endpoint.set_secret()
    endpoint.save()
    client = Client()
    client.force_login(staff)
    page = client.get(endpoint.get_absolute_url()).content.decode()
    assert endpoint.slug not in page
    env = {**os.environ, "RECEIVER_URL": endpoint.url}
    if auth == "token":
        env["X_WEBHOOK_TOKEN"] = shown["token"]
    if auth == "basic":
        env["WEBHOOK_PASSWORD"] = shown["password"]
    # Pasted into a shell, exactly as shown, with the variables exported.
    result = subprocess.run(  # noqa: S603
        ["/bin/sh", "-c", curl_of(page) + " -s"], check=True, env=env, capture_output=True, timeout=30
    )
    assert result.stdout == b"Message received."
    assert Message.objects.filter(endpoint=endpoint).count() == 1
