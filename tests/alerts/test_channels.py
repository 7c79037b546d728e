"""Notification channels: a webhook gets a JSON POST whose `text` names the rule (what Slack's
and Teams' incoming webhooks read) with the facts as fields, through the forwarder's address
checks; an email goes through Django's email backend. A failed notification is logged, shown
on the alert and tried again at the next evaluation."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from inbox.alerts.evaluate import MAX_NOTICE_TRIES, evaluate
from inbox.models import Alert, AlertKind, AlertRule, Message, Notice, Status
from tests.alerts.conftest import failed_message, make_rule, posted
from tests.conftest import Catcher, make_endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_private(settings: Any) -> None:
    settings.FORWARD_ALLOW_PRIVATE = False


def test_it_posts_json_whose_text_names_the_rule(catcher: Catcher, settings: Any) -> None:
    settings.PUBLIC_BASE_URL = "https://inbox.example.com"
    shop, _ = make_endpoint("shop")
    rule = make_rule("Shop forwards failing", kind=AlertKind.FAILED, endpoint=shop, notify=catcher.url)
    message = failed_message(shop)
    evaluate()

    request = catcher.requests[0]
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["User-Agent"] == "webhook-inbox/1 (alert)"
    body = posted(catcher)[0]
    alert = Alert.objects.get()
    link = f"https://inbox.example.com/?endpoint={shop.pk}&status=failed"
    assert body["text"] == (
        "Alert opened: Shop forwards failing: 1 message failed (retries spent) in the last 5 minutes on shop. "
        + link.replace("&", "&amp;")  # escaped for Slack, which reads &amp; as &
    )
    assert "\n" not in body["text"]
    assert body["state"] == "opened"
    assert body["kind"] == "failed"
    assert body["rule"] == {
        "id": rule.pk,
        "name": "Shop forwards failing",
        "kind": "failed",
        "threshold": 1,
        "window": "5m",
    }
    assert body["endpoint"] == "shop"
    assert body["counts"] == {"failed_messages": 1, "threshold": 1}
    assert body["messages_url"] == link
    assert body["alerts_url"] == "https://inbox.example.com/alerts/"
    assert body["alert"]["id"] == alert.pk

    Message.objects.filter(pk=message.pk).update(status=Status.PENDING)
    evaluate()
    resolved = posted(catcher)[1]
    assert resolved["state"] == "resolved"
    assert resolved["text"].startswith("Alert resolved: Shop forwards failing: 0 messages failed")
    assert resolved["alert"]["resolved_at"]


def test_it_refuses_a_private_address_at_send_and_says_so_on_the_alert(
    catcher: Catcher, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, notify=catcher.url)  # saved while private addresses were allowed
    failed_message(shop)
    settings.FORWARD_ALLOW_PRIVATE = False
    with caplog.at_level(logging.WARNING, logger="inbox.alerts"):
        report = evaluate()
    assert report.failed == 1
    assert catcher.requests == []
    alert = Alert.objects.get()
    assert alert.open_notice == Notice.FAILED
    assert "127.0.0.1 is a loopback or private address" in alert.notice_error
    assert any("alert notification failed" in r.getMessage() for r in caplog.records)


@pytest.mark.usefixtures("no_private")
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "ftp://example.com/",
    ],
)
def test_it_refuses_a_refused_literal_address_when_saved(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make_rule(kind=AlertKind.FAILED, notify=url)
    assert "notify" in caught.value.message_dict
    assert not AlertRule.objects.exists()


def test_it_refuses_metadata_addresses_even_when_private_ones_are_allowed(settings: Any) -> None:
    assert settings.FORWARD_ALLOW_PRIVATE
    with pytest.raises(ValidationError, match="link-local or cloud metadata"):
        make_rule(kind=AlertKind.FAILED, notify="http://169.254.169.254/hook")
    rule = make_rule(kind=AlertKind.FAILED, notify="http://10.0.0.5/hook")
    assert rule.pk


def test_it_checks_a_hostname_at_every_send(catcher: Catcher, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    shop, _ = make_endpoint("shop")
    monkeypatch.setattr("inbox.delivery.forwarding.resolve", lambda host, port: ["169.254.169.254"])
    make_rule(kind=AlertKind.FAILED, notify="http://hooks.example.com/alert")
    failed_message(shop)
    evaluate()
    assert "link-local or cloud metadata" in Alert.objects.get().notice_error


def test_it_sends_an_email(settings: Any) -> None:
    settings.PUBLIC_BASE_URL = "https://inbox.example.com"
    shop, _ = make_endpoint("shop")
    make_rule("Shop refusals", kind=AlertKind.FAILED, endpoint=shop, notify="email:ops@example.com")
    message = failed_message(shop)
    evaluate()
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["ops@example.com"]
    assert email.subject == "[Webhook Inbox] Alert opened: Shop refusals"
    assert "1 message failed (retries spent) in the last 5 minutes on shop" in email.body
    assert f"https://inbox.example.com/?endpoint={shop.pk}&status=failed" in email.body
    evaluate()
    assert len(mail.outbox) == 1
    Message.objects.filter(pk=message.pk).update(status=Status.PENDING)
    evaluate()
    assert [m.subject for m in mail.outbox][1] == "[Webhook Inbox] Alert resolved: Shop refusals"


def test_it_retries_a_failed_notification_at_the_next_evaluation(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, notify=catcher.url)
    failed_message(shop)
    catcher.answers = [(503, b"slack is down", {}), (200, b"ok", {})]
    assert evaluate().failed == 1
    alert = Alert.objects.get()
    assert (alert.open_notice, alert.notice_tries) == (Notice.FAILED, 1)
    assert alert.notice_error == "answered 503, expected 2xx"
    assert evaluate().sent == 0, "not before its backoff (a minute after the first failure)"
    assert evaluate(timezone.now() + timedelta(minutes=1)).sent == 1
    alert.refresh_from_db()
    assert (alert.open_notice, alert.notice_error) == (Notice.SENT, "")
    assert [b["state"] for b in posted(catcher)] == ["opened", "opened"]
    assert evaluate(timezone.now() + timedelta(minutes=2)).sent == 0


def test_it_gives_up_after_its_last_try(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, notify=catcher.url)
    failed_message(shop)
    catcher.answers = [(500, b"", {})]
    evaluate()
    Alert.objects.update(notice_tries=MAX_NOTICE_TRIES - 1, notice_next_at=None)
    evaluate()
    alert = Alert.objects.get()
    assert (alert.open_notice, alert.notice_next_at) == (Notice.GAVE_UP, None)
    count = len(catcher.requests)
    evaluate(timezone.now() + timedelta(days=1))
    assert len(catcher.requests) == count


def test_it_sends_no_lone_resolution_when_the_opening_never_got_through(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule(kind=AlertKind.FAILED, notify=catcher.url)
    message = failed_message(shop)
    catcher.answers = [(500, b"", {}), (200, b"", {})]
    evaluate()
    Message.objects.filter(pk=message.pk).update(status=Status.PENDING)
    evaluate()
    alert = Alert.objects.get()
    assert (alert.state, alert.open_notice, alert.resolve_notice) == ("resolved", Notice.DROPPED, Notice.DROPPED)
    assert len(catcher.requests) == 1
