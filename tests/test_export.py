"""Export of the filtered list as NDJSON and CSV, streamed."""

from __future__ import annotations

import base64
import csv
import io
import json
from typing import Any

import pytest
from django.test import Client

from inbox.dashboard.views import export
from tests.conftest import make_endpoint, make_message

pytestmark = pytest.mark.django_db


def body(response: Any) -> str:
    assert response.streaming, "exports stream instead of building the file in memory"
    return b"".join(response.streaming_content).decode()


def test_it_exports_the_filtered_list_as_ndjson(staff_client: Client) -> None:
    shop, _ = make_endpoint("shop")
    other, _ = make_endpoint("other")
    paid = make_message(shop, b'{"type": "order.paid", "total": 5}', headers={"X-Trace": "1"})
    binary = make_message(shop, b"\x00\xffbinary", content_type="application/octet-stream", event_type="blob")
    make_message(other, b'{"type": "order.paid"}')

    response = staff_client.get(f"/messages/export.ndjson?endpoint={shop.pk}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="messages-')
    records = [json.loads(line) for line in body(response).splitlines()]
    assert [r["id"] for r in records] == [binary.pk, paid.pk]
    assert records[1] | {"received_at": None} == {
        "id": paid.pk,
        "endpoint": "shop",
        "received_at": None,
        "method": "POST",
        "query_string": "",
        "content_type": "application/json",
        "headers": {"X-Trace": "1"},
        "event_type": "order.paid",
        "idempotency_key": None,
        "remote_addr": None,
        "verification": "verified",
        "status": "skipped",
        "body_size": 34,
        "json": {"type": "order.paid", "total": 5},
        "body_base64": base64.b64encode(b'{"type": "order.paid", "total": 5}').decode(),
    }
    assert records[0]["json"] is None
    assert base64.b64decode(records[0]["body_base64"]) == b"\x00\xffbinary"


def test_it_exports_csv_that_a_spreadsheet_cannot_run(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint, b'=HYPERLINK("http://evil.example","x")', content_type="text/plain", event_type="+cmd")
    rows = list(csv.DictReader(io.StringIO(body(staff_client.get("/messages/export.csv")))))
    assert len(rows) == 1
    assert rows[0]["body"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[0]["event_type"] == "'+cmd"
    assert rows[0]["endpoint"] == "shop"


def test_it_pages_through_every_message_in_batches(
    staff_client: Client, monkeypatch: pytest.MonkeyPatch, django_assert_max_num_queries: Any
) -> None:
    monkeypatch.setattr(export, "BATCH", 7)
    endpoint, _ = make_endpoint()
    messages = [make_message(endpoint) for _ in range(30)]
    with django_assert_max_num_queries(3 + 5):  # session, user, filter choices; 5 batches
        lines = body(staff_client.get("/messages/export.ndjson")).splitlines()
    assert [json.loads(line)["id"] for line in lines] == [m.pk for m in reversed(messages)]


def test_it_refuses_an_invalid_filter(staff_client: Client) -> None:
    response = staff_client.get("/messages/export.csv?received_after=yesterday")
    assert response.status_code == 400
    assert "received_after" in response.content.decode()


def test_it_keeps_exports_for_staff(client: Client, outsider: Any) -> None:
    assert client.get("/messages/export.ndjson").status_code == 302
    client.force_login(outsider)
    assert client.get("/messages/export.csv").status_code == 403
