from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import caches
from django.test import Client
from django.utils import timezone

from inbox.models import Message
from tests.conftest import csrf_post, make_endpoint, make_message

pytestmark = pytest.mark.django_db

PAGES = ["/", "/endpoints/", "/endpoints/new/"]


def row_ids(response) -> list[int]:  # type: ignore[no-untyped-def]
    """Message ids in the order the list shows them."""
    return [int(pk) for pk in re.findall(r'href="/messages/(\d+)/', response.content.decode())]


# --- Access ---------------------------------------------------------------------------------
@pytest.mark.parametrize("url", PAGES)
def test_it_sends_anonymous_visitors_to_the_login_page(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", PAGES)
def test_it_forbids_signed_in_users_who_are_not_staff(client: Client, outsider: User, url: str) -> None:
    client.force_login(outsider)
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_it_shows_staff_the_dashboard(staff_client: Client, url: str) -> None:
    assert staff_client.get(url).status_code == 200


def test_it_forbids_outsiders_a_message_and_its_raw_body(client: Client, outsider: User) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    client.force_login(outsider)
    assert client.get(f"/messages/{message.pk}/").status_code == 403
    assert client.get(f"/messages/{message.pk}/raw/").status_code == 403


def test_it_logs_staff_in_and_lands_on_the_list(staff: User) -> None:
    client = Client(enforce_csrf_checks=True)
    login_page = client.get("/accounts/login/")
    token = login_page.cookies["csrftoken"].value
    response = client.post(
        "/accounts/login/",
        {"username": "staff", "password": "correct horse battery", "csrfmiddlewaretoken": token},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/"
    assert b"<h1>Messages</h1>" in response.content


def test_it_rate_limits_login_attempts() -> None:
    client = Client()
    statuses = [
        client.post("/accounts/login/", {"username": "staff", "password": f"guess {n}"}).status_code for n in range(11)
    ]
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429


def test_it_sends_security_headers(staff_client: Client) -> None:
    response = staff_client.get("/")
    assert response["X-Frame-Options"] == "DENY"
    assert "script-src 'self' 'nonce-" in response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


# --- The list ------------------------------------------------------------------------------
def test_it_lists_newest_first_fifty_a_page_with_keyset_paging(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    now = timezone.now()
    messages = [make_message(endpoint, received_at=now - timedelta(minutes=n)) for n in range(120)]

    first = staff_client.get("/")
    assert row_ids(first) == [m.pk for m in messages[:50]]
    older = re.search(r'href="\?before=([\d_]+)"', first.content.decode())
    assert older is not None

    second = staff_client.get(f"/?before={older.group(1)}")
    assert row_ids(second) == [m.pk for m in messages[50:100]]
    newer = re.search(r'href="\?after=([\d_]+)"', second.content.decode())
    assert newer is not None
    assert row_ids(staff_client.get(f"/?after={newer.group(1)}")) == [m.pk for m in messages[:50]]

    third_cursor = re.search(r'href="\?before=([\d_]+)"', second.content.decode())
    assert third_cursor is not None
    third = staff_client.get(f"/?before={third_cursor.group(1)}")
    assert row_ids(third) == [m.pk for m in messages[100:]]
    assert "before=" not in third.content.decode()


def test_it_shows_time_endpoint_event_size_and_preview(staff_client: Client) -> None:
    endpoint, _ = make_endpoint("billing")
    make_message(endpoint, body=b'{"type": "invoice.paid", "amount": 1234}')
    page = staff_client.get("/").content.decode()
    assert "billing" in page
    assert "invoice.paid" in page
    assert "40\xa0bytes" in page
    assert "&quot;amount&quot;: 1234" in page
    assert "now</time>" in page or "ago</time>" in page


@pytest.mark.parametrize("count", [10, 100])
def test_it_renders_the_list_in_a_fixed_number_of_queries(
    staff_client: Client,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
    count: int,
) -> None:
    endpoints = [make_endpoint(f"endpoint-{n}")[0] for n in range(5)]
    for n in range(count):
        make_message(endpoints[n % 5])
    # session, user, the page of messages (with endpoints joined), the endpoint filter's
    # choices, the user's and their groups' permissions (for the bulk buttons), and the
    # menu's count of open alerts
    with django_assert_num_queries(7):
        response = staff_client.get("/")
    assert len(row_ids(response)) == min(count, 50)


def test_it_filters_by_each_field(staff_client: Client) -> None:
    shop, _ = make_endpoint("shop")
    crm, _ = make_endpoint("crm")
    now = timezone.now()
    old = make_message(shop, body=b'{"type": "order.created", "sku": "red-shoe"}', received_at=now - timedelta(days=3))
    form = make_message(
        crm,
        body=b"name=Ada&plan=pro",
        content_type="application/x-www-form-urlencoded",
        method="PUT",
        verification="unverified",
    )
    gh = make_message(shop, body=b'{"action": "opened"}', event_type="pull_request")

    cases = {
        f"endpoint={crm.pk}": {form.pk},
        "event_type=order.created": {old.pk},
        "method=PUT": {form.pk},
        "content_type=application/x-www-form": {form.pk},
        "verification=unverified": {form.pk},
        "q=red-shoe": {old.pk},
        "q=PLAN=PRO": {form.pk},
        f"received_before={(now - timedelta(days=1)).strftime('%Y-%m-%dT%H:%M')}": {old.pk},
        f"received_after={(now - timedelta(days=1)).strftime('%Y-%m-%dT%H:%M')}": {form.pk, gh.pk},
        f"endpoint={shop.pk}&event_type=pull_request": {gh.pk},
    }
    for query, expected in cases.items():
        assert set(row_ids(staff_client.get(f"/?{query}"))) == expected, query


def test_it_keeps_the_filter_in_the_paging_and_message_links(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    for _ in range(51):
        make_message(endpoint)
    page = staff_client.get(f"/?endpoint={endpoint.pk}&q=order").content.decode()
    assert f'href="?endpoint={endpoint.pk}&amp;q=order&amp;before=' in page
    assert f"/?endpoint={endpoint.pk}&amp;q=order" in page or f"?endpoint={endpoint.pk}&amp;q=order" in page
    assert re.search(rf'href="/messages/\d+/\?endpoint={endpoint.pk}&amp;q=order"', page)


@pytest.mark.parametrize(
    "query",
    [
        "endpoint=999999",
        "endpoint=abc",
        "method=TRACE",
        "received_after=yesterday",
        "received_before=2026-13-45T99:99",
        "verification=maybe",
    ],
)
def test_it_shows_invalid_filters_as_errors_not_as_every_message(staff_client: Client, query: str) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint)
    response = staff_client.get(f"/?{query}")
    assert response.status_code == 200
    assert b"Some filters are not valid" in response.content
    assert row_ids(response) == []


@pytest.mark.parametrize("cursor", ["garbage", "1_", "_5", "99999999999999999999999_1"])
def test_it_ignores_a_mangled_cursor(staff_client: Client, cursor: str) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    response = staff_client.get(f"/?before={cursor}")
    assert response.status_code == 200
    assert row_ids(response) == [message.pk]


def test_it_renders_only_the_results_for_htmx_requests(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint)
    response = staff_client.get("/?q=order", headers={"HX-Request": "true"})
    content = response.content.decode()
    assert content.lstrip().startswith('<section id="results">')
    assert "<html" not in content


# --- The payload viewer ------------------------------------------------------------------------
XSS = b'{"type": "xss", "html": "<img src=x onerror=alert(1)>", "end": "</script><script>alert(2)</script>"}'


def test_it_shows_a_payload_as_text_never_as_markup(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint, body=XSS, headers={"X-Evil": "<script>alert(3)</script>"})
    for url in ["/", f"/messages/{message.pk}/"]:
        page = staff_client.get(url).content.decode()
        assert "<img src=x" not in page
        assert "<script>alert" not in page
        assert "</script><script>" not in page
    detail = staff_client.get(f"/messages/{message.pk}/").content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in detail


def test_it_highlights_json_with_headers_query_and_metadata(staff_client: Client) -> None:
    endpoint, _ = make_endpoint("shop")
    message = make_message(
        endpoint,
        body=b'{"type":"order.created","total":42}',
        headers={"Content-Type": "application/json", "X-Webhook-Token": "[redacted]"},
        query_string="attempt=2",
        remote_addr="203.0.113.9",
    )
    page = staff_client.get(f"/messages/{message.pk}/").content.decode()
    assert 'class="highlight"' in page
    assert '<span class="nt">"total"</span>' in page
    assert "X-Webhook-Token" in page
    assert "[redacted]" in page
    assert "attempt" in page
    assert "203.0.113.9" in page


def test_it_shows_form_bodies_as_fields_and_binary_as_a_hex_dump(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    form = make_message(endpoint, body=b"name=Ada+L&plan=pro", content_type="application/x-www-form-urlencoded")
    binary = make_message(endpoint, body=b"\x89PNG\r\n\x1a\n\x00\x00", content_type="image/png")
    form_page = staff_client.get(f"/messages/{form.pk}/").content.decode()
    assert '<th><bdi>name</bdi></th><td><code dir="auto">Ada L</code>' in form_page
    binary_page = staff_client.get(f"/messages/{binary.pk}/").content.decode()
    assert "89 50 4e 47 0d 0a 1a 0a 00 00" in binary_page


def test_it_downloads_the_raw_body_as_an_attachment(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint, body=b"<html><script>alert(1)</script></html>", content_type="text/html")
    response = staff_client.get(f"/messages/{message.pk}/raw/")
    assert response.content == b"<html><script>alert(1)</script></html>"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == f'attachment; filename="message-{message.pk}.bin"'


def test_it_links_to_the_previous_and_next_message_within_the_filter(staff_client: Client) -> None:
    shop, _ = make_endpoint("shop")
    crm, _ = make_endpoint("crm")
    now = timezone.now()
    oldest = make_message(shop, received_at=now - timedelta(minutes=3))
    make_message(crm, received_at=now - timedelta(minutes=2))
    middle = make_message(shop, received_at=now - timedelta(minutes=1))
    make_message(crm, received_at=now)

    page = staff_client.get(f"/messages/{middle.pk}/?endpoint={shop.pk}").content.decode()
    assert f'href="/messages/{oldest.pk}/?endpoint={shop.pk}" rel="next"' in page
    assert 'rel="prev"' not in page


def test_it_deletes_a_message_and_returns_to_the_filtered_list(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    response = csrf_post(staff_client, f"/messages/{message.pk}/delete/?endpoint={endpoint.pk}", {"confirmed": "yes"})
    assert response.status_code == 302
    assert response["Location"] == f"/?endpoint={endpoint.pk}"
    assert not Message.objects.filter(pk=message.pk).exists()


def test_it_refuses_a_delete_without_a_csrf_token(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    assert staff_client.post(f"/messages/{message.pk}/delete/").status_code == 403
    assert Message.objects.filter(pk=message.pk).exists()


def test_it_refuses_sign_in_rather_than_erroring_when_the_rate_limit_cache_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("cache down")

    monkeypatch.setattr(caches[settings.RATELIMIT_USE_CACHE], "add", down)
    client = Client()
    assert client.get("/accounts/login/").status_code == 200  # only POSTs are counted
    response = client.post("/accounts/login/", {"username": "staff", "password": "guess"})
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
