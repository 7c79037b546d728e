"""A whole-filter action acts on the filter that was shown and confirmed, nothing wider; a
filter value that is not one is refused, never read as "any"; POST-only pages a person can
reload answer something useful."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.test import Client

from inbox.models import AuditEntry, BulkJob, Destination, Message
from tests.conftest import answer_confirmation, csrf_post, make_endpoint, make_message, run_worker

pytestmark = pytest.mark.django_db


def text_of(response: object) -> str:
    html = response.content.decode()  # type: ignore[attr-defined]
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


@pytest.fixture
def two_endpoints(db: None) -> list[Message]:
    shop, _ = make_endpoint("shop")
    other, _ = make_endpoint("other")
    return [make_message(shop), make_message(shop, read=True), make_message(other)]


def test_it_refuses_a_filter_sent_in_the_form_body(staff_client: Client, two_endpoints: list[Message]) -> None:
    # The tester's request: the body's endpoint=abc was ignored and every message deleted.
    response = csrf_post(
        staff_client, "/messages/bulk/", {"action": "delete_all", "confirmed": "yes", "endpoint": "abc"}
    )
    assert response.status_code == 302
    run_worker()
    assert Message.objects.count() == 3
    assert not BulkJob.objects.exists()
    assert not AuditEntry.objects.exists()
    assert "Nothing was done: a filter (endpoint) was sent in the form" in text_of(
        staff_client.get(response["Location"])
    )


def test_it_asks_again_without_the_confirmation_of_its_own_page(
    staff_client: Client, two_endpoints: list[Message]
) -> None:
    # confirmed=yes alone (a crafted form, another page's button) is not an answer.
    response = csrf_post(staff_client, "/messages/bulk/", {"action": "delete_all", "confirmed": "yes"})
    assert response.status_code == 200
    assert "Delete all 3 messages in the inbox?" in text_of(response)
    assert Message.objects.count() == 3
    assert not BulkJob.objects.exists()


def test_a_confirmation_holds_for_the_filter_it_showed_only(staff_client: Client, two_endpoints: list[Message]) -> None:
    shop = two_endpoints[0].endpoint
    asked = csrf_post(staff_client, f"/messages/bulk/?endpoint={shop.pk}", {"action": "delete_all"})
    assert "Delete all 2 messages matching this filter?" in text_of(asked)
    token = re.search(r'name="confirmation" value="([^"]+)"', asked.content.decode())
    assert token is not None
    # The same answer posted to the unfiltered URL: asked again, nothing deleted.
    form = {"action": "delete_all", "confirmed": "yes", "confirmation": unescape(token.group(1))}
    again = csrf_post(staff_client, "/messages/bulk/", form)
    assert "Delete all 3 messages in the inbox?" in text_of(again)
    # Nor for another action.
    replay = csrf_post(staff_client, f"/messages/bulk/?endpoint={shop.pk}", {**form, "action": "replay_all"})
    assert "Replay all 2 messages" in text_of(replay)
    assert not BulkJob.objects.exists()
    # Its own page's button does what it said, and the audit entry keeps the count shown.
    done = answer_confirmation(staff_client, f"/messages/bulk/?endpoint={shop.pk}", {"action": "delete_all"})
    assert done.status_code == 302
    run_worker()
    assert list(Message.objects.values_list("endpoint__name", flat=True)) == ["other"]
    assert AuditEntry.objects.get().details["confirmed_count"] == 2


@pytest.mark.parametrize("value", ["maybe", "yes", "1", "0", "TRUE"])
def test_it_refuses_a_read_value_that_is_not_true_or_false(
    staff_client: Client, two_endpoints: list[Message], value: str
) -> None:
    listed = staff_client.get("/", {"read": value})
    assert "Select a valid choice" in text_of(listed)
    assert 'class="messages"' not in listed.content.decode()
    assert staff_client.get("/messages/export.ndjson", {"read": value}).status_code == 400
    assert staff_client.get("/messages/new/", {"read": value, "since": "0_0"}).status_code == 400
    bulk = csrf_post(staff_client, f"/messages/bulk/?read={value}", {"action": "mark_read_all"})
    assert bulk.status_code == 302
    assert not BulkJob.objects.exists()
    assert "The filter is not valid; nothing was marked read." in text_of(staff_client.get(bulk["Location"]))


def test_read_true_and_false_filter(staff_client: Client, two_endpoints: list[Message]) -> None:
    unread = staff_client.get("/messages/export.ndjson", {"read": "false"})
    read = staff_client.get("/messages/export.ndjson", {"read": "true"})
    assert len(b"".join(unread.streaming_content).splitlines()) == 2
    assert len(b"".join(read.streaming_content).splitlines()) == 1


def test_reloading_a_bulk_confirmation_goes_back_to_the_list(
    staff_client: Client, two_endpoints: list[Message]
) -> None:
    shop = two_endpoints[0].endpoint
    response = staff_client.get(f"/messages/bulk/?endpoint={shop.pk}")
    assert (response.status_code, response["Location"]) == (302, f"/?endpoint={shop.pk}")
    assert "Nothing was done" in text_of(staff_client.get(response["Location"]))
    assert Message.objects.count() == 3


def test_reloading_other_confirmations_goes_back_to_their_page(
    staff_client: Client, two_endpoints: list[Message]
) -> None:
    message = two_endpoints[0]
    destination = Destination.objects.create(endpoint=message.endpoint, url="https://example.com/hook")
    deleted = staff_client.get(f"/messages/{message.pk}/delete/?read=false")
    assert (deleted.status_code, deleted["Location"]) == (302, f"/messages/{message.pk}/?read=false")
    replayed = staff_client.get(f"/messages/{message.pk}/replay/")
    assert replayed["Location"] == f"/messages/{message.pk}/"
    gone = staff_client.get(f"/destinations/{destination.pk}/delete/")
    assert gone["Location"] == f"/destinations/{destination.pk}/edit/"
    assert staff_client.get("/endpoints/quick/")["Location"] == "/endpoints/"
    assert (
        staff_client.get(f"/endpoints/{message.endpoint_id}/test/")["Location"] == f"/endpoints/{message.endpoint_id}/"
    )
    assert "Nothing was done" in text_of(staff_client.get(gone["Location"]))
    assert Message.objects.count() == 3
    assert Destination.objects.exists()
