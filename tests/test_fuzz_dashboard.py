"""Property tests for issue 13, item 3: whatever a staff member (or a hand-edited URL) puts in
a staff page's query string, the page answers without a 5xx.

Every page is fuzzed with the filter grammar (paths, operators, JSON values with NaN,
infinities, 100-digit integers, NUL and lone surrogates in strings and keys) and with junk:
raw bytes that are not UTF-8, percent-encoded NUL and surrogates, huge and negative
numbers, impossible dates, cursors out of range, 5,000-character values, unknown and
repeated parameters, and htmx's request header. Exports are read to their last byte, and a
bulk job a POST queued is run by the worker, which must not fail it.

It runs on whatever database the suite runs on; on PostgreSQL (DATABASE_URL=postgres://…)
too. FUZZ_EXAMPLES raises the number of examples for a longer search.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox.models import AuditAction, AuditEntry, BulkJob, Destination, Endpoint, JobStatus, Message
from tests.conftest import make_endpoint, make_message, run_worker

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- Strategies ---------------------------------------------------------------------------------
# Text with what databases choke on; json.dumps writes NUL and surrogates as \u escapes.
NASTY_TEXT = st.text(
    alphabet=st.one_of(st.characters(), st.characters(categories=["Cs"]), st.sampled_from("\x00.=~<>!\"' ")),
    max_size=12,
)
HUGE_INTS = st.integers(min_value=-(10**40), max_value=10**40) | st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**400])
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), HUGE_INTS, st.floats(), NASTY_TEXT),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(NASTY_TEXT, children, max_size=3),
    max_leaves=8,
)
PATHS = st.one_of(
    st.sampled_from(["action", "n", "data.object.status", "items.0.sku", "items.0", "big", "0", "é", "a" * 101]),
    st.lists(NASTY_TEXT, min_size=1, max_size=4).map(".".join),
)
OPERATORS = st.sampled_from(["", "=", "!=", ">", ">=", "<", "<=", "~", "==", "=~"])
VALUES = st.one_of(
    json_values.map(json.dumps),  # NaN, Infinity and \u escapes included
    NASTY_TEXT,
    st.sampled_from(["1e999", "-1e999", "NaN", "-Infinity", '"\\u0000"', '"\\ud800"', '{"\\u0000":1}', "9" * 300]),
    st.sampled_from(["[" * 150 + "]" * 150, '{"a":' * 60 + "1" + "}" * 60, "%", "_", "\\", "'; --"]),
)
filters = st.builds(lambda p, o, v: f"{p} {o} {v}" if o else p, PATHS, OPERATORS, VALUES)

junk = st.one_of(
    st.text(max_size=30),
    NASTY_TEXT,
    st.binary(max_size=20),  # not UTF-8: Django decodes it with replacement characters
    st.integers().map(str),
    HUGE_INTS.map(str),
    st.sampled_from(["", "0", "-1", "1e999", "NaN", "true", "None", "null", "9" * 400, "x" * 5000, "é" * 3000]),
    st.sampled_from(["0001-01-01T00:00", "9999-12-31T23:59", "0000-00-00", "2024-02-30T25:61", "1970-01-01"]),
    st.tuples(HUGE_INTS, HUGE_INTS).map(lambda c: f"{c[0]}_{c[1]}"),  # list cursors
    st.sampled_from(["0_0", "_", "1_", "_1", "1_2_3", "99999999999999999999999999_1", "-99999999999999999_-1"]),
)
FILTER_NAMES = [
    "q",
    "json",
    "endpoint",
    "event_type",
    "method",
    "content_type",
    "received_after",
    "received_before",
    "verification",
    "read",
    "status",
]
PAGE_NAMES = ["before", "after", "since", "empty", "ids", "period", "page", "action", "format", "_all", "o"]
param_names = st.one_of(st.sampled_from(FILTER_NAMES + PAGE_NAMES), NASTY_TEXT, st.binary(max_size=6))
params = st.lists(
    st.one_of(
        st.tuples(st.just("json"), filters),
        st.tuples(st.sampled_from(FILTER_NAMES + PAGE_NAMES), junk),
        st.tuples(param_names, junk),
    ),
    max_size=8,
)


def _encode(part: str | bytes) -> str:
    raw = part if isinstance(part, bytes) else part.encode("utf-8", "surrogatepass")
    return quote_from_bytes(raw, safe="")


def query_string(pairs: list[tuple[str | bytes, str | bytes]]) -> str:
    """Percent-encoded bytes: a lone surrogate arrives as the bytes a client would send."""
    return "&".join(f"{_encode(name)}={_encode(value)}" for name, value in pairs)


# Dates at the ends of the calendar overflow when a zone ahead of or behind UTC converts them.
ZONES = st.sampled_from(["UTC", "Asia/Kolkata", "America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"])


# --- The inbox being fuzzed -----------------------------------------------------------------------
@pytest.fixture
def inbox(db: None, staff: User) -> dict[str, int]:
    endpoint, _ = make_endpoint("shop")
    other, _ = make_endpoint("meta", auth="meta", secret="app-secret")
    bodies = [
        b'{"action": "opened", "n": 1, "data": {"object": {"status": "paid"}}, "items": [{"sku": "A-1"}]}',
        b'{"action": "closed", "n": 2.5, "big": 123456789012345678901234567890}',
        b'{"action": null, "n": -3, "items": []}',
        b"[1, 2, 3]",
        b"not json at all",
        b'{"type": "ping", "\xc3\xa9": "\xc3\xa9t\xc3\xa9"}',
    ]
    messages = [make_message(endpoint if i % 2 else other, body=body) for i, body in enumerate(bodies)]
    Destination.objects.create(endpoint=endpoint, url="http://127.0.0.1:9/hook")
    job = BulkJob.objects.create(action="mark_read", query="json=action+%3D+opened", created_by=staff)
    AuditEntry.record(staff, AuditAction.ENDPOINT_CREATED, endpoint.name, endpoint)
    return {"endpoint": endpoint.pk, "message": messages[0].pk, "other": messages[1].pk, "job": job.pk}


@pytest.fixture
def client(staff: User) -> Client:
    # Exceptions are raised in the test, traceback and all; a 5xx a view answers itself is
    # caught by the status assertion.
    client = Client()
    client.force_login(staff)
    return client


GET_PAGES = [
    "/",
    "/messages/new/",
    "/messages/{message}/",
    "/messages/{message}/raw/",
    "/messages/export.ndjson",
    "/messages/export.csv",
    "/messages/compare/",
    "/audit/",
    "/endpoints/",
    "/endpoints/{endpoint}/",
    "/endpoints/new/",
    "/endpoints/{endpoint}/edit/",
    "/endpoints/{endpoint}/rotate/",
    "/endpoints/{endpoint}/delete/",
    "/endpoints/{endpoint}/destinations/new/",
    "/jobs/{job}/",
]
# Ids as a URL may carry them: the real ones, none, and ones no column can hold.
PKS = st.sampled_from(["real", "0", "1", "2147483648", "9223372036854775807", "9223372036854775808", "9" * 40])


def _url(page: str, inbox: dict[str, int], pk: str) -> str:
    ids = {name: (value if pk == "real" else pk) for name, value in inbox.items()}
    return page.format(**ids)


def _read(response: Any) -> bytes:
    """The whole body: an export that fails half-way fails here, not silently. And the
    database must still answer: a query error swallowed on PostgreSQL leaves the
    transaction aborted, a failure that would otherwise surface examples later."""
    body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else bytes(response.content)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return body


@pytest.mark.parametrize("page", GET_PAGES)
@FUZZ
@given(pairs=params, shape=st.tuples(PKS, st.booleans(), ZONES))
def test_it_never_answers_a_staff_page_with_a_5xx(
    client: Client, inbox: dict[str, int], page: str, pairs: list[Any], shape: tuple[str, bool, str]
) -> None:
    pk, htmx, zone = shape
    headers = {"HX-Request": "true"} if htmx else {}
    with override_settings(TIME_ZONE=zone):
        response = client.get(f"{_url(page, inbox, pk)}?{query_string(pairs)}", headers=headers)
        _read(response)
    assert response.status_code < 500


@pytest.mark.parametrize(
    "page", ["/", "/messages/new/", "/messages/{message}/", "/messages/export.ndjson", "/messages/export.csv"]
)
@FUZZ
@given(expression=filters, rest=st.tuples(params, ZONES))
def test_it_never_answers_a_json_path_filter_with_a_5xx(
    client: Client, inbox: dict[str, int], page: str, expression: str, rest: tuple[list[Any], str]
) -> None:
    extra, zone = rest
    pairs = [("json", expression), ("since", "0_0"), *extra]
    with override_settings(TIME_ZONE=zone):
        response = client.get(f"{_url(page, inbox, 'real')}?{query_string(pairs)}")
        _read(response)
    assert response.status_code < 500


BULK_ACTIONS = ["replay", "delete", "mark_read", "mark_unread", "compare"]
actions = st.one_of(
    st.sampled_from(BULK_ACTIONS + [f"{a}_all" for a in BULK_ACTIONS]), junk.filter(lambda v: isinstance(v, str))
)


@FUZZ
@given(
    query=params,
    chosen=st.tuples(
        actions, st.lists(st.one_of(st.just("real"), junk.filter(lambda v: isinstance(v, str))), max_size=5)
    ),
    zone=ZONES,
)
def test_it_never_answers_a_bulk_action_with_a_5xx_nor_fails_its_job(
    client: Client, inbox: dict[str, int], query: list[Any], chosen: tuple[str, list[str]], zone: str
) -> None:
    action, ids = chosen
    while Message.objects.count() < 3:  # earlier examples deleted them: fill up again
        make_message(Endpoint.objects.get(pk=inbox["endpoint"]))
    real = str(Message.objects.values_list("pk", flat=True).first())
    form = [("action", action), *(("ids", real if v == "real" else v) for v in ids)]
    with override_settings(TIME_ZONE=zone):
        # The body percent-encoded like the query string: a lone surrogate arrives as bytes.
        response = client.post(
            f"/messages/bulk/?{query_string(query)}",
            query_string(form),
            content_type="application/x-www-form-urlencoded",
        )
        _read(response)
        assert response.status_code < 500
        run_worker()
    assert not BulkJob.objects.filter(status=JobStatus.FAILED).exists(), BulkJob.objects.values("error").first()


# Filters with a closed set of values: anything else must be refused, never read as "any".
CLOSED_FILTERS = {
    "read": {"true", "false"},
    "method": {"POST", "PUT", "PATCH", "DELETE", "GET"},
    "verification": {"verified", "unverified"},
    "status": {"pending", "processed", "failed", "skipped"},
}


@FUZZ
@given(name=st.sampled_from([*CLOSED_FILTERS, "endpoint"]), value=junk.filter(lambda v: isinstance(v, str)))
def test_an_invalid_filter_value_never_shows_every_row(
    client: Client, inbox: dict[str, int], name: str, value: str
) -> None:
    if name == "endpoint":
        # Django reads the id as Python's int() does ("0_1" and an Arabic-Indic one are endpoint 1): one
        # endpoint's rows, not every row.
        try:
            valid = value == "" or (int(value.strip()) >= 0 and "\x00" not in value)
        except ValueError:
            valid = False
    else:
        valid = value in CLOSED_FILTERS[name] or value == ""
    if valid:
        return
    listed = client.get("/?" + query_string([(name, value)]))
    assert listed.status_code < 500
    page = listed.content.decode()
    if listed.status_code == 400:
        # A NUL is refused before any page (inbox/middleware.py): a 400 with the reason.
        assert "NUL" in page
    else:
        assert 'role="alert"' in page, (name, value)  # the reason, in place of the rows
    assert 'class="messages"' not in page
    exported = client.get("/messages/export.ndjson?" + query_string([(name, value)]))
    assert exported.status_code == 400
    polled = client.get("/messages/new/?" + query_string([(name, value), ("since", "0_0")]))
    assert polled.status_code == 400


@FUZZ
@given(name=st.sampled_from(["endpoint", "before"]), value=junk.filter(lambda v: isinstance(v, str) and v != ""))
def test_the_audit_log_never_widens_to_everything_on_an_invalid_value(
    client: Client, inbox: dict[str, int], name: str, value: str
) -> None:
    response = client.get("/audit/?" + query_string([(name, value)]))
    if value.isascii() and value.isdigit() and len(value) <= 18:
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        # A NUL is refused before any page (inbox/middleware.py), anything else by the log.
        assert "nothing is shown" in response.content.decode() or "NUL" in response.content.decode()
