"""A first run like webhook.site's: a new secret survives no reload, the endpoint page waits
live for the first delivery, a one-click quick endpoint, and a form that shows what the
chosen preset uses (issue 13, items 8-10)."""

from __future__ import annotations

import re
import time
from html import unescape

import pytest
from django.test import Client

from inbox.dashboard.views import endpoints as endpoint_views
from inbox.models import AuditEntry, Endpoint, Message
from tests.conftest import csrf_post, make_endpoint
from tests.test_endpoints import NEW_ENDPOINT, shown_token

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


# --- Item 8: post, redirect, get; the secret once, from the session ---------------------------
def test_it_redirects_after_creating_and_shows_the_token_on_the_next_page_only(staff_client: Client) -> None:
    created = csrf_post(staff_client, "/endpoints/new/", NEW_ENDPOINT)
    endpoint = Endpoint.objects.get()
    assert (created.status_code, created["Location"]) == (302, f"/endpoints/{endpoint.pk}/")

    first = staff_client.get(created["Location"])
    token = shown_token(first.content)
    assert token is not None
    assert endpoint.check_token(token) == "current"
    assert "no-store" in first["Cache-Control"]
    assert token not in created["Location"]

    # A reload (or a second visit) neither creates again nor shows the token again.
    reload = staff_client.get(created["Location"])
    assert reload.status_code == 200
    assert shown_token(reload.content) is None
    assert token not in reload.content.decode()
    assert "already exists" not in reload.content.decode()
    assert Endpoint.objects.count() == 1


def test_it_keeps_the_secret_in_the_session_only_encrypted(staff_client: Client) -> None:
    created = csrf_post(staff_client, "/endpoints/new/", NEW_ENDPOINT)
    kept = staff_client.session[endpoint_views.SHOWN_SECRET_KEY]
    token = shown_token(staff_client.get(created["Location"]).content)
    assert token
    assert token not in kept
    assert endpoint_views.SHOWN_SECRET_KEY not in staff_client.session  # popped when shown


def test_it_does_not_rotate_again_when_the_page_is_reloaded(staff_client: Client) -> None:
    endpoint, old_token = make_endpoint()
    rotated = csrf_post(staff_client, f"/endpoints/{endpoint.pk}/rotate/", {"grace_hours": "1"})
    assert (rotated.status_code, rotated["Location"]) == (302, f"/endpoints/{endpoint.pk}/")
    endpoint.refresh_from_db()
    rotated_at = endpoint.token_rotated_at

    new_token = shown_token(staff_client.get(rotated["Location"]).content)
    assert new_token
    assert new_token != old_token
    assert shown_token(staff_client.get(rotated["Location"]).content) is None
    endpoint.refresh_from_db()
    assert endpoint.token_rotated_at == rotated_at
    assert (endpoint.check_token(new_token), endpoint.check_token(old_token)) == ("current", "previous")
    assert AuditEntry.objects.filter(action="endpoint.rotated").count() == 1


def test_it_shows_a_secret_on_its_own_endpoints_page_only(staff_client: Client) -> None:
    other, _ = make_endpoint("other")
    created = csrf_post(staff_client, "/endpoints/new/", NEW_ENDPOINT)
    assert shown_token(staff_client.get(f"/endpoints/{other.pk}/").content) is None
    assert shown_token(staff_client.get(created["Location"]).content) is not None


def test_it_drops_a_secret_nobody_came_to_see(staff_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    created = csrf_post(staff_client, "/endpoints/new/", NEW_ENDPOINT)
    later = time.time() + endpoint_views.SHOWN_SECRET_SECONDS + 1
    monkeypatch.setattr(endpoint_views.time, "time", lambda: later)
    assert shown_token(staff_client.get(created["Location"]).content) is None


def test_it_redirects_after_an_edit_that_replaces_the_secret(staff_client: Client) -> None:
    endpoint, _ = make_endpoint(auth="none")
    edited = csrf_post(staff_client, f"/endpoints/{endpoint.pk}/edit/", {**NEW_ENDPOINT, "name": "shop"})
    assert (edited.status_code, edited["Location"]) == (302, f"/endpoints/{endpoint.pk}/")
    token = shown_token(staff_client.get(edited["Location"]).content)
    assert token is not None
    endpoint.refresh_from_db()
    assert endpoint.check_token(token) == "current"
    assert shown_token(staff_client.get(edited["Location"]).content) is None


# --- Item 9: waiting for the first delivery; the quick endpoint -------------------------------
def test_it_waits_for_the_first_delivery_then_shows_it(staff_client: Client, provider: Client) -> None:
    created = csrf_post(staff_client, "/endpoints/new/", NEW_ENDPOINT)
    endpoint = Endpoint.objects.get()
    page = unescape(staff_client.get(created["Location"]).content.decode())
    poll = f"/endpoints/{endpoint.pk}/first-delivery/"
    assert "Waiting for the first delivery" in page
    assert f'hx-get="{poll}?refused=0"' in page
    token = shown_token(page.encode())
    assert f"curl -X POST '{endpoint.url}'" in page
    assert f"X-Webhook-Token: {token}" in page

    # Nothing yet: 204, and htmx keeps the box (and its curl) as it is.
    assert staff_client.get(poll + "?refused=0", headers=HTMX).status_code == 204

    provider.post(
        endpoint.path,
        b'{"type": "order.created"}',
        content_type="application/json",
        headers={"X-Webhook-Token": token or ""},
    )
    message = Message.objects.get()
    arrived = staff_client.get(poll + "?refused=0", headers=HTMX)
    fragment = arrived.content.decode()
    assert arrived.status_code == 200
    assert "First delivery received" in fragment
    assert f'href="/messages/{message.pk}/?endpoint={endpoint.pk}"' in fragment
    assert "order.created" in fragment
    assert "hx-trigger" not in fragment  # the answer ends the polling
    assert 'id="recent" hx-swap-oob="true"' in fragment  # and refreshes the recent messages
    assert token not in fragment
    # From now on the page no longer waits.
    page = staff_client.get(f"/endpoints/{endpoint.pk}/").content.decode()
    assert "Waiting for the first delivery" not in page
    assert poll not in page


def test_it_says_while_waiting_that_deliveries_were_refused(staff_client: Client, provider: Client) -> None:
    endpoint, _ = make_endpoint()
    poll = f"/endpoints/{endpoint.pk}/first-delivery/"
    provider.post(endpoint.path, b"{}", content_type="application/json", headers={"X-Webhook-Token": "wrong"})
    refused = staff_client.get(poll + "?refused=0", headers=HTMX)
    fragment = refused.content.decode()
    assert refused.status_code == 200
    assert "Waiting for the first delivery" in fragment
    assert "1 refused</strong>, the last one" in fragment
    assert f'hx-get="{poll}?refused=1"' in fragment  # still polling, from the new count
    assert staff_client.get(poll + "?refused=1", headers=HTMX).status_code == 204


def test_it_shows_viewers_the_wait_without_the_url(viewer_client: Client) -> None:
    endpoint, _ = make_endpoint()
    page = viewer_client.get(f"/endpoints/{endpoint.pk}/").content.decode()
    assert "Waiting for the first delivery" in page
    assert endpoint.slug not in page
    assert viewer_client.get(f"/endpoints/{endpoint.pk}/first-delivery/?refused=0", headers=HTMX).status_code == 204


def test_it_makes_a_quick_endpoint_in_one_click(staff_client: Client, provider: Client) -> None:
    assert 'action="/endpoints/quick/"' in staff_client.get("/endpoints/").content.decode()
    made = csrf_post(staff_client, "/endpoints/quick/")
    endpoint = Endpoint.objects.get()
    assert (made.status_code, made["Location"]) == (302, f"/endpoints/{endpoint.pk}/")
    assert re.fullmatch(r"quick-[0-9a-f]{6}", endpoint.name)
    assert (endpoint.auth, endpoint.rate_limit, endpoint.allowed_methods) == ("token", "600/m", "POST")
    assert AuditEntry.objects.get().action == "endpoint.created"

    page = staff_client.get(made["Location"]).content.decode()
    token = shown_token(page.encode())
    assert token
    assert "Waiting for the first delivery" in page
    answer = provider.post(endpoint.path, b"{}", content_type="application/json", headers={"X-Webhook-Token": token})
    assert answer.status_code == 200
    # A second click is a second endpoint, never an error.
    csrf_post(staff_client, "/endpoints/quick/")
    assert Endpoint.objects.count() == 2


def test_it_offers_the_quick_endpoint_on_the_empty_inbox_to_managers_only(
    staff_client: Client, viewer_client: Client
) -> None:
    assert 'action="/endpoints/quick/"' in staff_client.get("/").content.decode()
    assert 'action="/endpoints/quick/"' not in viewer_client.get("/").content.decode()
    assert csrf_post(viewer_client, "/endpoints/quick/").status_code == 403
    # A GET (a reload, a link) creates nothing; it goes back to the endpoints with a word.
    assert staff_client.get("/endpoints/quick/")["Location"] == "/endpoints/"
    assert not Endpoint.objects.exists()


# --- Item 10: the fields a preset uses; errors a person (and a screen reader) can find ----------
def wrapper(page: str, name: str) -> str:
    match = re.search(rf'<(?:div|fieldset) class="[^"]*" data-preset-field="{name}"( hidden)?>', page)
    assert match, name
    return match.group(0)


def visible(page: str, name: str) -> bool:
    return " hidden>" not in wrapper(page, name)


def test_it_shows_the_token_preset_what_it_uses(staff_client: Client) -> None:
    page = staff_client.get("/endpoints/new/").content.decode()
    assert visible(page, "token_header")
    assert visible(page, "secret")
    assert not visible(page, "hmac")
    assert "Your own token (optional)" in page
    assert "Leave empty to have one generated" in page
    assert "keep the current one" not in page  # there is no current one on a create form
    assert "from the provider" not in page
    # The limits, storage and answer wait under "Advanced", closed.
    advanced = page.split('<details class="advanced">')[1].split("</details>")[0]
    for name in ("rate_limit", "allowed_methods", "max_body_bytes", "retention_days", "response_body", "enabled"):
        assert f'name="{name}"' in advanced, name
    assert 'name="name"' not in advanced
    assert 'name="auth"' not in advanced


def test_it_switches_the_fields_for_stripe_without_a_script(staff_client: Client) -> None:
    typed = {**NEW_ENDPOINT, "name": "payments", "auth": "stripe", "secret": "whsec_typed", "_preset": "1"}
    response = csrf_post(staff_client, "/endpoints/new/", typed)
    page = response.content.decode()
    assert response.status_code == 200
    assert not Endpoint.objects.exists()
    assert not visible(page, "token_header")  # Stripe signs; no token header
    assert visible(page, "secret")
    assert "Signing secret from Stripe" in page
    assert 'value="payments"' in page  # what was typed stays
    assert "whsec_typed" not in page  # but a secret is never echoed
    assert "error-summary" not in page  # nothing was submitted yet
    assert '<option value="stripe" selected' in page


def test_it_tells_the_page_what_each_preset_uses(staff_client: Client) -> None:
    page = staff_client.get("/endpoints/new/").content.decode()
    assert re.search(
        r'<option value="stripe" data-fields="secret" data-secret-label="Signing secret from Stripe"', page
    )
    assert re.search(r'<option value="token" selected data-fields="secret token_header"', page)
    assert re.search(r'<option value="basic" data-fields=""', page)
    assert re.search(r'<option value="hmac" data-fields="secret hmac"', page)


def test_it_says_keep_the_current_secret_only_when_editing(staff_client: Client) -> None:
    endpoint, _ = make_endpoint(auth="stripe", secret="whsec_the_first_secret")
    page = staff_client.get(f"/endpoints/{endpoint.pk}/edit/").content.decode()
    assert "New signing secret from Stripe (optional)" in page
    assert "Leave empty to keep the current one" in page
    assert not visible(page, "token_header")


def test_it_summarises_errors_and_marks_the_bad_fields(staff_client: Client) -> None:
    bad = {**NEW_ENDPOINT, "name": "", "rate_limit": "lots"}
    page = csrf_post(staff_client, "/endpoints/new/", bad).content.decode()
    summary = page.split('class="error-summary"')[1].split("</div>")[0]
    assert '<a href="#id_name">Name: This field is required.</a>' in summary
    assert '<a href="#id_rate_limit">Rate limit: Enter a rate such as 120/m' in summary
    assert summary.index("#id_name") < summary.index("#id_rate_limit")  # in the page's order

    rate = re.search(r"<input[^>]*id=\"id_rate_limit\"[^>]*>", page)
    assert rate
    assert 'aria-invalid="true"' in rate.group(0)
    described = re.search(r'aria-describedby="([^"]+)"', rate.group(0))
    assert described
    for target in described.group(1).split():
        assert f'id="{target}"' in page, target  # every reference resolves
    assert "id_rate_limit_error" in described.group(1)
    # The cursor lands in the first bad field (no script needed), and the bad field hidden
    # under Advanced is shown.
    assert re.findall(r"<(?:input|select|textarea)[^>]*autofocus[^>]*>", page) == [
        re.search(r'<input[^>]*id="id_name"[^>]*>', page).group(0)  # type: ignore[union-attr]
    ]
    assert '<details class="advanced" open>' in page
    assert not Endpoint.objects.exists()


def test_it_never_hides_an_error_behind_another_preset(staff_client: Client) -> None:
    bad = {**NEW_ENDPOINT, "auth": "stripe", "token_header": "X Bad Header", "secret": "whsec_fine_secret"}
    page = csrf_post(staff_client, "/endpoints/new/", bad).content.decode()
    assert visible(page, "token_header")
    assert "Enter an HTTP header name" in page


def test_it_marks_errors_on_the_rotate_and_destination_forms_too(staff_client: Client) -> None:
    endpoint, _ = make_endpoint(auth="stripe", secret="whsec_the_first_secret")
    page = csrf_post(staff_client, f"/endpoints/{endpoint.pk}/rotate/", {"grace_hours": "1"}).content.decode()
    assert '<a href="#id_secret">' in page
    assert re.search(r'<input[^>]*autofocus[^>]*id="id_secret"', page)
    assert 'id="id_secret_error"' in page
    page = csrf_post(
        staff_client, f"/endpoints/{endpoint.pk}/destinations/new/", {"url": "nope", "timeout_seconds": "5"}
    ).content.decode()
    assert '<a href="#id_url">' in page
    assert re.search(r'<input[^>]*autofocus[^>]*id="id_url"', page)
