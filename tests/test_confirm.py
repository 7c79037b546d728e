"""Destructive actions ask first, naming what and how many, and do nothing unasked; bulk
jobs and their audit entries say what they did and to which filter, in words."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.test import Client

from inbox.dashboard.views import actions as processing
from inbox.models import AuditEntry, BulkJob, Destination, Message
from tests.conftest import answer_confirmation, csrf_post, make_endpoint, make_message, run_worker

pytestmark = pytest.mark.django_db


def text_of(response: object) -> str:
    """The page as a person reads it: tags dropped, entities decoded, spaces collapsed."""
    html = response.content.decode()  # type: ignore[attr-defined]
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def hidden_fields(response: object) -> list[tuple[str, str]]:
    html = response.content.decode()  # type: ignore[attr-defined]
    return re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html)


def test_it_asks_on_a_page_of_its_own_before_deleting_every_message(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    other, _ = make_endpoint("other")
    for _ in range(2):
        make_message(endpoint)
    make_message(other)

    # The list's "Delete…" under "All matching", no filter, no JavaScript: a question, not a job.
    response = csrf_post(staff_client, "/messages/bulk/", {"action": "delete_all"})
    assert response.status_code == 200
    page = text_of(response)
    assert "Delete all 3 messages in the inbox?" in page
    assert "No filter is applied: this is every message of every endpoint." in page
    assert "This cannot be undone." in page
    assert Message.objects.count() == 3
    assert not BulkJob.objects.exists()
    assert not AuditEntry.objects.exists()
    assert 'href="/">Cancel</a>' in response.content.decode()

    # Its button posts the same action, confirmed.
    assert ("confirmed", "yes") in hidden_fields(response)
    response = csrf_post(staff_client, "/messages/bulk/", dict(hidden_fields(response)))
    job = BulkJob.objects.get()
    assert response["Location"] == job.get_absolute_url()
    run_worker()
    assert not Message.objects.exists()


def test_it_deletes_only_what_existed_when_it_asked(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    asked_about = [make_message(endpoint) for _ in range(2)]
    response = csrf_post(staff_client, f"/messages/bulk/?endpoint={endpoint.pk}", {"action": "delete_all"})
    assert "Delete all 2 messages matching" in text_of(response)
    arrived_while_reading = make_message(endpoint)
    csrf_post(staff_client, f"/messages/bulk/?endpoint={endpoint.pk}", dict(hidden_fields(response)))
    run_worker()
    assert not Message.objects.filter(pk__in=[m.pk for m in asked_about]).exists()
    assert list(Message.objects.values_list("pk", flat=True)) == [arrived_while_reading.pk]
    assert BulkJob.objects.get().total == 2


def test_it_names_the_filter_and_how_many_before_a_replay_of_a_filter(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    for _ in range(2):
        make_message(endpoint, b'{"type": "order.paid", "note": "foo"}', status="failed")
    make_message(endpoint, b'{"type": "order.paid", "note": "bar"}', status="failed")
    query = f"endpoint={endpoint.pk}&status=failed&q=foo"

    response = csrf_post(staff_client, f"/messages/bulk/?{query}", {"action": "replay_all"})
    page = text_of(response)
    assert "Replay all 2 messages matching this filter?" in page
    assert "The filter: endpoint “shop”, status failed, search “foo”." in page
    assert f'action="/messages/bulk/?{query.replace("&", "&amp;")}"' in response.content.decode()
    assert not BulkJob.objects.exists()
    assert not Message.objects.filter(replays__gt=0).exists()


def test_it_counts_no_further_than_its_cap(staff_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processing, "CONFIRM_COUNT_CAP", 2)
    endpoint, _ = make_endpoint()
    for _ in range(4):
        make_message(endpoint)
    page = text_of(csrf_post(staff_client, f"/messages/bulk/?endpoint={endpoint.pk}", {"action": "delete_all"}))
    assert "Delete the more than 2 messages matching this filter?" in page
    assert "Counting stopped at 2" in page


def test_it_acts_on_nothing_when_nothing_matches(staff_client: Client) -> None:
    make_endpoint()
    response = csrf_post(staff_client, "/messages/bulk/?event_type=nope", {"action": "delete_all"})
    assert response.status_code == 302
    assert not BulkJob.objects.exists()
    assert "nothing was deleted" in text_of(staff_client.get(response["Location"]))


def test_it_asks_before_deleting_a_selection_without_javascript(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    chosen = [make_message(endpoint), make_message(endpoint)]
    ids = [m.pk for m in chosen]
    response = csrf_post(staff_client, "/messages/bulk/", {"ids": ids, "action": "delete"})
    assert response.status_code == 200
    assert "Delete 2 selected messages?" in text_of(response)
    assert Message.objects.count() == 2
    fields = hidden_fields(response)
    assert [("ids", str(pk)) for pk in ids] == [f for f in fields if f[0] == "ids"]
    csrf_post(staff_client, "/messages/bulk/", {"ids": ids, "action": "delete", "confirmed": "yes"})
    assert not Message.objects.exists()


def test_it_asks_before_deleting_a_message_or_a_destination_without_javascript(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    destination = Destination.objects.create(endpoint=endpoint, url="https://example.com/hook")

    page = text_of(csrf_post(staff_client, f"/messages/{message.pk}/delete/?endpoint={endpoint.pk}"))
    assert f"Delete message #{message.pk}?" in page
    assert "It is the order.created event that “shop” received" in page
    page = text_of(csrf_post(staff_client, f"/destinations/{destination.pk}/delete/"))
    assert "Delete the destination https://example.com/hook of “shop”?" in page
    assert Message.objects.exists()
    assert Destination.objects.exists()
    assert not AuditEntry.objects.exists()


def test_it_names_how_many_messages_go_with_an_endpoint(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    for _ in range(3):
        make_message(endpoint)
    page = text_of(staff_client.get(f"/endpoints/{endpoint.pk}/delete/"))
    assert "Delete endpoint “shop” and its 3 messages?" in page
    empty, _ = make_endpoint("empty")
    assert "Delete endpoint “empty”?" in text_of(staff_client.get(f"/endpoints/{empty.pk}/delete/"))


@pytest.mark.parametrize(
    ("action", "words"),
    [("delete_all", "deleted"), ("mark_read_all", "marked read"), ("replay_all", "replayed")],
)
def test_it_says_what_a_job_did_and_to_which_filter(staff_client: Client, action: str, words: str) -> None:
    endpoint, _ = make_endpoint()
    for _ in range(3):
        make_message(endpoint, status="failed")
    make_message(endpoint, status="processed")
    query = f"endpoint={endpoint.pk}&status=failed"
    if action == "mark_read_all":  # undone as easily: it does not ask
        response = csrf_post(staff_client, f"/messages/bulk/?{query}", {"action": action})
    else:
        response = answer_confirmation(staff_client, f"/messages/bulk/?{query}", {"action": action})
    run_worker()

    page = text_of(staff_client.get(response["Location"]))
    assert f"3 of 3 messages {words} (100%)." in page
    assert "Every message matching: endpoint “shop”, status failed" in page
    if words != "replayed":
        assert "replayed" not in page

    entry = AuditEntry.objects.get()
    assert entry.target == "every message matching endpoint “shop”, status failed"
    audit = text_of(staff_client.get("/audit/"))
    assert "every message matching endpoint “shop”, status failed" in audit
    assert query not in audit


def test_it_says_when_a_job_had_no_filter(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint)
    # An empty filter form submitted as it is: parameters, but nothing that narrows.
    response = csrf_post(staff_client, "/messages/bulk/?q=&endpoint=", {"action": "mark_read_all"})
    assert "Every message in the inbox (no filter)" in text_of(staff_client.get(response["Location"]))
    assert AuditEntry.objects.get().target == "every message (no filter)"
