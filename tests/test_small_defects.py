"""Issue 13, item 14: the smaller defects a daily user met, one test each."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from inbox.models import RejectedAttempt
from tests.conftest import csrf_post, make_endpoint, make_message

pytestmark = pytest.mark.django_db


# --- Compare with three ticked ------------------------------------------------------------------
def test_it_refuses_to_compare_three_messages_instead_of_silently_comparing_two(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    picked = [make_message(endpoint) for _ in range(3)]

    response = staff_client.get("/messages/compare/", {"ids": [m.pk for m in picked]}, follow=True)
    page = response.content.decode()
    assert "Pick exactly two messages to compare; 3 are ticked." in page
    assert "diff-" not in page, "no comparison is shown"

    response = csrf_post(staff_client, "/messages/bulk/", {"ids": [m.pk for m in picked], "action": "compare"})
    assert "/compare/" not in response["Location"]
    assert (
        "Pick exactly two messages to compare; 3 are ticked." in staff_client.get(response["Location"]).content.decode()
    )


def test_it_still_compares_exactly_two_and_counts_one_twice_as_one(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    older, newer = make_message(endpoint), make_message(endpoint)
    assert staff_client.get("/messages/compare/", {"ids": [older.pk, newer.pk]}).status_code == 200
    page = staff_client.get("/messages/compare/", {"ids": [older.pk, older.pk]}, follow=True).content.decode()
    assert "Pick exactly two messages to compare; 1 is ticked." in page


# --- The hourly chart in half-hour time zones -----------------------------------------------------
@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Asia/Kathmandu", "Australia/Adelaide", "UTC", "America/St_Johns"])
def test_it_charts_the_counts_in_a_half_hour_time_zone(staff_client: Client, settings: Any, zone: str) -> None:
    settings.TIME_ZONE = zone
    endpoint, _ = make_endpoint()
    now = timezone.now()
    for _ in range(3):
        make_message(endpoint, received_at=now - timedelta(seconds=5))
    make_message(endpoint, received_at=now - timedelta(hours=5))

    page = staff_client.get(endpoint.get_absolute_url()).content.decode()
    assert "Messages per hour, last day: 4 in all" in page
    assert "· 3 messages</title>" in page
    assert "· 1 message</title>" in page
    local_hour = timezone.localtime(now).strftime("%H:00")
    assert f"{local_hour} · 3 messages</title>" in page, "the bar is labelled with the hour of the zone"


# --- "Rejected" counts what the rejected log lists ------------------------------------------------
def test_it_lists_a_413_in_the_rejected_log_it_counts(staff_client: Client, provider: Client) -> None:
    endpoint, token = make_endpoint(max_body_bytes=1024)
    make_message(endpoint)  # past the first delivery, so the page shows its counts
    headers = {"X-Webhook-Token": token}
    assert (
        provider.post(f"/hooks/{endpoint.slug}/", b"x" * 2000, "application/json", headers=headers).status_code == 413
    )
    assert provider.post(f"/hooks/{endpoint.slug}/", b"{}", "application/json").status_code in (401, 403)

    attempts = list(RejectedAttempt.objects.filter(endpoint=endpoint).order_by("at", "id"))
    assert [a.status for a in attempts] == [413, attempts[1].status]
    assert attempts[0].body_size == 2000
    assert "limit of 1.0\xa0KB" in attempts[0].reason
    page = staff_client.get(endpoint.get_absolute_url()).content.decode()
    assert "<dt>Rejected</dt><dd>2</dd>" in page
    assert '<span class="badge">2</span>' in page
    assert "<td>413</td>" in page


# --- A Meta endpoint's Allow header ---------------------------------------------------------------
def test_it_names_the_allowed_methods_when_a_meta_endpoint_refuses_a_plain_get(provider: Client) -> None:
    endpoint, _ = make_endpoint("meta", auth="meta", secret="app-secret", allowed_methods="POST,PUT")
    response = provider.get(f"/hooks/{endpoint.slug}/", {"id": "42"})
    assert response.status_code == 405
    assert response["Allow"] == "POST, PUT, HEAD, OPTIONS"
    assert "use POST, PUT" in response.content.decode()


# --- The staff check comes before the method check ------------------------------------------------
def _staff_urls() -> list[str]:
    """Every dashboard URL, with 1 for each id."""
    urls = []
    resolver = get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver) and getattr(pattern, "namespace", None) == "inbox":
            for inner in pattern.url_patterns:
                assert isinstance(inner, URLPattern)
                kwargs = {name: 1 for name in inner.pattern.converters}
                urls.append(reverse(f"inbox:{inner.name}", kwargs=kwargs))
    return urls


STAFF_URLS = _staff_urls()


def test_it_finds_the_post_only_urls() -> None:
    assert "/messages/bulk/" in STAFF_URLS
    assert "/endpoints/1/delete/" in STAFF_URLS


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
@pytest.mark.parametrize("url", STAFF_URLS)
def test_it_sends_anonymous_visitors_to_the_login_page_whatever_the_method(url: str, method: str) -> None:
    response = getattr(Client(), method)(url)
    assert response.status_code == 302, f"{method.upper()} {url}"
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("method", ["get", "post", "put"])
@pytest.mark.parametrize("url", STAFF_URLS)
def test_it_refuses_signed_in_non_staff_whatever_the_method(outsider: User, url: str, method: str) -> None:
    client = Client()
    client.force_login(outsider)
    assert getattr(client, method)(url).status_code == 403, f"{method.upper()} {url}"
