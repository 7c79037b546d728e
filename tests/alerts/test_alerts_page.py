"""/alerts/ and the rule form: who may see and change what, acknowledging (a POST with CSRF),
muting, deleting (asks first, naming the rule and how many alerts go with it), the form's
errors, and the menu's count."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from inbox.models import Alert, AlertKind, AlertRule, AlertState, AuditAction, AuditEntry, Destination, Notice
from tests.alerts.conftest import make_rule
from tests.conftest import answer_confirmation, csrf_post, make_endpoint

pytestmark = pytest.mark.django_db


def open_alert(rule: AlertRule, **fields: Any) -> Alert:
    fields.setdefault("summary", "3 messages failed (retries spent) in the last 5 minutes on shop")
    fields.setdefault("link", "/?status=failed")
    fields.setdefault("open_notice", Notice.SENT)
    return Alert.objects.create(rule=rule, **fields)


@pytest.fixture
def anonymous() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def outsider_client(outsider: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(outsider)
    return client


def test_it_lists_rules_and_alerts_for_staff(staff_client: Client) -> None:
    shop, _ = make_endpoint("shop")
    rule = make_rule("Shop failing", kind=AlertKind.FAILED, endpoint=shop)
    open_alert(rule)
    old = open_alert(
        rule,
        state=AlertState.RESOLVED,
        opened_at=timezone.now() - timedelta(hours=2),
        resolved_at=timezone.now() - timedelta(hours=1),
        resolved_summary="0 messages failed",
    )
    html = staff_client.get("/alerts/").content.decode()
    assert "Shop failing" in html
    assert "a message failed (retries spent) within 5 minutes" in html.lower()
    assert "3 messages failed (retries spent) in the last 5 minutes on shop" in html
    assert 'href="/?status=failed"' in html, "each alert links to the messages concerned"
    assert "Acknowledge" in html
    assert f'id="alert-{old.pk}"' in html
    only_resolved = staff_client.get("/alerts/?state=resolved").content.decode()
    assert f'id="alert-{old.pk}"' in only_resolved
    assert only_resolved.count('<tr id="alert-') == 1


def test_it_lets_a_viewer_look_but_not_change(viewer_client: Client) -> None:
    rule = make_rule(kind=AlertKind.FAILED)
    alert = open_alert(rule)
    html = viewer_client.get("/alerts/").content.decode()
    assert "shop failures" in html
    assert ">Acknowledge<" not in html
    assert "New alert rule" not in html
    assert ">Mute<" not in html
    assert viewer_client.get("/alerts/rules/new/").status_code == 403
    assert viewer_client.get(f"/alerts/rules/{rule.pk}/edit/").status_code == 403
    assert csrf_post(viewer_client, f"/alerts/{alert.pk}/acknowledge/").status_code == 403
    assert csrf_post(viewer_client, f"/alerts/rules/{rule.pk}/mute/", {"muted": "true"}).status_code == 403
    assert csrf_post(viewer_client, f"/alerts/rules/{rule.pk}/delete/", {"confirmed": "yes"}).status_code == 403
    assert Alert.objects.get().state == AlertState.OPEN
    assert not AlertRule.objects.get().muted


def test_it_refuses_outsiders_and_sends_anonymous_visitors_to_log_in(
    outsider_client: Client, anonymous: Client
) -> None:
    rule = make_rule(kind=AlertKind.FAILED)
    alert = open_alert(rule)
    for url in ["/alerts/", "/alerts/rules/new/", f"/alerts/rules/{rule.pk}/edit/"]:
        assert outsider_client.get(url).status_code == 403
        response = anonymous.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert outsider_client.post(f"/alerts/{alert.pk}/acknowledge/").status_code == 403
    assert anonymous.post(f"/alerts/{alert.pk}/acknowledge/").status_code in (302, 403)
    assert Alert.objects.get().state == AlertState.OPEN


def test_it_acknowledges_with_a_post_that_carries_the_csrf_token(staff_client: Client, staff: User) -> None:
    alert = open_alert(make_rule(kind=AlertKind.FAILED))
    assert staff_client.post(f"/alerts/{alert.pk}/acknowledge/").status_code == 403, "no CSRF token"
    response = staff_client.get(f"/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 302, "a GET changes nothing"
    assert Alert.objects.get().state == AlertState.OPEN
    response = csrf_post(staff_client, f"/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 302
    alert.refresh_from_db()
    assert (alert.state, alert.acknowledged_by) == (AlertState.ACKNOWLEDGED, staff)
    html = staff_client.get("/alerts/").content.decode()
    assert "acknowledged by staff" in html
    assert AuditEntry.objects.filter(action=AuditAction.ALERT_ACKNOWLEDGED).count() == 1
    csrf_post(staff_client, f"/alerts/{alert.pk}/acknowledge/")  # twice: nothing more
    assert AuditEntry.objects.filter(action=AuditAction.ALERT_ACKNOWLEDGED).count() == 1


def test_it_mutes_and_unmutes_a_rule(staff_client: Client) -> None:
    rule = make_rule(kind=AlertKind.FAILED)
    csrf_post(staff_client, f"/alerts/rules/{rule.pk}/mute/", {"muted": "true"})
    assert AlertRule.objects.get().muted
    html = staff_client.get("/alerts/").content.decode()
    assert "is muted: its alerts are still listed, nobody is notified" in html
    assert ">muted</span>" in html
    assert csrf_post(staff_client, f"/alerts/rules/{rule.pk}/mute/", {"muted": "maybe"}).status_code == 400
    csrf_post(staff_client, f"/alerts/rules/{rule.pk}/mute/", {"muted": "false"})
    assert not AlertRule.objects.get().muted
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", flat=True))
    assert actions == [AuditAction.ALERT_RULE_MUTED, AuditAction.ALERT_RULE_UNMUTED]


def test_it_asks_before_deleting_a_rule_naming_it_and_its_alerts(staff_client: Client) -> None:
    rule = make_rule("Shop failing", kind=AlertKind.FAILED)
    open_alert(rule)
    open_alert(rule, state=AlertState.RESOLVED)
    listed = staff_client.get("/alerts/").content.decode()
    assert 'data-confirm="Delete the alert rule “Shop failing” and its 2 alerts?' in listed
    asked = csrf_post(staff_client, f"/alerts/rules/{rule.pk}/delete/")
    assert asked.status_code == 200
    assert "Delete the alert rule “Shop failing” and its 2 alerts?" in asked.content.decode()
    assert AlertRule.objects.exists()
    answer_confirmation(staff_client, f"/alerts/rules/{rule.pk}/delete/", {})
    assert not AlertRule.objects.exists()
    assert not Alert.objects.exists()
    entry = AuditEntry.objects.get(action=AuditAction.ALERT_RULE_DELETED)
    assert entry.details == {"alerts": 2}


def test_it_creates_a_rule_in_the_form(staff_client: Client, staff: User) -> None:
    shop, _ = make_endpoint("shop")
    assert staff_client.get("/alerts/rules/new/").status_code == 200
    response = csrf_post(
        staff_client,
        "/alerts/rules/new/",
        {
            "name": "Shop failing",
            "kind": "failure_rate",
            "endpoint": shop.pk,
            "threshold": "25",
            "window": "10m",
            "min_attempts": "5",
            "notify": "https://hooks.slack.com/services/T0/B0/xoxbSecretToken1234",
        },
    )
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.kind, rule.endpoint, rule.threshold, rule.window_seconds, rule.created_by) == (
        "failure_rate",
        shop,
        25,
        600,
        staff,
    )
    html = staff_client.get("/alerts/").content.decode()
    assert "https://hooks.slack.com/services/T0/B0/xoxbSecretToken1234" not in html, "the webhook's token is not shown"
    assert "hooks.slack.com" in html
    assert AuditEntry.objects.get().action == AuditAction.ALERT_RULE_CREATED


def test_it_edits_a_rule(staff_client: Client) -> None:
    rule = make_rule(kind=AlertKind.FAILED, window_seconds=300)
    page = staff_client.get(f"/alerts/rules/{rule.pk}/edit/").content.decode()
    assert 'value="5m"' in page
    data = {"name": rule.name, "kind": "failed", "threshold": "2", "window": "1h", "min_attempts": "10"}
    data["notify"] = rule.notify
    assert csrf_post(staff_client, f"/alerts/rules/{rule.pk}/edit/", data).status_code == 302
    rule.refresh_from_db()
    assert (rule.threshold, rule.window_seconds) == (2, 3600)
    assert AuditEntry.objects.get().details == {"changed": ["threshold", "window"]}


def test_it_shows_the_forms_errors_and_saves_nothing(staff_client: Client, settings: Any) -> None:
    settings.FORWARD_ALLOW_PRIVATE = False
    shop, _ = make_endpoint("shop")
    other, _ = make_endpoint("other")
    destination = Destination.objects.create(endpoint=shop, url="https://example.com/hook")
    response = csrf_post(
        staff_client,
        "/alerts/rules/new/",
        {
            "name": "quiet",
            "kind": "silence",
            "endpoint": other.pk,
            "destination": destination.pk,
            "threshold": "3",
            "window": "soon",
            "min_attempts": "10",
            "notify": "http://10.0.0.8/hook",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Some fields need a fix; nothing was saved." in html
    assert "Enter a window such as 5m, 2h or 1d" in html
    assert "10.0.0.8 is a loopback or private address" in html
    assert not AlertRule.objects.exists()
    response = csrf_post(
        staff_client,
        "/alerts/rules/new/",
        {"name": "quiet", "kind": "silence", "destination": destination.pk, "threshold": "3", "window": "1h"}
        | {"min_attempts": "10", "notify": "email:ops@example.com"},
    )
    html = response.content.decode()
    assert "Silence takes no threshold" in html
    assert "scope them by endpoint" in html
    assert re.search(r"autofocus", html)
    assert not AlertRule.objects.exists()


def test_it_counts_unacknowledged_alerts_in_the_menu(staff_client: Client) -> None:
    first = make_rule("one", kind=AlertKind.FAILED)
    second = make_rule("two", kind=AlertKind.FAILED)
    open_alert(first)
    open_alert(second, state=AlertState.ACKNOWLEDGED)
    html = staff_client.get("/endpoints/").content.decode()
    assert re.search(r'Alerts <span class="badge status-failed nav-count">1<span class="visually-hidden"> open', html)
    assert Alert.objects.open().count() == 2, "the metric counts acknowledged ones too"
    Alert.objects.update(state=AlertState.RESOLVED)
    assert "nav-count" not in staff_client.get("/endpoints/").content.decode()


def test_it_names_an_invalid_filter_and_shows_no_alert(staff_client: Client) -> None:
    open_alert(make_rule(kind=AlertKind.FAILED))
    response = staff_client.get("/alerts/?state=burning&rule=x")
    html = response.content.decode()
    assert "This filter is not valid; nothing is shown." in html
    assert "State: Select a valid choice. burning is not one of the available choices." in html
    assert "Rule: Select a valid choice." in html
    assert '<tr id="alert-' not in html


def test_it_names_the_alert_rules_that_go_with_a_deleted_endpoint(staff_client: Client) -> None:
    shop, _ = make_endpoint("shop")
    destination = Destination.objects.create(endpoint=shop, url="https://example.com/hook")
    make_rule("on the endpoint", kind=AlertKind.SILENCE, endpoint=shop)
    make_rule("on its destination", kind=AlertKind.FAILED, destination=destination)
    make_rule("everywhere", kind=AlertKind.FAILED)
    page = staff_client.get(f"/endpoints/{shop.pk}/delete/").content.decode()
    assert "with its 1 destination and its 2 alert rules and their alerts" in page
    csrf_post(staff_client, f"/endpoints/{shop.pk}/delete/")
    assert list(AlertRule.objects.values_list("name", flat=True)) == ["everywhere"]
