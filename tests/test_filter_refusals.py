"""Issue 13, item 3: JSON path filters no stored document can hold (non-finite numbers,
NUL, lone surrogates, 65-bit integers) are refused by the parser, with the reason, on every
path that filters: the list, the viewer's newer/older, the live poll, exports, bulk actions."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client
from django_tasks_db.models import DBTaskResult

from inbox import jsonpath
from inbox.models import AuditEntry, BulkJob, Message
from tests.conftest import csrf_post, make_endpoint, make_message

# (filter as typed in the box, words of the reason the user is shown)
UNUSABLE = [
    ("action = 1e999", "finite"),
    ("action = NaN", "finite"),
    ("action = -Infinity", "finite"),
    ("action != Infinity", "finite"),
    ("action > 1e999", "finite"),
    ('action = "\\u0000"', "U+0000"),
    ('action = "\\ud800"', "lone surrogate"),
    ('action = {"\\u0000":1}', "U+0000"),
    ('action = {"a": [1, -1e400]}', "finite"),
    ("action > 99999999999999999999999", "whole number"),
    ("action = -99999999999999999999999", "whole number"),
    ("action ~ 1e999", "finite"),
    # Found by tests/test_fuzz_dashboard.py on PostgreSQL: "operator does not exist: jsonb -> numeric".
    ("items.99999999999999999999 = 1", "array position"),
    ("items.-1.sku = 1", "array position"),
    ("items.1_0", "array position"),
    ("items.\u0663 = 1", "array position"),
]


@pytest.fixture
def client(staff: User) -> Client:
    # raise_request_exception=False: a crash must show up as the 500 a browser would get.
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(staff)
    return client


@pytest.fixture
def stored(db: None) -> list[Message]:
    endpoint, _ = make_endpoint()
    return [make_message(endpoint, body=b'{"action": "opened", "n": 1}') for _ in range(3)]


@pytest.mark.parametrize(("expression", "reason"), UNUSABLE)
def test_it_refuses_unusable_values_in_the_parser_with_the_reason(expression: str, reason: str) -> None:
    with pytest.raises(ValidationError) as refused:
        jsonpath.parse(expression)
    assert reason in " ".join(refused.value.messages)


@pytest.mark.parametrize(
    "expression",
    ['action = "NaN"', "action = 1e308", "n = 9223372036854775807", "action = paid", 'a = "\\u00e9"', "items.0.sku"],
)
def test_it_still_takes_the_nearby_usable_values(expression: str) -> None:
    jsonpath.parse(expression)


@pytest.mark.parametrize(("expression", "reason"), UNUSABLE)
def test_it_shows_the_reason_on_the_list(client: Client, stored: list[Message], expression: str, reason: str) -> None:
    response = client.get("/", {"json": expression})
    assert response.status_code == 200
    assert reason in response.content.decode()
    assert "Some filters are not valid" in response.content.decode()


@pytest.mark.parametrize(("expression", "reason"), UNUSABLE)
def test_it_shows_the_reason_in_the_viewer(client: Client, stored: list[Message], expression: str, reason: str) -> None:
    response = client.get(f"/messages/{stored[1].pk}/", {"json": expression})
    assert response.status_code == 200
    page = response.content.decode()
    assert "filter is not valid" in page
    assert reason in page
    assert 'rel="prev"' not in page
    assert 'rel="next"' not in page


@pytest.mark.parametrize(("expression", "reason"), UNUSABLE)
def test_it_refuses_the_live_poll_with_400_and_the_reason(
    client: Client, stored: list[Message], expression: str, reason: str
) -> None:
    response = client.get("/messages/new/", {"json": expression, "since": "0_0"})
    # Not 204 ("nothing new"): the filter is refused, with the reason.
    assert response.status_code == 400
    assert reason in response.content.decode()


@pytest.mark.parametrize("kind", ["ndjson", "csv"])
@pytest.mark.parametrize(("expression", "reason"), UNUSABLE)
def test_it_refuses_the_export_with_400_and_the_reason(
    client: Client, stored: list[Message], kind: str, expression: str, reason: str
) -> None:
    response = client.get(f"/messages/export.{kind}", {"json": expression})
    assert response.status_code == 400
    assert reason in response.content.decode()


@pytest.mark.parametrize("action", ["delete_all", "replay_all", "mark_read_all"])
@pytest.mark.parametrize(("expression", "reason"), UNUSABLE[:1] + UNUSABLE[5:7])
def test_it_refuses_a_bulk_action_before_any_job_or_audit_entry(
    client: Client, stored: list[Message], action: str, expression: str, reason: str
) -> None:
    response = csrf_post(client, "/messages/bulk/?" + urlencode({"json": expression}), {"action": action})
    assert response.status_code == 302
    assert not BulkJob.objects.exists()
    assert not DBTaskResult.objects.exists()
    assert not AuditEntry.objects.exists()
    assert Message.objects.count() == 3
    shown = client.get(response["Location"]).content.decode()
    assert "nothing was" in shown
    assert reason in shown


@pytest.mark.parametrize(
    "case",
    [
        ("Asia/Kolkata", {"received_after": "0001-01-01T00:00"}),
        ("America/New_York", {"received_before": "9999-12-31T23:59"}),
    ],
)
@pytest.mark.parametrize("page", ["/", "/messages/new/", "message", "/messages/export.ndjson"])
def test_it_refuses_a_date_that_does_not_exist_in_utc(
    client: Client, stored: list[Message], settings: Any, case: tuple[str, dict[str, str]], page: str
) -> None:
    zone, query = case
    # Found by tests/test_fuzz_dashboard.py: the conversion to UTC overflowed (a 500).
    settings.TIME_ZONE = zone
    url = f"/messages/{stored[0].pk}/" if page == "message" else page
    response = client.get(url, {**query, "since": "0_0"})
    assert response.status_code in (200, 204, 400)
    if response.status_code != 204:
        assert "between the years 1 and 9999" in response.content.decode()
