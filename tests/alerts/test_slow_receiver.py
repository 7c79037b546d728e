"""A slow or dead alert receiver cannot stall the worker: each notification has a short
timeout, all sending in one evaluation stops at a time budget (the rest waits for the next
evaluation, oldest first), a channel that failed is not tried again in the same evaluation,
and a failed notification backs off (1, 2, 4... minutes) before it is given up.

The settings are shrunk (a 0.3 s timeout, a 1 s budget) and the receiver sleeps 2 s, so the
test stays short while the proportions are those of the defaults (5 s, 10 s, 60 s)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from inbox.alerts.evaluate import backoff, evaluate
from inbox.models import MAX_NOTICE_TRIES, Alert, AlertKind, Notice
from tests.alerts.conftest import failed_message, make_rule, posted
from tests.conftest import Catcher, make_endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_limits(settings: Any) -> None:
    settings.INBOX_ALERT_NOTIFY_TIMEOUT_SECONDS = 0.3
    settings.INBOX_ALERT_SEND_BUDGET_SECONDS = 1.0


@pytest.fixture
def sleepy() -> Any:
    server = Catcher()
    server.delay = 2.0
    yield server
    server.close()


def test_it_times_out_a_slow_receiver_quickly(small_limits: None, sleepy: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, endpoint=shop, notify=sleepy.url)
    failed_message(shop)
    started = time.monotonic()
    report = evaluate()
    assert time.monotonic() - started < 1.5, "one notification held the worker past its timeout"
    assert report.failed == 1
    alert = Alert.objects.get()
    assert (alert.open_notice, alert.notice_tries) == (Notice.FAILED, 1)
    assert alert.notice_error == "timed out after 0.3 s"


def test_it_tries_a_failing_channel_once_per_evaluation_and_keeps_to_the_budget(
    small_limits: None, sleepy: Catcher, catcher: Catcher
) -> None:
    # Six rules at the same sleeping server, as the tester had, and one at a healthy one.
    endpoints = [make_endpoint(f"shop{i}")[0] for i in range(6)]
    for i, endpoint in enumerate(endpoints):
        make_rule(f"slow {i}", kind=AlertKind.FAILED, endpoint=endpoint, notify=sleepy.url)
        failed_message(endpoint)
    healthy = make_rule("healthy", kind=AlertKind.FAILED, notify=catcher.url)
    started = time.monotonic()
    report = evaluate()
    assert time.monotonic() - started < 1.5, "sending ran past the budget"
    assert len(sleepy.requests) == 1, "a channel that timed out was tried again in the same evaluation"
    assert (report.failed, report.sent, report.deferred) == (1, 1, 5)
    assert Alert.objects.get(rule=healthy).open_notice == Notice.SENT, "the healthy channel waited behind the dead one"
    assert [body["rule"]["name"] for body in posted(catcher)] == ["healthy"]
    untried = Alert.objects.filter(rule__name__startswith="slow", notice_tries=0)
    assert untried.count() == 5, "what was deferred spent no try"


def test_it_stops_sending_when_the_budget_is_spent_and_sends_the_rest_next_time_oldest_first(
    small_limits: None, settings: Any
) -> None:
    settings.INBOX_ALERT_NOTIFY_TIMEOUT_SECONDS = 0.4
    # Three different slow channels: each takes its whole timeout.
    servers = [Catcher() for _ in range(3)]
    try:
        for server in servers:
            server.delay = 2.0
        for i, server in enumerate(servers):
            endpoint, _ = make_endpoint(f"shop{i}")
            make_rule(f"rule {i}", kind=AlertKind.FAILED, endpoint=endpoint, notify=server.url)
            failed_message(endpoint)
        started = time.monotonic()
        report = evaluate()
        elapsed = time.monotonic() - started
        assert elapsed < 1.5, f"sending ran {elapsed:.1f} s, past the 1 s budget"
        # 0.4 s each for the first two; the 0.2 s left of the budget is too little for a third.
        assert (report.failed, report.deferred) == (2, 1)
        assert [len(server.requests) for server in servers] == [1, 1, 0]
        later = evaluate(timezone.now() + timedelta(seconds=30))  # the first two back off
        assert [len(server.requests) for server in servers] == [1, 1, 1], "the one left waited its turn"
        assert later.failed == 1
    finally:
        for server in servers:
            server.close()


def test_it_backs_off_a_failing_channel_and_gives_up_after_a_bounded_number_of_tries(catcher: Catcher) -> None:
    catcher.answers = [(503, b"down", {})]
    shop, _ = make_endpoint("shop")
    # A week's window: the alert stays open for the whole backoff.
    make_rule(kind=AlertKind.FAILED, endpoint=shop, notify=catcher.url, window_seconds=7 * 86400)
    failed_message(shop)
    now = timezone.now()
    evaluate(now)
    waits = []
    for _ in range(MAX_NOTICE_TRIES + 3):
        alert = Alert.objects.get()
        if alert.notice_next_at is None:
            break
        waits.append(alert.notice_next_at - now)
        assert evaluate(alert.notice_next_at - timedelta(seconds=1)).failed == 0, "tried before its backoff"
        now = alert.notice_next_at
        evaluate(now)
    minutes = [round(wait.total_seconds() / 60) for wait in waits]
    assert minutes == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    alert = Alert.objects.get()
    assert alert.open_notice == Notice.GAVE_UP
    assert len(catcher.requests) == MAX_NOTICE_TRIES == 10
    assert sum(minutes) == 243, "given up about 4 hours after the first failure"
    assert backoff(1) == timedelta(minutes=1)
