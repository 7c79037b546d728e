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
from inbox.models import EMAIL_PREFIX, Alert, AlertRule, mark_invisible

logger = logging.getLogger("inbox.alerts")

USER_AGENT = "webhook-inbox/1 (alert)"
OPENED, RESOLVED = "opened", "resolved"


@dataclass(frozen=True)
class Sent:
    ok: bool
    error: str = ""


def absolute(path: str) -> str:
    return settings.PUBLIC_BASE_URL + path if path else ""


def slack_escape(text: str) -> str:
    """Slack reads `<...>` in `text` as a link or a mention (`<!channel>` pings everyone in
    the channel) and `&` as the start of an entity: it asks for these three, and only these,
    to be escaped ("Escaping text" in
    https://docs.slack.dev/messaging/formatting-message-text/)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_line(rule: AlertRule, alert: Alert, state: str) -> str:
    """The one-line summary, unescaped: it names the rule and says what happened, with any
    invisible character (a right-to-left override, a line separator) shown as a marker."""
    if state == OPENED:
        line = f"Alert opened: {rule.name}: {alert.summary}"
    else:
        line = f"Alert resolved: {rule.name}: {alert.resolved_summary or 'the condition no longer holds'}"
    link = absolute(alert.link)
    line = mark_invisible(line)
    return " ".join(f"{line}. {link}".split()) if link else " ".join(f"{line}.".split())


def text_line(rule: AlertRule, alert: Alert, state: str) -> str:
    """What a chat shows (`text`): the summary with `&`, `<` and `>` escaped for Slack."""
    return slack_escape(plain_line(rule, alert, state))


def payload(rule: AlertRule, alert: Alert, state: str) -> dict[str, Any]:
    """What a webhook receives: `text` for Slack and Teams incoming webhooks as they are,
    and the same facts as fields for a program (raw, unescaped). `counts` and `summary` are
    what was measured at that moment: at the opening, or at the resolution."""
    endpoint = rule.endpoint or (rule.destination.endpoint if rule.destination is not None else None)
    opened = state == OPENED
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
        # The masked URL for people; its id is what /metrics and the API name it by.
        "destination": rule.destination.display_url if rule.destination is not None else None,
        "destination_id": rule.destination_id,
        "summary": alert.summary if opened else alert.resolved_summary,
        "counts": alert.counts if opened else (alert.resolved_counts or alert.counts),
        "messages_url": absolute(alert.link),
        "alerts_url": absolute(reverse("inbox:alert-list")),
    }


def subject(rule: AlertRule, state: str) -> str:
    """An email subject: one line whatever the name holds (a line or paragraph separator
    would be refused by the mail header, or fold it)."""
    name = " ".join(mark_invisible(" ".join(rule.name.splitlines())).split())
    return f"[Webhook Inbox] Alert {state}: {name}"


def send(rule: AlertRule, alert: Alert, state: str, timeout: float) -> Sent:
    """Send one notification within `timeout` seconds (a webhook's whole exchange; an
    email's each SMTP operation, EMAIL_TIMEOUT)."""
    if rule.notify.startswith(EMAIL_PREFIX):
        return _email(rule, alert, state)
    return _webhook(rule, alert, state, timeout)


def _webhook(rule: AlertRule, alert: Alert, state: str, timeout: float) -> Sent:
    body = json.dumps(payload(rule, alert, state)).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    outcome = forwarding.post(rule.notify, body, headers, timeout)
    if outcome.ok:
        return Sent(True)
    return Sent(False, outcome.error or f"answered {outcome.status_code}")


def _email(rule: AlertRule, alert: Alert, state: str) -> Sent:
    address = rule.notify.removeprefix(EMAIL_PREFIX)
    data = payload(rule, alert, state)
    name = mark_invisible(rule.name)
    lines = [
        plain_line(rule, alert, state),
        "",
        f"Rule: {name} ({rule.condition}, {mark_invisible(rule.scope)})",
        f"State: {state}",
        f"Opened: {alert.opened_at:%Y-%m-%d %H:%M:%S %Z}",
    ]
    if alert.resolved_at:
        lines.append(f"Resolved: {alert.resolved_at:%Y-%m-%d %H:%M:%S %Z}")
    if data["messages_url"]:
        lines.append(f"What it concerns: {data['messages_url']}")
    lines.append(f"Every alert: {data['alerts_url']}")
    try:
        send_mail(subject(rule, state), "\n".join(lines) + "\n", None, [address])
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        return Sent(False, f"email to {address} failed: {exc.__class__.__name__}: {str(exc)[:300]}")
    return Sent(True)
