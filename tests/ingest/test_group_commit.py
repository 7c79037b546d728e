"""Group commit: concurrent deliveries share one INSERT and one commit, and each still gets
its own truthful answer (stored, duplicate, or 503)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import IntegrityError, OperationalError, close_old_connections, connection
from django.test import Client

from inbox.ingest.groupcommit import GroupCommit, GroupCommitError
from inbox.ingest.store import IDLE_CHECK_SECONDS, insert_messages
from inbox.models import Message
from tests.conftest import make_endpoint


class Recorder:
    """A write function that records its batches; the first call waits for a signal, so the
    requests that arrive meanwhile pile up behind it as they would behind a slow INSERT."""

    def __init__(self, refuse: Callable[[list[str]], Exception | None] = lambda batch: None) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.refuse = refuse

    def __call__(self, batch: list[str]) -> Sequence[bool]:
        if not self.batches:
            self.batches.append(list(batch))
            self.release.wait(5)
        else:
            self.batches.append(list(batch))
        error = self.refuse(batch)
        if error is not None:
            raise error
        return [not item.startswith("dup") for item in batch]


def run_behind_a_slow_first_write(writer: GroupCommit[str, bool], recorder: Recorder, items: list[str]) -> list[object]:
    """Insert items[0] first; once it is writing, the rest from their own threads."""
    outcomes: dict[str, object] = {}

    def insert(item: str) -> None:
        try:
            outcomes[item] = writer.submit(item)
        except Exception as exc:  # the outcome under test
            outcomes[item] = exc

    first = threading.Thread(target=insert, args=(items[0],))
    first.start()
    while not recorder.batches:
        threading.Event().wait(0.001)
    others = [threading.Thread(target=insert, args=(item,)) for item in items[1:]]
    for thread in others:
        thread.start()
    while len(writer._queue) < len(items) - 1:  # all queued behind the first write
        threading.Event().wait(0.001)
    recorder.release.set()
    for thread in [first, *others]:
        thread.join(5)
    return [outcomes[item] for item in items]


def test_it_writes_requests_that_arrive_during_an_insert_in_one_batch() -> None:
    recorder = Recorder()
    writer: GroupCommit[str, bool] = GroupCommit(recorder)
    items = ["first", "a", "b", "dup-c", "d", "e"]
    outcomes = run_behind_a_slow_first_write(writer, recorder, items)
    assert recorder.batches[0] == ["first"]
    assert sorted(recorder.batches[1]) == ["a", "b", "d", "dup-c", "e"]  # one INSERT for five requests
    assert len(recorder.batches) == 2
    assert outcomes == [True, True, True, False, True, True]


def test_it_writes_a_lone_request_at_once() -> None:
    recorder = Recorder()
    recorder.release.set()
    writer: GroupCommit[str, bool] = GroupCommit(recorder)
    assert writer.submit("only") is True
    assert writer.submit("dup-next") is False
    assert recorder.batches == [["only"], ["dup-next"]]


def test_it_fails_only_the_request_whose_row_the_database_refused() -> None:
    def refuse(batch: list[str]) -> Exception | None:
        return IntegrityError("bad row") if "bad" in batch else None

    recorder = Recorder(refuse)
    writer: GroupCommit[str, bool] = GroupCommit(recorder, retry_one_by_one=(IntegrityError,))
    outcomes = run_behind_a_slow_first_write(writer, recorder, ["first", "a", "bad", "b"])
    assert outcomes[:2] == [True, True]
    assert isinstance(outcomes[2], GroupCommitError)
    assert outcomes[3] is True


def test_it_fails_every_request_of_the_batch_when_the_database_is_unreachable() -> None:
    def refuse(batch: list[str]) -> Exception | None:
        return OperationalError("connection refused") if len(batch) > 1 else None

    recorder = Recorder(refuse)
    writer: GroupCommit[str, bool] = GroupCommit(recorder, retry_one_by_one=(IntegrityError,))
    outcomes = run_behind_a_slow_first_write(writer, recorder, ["first", "a", "b"])
    assert outcomes[0] is True
    assert all(isinstance(outcome, GroupCommitError) for outcome in outcomes[1:])
    # Nothing was retried row by row: the database was down, not one row bad.
    assert len(recorder.batches) == 2


@pytest.mark.django_db
def test_it_matches_each_inserted_row_to_its_message() -> None:
    endpoint, _ = make_endpoint()
    seen = Message(endpoint=endpoint, method="POST", idempotency_key="evt_seen", headers={})
    seen.set_body(b"seen")
    assert insert_messages([seen]) == [True]

    batch = []
    for n, key in enumerate([None, "evt_seen", "evt_new", None, "evt_new", "evt_other"]):
        message = Message(endpoint=endpoint, method="POST", idempotency_key=key, headers={})
        message.set_body(f"body {n}".encode())
        batch.append(message)
    assert insert_messages(batch) == [True, False, True, True, False, True]
    for message in batch:
        if message.pk is not None:
            assert Message.objects.get(pk=message.pk).body_text == message.body_text
    assert Message.objects.filter(endpoint=endpoint).count() == 5


@pytest.mark.django_db(transaction=True)
def test_it_stores_every_concurrent_delivery_once() -> None:
    endpoint, token = make_endpoint(rate_limit="10000/m")
    url = f"/hooks/{endpoint.slug}/"

    def deliver(n: int) -> int:
        # Every third delivery repeats an earlier key: a provider's retry.
        key = f"evt_{n - n % 3}"
        response = Client().post(
            url,
            b'{"n": %d}' % n,
            content_type="application/json",
            headers={"X-Webhook-Token": token or "", "Idempotency-Key": key},
        )
        connection.close()
        return response.status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(deliver, range(48)))
    assert statuses == [200] * 48
    assert Message.objects.filter(endpoint=endpoint).count() == 16
    assert sorted(Message.objects.filter(endpoint=endpoint).values_list("idempotency_key", flat=True)) == sorted(
        {f"idempotency-key:evt_{n - n % 3}" for n in range(48)}
    )


@pytest.mark.django_db(transaction=True)
def test_it_replaces_a_connection_the_database_dropped_while_idle() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a server-side disconnect needs PostgreSQL")
    endpoint, token = make_endpoint()
    provider = Client()

    def deliver() -> int:
        response = provider.post(
            f"/hooks/{endpoint.slug}/", b"{}", content_type="application/json", headers={"X-Webhook-Token": token or ""}
        )
        return int(response.status_code)

    assert deliver() == 200
    # A restart, a failover or an idle timeout ends the server side of the connection.
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"], dbname=settings["NAME"], autocommit=True
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    # What the WSGI handler does as each request starts (the test client leaves it out):
    # connections are due a health check again, which the receiver runs on a connection
    # that sat idle.
    close_old_connections()
    time.sleep(IDLE_CHECK_SECONDS + 0.1)
    assert deliver() == 200
    assert Message.objects.filter(endpoint=endpoint).count() == 2
