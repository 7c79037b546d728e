"""The list's text search and JSON path filter, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from inbox import jsonpath
from inbox.models import Message
from tests.conftest import make_endpoint, make_message

pytestmark = pytest.mark.django_db

PAID = b'{"type": "invoice.paid", "data": {"object": {"status": "paid", "amount": 1200, "items": [{"sku": "A-1"}]}}}'
OPEN = b'{"type": "invoice.created", "data": {"object": {"status": "open", "amount": 300, "note": null}}}'
FORM = b"status=paid&amount=5"


@pytest.fixture
def inbox() -> dict[str, Message]:
    endpoint, _ = make_endpoint()
    return {
        "paid": make_message(endpoint, PAID, headers={"Stripe-Signature": "t=1,v1=abc", "X-Trace": "Trace-777"}),
        "open": make_message(endpoint, OPEN, headers={"X-Trace": "other"}),
        "form": make_message(endpoint, FORM, content_type="application/x-www-form-urlencoded"),
    }


def found(expression: str) -> set[str]:
    ids = set(Message.objects.json_path(jsonpath.parse(expression)).values_list("pk", flat=True))
    return {name for name, message in INBOX.items() if message.pk in ids}


INBOX: dict[str, Message] = {}


@pytest.fixture(autouse=True)
def _remember(inbox: dict[str, Message]) -> None:
    INBOX.clear()
    INBOX.update(inbox)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("data.object.status = paid", {"paid"}),
        ('data.object.status = "paid"', {"paid"}),
        ("data.object.status != paid", {"open"}),
        ("data.object.amount = 1200", {"paid"}),
        ("data.object.amount > 500", {"paid"}),
        ("data.object.amount <= 300", {"open"}),
        ("data.object.note", {"open"}),
        ("data.object.note = null", {"open"}),
        ("data.object.items.0.sku = A-1", {"paid"}),
        ("type ~ INVOICE", {"paid", "open"}),
        ("data.object.missing", set()),
        ("data.object.status = PAID", set()),
    ],
)
def test_it_filters_by_json_path(expression: str, expected: set[str]) -> None:
    assert found(expression) == expected


@pytest.mark.parametrize("expression", ["", "= paid", "a..b = 1", "data.status =", "a > true"])
def test_it_explains_a_bad_json_path(expression: str) -> None:
    with pytest.raises(ValidationError):
        jsonpath.parse(expression)


def test_it_searches_bodies_and_headers_case_insensitively(inbox: dict[str, Message]) -> None:
    assert set(Message.objects.search("trace-777")) == {inbox["paid"]}
    assert set(Message.objects.search("STATUS=PAID")) == {inbox["form"]}
    assert set(Message.objects.search('"open"')) == {inbox["open"]}


def test_it_combines_search_and_json_path_on_the_list(staff_client: Client, inbox: dict[str, Message]) -> None:
    response = staff_client.get("/", {"q": "invoice", "json": "data.object.amount > 500"})
    page = response.content.decode()
    assert f'value="{inbox["paid"].pk}"' in page
    assert f'value="{inbox["open"].pk}"' not in page

    response = staff_client.get("/", {"json": "data..x"})
    assert "A JSON path is keys separated by dots" in response.content.decode()
