"""The worker evaluates the rules every minute, in a task chain of its own, never in a
request; a broken rule or channel never stops the evaluation of the others."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from inbox.alerts import channels, conditions
from inbox.alerts.evaluate import evaluate
from inbox.models import Alert, AlertKind
from inbox.tasks import evaluate_alerts, schedule_periodic
from tests.alerts.conftest import failed_message, make_rule, posted
from tests.conftest import Catcher, make_endpoint, run_worker

pytestmark = pytest.mark.django_db


def test_it_evaluates_in_the_worker_every_minute(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, notify=catcher.url)
    failed_message(shop)
    assert "alerts" in schedule_periodic()
    assert "alerts" not in schedule_periodic(), "one chain, however often it is started"
    DBTaskResult.objects.exclude(task_path=evaluate_alerts.module_path).delete()
    run_worker()
    assert Alert.objects.count() == 1
    assert [b["state"] for b in posted(catcher)] == ["opened"]
    waiting = DBTaskResult.objects.get(status="READY", task_path="inbox.tasks.evaluate_alerts")
    assert timezone.now() + timedelta(seconds=50) < waiting.run_after < timezone.now() + timedelta(seconds=70)


def test_it_never_evaluates_in_a_request(staff_client: Client, catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, notify=catcher.url)
    failed_message(shop)
    assert staff_client.get("/alerts/").status_code == 200
    assert staff_client.get("/").status_code == 200
    assert not Alert.objects.exists()
    assert catcher.requests == []


def test_it_goes_on_with_the_other_rules_when_one_cannot_be_measured(
    catcher: Catcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop, _ = make_endpoint("shop")
    broken = make_rule("broken", kind=AlertKind.FAILED, notify=catcher.url)
    make_rule("fine", kind=AlertKind.FAILED, notify=catcher.url)
    failed_message(shop)
    measure = conditions.measure

    def flaky(rule: Any, now: Any = None) -> Any:
        if rule.pk == broken.pk:
            raise DatabaseError("statement timeout")
        return measure(rule, now)

    monkeypatch.setattr("inbox.alerts.evaluate.measure", flaky)
    report = evaluate()
    assert report.errors == 1
    assert list(Alert.objects.values_list("rule__name", flat=True)) == ["fine"]


def test_it_survives_a_channel_that_raises(catcher: Catcher, monkeypatch: pytest.MonkeyPatch) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, notify=catcher.url)
    failed_message(shop)

    def crash(*args: Any) -> Any:
        raise RuntimeError("a bug in a channel")

    monkeypatch.setattr(channels, "send", crash)
    report = evaluate()
    assert (len(report.opened), report.failed) == (1, 1)
    alert = Alert.objects.get()
    assert alert.open_notice == "failed"
    assert alert.notice_error == "RuntimeError: a bug in a channel"
