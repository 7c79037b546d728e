"""The rate limit's shared counts, leased from Redis in batches (inbox/ingest/ratelimit.py)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import redis.connection
from django.conf import settings as django_settings
from django.test import Client

from inbox.ingest import ratelimit
from inbox.ingest.ratelimit import RateLimitCache
from tests.conftest import make_endpoint

pytestmark = pytest.mark.skipif(
    django_settings.RATELIMIT_USE_CACHE != "ratelimit", reason="the shared rate-limit cache needs REDIS_URL"
)


def process() -> RateLimitCache:
    """What one web process holds: its own cache instance, its own leases, the same Redis."""
    config = django_settings.CACHES["ratelimit"]
    return RateLimitCache(config["LOCATION"], config)


def counted(cache: RateLimitCache, key: str, rate: str) -> int:
    """One count, made the way django-ratelimit makes it (add, else incr)."""
    ratelimit.expect(rate)
    try:
        return 1 if cache.add(key, 1, 70) else cache.incr(key)
    finally:
        ratelimit.forget_expected()


def passes(caches: list[RateLimitCache], rate: str, requests: int, threads: int = 1) -> int:
    key = f"test:{uuid.uuid4().hex}"
    limit = int(rate.partition("/")[0])
    passed = [0] * (len(caches) * threads)

    def run(slot: int, cache: RateLimitCache) -> None:
        for _ in range(requests // len(passed)):
            passed[slot] += counted(cache, key, rate) <= limit

    workers = [
        threading.Thread(target=run, args=(i * threads + t, cache))
        for i, cache in enumerate(caches)
        for t in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(passed)


def test_two_processes_at_5_a_minute_let_exactly_5_through(settings: Any) -> None:
    settings.WEB_CONCURRENCY = 2
    assert ratelimit.lease_size(5) == 1  # the bound is 0: the limit is exact
    assert passes([process(), process()], "5/m", requests=20) == 5


def test_two_busy_processes_never_pass_more_than_the_limit(settings: Any) -> None:
    settings.WEB_CONCURRENCY = 2
    lease = ratelimit.lease_size(640)
    assert lease == 20
    passed = passes([process(), process()], "640/m", requests=1000, threads=4)
    # At most the limit; fewer by at most the counts the other process still holds.
    assert 640 - (2 - 1) * (lease - 1) <= passed <= 640


@pytest.mark.django_db
def test_it_costs_one_redis_round_trip_per_batch_of_deliveries(
    provider: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.WEB_CONCURRENCY = 1
    endpoint, token = make_endpoint(rate_limit="1600/m")
    lease = ratelimit.lease_size(1600)
    assert lease == 100
    sent: list[object] = []
    original = redis.connection.Connection.send_packed_command

    def counting(self: object, command: object, check_health: bool = True) -> None:
        sent.append(command)
        original(self, command, check_health)  # type: ignore[arg-type]

    def deliver() -> int:
        response = provider.post(
            endpoint.path, b"{}", content_type="application/json", headers={"X-Webhook-Token": token}
        )
        return int(response.status_code)

    assert deliver() == 200  # the first lease (and the script loaded)
    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    assert [deliver() for _ in range(lease - 1)] == [200] * (lease - 1)
    assert sent == []  # the rest of the first batch: no round trip at all
    assert [deliver() for _ in range(lease)] == [200] * lease
    assert len(sent) == 1  # the second batch: one


@pytest.mark.django_db
def test_it_refuses_with_retry_after_and_no_round_trip_once_the_window_is_spent(
    provider: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, token = make_endpoint(rate_limit="2/m")
    headers = {"X-Webhook-Token": token}
    answers = [provider.post(endpoint.path, b"{}", content_type="application/json", headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[-1]["Retry-After"]) >= 1
    sent: list[object] = []
    original = redis.connection.Connection.send_packed_command

    def counting(self: object, command: Any, check_health: bool = True) -> None:
        if b":rl:" in b"".join(command if isinstance(command, list) else [command]):
            sent.append(command)  # a count (the refusal's statistics bump is another key)
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    again = provider.post(endpoint.path, b"{}", content_type="application/json", headers=headers)
    assert again.status_code == 429
    assert sent == []
