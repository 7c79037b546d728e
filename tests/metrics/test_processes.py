"""/metrics of the production setup: two web processes and a worker on PostgreSQL and Redis,
started the way `make run` starts them. The counts are right whichever process served each
delivery, and a Redis that loses everything (FLUSHDB, what a restart without persistence
does) loses none of them. Skipped without PostgreSQL and Redis (DATABASE_URL, REDIS_URL)."""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Catcher
from tests.servers import (
    HOST,
    Service,
    app_env,
    create_endpoint,
    free_port,
    manage,
    post,
    start_web,
    start_worker,
    wait_for,
    wait_healthy,
)

TOKEN = "metrics-token-0123456789abcdef"
NO_LIMIT = "100000/m"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def production() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database (named after the run's own) and the run's Redis db, flushed."""
    admin = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not admin.startswith(("postgres://", "postgresql://")) or not redis_url:
        pytest.skip("needs PostgreSQL and Redis: set DATABASE_URL=postgres://... and REDIS_URL")
    parts = urlsplit(admin)
    name = f"{parts.path.lstrip('/') or 'inbox'}_metrics"
    identifier = psycopg.sql.Identifier(name)
    # CREATE DATABASE from the server's own maintenance database: the run's may not exist yet.
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))
    try:
        connection = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    with connection:
        connection.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier))
        connection.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(identifier))
    redis.Redis.from_url(redis_url).flushdb()
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment)), redis_url
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as connection:
            connection.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier))


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.stop()


def scrape(port: int) -> Samples:
    status, _, body = _get_with_token(port)
    assert status == 200, body
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _get_with_token(port: int) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def send(port: int, endpoint: dict[str, Any], *, token: str | None = None, key: str = "") -> int:
    headers = {}
    if token is not None:
        headers[endpoint["token_header"]] = token
    if key:
        headers["Idempotency-Key"] = key
    status, _, _ = post(port, urlsplit(endpoint["url"]).path, b'{"type": "order.paid"}', headers)
    return status


def test_it_counts_right_across_two_web_processes_and_a_redis_that_lost_everything(
    production: tuple[str, str], services: list[Service], tmp_path: Path
) -> None:
    database_url, redis_url = production
    ok, failing = Catcher(), Catcher()
    failing.answers = [(500, b"down", {})]
    port = free_port()
    env = app_env(
        tmp_path / "var",
        port,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        WEB_CONCURRENCY="2",
        METRICS_TOKEN=TOKEN,
        INBOX_COUNTER_FLUSH_SECONDS="1",
        INBOX_RETRY_BASE_SECONDS="3600",  # one attempt per message within the test
    )
    try:
        manage(env, "migrate", "--no-input")
        shop = create_endpoint(env, "shop", "--rate", NO_LIMIT)
        limited = create_endpoint(env, "limited", "--rate", "3/m")
        relay = create_endpoint(env, "relay", "--auth", "none", "--rate", NO_LIMIT)
        ok_id = str(json.loads(manage(env, "add_destination", "relay", ok.url, "--json"))["id"])
        bad_id = str(json.loads(manage(env, "add_destination", "relay", failing.url, "--json"))["id"])
        web = start_web(env, port, tmp_path / "web.log", workers=2)
        services.append(web)
        services.append(start_worker(env, tmp_path / "worker.log"))
        wait_healthy(port, web)

        def traffic(round_: str) -> dict[str, list[int]]:
            # Concurrent clients on fresh connections: both web processes serve some.
            with ThreadPoolExecutor(8) as pool:
                jobs = {
                    "accepted": [
                        pool.submit(send, port, shop, token=shop["token"], key=f"{round_}-{n}") for n in range(30)
                    ],
                    "refused": [pool.submit(send, port, shop, token="wrong") for _ in range(6)],
                    "limited": [pool.submit(send, port, limited, token=limited["token"]) for _ in range(8)],
                    "relayed": [pool.submit(send, port, relay) for _ in range(4)],
                }
                answers = {kind: [job.result() for job in found] for kind, found in jobs.items()}
            duplicates = [send(port, shop, token=shop["token"], key=f"{round_}-{n}") for n in range(5)]
            answers["duplicates"] = duplicates
            return answers

        first = traffic("a")
        assert set(first["accepted"]) == {200}, first
        assert set(first["duplicates"]) == {200}, first
        assert set(first["refused"]) == {403}, first
        assert set(first["relayed"]) == {200}, first
        assert set(first["limited"]) == {200, 429}, first

        def expected(*rounds: dict[str, list[int]]) -> dict[tuple[str, str], float]:
            limited_ok = sum(r["limited"].count(200) for r in rounds)
            return {
                ("inbox_messages_received_total", "shop"): 30 * len(rounds),
                ("inbox_deliveries_duplicate_total", "shop"): 5 * len(rounds),
                ("inbox_deliveries_rejected_total", "shop"): 6 * len(rounds),
                ("inbox_messages_received_total", "limited"): limited_ok,
                ("inbox_deliveries_rate_limited_total", "limited"): 8 * len(rounds) - limited_ok,
                ("inbox_messages_received_total", "relay"): 4 * len(rounds),
            }

        def counted() -> dict[tuple[str, str], float]:
            samples = scrape(port)
            return {
                (name, labels[0][1]): value
                for (name, labels), value in samples.items()
                if labels and labels[0][0] == "endpoint" and (name, labels[0][1]) in expected(first)
            }

        def forwards(samples: Samples, destination: str, outcome: str) -> float:
            return samples[("inbox_forward_attempts_total", (("destination", destination), ("outcome", outcome)))]

        assert wait_for(lambda: counted() == expected(first), timeout=20), (counted(), expected(first))

        # The worker, a third process, counts the forward attempts.
        def forwarded() -> tuple[float, float, float]:
            samples = scrape(port)
            return (
                forwards(samples, ok_id, "succeeded"),
                forwards(samples, ok_id, "failed"),
                forwards(samples, bad_id, "failed"),
            )

        assert wait_for(lambda: forwarded() == (4, 0, 4), timeout=30), forwarded()

        # Redis loses everything: the rate-limit windows start again, the counts do not.
        redis.Redis.from_url(redis_url).flushdb()
        second = traffic("b")
        assert wait_for(lambda: counted() == expected(first, second), timeout=20), (counted(), expected(first, second))
    finally:
        ok.close()
        failing.close()
