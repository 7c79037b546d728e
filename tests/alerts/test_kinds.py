"""Each kind of alert rule opens one alert when its condition holds, notifies once (a second
evaluation sends nothing), and resolves by itself with one more notification when it stops."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.alerts.evaluate import evaluate
from inbox.models import Alert, AlertKind, AlertState, AttemptStatus, Destination, Message, Notice, Status
from tests.alerts.conftest import attempt, failed_message, make_rule, posted, refuse
from tests.conftest import Catcher, make_endpoint, make_message

pytestmark = pytest.mark.django_db


def assert_opened_once_then_resolved(catcher: Catcher) -> None:
    bodies = posted(catcher)
    assert [b["state"] for b in bodies] == ["opened", "resolved"]
    alert = Alert.objects.get()
    assert alert.state == AlertState.RESOLVED
    assert (alert.open_notice, alert.resolve_notice) == (Notice.SENT, Notice.SENT)


def test_it_alerts_once_when_a_message_fails_and_resolves_when_it_is_replayed(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    other, _ = make_endpoint("other")
    make_rule("shop failures", kind=AlertKind.FAILED, endpoint=shop, notify=catcher.url)
    failed_message(other)  # another endpoint's failure is not this rule's business
    assert evaluate().opened == []
    message = failed_message(shop)

    first = evaluate()
    assert len(first.opened) == 1
    alert = Alert.objects.get()
    assert alert.state == AlertState.OPEN
    assert alert.summary == "1 message failed (retries spent) in the last 5 minutes on shop"
    assert alert.link == f"/?endpoint={shop.pk}&status=failed"
    assert [b["state"] for b in posted(catcher)] == ["opened"]

    failed_message(shop)  # worse, but the same alert: nothing new is sent
    second = evaluate()
    assert (second.opened, second.resolved, second.sent) == ([], [], 0)
    assert len(catcher.requests) == 1

    Message.objects.filter(endpoint=shop).update(status=Status.PENDING)  # both replayed
    assert evaluate().resolved == [alert.pk]
    assert evaluate().sent == 0
    assert_opened_once_then_resolved(catcher)
    assert Message.objects.get(pk=message.pk)


def test_it_resolves_a_failed_alert_once_the_window_has_passed(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, notify=catcher.url, window_seconds=600)
    failed_message(shop)
    evaluate()
    assert Alert.objects.get().state == AlertState.OPEN
    evaluate(timezone.now() + timedelta(minutes=9))
    assert Alert.objects.get().state == AlertState.OPEN
    evaluate(timezone.now() + timedelta(minutes=11))
    assert_opened_once_then_resolved(catcher)


def test_it_counts_only_the_destination_of_a_destination_rule(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    mine = Destination.objects.create(endpoint=shop, url="https://a.example.com/hook")
    theirs = Destination.objects.create(endpoint=shop, url="https://b.example.com/hook")
    rule = make_rule(kind=AlertKind.FAILED, destination=mine, notify=catcher.url)
    assert rule.endpoint_id == shop.pk, "the destination's endpoint is implied"
    failed_message(shop, destination=theirs)
    assert evaluate().opened == []
    failed_message(shop, destination=mine)
    assert len(evaluate().opened) == 1
    assert "via https://a.example.com/hook" in Alert.objects.get().summary


def test_it_alerts_on_a_failure_rate_over_the_threshold_with_enough_attempts(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILURE_RATE, endpoint=shop, threshold=50, min_attempts=4, notify=catcher.url)
    message = make_message(shop, status=Status.PENDING)
    for status in [AttemptStatus.FAILED] * 3:
        attempt(message, status=status)
    assert evaluate().opened == [], "3 attempts are fewer than the 4 a rate needs"
    attempt(message, status=AttemptStatus.SUCCEEDED)
    attempt(message, status=AttemptStatus.SKIPPED)  # sent nothing: not counted
    assert len(evaluate().opened) == 1  # 3 of 4 failed: 75% > 50%
    alert = Alert.objects.get()
    assert alert.summary == "75% of 4 forward attempts failed in the last 5 minutes (over 50% alerts) on shop"
    assert alert.counts == {"failed_attempts": 3, "attempts": 4, "percent": 75, "threshold": 50}
    assert alert.link.startswith(f"/?endpoint={shop.pk}&received_after=")
    assert evaluate().sent == 0

    for _ in range(3):
        attempt(message, status=AttemptStatus.SUCCEEDED)  # 3 of 7: 43%
    assert len(evaluate().resolved) == 1
    assert_opened_once_then_resolved(catcher)
    assert "43% of 7 forward attempts failed" in posted(catcher)[1]["summary"]


def test_it_keeps_a_failure_rate_alert_open_while_its_few_attempts_still_fail(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILURE_RATE, endpoint=shop, threshold=50, min_attempts=4, notify=catcher.url)
    message = make_message(shop, status=Status.PENDING)
    old = timezone.now() - timedelta(minutes=4)
    for _ in range(4):
        attempt(message, at=old)
    assert len(evaluate().opened) == 1
    # Traffic drops below the minimum, every attempt still failing: not over.
    attempt(message, at=timezone.now() - timedelta(seconds=30))
    later = timezone.now() + timedelta(minutes=2)
    assert evaluate(later).resolved == [], "100% failure over too few attempts is not a recovery"
    alert = Alert.objects.get()
    assert alert.state == AlertState.OPEN
    # The failures stop: once no attempt in the window failed, it resolves.
    assert len(evaluate(timezone.now() + timedelta(minutes=6)).resolved) == 1
    resolved = posted(catcher)[1]
    assert resolved["summary"].startswith("0 forward attempts in the last 5 minutes, none failed")
    assert resolved["counts"]["attempts"] == 0


def test_it_does_not_alert_at_exactly_the_threshold(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILURE_RATE, threshold=50, min_attempts=2, notify=catcher.url)
    message = make_message(shop, status=Status.PENDING)
    attempt(message, status=AttemptStatus.FAILED)
    attempt(message, status=AttemptStatus.SUCCEEDED)
    assert evaluate().opened == []


def test_it_alerts_when_an_endpoint_goes_quiet_and_resolves_when_a_message_arrives(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    rule = make_rule("shop quiet", kind=AlertKind.SILENCE, endpoint=shop, window_seconds=3600, notify=catcher.url)
    make_message(shop, received_at=timezone.now() - timedelta(hours=3))
    assert evaluate().opened == [], "a new rule gives the endpoint a whole window"
    later = rule.created_at + timedelta(minutes=61)
    assert len(evaluate(later).opened) == 1
    alert = Alert.objects.get()
    assert alert.summary.startswith("Nothing received on shop for 1 hour (last message 4\xa0hours")
    assert alert.link == f"/?endpoint={shop.pk}"
    assert evaluate(later + timedelta(minutes=1)).sent == 0

    make_message(shop, received_at=later + timedelta(minutes=2))
    assert evaluate(later + timedelta(minutes=3)).resolved == [alert.pk]
    assert_opened_once_then_resolved(catcher)


def test_it_alerts_when_nothing_at_all_arrives_without_an_endpoint(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    rule = make_rule("inbox quiet", kind=AlertKind.SILENCE, window_seconds=600, notify=catcher.url)
    later = rule.created_at + timedelta(minutes=11)
    assert len(evaluate(later).opened) == 1
    assert "Nothing received on any endpoint for 10 minutes (nothing ever received)" in Alert.objects.get().summary
    make_message(shop, received_at=later)
    assert len(evaluate(later + timedelta(seconds=1)).resolved) == 1


def test_it_alerts_on_refused_deliveries(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule("shop refusals", kind=AlertKind.REJECTIONS, endpoint=shop, threshold=5, notify=catcher.url)
    refuse(shop, 4)
    refuse(shop, 10, ago=timedelta(minutes=6))  # outside the 5-minute window
    assert evaluate().opened == []
    refuse(shop, 1)
    assert len(evaluate().opened) == 1
    alert = Alert.objects.get()
    assert alert.summary == "5 deliveries refused in the last 5 minutes on shop"
    assert alert.link == f"/endpoints/{shop.pk}/", "refusals are listed on the endpoint's page"
    assert evaluate().sent == 0
    assert len(evaluate(timezone.now() + timedelta(minutes=6)).resolved) == 1
    assert_opened_once_then_resolved(catcher)


def test_it_opens_a_new_alert_when_the_condition_comes_back(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.REJECTIONS, threshold=1, notify=catcher.url)
    refuse(shop, 1)
    evaluate()
    evaluate(timezone.now() + timedelta(minutes=6))
    refuse(shop, 1, ago=-timedelta(minutes=7))
    evaluate(timezone.now() + timedelta(minutes=8))
    assert list(Alert.objects.order_by("pk").values_list("state", flat=True)) == ["resolved", "open"]
    assert [b["state"] for b in posted(catcher)] == ["opened", "resolved", "opened"]


def test_it_records_but_does_not_notify_for_a_muted_rule(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, notify=catcher.url, muted=True)
    message = failed_message(shop)
    assert len(evaluate().opened) == 1
    assert Alert.objects.get().open_notice == Notice.MUTED
    Message.objects.filter(pk=message.pk).update(status=Status.PENDING)
    assert len(evaluate().resolved) == 1
    assert Alert.objects.get().resolve_notice == Notice.MUTED
    assert catcher.requests == []
