"""Search indexes off the receiver's hot INSERT: on PostgreSQL the receiver only appends to
the GIN indexes' pending lists and the worker merges them every 2 s; a message is found by
search and by the JSON path filter the moment it is stored, before and after that flush
(docs/architecture.md, "Search indexes")."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from inbox import jsonpath, models
from inbox.models import SEARCH_INDEXES, Message
from inbox.tasks import (
    SEARCH_FLUSH_PRIORITY,
    flush_search_indexes,
    housekeeping,
    process_message,
    schedule_periodic,
)
from tests.api.conftest import Api, api_as
from tests.conftest import is_postgres, make_endpoint, make_message

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif("not is_postgres()", reason="the GIN search indexes are PostgreSQL's")

RARE = b'{"type": "invoice.paid", "data": {"object": {"id": "in_fresh_4711", "status": "paid"}}}'


def deliver(provider: Client) -> Message:
    endpoint, token = make_endpoint()
    for _ in range(3):
        make_message(endpoint, b'{"type": "invoice.paid", "data": {"object": {"id": "in_other", "status": "paid"}}}')
    response = provider.post(
        endpoint.path, data=RARE, content_type="application/json", headers={endpoint.token_header: token}
    )
    assert response.status_code == 200
    return Message.objects.get(json__data__object__id="in_fresh_4711")


def found_everywhere(staff_client: Client, api: Api, message: Message) -> list[str]:
    """Where the message is found by its rare string and its JSON path; [] when nowhere."""
    places = []
    if message in Message.objects.search("IN_FRESH_4711"):
        places.append("search")
    if message in Message.objects.json_path(jsonpath.parse("data.object.id = in_fresh_4711")):
        places.append("json path")
    if f'value="{message.pk}"' in staff_client.get("/", {"q": "in_fresh_4711"}).content.decode():
        places.append("list with q")
    list_page = staff_client.get("/", {"json": "data.object.id = in_fresh_4711"}).content.decode()
    if f'value="{message.pk}"' in list_page:
        places.append("list with json")
    export = b"".join(staff_client.get("/messages/export.ndjson", {"q": "in_fresh_4711"}).streaming_content)
    if any(json.loads(line)["id"] == message.pk for line in export.splitlines()):
        places.append("export")
    if any(item["id"] == message.pk for item in api.get("/api/v1/messages/", {"q": "in_fresh_4711"}).json()["results"]):
        places.append("api")
    return places


@postgresql_only
def test_it_gives_the_search_indexes_large_pending_lists() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s) ORDER BY relname", [list(SEARCH_INDEXES)]
        )
        options = dict(cursor.fetchall())
    assert options == {name: ["fastupdate=on", "gin_pending_list_limit=32768"] for name in SEARCH_INDEXES}


def test_it_finds_a_delivery_the_moment_it_is_stored_and_after_the_flush(
    provider: Client, staff_client: Client, staff: object
) -> None:
    Message.objects.flush_search_indexes()  # whatever earlier tests left in the lists
    api = api_as(staff, "read")  # type: ignore[arg-type]
    message = deliver(provider)
    everywhere = ["search", "json path", "list with q", "list with json", "export", "api"]
    assert found_everywhere(staff_client, api, message) == everywhere

    merged = flush_search_indexes.call()
    # The receiver's INSERT left its entries in the pending lists rather than merging them.
    assert (merged > 0) is is_postgres(), "SQLite has no search indexes"
    assert found_everywhere(staff_client, api, message) == everywhere
    assert Message.objects.flush_search_indexes() == 0, "the lists are empty after a flush"


@postgresql_only
def test_it_finds_a_delivery_through_the_indexes_while_it_is_only_in_their_pending_lists(provider: Client) -> None:
    Message.objects.flush_search_indexes()
    message = deliver(provider)
    with connection.cursor() as cursor:
        # A table of a few rows would be read whole: make the planner use the GIN indexes,
        # as it does at 300,000 rows (docs/performance.md).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        for queryset, indexes in (
            (Message.objects.search("in_fresh_4711"), ["message_body_trgm", "message_headers_trgm"]),
            (Message.objects.json_path(jsonpath.parse("data.object.id = in_fresh_4711")), ["message_json_path"]),
        ):
            sql, params = queryset.query.sql_with_params()
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert all(index in plan for index in indexes), plan
            assert list(queryset) == [message]


@postgresql_only
def test_it_logs_a_missing_search_index_once_and_flushes_the_others(
    provider: Client, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "_UNFLUSHED_REPORTED", set())
    deliver(provider)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX message_json_path")  # undone with the test's transaction
    with caplog.at_level(logging.WARNING, logger="inbox.models"):
        assert flush_search_indexes.call() > 0, "the trigram indexes' lists were still merged"
        flush_search_indexes.call()
    assert [r.getMessage() for r in caplog.records] == [
        "search index message_json_path was not flushed: the index is missing"
    ]
    assert DBTaskResult.objects.filter(task_path=flush_search_indexes.module_path, status="READY").exists()


def test_it_flushes_every_two_seconds_above_processing_and_keeps_few_of_its_rows() -> None:
    old = flush_search_indexes.enqueue()
    DBTaskResult.objects.filter(pk=old.id).update(
        status="SUCCESSFUL", finished_at=timezone.now() - timedelta(minutes=5)
    )
    recent = flush_search_indexes.enqueue()
    DBTaskResult.objects.filter(pk=recent.id).update(status="SUCCESSFUL", finished_at=timezone.now())
    other = process_message.enqueue(1)
    DBTaskResult.objects.filter(pk=other.id).update(
        status="SUCCESSFUL", finished_at=timezone.now() - timedelta(minutes=5)
    )

    flush_search_indexes.call()
    assert not DBTaskResult.objects.filter(pk=old.id).exists()
    assert DBTaskResult.objects.filter(pk__in=[recent.id, other.id]).count() == 2
    waiting = DBTaskResult.objects.get(status="READY", task_path=flush_search_indexes.module_path)
    assert timezone.now() + timedelta(seconds=1) < waiting.run_after < timezone.now() + timedelta(seconds=3)
    assert waiting.priority == SEARCH_FLUSH_PRIORITY > process_message.priority, "a backlog must not starve it"


def test_it_starts_the_flush_chain_on_postgresql_only_and_housekeeping_restarts_it() -> None:
    assert ("search index flush" in schedule_periodic()) is is_postgres()
    flushes = DBTaskResult.objects.filter(task_path=flush_search_indexes.module_path, status="READY")
    assert flushes.count() == (1 if is_postgres() else 0)

    flushes.delete()  # a worker killed between two flushes broke the chain
    housekeeping.call()
    assert flushes.count() == (1 if is_postgres() else 0)
