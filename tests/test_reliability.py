"""Reliability, black box: crashes and outages against the real server and worker.

Each test starts granian and, where it needs one, `manage.py db_worker` as subprocesses (the
way `make run` does) on a database of its own, drives them over HTTP like a provider, and
reads the outcome straight from the database. Nothing here imports the receiver, so the
tests hold whatever way the receiver stores a message.

What a user relies on (docs/architecture.md, "The ingest pipeline", item 10; README "The receiver", 7-8):
a 2xx means the message is stored, exactly once, and its processing will happen; a database
that does not answer gives 503 with Retry-After, never a 2xx and never a 500; a rate-limit
cache that does not answer follows the endpoint's fail-open / fail-closed setting.

Variants: SQLite always; PostgreSQL when DATABASE_URL is set and the server answers (a
scratch database `inbox_reliability` is created and dropped); Redis when 127.0.0.1:6379
answers (db 13, only keys under the app's `inbox` prefix are touched).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.sql
import pytest
import redis

from tests.servers import (
    HOST,
    Load,
    Service,
    TcpProxy,
    app_env,
    body_of,
    create_endpoint,
    free_port,
    get,
    manage,
    post,
    start_web,
    start_worker,
    wait_for,
    wait_healthy,
)

SCRATCH_DB = "inbox_reliability"
REDIS_DB = 13
# High enough that the load below never meets the rate limit (all clients are 127.0.0.1).
NO_LIMIT = "100000/m"
ACCEPTED = 200
UNAVAILABLE = 503


# --- Databases, read directly ----------------------------------------------------------------
@dataclass
class Database:
    """The app's database as the tests see it: the env that points the app at it, and a
    direct connection (never through a test proxy) to read what was stored."""

    vendor: str
    env: dict[str, str]
    direct_url: str = ""
    sqlite_path: Path | None = None
    _connection: Any = field(default=None, repr=False)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self._connection is None:
            if self.sqlite_path is not None:
                # Autocommit, so every read sees the latest commit (WAL lets us read while it writes).
                self._connection = sqlite3.connect(self.sqlite_path, timeout=20, isolation_level=None)
            else:
                self._connection = psycopg.connect(self.direct_url, autocommit=True)
        return list(self._connection.execute(sql).fetchall())

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()

    def messages(self, endpoint_id: int) -> list[StoredMessage]:
        found = self.rows(
            "SELECT id, body_text, status, headers FROM inbox_message "  # noqa: S608 - an int we created
            f"WHERE endpoint_id = {int(endpoint_id)} ORDER BY id"
        )
        return [
            StoredMessage(pk, body, status, json.loads(headers) if isinstance(headers, str) else headers)
            for pk, body, status, headers in found
        ]


@dataclass(frozen=True)
class StoredMessage:
    pk: int
    body: str | None
    status: str
    headers: dict[str, str]


def _with_database(url: str, name: str, port: int | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if port is not None:
        netloc = f"{netloc.rpartition('@')[0]}@{HOST}:{port}" if "@" in netloc else f"{HOST}:{port}"
    return urlunsplit((parts.scheme, netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    """A fresh PostgreSQL database for the app under test; its direct URL. Created through the
    DATABASE_URL the test run was given (the admin connection) and dropped afterwards."""
    admin = os.environ.get("DATABASE_URL", "")
    if not admin.startswith(("postgres://", "postgresql://")):
        pytest.skip("PostgreSQL variant: set DATABASE_URL=postgres://...")
    try:
        connection = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    name = psycopg.sql.Identifier(SCRATCH_DB)
    with connection:
        # WITH (FORCE): a previous run that was killed may have left sessions behind.
        connection.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(name))
    try:
        yield _with_database(admin, SCRATCH_DB)
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as connection:
            connection.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "inbox.sqlite3"
        found = Database("sqlite", {"SQLITE_PATH": str(path)}, sqlite_path=path)
    else:
        url: str = request.getfixturevalue("scratch_postgres")
        found = Database("postgresql", {"DATABASE_URL": url}, direct_url=url)
    yield found
    found.close()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """Every process a test starts goes here, so that none outlives a failing test."""
    started: list[Service] = []
    yield started
    for service in started:
        service.stop()  # also ends what is left of a killed group


def _diagnose(services: list[Service]) -> str:
    return "\n".join(f"--- {s.name} log (tail) ---\n{s.log()[-4000:]}" for s in services[-2:])


def _is_2xx(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


# --- 1. Crash: kill -9 the server and the worker under load ----------------------------------
# The recovery sweep (inbox.delivery.processing.recover) runs in the minutely housekeeping task and only
# requeues a pending message once its wake-up is 30 s overdue and its lease has lapsed. To keep
# this test short, the lease is 2 s (INBOX_PROCESSING_LEASE_SECONDS, a real setting) and the
# test runs the sweep itself every second through `manage.py shell -c`, with its clock 31 s
# ahead: exactly the sweep a housekeeping run would make half a minute later. The retry delay
# is shortened too (INBOX_RETRY_BASE_SECONDS), because forwards that failed while the server
# was down would otherwise come back 40 s later.
SWEEP = (
    "from datetime import timedelta; from django.utils import timezone; "
    "from inbox.delivery.processing import recover; print(recover(now=timezone.now() + timedelta(seconds=31)))"
)


def test_it_loses_no_acknowledged_message_when_server_and_worker_are_killed(
    database: Database, services: list[Service], tmp_path: Path
) -> None:
    port = free_port()
    env = app_env(
        tmp_path / "var",
        port,
        INBOX_PROCESSING_LEASE_SECONDS="2",
        INBOX_RETRY_BASE_SECONDS="0.5",
        INBOX_RETRY_FACTOR="1.5",
        **database.env,
    )
    manage(env, "migrate", "--no-input")
    manage(env, "schedule_tasks")  # as `make run` does: the housekeeping chain runs too
    catcher = create_endpoint(env, "catcher", "--auth", "none", "--rate", NO_LIMIT)
    relay = create_endpoint(env, "relay", "--auth", "none", "--rate", NO_LIMIT, "--forward-to", catcher["url"])

    def start() -> tuple[Service, Service]:
        web = start_web(env, port, tmp_path / "web.log")
        worker = start_worker(env, tmp_path / "worker.log")
        services.extend((web, worker))
        wait_healthy(port, web)
        return web, worker

    def held_by_a_worker() -> bool:
        # A relay message claimed right now: killing the worker at this moment leaves it
        # leased with its attempt open, the case only the recovery sweep can repair.
        return bool(
            database.rows(
                "SELECT 1 FROM inbox_message WHERE status = 'pending' AND lease_until IS NOT NULL "  # noqa: S608
                f"AND endpoint_id = {int(relay['id'])} LIMIT 1"
            )
        )

    web, worker = start()
    load = Load(port, urlsplit(relay["url"]).path, threads=4, pace=0.08)
    load.start()
    try:
        time.sleep(2)
        wait_for(held_by_a_worker, timeout=3, interval=0.002)
        worker.kill()
        web.kill()
        claimed_when_killed = held_by_a_worker()
        time.sleep(0.5)  # clients keep posting into a dead port, and retry
        web, worker = start()
        time.sleep(2.5)
    finally:
        load.stop()
    print(f"{database.vendor}: a claim was held when the worker was killed: {claimed_when_killed}")

    # The server never answered anything but "stored" or "retry later".
    answered = {t.status for t in load.tries} - {None}
    assert answered <= {ACCEPTED, UNAVAILABLE}, f"unexpected answers {answered}\n{_diagnose(services)}"

    # Every acknowledged payload is stored, once: a 2xx is a promise to the provider, which
    # will never send it again. Retries of unacknowledged ones carry the same
    # Idempotency-Key, so nothing is stored twice either.
    acknowledged = load.acknowledged
    assert len(acknowledged) > 50, "the load produced too little to say anything"
    stored = Counter(m.body for m in database.messages(relay["id"]))
    missing = sorted(n for n in acknowledged if stored[body_of(n)] == 0)
    assert not missing, f"acknowledged but not stored: {missing[:20]} ({len(missing)} in all)"
    twice = sorted(str(body) for body, count in stored.items() if count > 1)
    assert not twice, f"stored more than once: {twice[:20]}"

    # Every stored relay message is forwarded: a message claimed by the killed worker, or
    # whose wake-up the killed server never queued, is handed out again by the sweep. The
    # sweep runs whenever the worker stops making progress on its own (starting Django for
    # it costs half a second of CPU that the worker would otherwise use).
    waited = time.monotonic()
    deadline, last, stalled_since, sweeps = waited + 25, -1, time.monotonic(), 0
    while time.monotonic() < deadline:
        left = sum(1 for m in database.messages(relay["id"]) if m.status != "processed")
        if not left:
            break
        if left != last:
            last, stalled_since = left, time.monotonic()
        elif time.monotonic() - stalled_since > 1:
            manage(env, "shell", "-c", SWEEP)
            sweeps, stalled_since = sweeps + 1, time.monotonic()
        time.sleep(0.25)
    print(
        f"{database.vendor}: {len(acknowledged)} acknowledged; {left} left unprocessed "
        f"after {time.monotonic() - waited:.1f} s and {sweeps} sweeps"
    )
    relayed = database.messages(relay["id"])
    not_processed = [(m.pk, m.status) for m in relayed if m.status != "processed"]
    assert not not_processed, f"not processed: {not_processed[:20]} ({len(not_processed)})\n{_diagnose(services)}"
    forwarded: dict[str, set[str | None]] = {}
    for caught in database.messages(catcher["id"]):
        forwarded.setdefault(caught.headers.get("X-Webhook-Inbox-Message-Id", ""), set()).add(caught.body)
    not_forwarded = [m.pk for m in relayed if m.body not in forwarded.get(str(m.pk), set())]
    assert not not_forwarded, f"processed but never reached the catcher: {not_forwarded[:20]}"


# --- 2. Database outage (PostgreSQL) -----------------------------------------------------------
class HealthPoller:
    """GET /healthz every 0.1 s in a thread, recording (started, ended, status)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: list[tuple[float, float, int | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status: int | None = get(self.port, "/healthz", timeout=10)[0]
            except OSError:
                status = None
            self.seen.append((started, time.monotonic(), status))
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def test_it_answers_503_while_the_database_is_down_and_recovers_without_a_restart(
    scratch_postgres: str, services: list[Service], tmp_path: Path
) -> None:
    upstream = urlsplit(scratch_postgres)
    proxy = TcpProxy(upstream.hostname or HOST, upstream.port or 5432)
    port = free_port()
    database = Database("postgresql", {}, direct_url=scratch_postgres)
    try:
        direct = app_env(tmp_path / "var", port, DATABASE_URL=scratch_postgres)
        manage(direct, "migrate", "--no-input")
        inbox = create_endpoint(direct, "inbox", "--auth", "none", "--rate", NO_LIMIT)
        env = app_env(
            tmp_path / "var", port, DATABASE_URL=_with_database(scratch_postgres, SCRATCH_DB, port=proxy.port)
        )
        web = start_web(env, port, tmp_path / "web.log")
        services.append(web)
        wait_healthy(port, web)

        health = HealthPoller(port)
        load = Load(port, urlsplit(inbox["url"]).path, threads=4, pace=0.03)
        load.start()
        try:
            time.sleep(1.5)
            proxy.cut()
            cut_at = time.monotonic()
            time.sleep(2)
            restored_at = time.monotonic()
            proxy.restore()
            # It accepts again by itself: no restart, no operator.
            recovered = wait_for(
                lambda: any(t.started > restored_at and _is_2xx(t.status) for t in list(load.tries)), timeout=10
            )
            time.sleep(1.5)
        finally:
            load.stop()
            health.stop()
        tries = list(load.tries)

        # Never a 500, never a dropped connection or a hang (the client waits 10 s).
        unexpected = [t for t in tries if t.status not in (ACCEPTED, UNAVAILABLE)]
        assert not unexpected, f"unexpected answers: {unexpected[:10]}\n{_diagnose(services)}"

        # While the database was away, every delivery was refused with a retry hint.
        during = [t for t in tries if t.started >= cut_at and t.ended <= restored_at]
        assert len(during) >= 10, f"too few deliveries during the outage to judge: {len(during)}"
        wrong = [t for t in during if t.status != UNAVAILABLE or not t.retry_after]
        assert not wrong, f"during the outage: {wrong[:10]}"

        assert recovered, "no delivery was accepted within 10 s of the database coming back"
        first_back = min(t.ended for t in tries if t.started > restored_at and _is_2xx(t.status))
        late_refusals = [t for t in tries if t.started > first_back + 1 and not _is_2xx(t.status)]
        assert not late_refusals, f"still refusing after the database came back: {late_refusals[:10]}"
        print(
            f"{len(during)} deliveries during the outage, all 503; accepted again "
            f"{first_back - restored_at:.2f} s after the database came back"
        )

        # A 2xx is a promise: stored, exactly once (retries share an Idempotency-Key).
        stored = Counter(m.body for m in database.messages(inbox["id"]))
        missing = sorted(n for n in load.acknowledged if stored[body_of(n)] != 1)
        assert not missing, f"acknowledged but stored {[stored[body_of(n)] for n in missing[:10]]} times: {missing}"
        assert max(stored.values()) == 1

        # /healthz tells the load balancer the truth, and recovers on its own too.
        health_during = [s for started, ended, s in health.seen if started >= cut_at and ended <= restored_at]
        assert health_during, "no health check ran during the outage"
        assert set(health_during) == {UNAVAILABLE}, health_during
        assert health.seen[-1][2] == 200, health.seen[-5:]
    finally:
        proxy.close()
        database.close()


# --- 3. Redis outage: fail open or closed, per endpoint -----------------------------------------
def _redis_available() -> bool:
    try:
        socket.create_connection((HOST, 6379), timeout=1).close()
    except OSError:
        return False
    return True


def _forget_rate_counters() -> None:
    # Only this app's keys in the test's own database: counters of a previous run (same
    # endpoint ids, same client address) would otherwise count against this one.
    client = redis.Redis(host=HOST, port=6379, db=REDIS_DB)
    try:
        for key in client.scan_iter("inbox:*"):
            client.delete(key)
    finally:
        client.close()


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: str | None
    seconds: float


def _deliver(port: int, endpoint: dict[str, Any], n: int) -> Answer:
    started = time.monotonic()
    status, headers, _ = post(port, urlsplit(endpoint["url"]).path, body_of(n).encode(), timeout=10)
    return Answer(status, headers.get("retry-after"), time.monotonic() - started)


def test_it_follows_each_endpoints_fail_open_setting_while_redis_is_down(
    services: list[Service], tmp_path: Path
) -> None:
    if not _redis_available():
        pytest.skip("Redis variant: needs Redis on 127.0.0.1:6379")
    _forget_rate_counters()
    proxy = TcpProxy(HOST, 6379)
    port = free_port()
    database = Database("sqlite", {}, sqlite_path=tmp_path / "inbox.sqlite3")
    try:
        # Two web processes: the rate-limit counters must live in Redis (check inbox.E001).
        env = app_env(
            tmp_path / "var",
            port,
            SQLITE_PATH=str(database.sqlite_path),
            REDIS_URL=f"redis://{HOST}:{proxy.port}/{REDIS_DB}",
            WEB_CONCURRENCY="2",
        )
        manage(env, "migrate", "--no-input")
        open_ = create_endpoint(env, "open", "--auth", "none")
        closed = create_endpoint(env, "closed", "--auth", "none")
        limited = create_endpoint(env, "limited", "--auth", "none", "--rate", "3/m")
        manage(
            env,
            "shell",
            "-c",
            f"from inbox.models import Endpoint; Endpoint.objects.filter(pk={int(closed['id'])})"
            ".update(rate_limit_fail_open=False)",
        )
        web = start_web(env, port, tmp_path / "web.log", workers=2)
        services.append(web)
        wait_healthy(port, web)
        assert _deliver(port, open_, 0).status == ACCEPTED  # it works while Redis is up

        proxy.cut()
        # Several of each, on fresh connections, so both web processes meet the outage.
        opened = [_deliver(port, open_, n) for n in range(1, 7)]
        refused = [_deliver(port, closed, n) for n in range(1, 7)]
        health = get(port, "/healthz")[0]
        proxy.restore()

        # Fail open (the default): deliveries keep coming in, and are stored.
        assert [a.status for a in opened] == [ACCEPTED] * 6, opened
        stored_open = Counter(m.body for m in database.messages(open_["id"]))
        assert all(stored_open[body_of(n)] == 1 for n in range(7)), stored_open
        # Fail closed: 503 with a retry hint, and nothing stored that the provider will resend.
        assert [a.status for a in refused] == [UNAVAILABLE] * 6, refused
        assert all(a.retry_after for a in refused), refused
        assert database.messages(closed["id"]) == []
        # A dead cache must not stall ingest: the cache client is set to give up in 0.5 s.
        slowest = max(a.seconds for a in opened + refused)
        print(f"slowest answer while Redis was down: {slowest:.2f} s")
        assert slowest < 3, f"an answer took {slowest:.1f} s while Redis was down"
        # Operators can see why: the health check fails and the log says what is down.
        assert health == UNAVAILABLE
        assert "rate-limit cache unavailable" in web.log()

        # Redis is back: the shared counters limit again, across both web processes.
        wait_healthy(port, web, timeout=10)
        answers = [_deliver(port, limited, n) for n in range(1, 5)]
        assert [a.status for a in answers] == [ACCEPTED, ACCEPTED, ACCEPTED, 429], answers
        assert answers[-1].retry_after
        assert len(database.messages(limited["id"])) == 3
    finally:
        proxy.close()
        database.close()
        _forget_rate_counters()
