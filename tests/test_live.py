"""Live updates of the message list."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.conftest import make_endpoint, make_message

pytestmark = pytest.mark.django_db


def poll_url(page: str) -> str:
    match = re.search(r'id="live" class="live" hx-get="([^"]+)"', page)
    assert match, "the first page polls for new messages"
    return match.group(1).replace("&amp;", "&")


def test_it_adds_only_new_messages_that_match_the_filter(staff_client: Client) -> None:
    shop, _ = make_endpoint("shop")
    other, _ = make_endpoint("other")
    first = make_message(shop)
    url = poll_url(staff_client.get(f"/?endpoint={shop.pk}").content.decode())
    assert f"since={first.cursor}" in url

    assert staff_client.get(url, headers={"HX-Request": "true"}).status_code == 204

    make_message(other)
    newer = make_message(shop, b'{"type": "<b>fresh</b>"}')
    response = staff_client.get(url, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert response.status_code == 200
    assert '<tbody hx-swap-oob="afterbegin:#rows">' in page
    assert page.count('name="ids"') == 1
    assert f'value="{newer.pk}"' in page
    assert 'class="row unread new"' in page
    assert "&lt;b&gt;fresh&lt;/b&gt;" in page
    assert f"since={newer.cursor}" in poll_url(page), "the next poll starts after the newest row"


def test_it_reloads_an_empty_list_when_the_first_message_arrives(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    url = poll_url(staff_client.get("/").content.decode())
    assert "empty=1" in url
    make_message(endpoint)
    response = staff_client.get(url, headers={"HX-Request": "true"})
    assert response["HX-Refresh"] == "true"


def test_it_does_not_poll_on_older_pages(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    assert 'id="live"' not in staff_client.get(f"/?before={message.cursor}").content.decode()
