"""Durable counters (inbox/counters.py): counted in memory, written in one statement, kept
when a write fails, and free for the receiver."""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client

from inbox import counters
from inbox.models import Counter, Endpoint
from tests.conftest import make_endpoint

pytestmark = pytest.mark.django_db

ORDER = b'{"type": "order.paid"}'


def deliver(client: Client, endpoint: Endpoint, token: str | None, **headers: str) -> int:
    headers = {endpoint.token_header: token or "", **headers}
    return client.post(endpoint.path, data=ORDER, content_type="application/json", headers=headers).status_code


def stored(endpoint: Endpoint) -> dict[str, int]:
    """What the database holds, without this process's unwritten counts."""
    return Counter.objects.for_endpoint(endpoint.pk)


def test_it_writes_nothing_until_flushed_then_everything_in_one_statement(
    provider: Client, django_assert_num_queries: Any
) -> None:
    endpoint, token = make_endpoint()
    assert deliver(provider, endpoint, token) == 200
    assert deliver(provider, endpoint, "wrong") == 403
    assert stored(endpoint)["received"] == 0  # counted in memory only

    with django_assert_num_queries(1):
        assert counters.flush()
    assert stored(endpoint) == {"received": 1, "rejected": 1, "rate_limited": 0, "duplicate": 0, "forward_attempts": 0}
    assert counters.pending() == {}


def test_it_keeps_the_counts_of_a_failed_write_for_the_next_one(
    provider: Client, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint, token = make_endpoint()
    assert deliver(provider, endpoint, token) == 200
    with mock.patch.object(Counter.objects, "add", side_effect=OperationalError("the database went away")):
        assert not counters.flush()
    assert "could not write 1 counter series; kept for the next flush" in caplog.text
    assert stored(endpoint)["received"] == 0
    assert deliver(provider, endpoint, token) == 200  # counted meanwhile: added to what was kept

    assert counters.flush()
    assert stored(endpoint)["received"] == 2
    assert counters.flush()  # nothing left to write twice
    assert stored(endpoint)["received"] == 2


def test_it_adds_to_what_is_stored_rather_than_replacing_it(provider: Client) -> None:
    endpoint, token = make_endpoint()
    for _ in range(3):
        assert deliver(provider, endpoint, token) == 200
        assert counters.flush()
    assert stored(endpoint)["received"] == 3


def test_it_loses_no_count_made_by_many_threads_at_once() -> None:
    endpoint, _ = make_endpoint()

    def count() -> None:
        for _ in range(2000):
            counters.add(counters.RATE_LIMITED, endpoint.pk)

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counters.flush()
    assert stored(endpoint)["rate_limited"] == 16000


# --- The receiver's budget ---------------------------------------------------------------------
def test_it_still_costs_one_query_per_accepted_message(provider: Client, django_assert_num_queries: Any) -> None:
    endpoint, token = make_endpoint()
    assert deliver(provider, endpoint, token) == 200  # warms the in-process endpoint cache
    with django_assert_num_queries(1):
        assert deliver(provider, endpoint, token, **{"Idempotency-Key": "a"}) == 200
    with django_assert_num_queries(1):  # a duplicate: the same INSERT, nothing stored
        assert deliver(provider, endpoint, token, **{"Idempotency-Key": "a"}) == 200


def test_a_rate_limited_delivery_costs_no_query_and_a_refused_one_only_its_log_row(
    provider: Client, django_assert_num_queries: Any
) -> None:
    endpoint, token = make_endpoint(rate_limit="1/m")
    assert deliver(provider, endpoint, token) == 200
    with django_assert_num_queries(0):
        assert deliver(provider, endpoint, token) == 429
    other, _ = make_endpoint("other")
    deliver(provider, other, "wrong")  # warms the cache
    with django_assert_num_queries(1):  # the RejectedAttempt row, as before
        assert deliver(provider, other, "wrong") == 403
    assert counters.flush()
    assert stored(endpoint)["rate_limited"] == 1
    assert stored(other)["rejected"] == 2


# --- The endpoint page -----------------------------------------------------------------------
def test_the_endpoint_page_shows_the_durable_counts(provider: Client, staff_client: Client) -> None:
    endpoint, token = make_endpoint()
    assert deliver(provider, endpoint, token, **{"Idempotency-Key": "a"}) == 200
    assert deliver(provider, endpoint, token, **{"Idempotency-Key": "a"}) == 200
    assert deliver(provider, endpoint, "wrong") == 403

    html = staff_client.get(f"/endpoints/{endpoint.pk}/").content.decode()
    assert "<dt>Rejected</dt><dd>1</dd>" in html
    assert "<dt>Duplicates</dt><dd>1</dd>" in html
    assert "since the cache started" not in html
