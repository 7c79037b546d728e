"""The alerts' words read plainly: singular and plural counts in summaries, each state of a
notification in a sentence of its own, acknowledging a resolved alert says so, and an
invalid filter value is repeated shortened, its invisible characters shown as markers."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from django.test import Client
from django.utils import timezone

from inbox.alerts.conditions import measure
from inbox.alerts.evaluate import evaluate
from inbox.models import Alert, AlertKind, AlertState, AuditEntry, Notice
from tests.alerts.conftest import attempt, failed_message, make_rule
from tests.conftest import Catcher, csrf_post, make_endpoint, make_message

pytestmark = pytest.mark.django_db


def test_it_says_one_forward_attempt_not_attempts() -> None:
    shop, _ = make_endpoint("shop")
    rule = make_rule(kind=AlertKind.FAILURE_RATE, endpoint=shop, min_attempts=1)
    attempt(make_message(shop))
    assert measure(rule).summary == ("100% of 1 forward attempt failed in the last 5 minutes (over 50% alerts) on shop")
    rule.min_attempts = 5
    assert measure(rule).summary.startswith("1 forward attempt in the last 5 minutes, 1 failed (fewer than the 5")


def notifications(client: Client, alert: Alert) -> str:
    html = unescape(client.get("/alerts/").content.decode())
    row = html[html.index(f'<tr id="alert-{alert.pk}"') :]
    return " ".join(
        row[row.index('data-label="Notifications"') : row.index("</td>", row.index("Notifications"))].split()
    )


def test_it_says_plainly_that_a_muted_rule_sent_nothing(staff_client: Client) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, endpoint=shop, muted=True)
    failed_message(shop)
    evaluate()
    column = notifications(staff_client, Alert.objects.get())
    assert "Opening: Not sent: the rule is muted" in column
    assert "tries" not in column
    assert "Opened:" not in column


def test_it_says_how_often_sending_failed_and_when_it_tries_next(staff_client: Client, catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, endpoint=shop, notify=catcher.url)
    failed_message(shop)
    catcher.answers = [(503, b"", {})]
    evaluate()
    alert = Alert.objects.get()
    column = notifications(staff_client, alert)
    assert alert.notice_next_at is not None
    assert f'Opening: Sending failed 1 time, next try at <time datetime="{alert.notice_next_at.isoformat()}' in column
    assert "Last error: answered 503, expected 2xx" in column


def test_it_says_an_alert_resolved_before_its_opening_got_through(staff_client: Client, catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, endpoint=shop, notify=catcher.url)
    message = failed_message(shop)
    catcher.answers = [(503, b"", {})]
    evaluate()
    message.status = "pending"
    message.save(update_fields=["status"])
    evaluate(timezone.now() + timedelta(minutes=1))
    column = notifications(staff_client, Alert.objects.get())
    assert "Opening: Not sent: resolved before the opening notification got through" in column
    assert "Resolution: Not sent: nobody was told it opened" in column
    assert "(0 tries)" not in column


def test_it_says_an_alert_is_already_resolved_and_changes_nothing(staff_client: Client) -> None:
    rule = make_rule(kind=AlertKind.FAILED)
    alert = Alert.objects.create(
        rule=rule, summary="s", state=AlertState.RESOLVED, resolved_at=timezone.now(), open_notice=Notice.SENT
    )
    response = csrf_post(staff_client, f"/alerts/{alert.pk}/acknowledge/", follow=True)
    assert "That alert is already resolved." in response.content.decode()
    alert.refresh_from_db()
    assert (alert.state, alert.acknowledged_at) == (AlertState.RESOLVED, None)
    assert not AuditEntry.objects.exists()


def test_it_shows_an_override_in_an_invalid_state_as_a_marker(staff_client: Client) -> None:
    html = staff_client.get("/alerts/", {"state": "open\u202e"}).content.decode()
    assert "\u202e" not in html
    assert "Select a valid choice. open⟨U+202E⟩ is not one of the available choices." in unescape(html)


def test_it_shortens_a_long_invalid_state(staff_client: Client) -> None:
    value = "x" * 3000
    html = unescape(staff_client.get("/alerts/", {"state": value}).content.decode())
    assert value[:41] not in html
    assert f"Select a valid choice. {'x' * 40}… is not one of the available choices." in html
