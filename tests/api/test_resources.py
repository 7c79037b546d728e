"""Every resource of /api/v1/, as a program uses it. Run on SQLite by default and on
PostgreSQL with DATABASE_URL (README, Tests)."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from inbox.models import AuditEntry, BulkJob, Destination, Endpoint, JobStatus, Message, RejectedAttempt
from tests.api.conftest import Api
from tests.conftest import make_endpoint, make_message, run_worker


# --- Endpoints -----------------------------------------------------------------------------------
def test_creating_an_endpoint_answers_201_with_its_url_and_credential_once(manager_api: Api, provider: Client) -> None:
    response = manager_api.post("/api/v1/endpoints/", {"name": "shop", "rate_limit": "120/m"})
    assert response.status_code == 201
    data = response.json()
    assert data["url"].startswith("http://127.0.0.1:8000/hooks/")
    assert data["credential"]["token_header"] == "X-Webhook-Token"
    assert response["Cache-Control"] == "no-store"
    delivered = provider.post(
        urlsplit(data["url"]).path,
        b'{"type": "order.created"}',
        content_type="application/json",
        headers={"X-Webhook-Token": data["credential"]["token"]},
    )
    assert delivered.status_code == 200
    again = manager_api.get(f"/api/v1/endpoints/{data['id']}/").json()
    assert "credential" not in again
    assert data["credential"]["token"] not in str(again)
    slug = urlsplit(data["url"]).path.split("/")[2]
    assert slug not in str(again), "the receiver URL is a credential: shown in full in the create answer only"
    assert again["url"].endswith("…/")
    assert again["rate_limit"] == "120/m"


def test_endpoint_create_obeys_the_same_rules_as_the_form(manager_api: Api) -> None:
    make_endpoint("taken")
    cases = {
        "name": {"name": "taken"},
        "rate_limit": {"name": "a", "rate_limit": "fast"},
        "allowed_methods": {"name": "b", "allowed_methods": "POST,TRACE"},
        "secret": {"name": "c", "auth": "stripe"},
        "token_header": {"name": "d", "token_header": "Bad Header"},
        "max_body_bytes": {"name": "e", "max_body_bytes": 0},
        "response_status": {"name": "f", "response_status": 500},
        "scheme_options": {"name": "g", "auth": "hmac"},
        "auth": {"name": "h", "auth": "nope"},
    }
    for field, payload in cases.items():
        response = manager_api.post("/api/v1/endpoints/", payload)
        assert response.status_code == 400, (field, response.content)
        assert field in response.json(), (field, response.json())
    assert list(Endpoint.objects.values_list("name", flat=True)) == ["taken"]
    short = manager_api.post("/api/v1/endpoints/", {"name": "i", "secret": "short"})
    assert short.status_code == 400
    assert "too short" in short.json()["secret"][0]


def test_a_provider_issued_secret_and_generic_hmac_are_taken_as_given(manager_api: Api) -> None:
    stripe = manager_api.post("/api/v1/endpoints/", {"name": "stripe", "auth": "stripe", "secret": "whsec_" + "a" * 32})
    assert stripe.status_code == 201, stripe.content
    hmac = manager_api.post(
        "/api/v1/endpoints/",
        {"name": "custom", "auth": "hmac", "scheme_options": {"header": "X-Sig", "prefix": "sha256="}},
    )
    assert hmac.status_code == 201, hmac.content
    assert Endpoint.objects.get(name="custom").scheme_options["header"] == "X-Sig"
    assert hmac.json()["credential"]["secret"]


def test_a_misspelt_hmac_option_is_refused_not_dropped(manager_api: Api) -> None:
    response = manager_api.post(
        "/api/v1/endpoints/",
        {"name": "custom", "auth": "hmac", "scheme_options": {"header": "X-Sig", "digets": "sha1"}},
    )
    assert response.status_code == 400, response.content
    assert response.json() == {"scheme_options": {"digets": ["Unknown field."]}}
    assert not Endpoint.objects.filter(name="custom").exists()


def test_it_updates_rotates_and_deletes_an_endpoint(manager_api: Api, provider: Client) -> None:
    endpoint, old = make_endpoint()
    patched = manager_api.patch(f"/api/v1/endpoints/{endpoint.pk}/", {"enabled": False, "description": "x"})
    assert patched.status_code == 200
    assert patched.json()["credential"] is None
    assert not Endpoint.objects.get(pk=endpoint.pk).enabled
    manager_api.patch(f"/api/v1/endpoints/{endpoint.pk}/", {"enabled": True})
    rotated = manager_api.post(f"/api/v1/endpoints/{endpoint.pk}/rotate/", {"grace_hours": 1})
    assert rotated.status_code == 200
    new = rotated.json()["credential"]["token"]
    for token in (old, new):  # the old one still works during the grace period
        answer = provider.post(
            endpoint.path, b"{}", content_type="application/json", headers={"X-Webhook-Token": token}
        )
        assert answer.status_code == 200
    assert manager_api.post(f"/api/v1/endpoints/{endpoint.pk}/rotate/", {"grace_hours": -1}).status_code == 400
    assert manager_api.delete(f"/api/v1/endpoints/{endpoint.pk}/").status_code == 204
    assert not Endpoint.objects.exists()
    assert manager_api.get(f"/api/v1/endpoints/{endpoint.pk}/").json() == {"detail": "Not found."}


def test_it_lists_an_endpoints_rejected_attempts(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    RejectedAttempt.record(endpoint, status=401, reason="wrong token", remote_addr="203.0.113.9")
    rows = manager_api.get(f"/api/v1/endpoints/{endpoint.pk}/rejected/").json()
    assert [(r["status"], r["reason"], r["remote_addr"]) for r in rows] == [(401, "wrong token", "203.0.113.9")]
    assert manager_api.get(f"/api/v1/endpoints/{endpoint.pk}/rejected/", {"limit": "0"}).status_code == 400


# --- Destinations ---------------------------------------------------------------------------------
def test_destinations_list_create_update_delete(manager_api: Api, viewer_api: Api) -> None:
    endpoint, _ = make_endpoint()
    other, _ = make_endpoint("other")
    created = manager_api.post(
        "/api/v1/destinations/",
        {"endpoint": endpoint.pk, "url": "http://127.0.0.1:9/hook?token=abc", "forward_headers": "x-a , x-b"},
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["forward_headers"] == "x-a, x-b"
    Destination.objects.create(endpoint=other, url="http://127.0.0.1:9/other")
    listed = manager_api.get("/api/v1/destinations/", {"endpoint": endpoint.pk}).json()
    assert [d["id"] for d in listed] == [pk]
    # A destination URL may carry a token: viewers get the display form only.
    seen = viewer_api.get(f"/api/v1/destinations/{pk}/").json()
    assert seen["url"] is None
    assert seen["display_url"] == "http://127.0.0.1:9/hook?…"
    assert manager_api.patch(f"/api/v1/destinations/{pk}/", {"enabled": False}).status_code == 200
    assert not Destination.objects.get(pk=pk).enabled
    bad = manager_api.post("/api/v1/destinations/", {"endpoint": endpoint.pk, "url": "ftp://example.com/"})
    assert bad.status_code == 400
    assert "url" in bad.json()
    assert manager_api.delete(f"/api/v1/destinations/{pk}/").status_code == 204
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", flat=True))
    assert actions == ["destination.added", "destination.changed", "destination.deleted"]


# --- Messages -----------------------------------------------------------------------------------
def test_the_message_list_takes_the_list_pages_filters(manager_api: Api) -> None:
    shop, _ = make_endpoint()
    other, _ = make_endpoint("other")
    paid = make_message(shop, b'{"type": "invoice.paid", "amount": 30}')
    make_message(shop, b'{"type": "order.created"}')
    make_message(other, b'{"type": "invoice.paid"}')
    ids = [
        m["id"]
        for m in manager_api.get("/api/v1/messages/", {"endpoint": shop.pk, "event_type": "invoice.paid"}).json()[
            "results"
        ]
    ]
    assert ids == [paid.pk]
    by_json = manager_api.get("/api/v1/messages/", {"json": "amount > 10"}).json()["results"]
    assert [m["id"] for m in by_json] == [paid.pk]
    message = by_json[0]
    assert set(message) == {
        "id", "endpoint", "endpoint_name", "received_at", "method", "query_string", "content_type", "headers",
        "event_type", "idempotency_key", "remote_addr", "verification", "secret_used", "status", "body_size", "json",
    }  # fmt: skip
    assert (message["endpoint"], message["endpoint_name"], message["json"]["amount"]) == (shop.pk, "shop", 30)


def test_an_invalid_filter_is_a_400_naming_it_never_every_row(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint)
    for params, field in [
        ({"received_after": "yesterday"}, "received_after"),
        ({"endpoint": "999"}, "endpoint"),
        ({"status": "lost"}, "status"),
        ({"json": "= 1"}, "json"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
    ]:
        response = manager_api.get("/api/v1/messages/", params)
        assert response.status_code == 400, params
        assert field in response.json(), response.json()


def test_it_pages_with_limit_and_an_opaque_next_url_and_never_counts(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    made = [make_message(endpoint).pk for _ in range(5)]
    seen: list[int] = []
    url: str | None = f"/api/v1/messages/?limit=2&endpoint={endpoint.pk}"
    pages = 0
    with CaptureQueriesContext(connection) as queries:
        while url:
            page = manager_api.get(url).json()
            seen += [m["id"] for m in page["results"]]
            url = page["next"]
            pages += 1
    assert seen == sorted(made, reverse=True)
    assert pages == 3
    assert (
        f"endpoint={endpoint.pk}" in manager_api.get(f"/api/v1/messages/?limit=2&endpoint={endpoint.pk}").json()["next"]
    )
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)


def test_a_message_detail_adds_the_body_byte_for_byte(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    raw = b"\x00\xffbinary"
    message = make_message(endpoint, raw, content_type="application/octet-stream")
    data = manager_api.get(f"/api/v1/messages/{message.pk}/").json()
    assert base64.b64decode(data["body_base64"]) == raw
    assert data["json"] is None
    assert manager_api.get("/api/v1/messages/99999999999999999999/").status_code == 404


def test_it_deletes_and_replays_a_message(manager_api: Api, reader_api: Api) -> None:
    endpoint, _ = make_endpoint()
    first, second = make_message(endpoint), make_message(endpoint)
    assert reader_api.post(f"/api/v1/messages/{first.pk}/replay/").status_code == 403
    replayed = manager_api.post(f"/api/v1/messages/{first.pk}/replay/")
    assert replayed.status_code == 202
    assert replayed.json()["status"] == "pending"
    assert Message.objects.get(pk=first.pk).replays == 1
    assert manager_api.delete(f"/api/v1/messages/{second.pk}/").status_code == 204
    assert list(Message.objects.values_list("pk", flat=True)) == [first.pk]
    assert list(AuditEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        "messages.replayed",
        "messages.deleted",
    ]


# --- Bulk jobs ---------------------------------------------------------------------------------------
def test_a_bulk_job_acts_on_every_message_its_filter_matches_with_progress(manager_api: Api) -> None:
    shop, _ = make_endpoint()
    other, _ = make_endpoint("other")
    for _ in range(3):
        make_message(shop)
    kept = make_message(other)
    created = manager_api.post("/api/v1/jobs/", {"action": "delete", "query": f"endpoint={shop.pk}"})
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]
    assert created.json()["status"] == JobStatus.QUEUED
    run_worker()
    job = manager_api.get(f"/api/v1/jobs/{job_id}/").json()
    assert (job["status"], job["total"], job["done"], job["percent"]) == ("done", 3, 3, 100)
    assert list(Message.objects.values_list("pk", flat=True)) == [kept.pk]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.username, entry.details["bulk_job"]) == ("messages.deleted", "staff", job_id)
    assert [j["id"] for j in manager_api.get("/api/v1/jobs/").json()] == [job_id]


def test_a_bulk_job_with_an_invalid_filter_or_without_permission_is_refused(manager_api: Api, viewer_api: Api) -> None:
    bad = manager_api.post("/api/v1/jobs/", {"action": "replay", "query": "received_after=soon"})
    assert bad.status_code == 400
    assert "received_after" in bad.json()["query"]
    assert manager_api.post("/api/v1/jobs/", {"action": "explode"}).status_code == 400
    assert viewer_api.post("/api/v1/jobs/", {"action": "mark_read"}).status_code == 403
    assert not BulkJob.objects.exists()
