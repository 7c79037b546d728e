"""/metrics: who may read it, and what it says after known traffic (in one process)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache, caches
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from inbox.alerts.evaluate import evaluate
from inbox.models import Alert, AlertKind, AlertState, Destination, Endpoint, Message, Status
from tests.alerts.conftest import failed_message, make_rule, refuse
from tests.conftest import Catcher, make_endpoint, make_message, run_worker

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789abcdef"
ORDER = b'{"type": "order.paid", "id": "evt_1"}'


@pytest.fixture
def metrics_token(settings: Any) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client: Client, token: str | None = TOKEN) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as Prometheus reads it: {(sample name, sorted labels): value}."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def deliver(client: Client, endpoint: Endpoint, token: str | None, key: str | None = None) -> int:
    headers = {endpoint.token_header: token or ""}
    if key:
        headers["Idempotency-Key"] = key
    return client.post(endpoint.path, data=ORDER, content_type="application/json", headers=headers).status_code


# --- Who may read it ------------------------------------------------------------------------
def test_it_answers_a_scraper_with_the_right_bearer_token(metrics_token: str) -> None:
    response = Client(enforce_csrf_checks=True).get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    assert response.status_code == 200
    assert b"# TYPE inbox_messages_received_total counter" in response.content


def test_it_refuses_a_wrong_bearer_token_with_401(metrics_token: str, caplog: pytest.LogCaptureFixture) -> None:
    response = Client(enforce_csrf_checks=True).get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "inbox_" not in response.content.decode()
    assert "not-the-token" not in caplog.text
    assert "metrics refused: wrong bearer token" in caplog.text


def test_it_refuses_no_credentials_with_401(metrics_token: str) -> None:
    response = Client(enforce_csrf_checks=True).get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_any_bearer_token_when_none_is_set(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    for value in ("", "x", "Bearer"):
        response = Client(enforce_csrf_checks=True).get("/metrics", headers={"Authorization": f"Bearer {value}"})
        assert response.status_code == 401


def test_it_refuses_a_signed_in_user_who_is_not_staff_with_403(outsider: User, metrics_token: str) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(outsider)
    assert client.get("/metrics").status_code == 403


def test_it_answers_staff_signed_in_without_a_token(staff_client: Client, viewer_client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = ""  # unset: a staff session is the only way in
    assert staff_client.get("/metrics").status_code == 200
    assert viewer_client.get("/metrics").status_code == 200  # look-only staff may look


def test_it_is_served_by_django_not_the_receivers_lean_path(metrics_token: str) -> None:
    # A Host outside ALLOWED_HOSTS is refused like any page.
    response = Client(enforce_csrf_checks=True).get(
        "/metrics", headers={"Authorization": f"Bearer {metrics_token}"}, HTTP_HOST="evil.example"
    )
    assert response.status_code == 400


# --- What it says -----------------------------------------------------------------------------
def test_it_counts_known_traffic(provider: Client, metrics_token: str, catcher: Catcher) -> None:
    shop, token = make_endpoint("shop")
    limited, limited_token = make_endpoint("limited", rate_limit="2/m")
    make_endpoint("quiet")

    assert [deliver(provider, shop, token, key=f"k{n}") for n in range(3)] == [200] * 3
    assert deliver(provider, shop, token, key="k1") == 200  # a duplicate: answered, not stored
    assert [deliver(provider, shop, "wrong") for _ in range(2)] == [403] * 2
    assert [deliver(provider, limited, limited_token) for _ in range(5)] == [200, 200, 429, 429, 429]

    samples = scrape(Client(enforce_csrf_checks=True))

    def endpoint_value(name: str, endpoint: str) -> float:
        return samples[(name, (("endpoint", endpoint),))]

    assert endpoint_value("inbox_messages_received_total", "shop") == 3
    assert endpoint_value("inbox_deliveries_duplicate_total", "shop") == 1
    assert endpoint_value("inbox_deliveries_rejected_total", "shop") == 2
    assert endpoint_value("inbox_deliveries_rate_limited_total", "shop") == 0
    assert endpoint_value("inbox_messages_received_total", "limited") == 2
    assert endpoint_value("inbox_deliveries_rate_limited_total", "limited") == 3
    # An endpoint that never saw traffic is there at 0, so a rate() sees its first count.
    assert endpoint_value("inbox_messages_received_total", "quiet") == 0


def test_it_counts_forward_attempts_by_destination_and_outcome(
    provider: Client, metrics_token: str, catcher: Catcher, django_capture_on_commit_callbacks: Any
) -> None:
    failing = Catcher()
    failing.answers = [(500, b"down", {})]
    try:
        endpoint, token = make_endpoint("relay")
        ok = Destination.objects.create(endpoint=endpoint, url=catcher.url, timeout_seconds=2)
        bad = Destination.objects.create(endpoint=endpoint, url=failing.url, timeout_seconds=2)
        paused = Destination.objects.create(endpoint=endpoint, url=catcher.url + "p/", timeout_seconds=2, paused=True)
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver(provider, endpoint, token) == 200
        run_worker()
    finally:
        failing.close()

    samples = scrape(Client(enforce_csrf_checks=True))

    def attempts(destination: Destination, outcome: str) -> float:
        return samples[("inbox_forward_attempts_total", (("destination", str(destination.pk)), ("outcome", outcome)))]

    assert attempts(ok, "succeeded") == 1
    assert attempts(ok, "failed") == 0
    assert attempts(bad, "failed") == 1
    assert attempts(paused, "held") == 1
    text = Client().get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"}).content.decode()
    assert catcher.url not in text  # a destination is its id, never its URL (it may hold a secret)


def test_it_never_shows_a_slug_or_a_secret(
    provider: Client, metrics_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint, token = make_endpoint("shop")
    assert deliver(provider, endpoint, token) == 200
    assert deliver(provider, endpoint, "wrong-token-value") == 403
    text = Client().get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"}).content.decode()
    assert token
    for secret in (endpoint.slug, token, "wrong-token-value", metrics_token):
        assert secret not in text
        assert secret not in caplog.text


def test_its_counts_outlive_the_cache_and_the_retention_purge(
    provider: Client, metrics_token: str, settings: Any
) -> None:
    endpoint, token = make_endpoint("shop")
    assert [deliver(provider, endpoint, token) for _ in range(2)] == [200, 200]
    assert deliver(provider, endpoint, "wrong") == 403

    cache.clear()  # what a Redis restart does to the cache
    caches[settings.RATELIMIT_USE_CACHE].clear()
    Message.objects.filter(endpoint=endpoint).delete()  # what retention does

    samples = scrape(Client(enforce_csrf_checks=True))
    assert samples[("inbox_messages_received_total", (("endpoint", "shop"),))] == 2
    assert samples[("inbox_deliveries_rejected_total", (("endpoint", "shop"),))] == 1


def test_it_says_how_many_messages_are_pending_and_how_late_the_oldest_due_one_is(metrics_token: str) -> None:
    endpoint, _ = make_endpoint("shop")
    now = timezone.now()
    make_message(endpoint, status=Status.PENDING, next_attempt_at=now - timedelta(seconds=90))
    make_message(endpoint, status=Status.PENDING, next_attempt_at=now - timedelta(seconds=30))
    make_message(endpoint, status=Status.PENDING, next_attempt_at=now + timedelta(minutes=5))  # a retry to come
    make_message(endpoint, status=Status.PENDING, next_attempt_at=None)  # held by a paused destination
    make_message(endpoint, status=Status.PROCESSED)

    samples = scrape(Client(enforce_csrf_checks=True))
    assert samples[("inbox_messages_pending", ())] == 4
    assert 90 <= samples[("inbox_oldest_pending_seconds", ())] < 120


def test_it_says_zero_when_nothing_is_due(metrics_token: str) -> None:
    endpoint, _ = make_endpoint("shop")
    make_message(endpoint, status=Status.PENDING, next_attempt_at=timezone.now() + timedelta(minutes=1))
    samples = scrape(Client(enforce_csrf_checks=True))
    assert samples[("inbox_messages_pending", ())] == 1
    assert samples[("inbox_oldest_pending_seconds", ())] == 0


def test_it_drops_the_series_of_a_deleted_endpoint(provider: Client, metrics_token: str) -> None:
    endpoint, token = make_endpoint("gone")
    assert deliver(provider, endpoint, token) == 200
    endpoint.delete()
    samples = scrape(Client(enforce_csrf_checks=True))
    assert not [key for key in samples if ("endpoint", "gone") in key[1]]


def test_it_counts_alerts_whose_condition_still_holds(metrics_token: str, catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule("shop failures", kind=AlertKind.FAILED, endpoint=shop, notify=catcher.url)
    make_rule("shop refusals", kind=AlertKind.REJECTIONS, endpoint=shop, threshold=1, notify=catcher.url)
    assert scrape(Client(enforce_csrf_checks=True))[("inbox_alerts_open", ())] == 0
    failed_message(shop)
    refuse(shop, 1)
    evaluate()
    Alert.objects.filter(rule__name="shop refusals").update(state=AlertState.ACKNOWLEDGED)
    # Acknowledged is still open: someone is on it, the condition holds.
    assert scrape(Client(enforce_csrf_checks=True))[("inbox_alerts_open", ())] == 2
    Alert.objects.filter(rule__name="shop failures").update(state=AlertState.RESOLVED)
    assert scrape(Client(enforce_csrf_checks=True))[("inbox_alerts_open", ())] == 1
