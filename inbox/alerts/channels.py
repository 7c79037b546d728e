"""Where alert notifications go: a webhook (a JSON POST, through the forwarder's SSRF checks)
or an email (Django's email backend). Neither raises: each says whether it was sent and,
if not, why, for the alert's page and the retry at the next evaluation."""

from __future__ import annotations

import json
import logging
import smtplib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from inbox.delivery import forwarding
from inbox.models import EMAIL_PREFIX, Alert, AlertRule

logger = logging.getLogger("inbox.alerts")

WEBHOOK_TIMEOUT_SECONDS = 10
USER_AGENT = "webhook-inbox/1 (alert)"
OPENED, RESOLVED = "opened", "resolved"


@dataclass(frozen=True)
class Sent:
    ok: bool
    error: str = ""


def absolute(path: str) -> str:
    return settings.PUBLIC_BASE_URL + path if path else ""


def text_line(rule: AlertRule, alert: Alert, state: str) -> str:
    """The one-line summary a chat shows: it names the rule and says what happened."""
    if state == OPENED:
        line = f"Alert opened: {rule.name}: {alert.summary}"
    else:
        line = f"Alert resolved: {rule.name}: {alert.resolved_summary or 'the condition no longer holds'}"
    link = absolute(alert.link)
    return " ".join(f"{line}. {link}".split()) if link else " ".join(f"{line}.".split())


def payload(rule: AlertRule, alert: Alert, state: str) -> dict[str, Any]:
    """What a webhook receives: `text` for Slack and Teams incoming webhooks as they are,
    and the same facts as fields for a program."""
    endpoint = rule.endpoint or (rule.destination.endpoint if rule.destination is not None else None)
    return {
        "text": text_line(rule, alert, state),
        "state": state,
        "rule": {
            "id": rule.pk,
            "name": rule.name,
            "kind": rule.kind,
            "threshold": rule.threshold,
            "window": rule.window,
        },
        "kind": rule.kind,
        "alert": {
            "id": alert.pk,
            "state": alert.state,
            "opened_at": alert.opened_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        },
        "endpoint": endpoint.name if endpoint is not None else None,
        "destination": rule.destination.display_url if rule.destination is not None else None,
        "summary": alert.summary if state == OPENED else alert.resolved_summary,
        "counts": alert.counts,
        "messages_url": absolute(alert.link),
        "alerts_url": absolute(reverse("inbox:alert-list")),
    }


def send(rule: AlertRule, alert: Alert, state: str) -> Sent:
    if rule.notify.startswith(EMAIL_PREFIX):
        return _email(rule, alert, state)
    return _webhook(rule, alert, state)


def _webhook(rule: AlertRule, alert: Alert, state: str) -> Sent:
    body = json.dumps(payload(rule, alert, state)).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    outcome = forwarding.post(rule.notify, body, headers, WEBHOOK_TIMEOUT_SECONDS)
    if outcome.ok:
        return Sent(True)
    return Sent(False, outcome.error or f"answered {outcome.status_code}")


def _email(rule: AlertRule, alert: Alert, state: str) -> Sent:
    address = rule.notify.removeprefix(EMAIL_PREFIX)
    data = payload(rule, alert, state)
    subject = f"[Webhook Inbox] Alert {state}: {rule.name}"
    lines = [
        data["text"],
        "",
        f"Rule: {rule.name} ({rule.condition}, {rule.scope})",
        f"State: {state}",
        f"Opened: {alert.opened_at:%Y-%m-%d %H:%M:%S %Z}",
    ]
    if alert.resolved_at:
        lines.append(f"Resolved: {alert.resolved_at:%Y-%m-%d %H:%M:%S %Z}")
    if data["messages_url"]:
        lines.append(f"What it concerns: {data['messages_url']}")
    lines.append(f"Every alert: {data['alerts_url']}")
    try:
        send_mail(subject, "\n".join(lines) + "\n", None, [address])
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        return Sent(False, f"email to {address} failed: {exc.__class__.__name__}: {str(exc)[:300]}")
    return Sent(True)
