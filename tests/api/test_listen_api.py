"""The server side of `listen`: cursors, reports, waiting slots and the listener's rate limit
(in process; tests/api/test_listen.py drives the real client against a live server)."""

from __future__ import annotations

import base64
from unittest import mock

from django.contrib.auth.models import User
from django.test.utils import override_settings

from inbox.api import views
from inbox.models import Attempt, ListenerCursor
from tests.api.conftest import Api, api_as
from tests.conftest import make_endpoint, make_message


def poll(api: Api, name: str = "laptop", endpoint: str = "shop") -> dict:  # type: ignore[type-arg]
    response = api.get("/api/v1/listen/", {"endpoint": endpoint, "name": name, "wait": 0})
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


def report(api: Api, message: int, status_code: int | None = 200, name: str = "laptop") -> None:
    payload = {"endpoint": "shop", "name": name, "message": message, "status_code": status_code, "duration_ms": 12}
    assert api.post("/api/v1/listen/report/", payload).status_code == 201


def test_a_new_listener_starts_live_and_a_known_one_resumes_after_its_last_report(reader_api: Api) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint)  # before the listener existed: not handed out
    assert poll(reader_api)["messages"] == []
    first, second = make_message(endpoint), make_message(endpoint)
    assert [m["id"] for m in poll(reader_api)["messages"]] == [first.pk, second.pk]
    report(reader_api, first.pk)
    # Stopped after the first: the next poll starts with the second, and only it.
    assert [m["id"] for m in poll(reader_api)["messages"]] == [second.pk]
    report(reader_api, second.pk, status_code=500)
    assert poll(reader_api)["messages"] == []
    # Another listener name keeps a cursor of its own.
    assert poll(reader_api, name="ci")["messages"] == []
    attempts = Attempt.objects.order_by("pk")
    assert [(a.message_id, a.status, a.status_code, a.label) for a in attempts] == [
        (first.pk, "succeeded", 200, "listen “laptop” (staff)"),
        (second.pk, "failed", 500, "listen “laptop” (staff)"),
    ]
    assert ListenerCursor.objects.count() == 2


def test_it_hands_out_the_original_request_without_the_inbox_credentials(reader_api: Api) -> None:
    endpoint, _ = make_endpoint()
    poll(reader_api)
    make_message(
        endpoint,
        b"\x00raw",
        method="PUT",
        query_string="a=1",
        content_type="application/octet-stream",
        headers={"X-Webhook-Token": "[redacted]", "Cookie": "[redacted]", "X-Github-Event": "push", "Host": "x"},
    )
    message = poll(reader_api)["messages"][0]
    assert base64.b64decode(message["body_base64"]) == b"\x00raw"
    assert (message["method"], message["query_string"]) == ("PUT", "a=1")
    assert message["headers"] == {"X-Github-Event": "push"}


def test_listening_refuses_unknown_endpoints_and_bad_input(reader_api: Api) -> None:
    make_endpoint()
    assert reader_api.get("/api/v1/listen/", {"endpoint": "nope", "wait": 0}).status_code == 404
    assert reader_api.get("/api/v1/listen/", {"endpoint": "shop", "wait": "soon"}).status_code == 400
    bad = reader_api.post("/api/v1/listen/report/", {"endpoint": "shop", "message": "x", "status_code": 99})
    assert bad.status_code == 400
    assert set(bad.json()) == {"message", "status_code"}
    assert Api("whi_wrong").get("/api/v1/listen/", {"endpoint": "shop"}).status_code == 401


def test_a_poll_waits_only_while_a_waiting_slot_is_free(reader_api: Api) -> None:
    make_endpoint()
    slots = views._waiting_slots(1)
    with override_settings(INBOX_LISTEN_SLOTS=1), mock.patch.object(views, "LISTEN_CHECK_SECONDS", 0.01):
        assert reader_api.get("/api/v1/listen/", {"endpoint": "shop", "wait": 1}).json()["waited"] is True
        slots.acquire()
        try:
            # Every slot is taken: answered at once, and the client polls again shortly.
            assert reader_api.get("/api/v1/listen/", {"endpoint": "shop", "wait": 1}).json()["waited"] is False
        finally:
            slots.release()


@override_settings(INBOX_API_RATE="2/m", INBOX_LISTEN_RATE="3/m")
def test_listeners_have_a_rate_limit_of_their_own(staff: User) -> None:
    make_endpoint()
    api = api_as(staff, "read")
    assert [poll(api, name="a") is not None for _ in range(3)] == [True] * 3
    assert api.get("/api/v1/listen/", {"endpoint": "shop", "name": "a", "wait": 0}).status_code == 429
    assert poll(api, name="b")["messages"] == []  # another listener on the same token
    assert api.get("/api/v1/endpoints/").status_code == 200  # the token's own budget is untouched
