"""View-only staff and managers, the audit log, and bulk actions on the list."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from inbox.models import AuditEntry, BulkJob, Destination, Endpoint, Message
from tests.conftest import answer_confirmation, csrf_post, make_endpoint, make_message, run_worker
from tests.test_endpoints import NEW_ENDPOINT

pytestmark = pytest.mark.django_db


def test_it_lets_a_viewer_look_at_everything(viewer_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    for url in ["/", message.get_absolute_url(), "/endpoints/", endpoint.get_absolute_url(), "/audit/"]:
        assert viewer_client.get(url).status_code == 200, url
    page = viewer_client.get(endpoint.get_absolute_url()).content.decode()
    assert endpoint.slug not in page, "the receiver URL is a credential"
    assert endpoint.slug not in viewer_client.get(message.get_absolute_url()).content.decode()
    assert "Rotate" not in page
    assert f"/endpoints/{endpoint.pk}/edit/" not in page
    assert "Add destination" not in page
    assert "New endpoint" not in viewer_client.get("/endpoints/").content.decode()
    message_page = viewer_client.get(message.get_absolute_url()).content.decode()
    assert ">Replay<" not in message_page
    assert ">Delete<" not in message_page


def test_it_refuses_every_change_to_a_viewer(viewer_client: Client) -> None:
    endpoint, _ = make_endpoint()
    destination = Destination.objects.create(endpoint=endpoint, url="https://example.com/")
    message = make_message(endpoint)
    attempts = [
        ("/endpoints/new/", NEW_ENDPOINT),
        (f"/endpoints/{endpoint.pk}/edit/", {**NEW_ENDPOINT, "name": "renamed"}),
        (f"/endpoints/{endpoint.pk}/rotate/", {"grace_hours": "0"}),
        (f"/endpoints/{endpoint.pk}/delete/", {}),
        (f"/endpoints/{endpoint.pk}/destinations/new/", {"url": "https://example.org/", "timeout_seconds": "5"}),
        (f"/destinations/{destination.pk}/delete/", {}),
        (f"/messages/{message.pk}/replay/", {}),
        (f"/messages/{message.pk}/delete/", {}),
        ("/messages/bulk/", {"ids": [message.pk], "action": "delete"}),
        ("/messages/bulk/", {"action": "replay_all"}),
        ("/messages/bulk/", {"ids": [message.pk], "action": "mark_read"}),
    ]
    for url, data in attempts:
        assert csrf_post(viewer_client, url, data).status_code == 403, url
    assert Endpoint.objects.get().name == "shop"
    assert Message.objects.get().replays == 0
    assert Destination.objects.exists()
    assert not AuditEntry.objects.exists()


def test_it_records_who_changed_what_in_the_audit_log(staff_client: Client) -> None:
    created = csrf_post(staff_client, "/endpoints/new/", {**NEW_ENDPOINT, "secret": ""}, follow=True)
    endpoint = Endpoint.objects.get()
    token = created.content.decode().split('id="shown-token" class="mono token" value="')[1].split('"')[0]
    csrf_post(staff_client, f"/endpoints/{endpoint.pk}/edit/", {**NEW_ENDPOINT, "rate_limit": "60/m"})
    csrf_post(staff_client, f"/endpoints/{endpoint.pk}/rotate/", {"grace_hours": "2"})
    csrf_post(
        staff_client,
        f"/endpoints/{endpoint.pk}/destinations/new/",
        {"url": "https://a.example/x?key=1", "timeout_seconds": "5", "forward_headers": "*"},
    )

    entries = list(AuditEntry.objects.order_by("pk"))
    assert [e.action for e in entries] == [
        "endpoint.created",
        "endpoint.changed",
        "endpoint.rotated",
        "destination.added",
    ]
    assert {e.username for e in entries} == {"staff"}
    assert entries[1].details == {"changed": ["rate_limit"], "secret_replaced": False}
    assert entries[2].details == {"grace_hours": 2, "pasted": False}

    page = staff_client.get("/audit/").content.decode()
    assert "Secret rotated" in page
    assert "grace hours</span> <bdi>2</bdi>" in page
    assert "https://a.example/x?…" in page
    assert token not in page
    assert "key=1" not in page
    assert staff_client.get(f"/audit/?endpoint={endpoint.pk}").status_code == 200


def test_it_keeps_the_audit_entry_when_the_endpoint_goes(staff_client: Client) -> None:
    endpoint, _ = make_endpoint("doomed")
    csrf_post(staff_client, f"/endpoints/{endpoint.pk}/delete/")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target, entry.endpoint) == ("endpoint.deleted", "doomed", None)
    assert "doomed" in staff_client.get("/audit/").content.decode()


def test_it_marks_a_message_read_when_opened_and_in_bulk(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    first, second = make_message(endpoint), make_message(endpoint)
    assert staff_client.get("/").content.decode().count('class="row unread"') == 2

    staff_client.get(first.get_absolute_url())
    assert Message.objects.get(pk=first.pk).read
    assert list(Message.objects.filter(read=False)) == [second]
    assert staff_client.get("/?read=false").content.decode().count('name="ids"') == 1

    response = csrf_post(staff_client, "/messages/bulk/", {"ids": [first.pk, second.pk], "action": "mark_unread"})
    assert response.status_code == 302
    assert not Message.objects.filter(read=True).exists()
    assert AuditEntry.objects.get().details == {"read": False}


def test_it_deletes_a_selection_at_once_and_a_filter_in_the_background(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    other, _ = make_endpoint("other")
    chosen = make_message(endpoint)
    keep = make_message(other)
    rest = [make_message(endpoint) for _ in range(3)]

    csrf_post(staff_client, "/messages/bulk/", {"ids": [chosen.pk], "action": "delete", "confirmed": "yes"})
    assert not Message.objects.filter(pk=chosen.pk).exists()

    response = answer_confirmation(staff_client, f"/messages/bulk/?endpoint={endpoint.pk}", {"action": "delete_all"})
    job = BulkJob.objects.get()
    assert response["Location"] == job.get_absolute_url()
    run_worker()
    job.refresh_from_db()
    assert (job.action, job.status, job.done) == ("delete", "done", 3)
    assert list(Message.objects.all()) == [keep]
    assert not Message.objects.filter(pk__in=[m.pk for m in rest]).exists()
    assert [e.action for e in AuditEntry.objects.order_by("pk")] == ["messages.deleted", "messages.deleted"]


def test_it_compares_two_messages(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    older = make_message(endpoint, b'{"type": "order.paid", "total": 5, "note": "<script>alert(1)</script>"}')
    newer = make_message(endpoint, b'{"type": "order.paid", "total": 7, "note": "<script>alert(1)</script>"}')
    response = csrf_post(staff_client, "/messages/bulk/", {"ids": [newer.pk, older.pk], "action": "compare"})
    assert response["Location"] == f"/messages/compare/?ids={newer.pk}&ids={older.pk}"
    assert "csrf" not in response["Location"]
    page = staff_client.get(response["Location"]).content.decode()
    assert '<span class="diff-removed">\u2212   &quot;total&quot;: 5,</span>' in page
    assert '<span class="diff-added">+   &quot;total&quot;: 7,</span>' in page
    assert "<script>alert(1)</script>" not in page

    response = staff_client.get("/messages/compare/", {"ids": [older.pk]})
    assert response.status_code == 302


def test_it_counts_queries_of_the_list_for_a_viewer_too(viewer_client: Client, django_assert_num_queries: Any) -> None:
    endpoint, _ = make_endpoint()
    for _ in range(60):
        make_message(endpoint)
    with django_assert_num_queries(7):  # as for staff (tests/test_dashboard.py)
        viewer_client.get("/")


@pytest.mark.parametrize(
    "query",
    [
        "before=" + "9" * 5000,
        "before=99999999999999999999",
        "endpoint=\u00b2",
        "before=-1",
        "endpoint=abc",
        "endpoint=1e999",
    ],
)
def test_it_refuses_audit_parameters_that_are_not_ids(staff_client: Client, query: str) -> None:
    # Refused, not ignored: ignoring `endpoint=abc` showed the whole log as if it were one endpoint's.
    response = staff_client.get(f"/audit/?{query}")
    assert response.status_code == 400
    assert "nothing is shown" in response.content.decode()
