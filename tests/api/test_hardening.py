"""What the outside-in check of the API found: a misspelt or empty filter never widens a bulk
job to every message, input the JSON encoder cannot write is a 400, and an offset PostgreSQL
cannot take is no 500."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from inbox.models import AuditAction, AuditEntry, BulkJob, Destination, Endpoint
from tests.api.conftest import Api
from tests.conftest import make_endpoint, make_message


def test_a_job_with_an_unknown_filter_is_refused_and_nothing_is_queued(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint)
    for query in ("foo=bar", "statuss=failed", "5"):
        response = manager_api.post("/api/v1/jobs/", {"action": "delete", "query": query})
        assert response.status_code == 400, (query, response.content)
        assert "query" in response.json()
    assert not BulkJob.objects.exists()


def test_deleting_every_message_takes_an_explicit_everything(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint)
    for action in ("delete", "replay"):
        refused = manager_api.post("/api/v1/jobs/", {"action": action, "query": ""})
        assert refused.status_code == 400, refused.content
        assert "everything" in json.dumps(refused.json())
    assert not BulkJob.objects.exists()
    assert manager_api.post("/api/v1/jobs/", {"action": "mark_read", "query": ""}).status_code == 201
    accepted = manager_api.post("/api/v1/jobs/", {"action": "delete", "query": "", "everything": True})
    assert accepted.status_code == 201, accepted.content


def test_a_lone_surrogate_in_any_field_is_a_400_in_json(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    cases = [
        ("post", "/api/v1/endpoints/", {"name": "x", "auth": "\ud800"}),
        ("post", "/api/v1/endpoints/", {"name": "y", "allowed_methods": "\ud800"}),
        ("patch", f"/api/v1/endpoints/{endpoint.pk}/", {"auth": "\ud800"}),
        ("post", "/api/v1/destinations/", {"endpoint": endpoint.pk, "url": "http://127.0.0.1:9/", "sign": "\ud800"}),
        ("post", "/api/v1/jobs/", {"action": "\ud800", "query": "status=failed"}),
    ]
    for method, path, body in cases:
        response = getattr(manager_api, method)(path, body)
        assert response.status_code == 400, (path, body, response.status_code)
        assert response["Content-Type"].startswith("application/json")
        json.loads(response.content)
    assert list(Endpoint.objects.values_list("name", flat=True)) == [endpoint.name]


def test_a_time_with_an_offset_postgresql_refuses_is_read_in_utc(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint)
    response = manager_api.get("/api/v1/messages/", {"received_after": "2000-03-14T08:07:53-17:32"})
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 1


def test_a_message_cap_of_zero_is_refused(manager_api: Api) -> None:
    # 0 reads as "no cap" to some and would purge every message of the endpoint.
    response = manager_api.post("/api/v1/endpoints/", {"name": "capped", "max_messages": 0})
    assert response.status_code == 400
    assert "max_messages" in response.json()
    assert manager_api.post("/api/v1/endpoints/", {"name": "capped", "max_messages": 1}).status_code == 201


def test_a_field_the_client_cannot_write_is_refused_not_ignored(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    other, _ = make_endpoint("other")
    created = manager_api.post("/api/v1/destinations/", {"endpoint": endpoint.pk, "url": "http://127.0.0.1:9/"})
    destination = created.json()
    path = f"/api/v1/destinations/{destination['id']}/"
    for body, field, reason in (
        ({"endpoint": other.pk}, "endpoint", "read-only"),
        ({"paused_reason": "mine"}, "paused_reason", "read-only"),
        ({"paussed": True}, "paussed", "Unknown field"),
    ):
        response = manager_api.patch(path, body)
        assert response.status_code == 400, (body, response.content)
        assert reason in response.json()[field][0]
    refused = manager_api.patch(f"/api/v1/endpoints/{endpoint.pk}/", {"created_at": "2001-01-01T00:00:00Z"})
    assert refused.status_code == 400
    assert "read-only" in refused.json()["created_at"][0]
    # What a GET answered can be sent back as it is.
    unchanged = manager_api.get(path).json()
    assert manager_api.put(path, {**unchanged, "timeout_seconds": 7}).status_code == 200, unchanged
    assert manager_api.get(path).json()["endpoint"] == endpoint.pk


def test_a_malformed_punycode_destination_is_a_400_in_json(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    response = manager_api.post("/api/v1/destinations/", {"endpoint": endpoint.pk, "url": "http://xn--a.com/"})
    assert response.status_code == 400
    assert response.json() == {"url": ["Enter a valid URL."]}


OPTIONS = {"header": "X-Sig", "digest": "sha256", "encoding": "hex", "template": "{body}", "tolerance": 300}


def test_a_put_of_what_a_get_answered_changes_nothing(manager_api: Api) -> None:
    token_endpoint, _ = make_endpoint("plain")
    hmac_endpoint, _ = make_endpoint("generic", auth="hmac", secret="s3cret-for-hmac-1234", scheme_options=OPTIONS)
    for endpoint in (token_endpoint, hmac_endpoint):
        path = f"/api/v1/endpoints/{endpoint.pk}/"
        before = manager_api.get(path).json()
        response = manager_api.put(path, before)
        assert response.status_code == 200, response.content
        assert response.json()["credential"] is None  # no new secret
        assert manager_api.get(path).json() == before | {"updated_at": response.json()["updated_at"]}


def test_a_new_secret_by_patch_is_answered_once_and_audited(manager_api: Api) -> None:
    endpoint, _ = make_endpoint("gh", auth="github", secret="old-github-secret-1")
    response = manager_api.patch(f"/api/v1/endpoints/{endpoint.pk}/", {"secret": "new-github-secret-2"})
    assert response.status_code == 200
    assert response.json()["credential"] == {"secret": "new-github-secret-2"}
    endpoint.refresh_from_db()
    assert [s.value for s in endpoint.credentials()] == ["new-github-secret-2"]  # at once, no grace
    entry = AuditEntry.objects.get(action=AuditAction.ENDPOINT_CHANGED)
    assert entry.details["secret_replaced"] is True
    assert "secret" in entry.details["changed"]


def test_a_destination_url_is_taken_once_per_endpoint_on_every_path(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    url = "http://127.0.0.1:9/dup"
    first = manager_api.post("/api/v1/destinations/", {"endpoint": endpoint.pk, "url": url})
    assert first.status_code == 201
    again = manager_api.post("/api/v1/destinations/", {"endpoint": endpoint.pk, "url": url})
    assert again.json() == {"url": ["This endpoint already forwards to this URL."]}
    with pytest.raises(CommandError, match="already forwards to this URL"):
        call_command("add_destination", endpoint.name, url, stdout=StringIO())
    # Editing the one there is, keeping its URL, is no duplicate of itself.
    path = f"/api/v1/destinations/{first.json()['id']}/"
    assert manager_api.patch(path, {"url": url, "timeout_seconds": 5}).status_code == 200
    assert Destination.objects.count() == 1
