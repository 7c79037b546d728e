"""/api/v1/destinations/ carries the routing fields of the destination form and add_destination:
filter, transform, sign, max_rate, paused (docs/architecture.md, Contracts)."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from inbox.delivery import processing
from inbox.models import AuditEntry, Destination, Message, Status
from tests.api.conftest import Api
from tests.conftest import Catcher, make_endpoint, make_message, run_worker


def pending(endpoint: object, n: int) -> Message:
    body = json.dumps({"id": f"evt_{n}", "type": "invoice.paid", "data": {"amount": n}}).encode()
    now = timezone.now()
    return make_message(
        endpoint, body, status=Status.PENDING, next_attempt_at=now, received_at=now - timedelta(minutes=10 - n)
    )


def test_it_creates_a_routed_signed_destination_and_shows_its_secret_once(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    response = manager_api.post(
        "/api/v1/destinations/",
        {
            "endpoint": endpoint.pk,
            "url": "http://127.0.0.1:9/app",
            "filter": "event_type=invoice.*&json=data.amount > 10",
            "transform": "data",
            "sign": "standard",
            "max_rate": "10/s",
        },
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["signing_secret"].startswith("whsec_")
    assert (data["filter"], data["transform"], data["sign"], data["max_rate"], data["paused"]) == (
        "event_type=invoice.*&json=data.amount%20>%2010",
        "data",
        "standard",
        "10/s",
        False,
    )
    again = manager_api.get(f"/api/v1/destinations/{data['id']}/").json()
    assert "signing_secret" not in again
    assert data["signing_secret"] not in json.dumps(again)


def test_it_refuses_a_filter_or_transform_that_cannot_route(manager_api: Api) -> None:
    endpoint, _ = make_endpoint()
    base = {"endpoint": endpoint.pk, "url": "http://127.0.0.1:9/app"}
    cases = {
        "filter": {"filter": "json=action = 1e999"},
        "transform": {"transform": "data.[["},
        "max_rate": {"max_rate": "fast"},
        "sign": {"sign": "pgp"},
    }
    for field, payload in cases.items():
        response = manager_api.post("/api/v1/destinations/", {**base, **payload})
        assert response.status_code == 400, (field, response.content)
        assert field in response.json(), (field, response.json())
    assert not Destination.objects.exists()


def test_a_patch_of_paused_false_resumes_and_sends_what_was_held_in_order(manager_api: Api, catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    made = manager_api.post("/api/v1/destinations/", {"endpoint": endpoint.pk, "url": catcher.url, "paused": True})
    assert made.status_code == 201, made.content
    assert made.json()["paused"] is True
    held = [pending(endpoint, n) for n in (1, 2, 3)]
    for message in held:
        assert processing.process(message.pk) == "held"
    assert catcher.requests == []

    resumed = manager_api.patch(f"/api/v1/destinations/{made.json()['id']}/", {"paused": False})
    assert resumed.status_code == 200, resumed.content
    assert resumed.json()["paused"] is False
    run_worker()

    assert [json.loads(r["body"])["id"] for r in catcher.requests] == ["evt_1", "evt_2", "evt_3"]
    assert AuditEntry.objects.filter(action="destination.resumed", details__messages_held=3).exists()


def test_turning_signing_on_by_patch_answers_the_secret_once_and_signs(manager_api: Api, catcher: Catcher) -> None:
    endpoint, _ = make_endpoint()
    made = manager_api.post("/api/v1/destinations/", {"endpoint": endpoint.pk, "url": catcher.url}).json()
    assert "signing_secret" not in made
    signed = manager_api.patch(f"/api/v1/destinations/{made['id']}/", {"sign": "standard"})
    assert signed.status_code == 200, signed.content
    secret = signed.json()["signing_secret"]

    message = pending(endpoint, 7)
    processing.process(message.pk)
    request = catcher.requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    Webhook(secret).verify(request["body"], headers)  # raises when the signature does not verify
    assert "signing_secret" not in manager_api.get(f"/api/v1/destinations/{made['id']}/").json()


def test_a_read_token_cannot_resume_a_destination(reader_api: Api) -> None:
    endpoint, _ = make_endpoint()
    destination = Destination.objects.create(endpoint=endpoint, url="http://127.0.0.1:9/app", paused=True)
    assert reader_api.patch(f"/api/v1/destinations/{destination.pk}/", {"paused": False}).status_code == 403
    destination.refresh_from_db()
    assert destination.paused
