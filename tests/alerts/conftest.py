"""Plain factories for the alert tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from inbox.models import AlertRule, Attempt, AttemptStatus, Destination, Endpoint, Message, RejectedAttempt, Status
from tests.conftest import Catcher, make_message


def make_rule(name: str = "shop failures", **fields: Any) -> AlertRule:
    """A rule as the form and add_alert make one: validated, then saved."""
    fields.setdefault("notify", "https://hooks.example.com/alerts")
    rule = AlertRule(name=name, **fields)
    rule.full_clean()
    rule.save()
    return rule


def attempt(
    message: Message,
    status: str = AttemptStatus.FAILED,
    destination: Destination | None = None,
    at: datetime | None = None,
) -> Attempt:
    return Attempt.objects.create(
        message=message,
        endpoint=message.endpoint,
        number=1,
        target=destination.target if destination is not None else "destination:0",
        label="Forward",
        status=status,
        started_at=at or timezone.now(),
        error="answered 502, expected 2xx" if status == AttemptStatus.FAILED else "",
    )


def failed_message(endpoint: Endpoint, destination: Destination | None = None, ago: timedelta = timedelta()) -> Message:
    """A message whose retries are spent: failed, its last attempt failed `ago`."""
    message = make_message(endpoint, status=Status.FAILED, received_at=timezone.now() - ago - timedelta(minutes=1))
    attempt(message, destination=destination, at=timezone.now() - ago)
    return message


def refuse(endpoint: Endpoint, count: int, ago: timedelta = timedelta()) -> None:
    for _ in range(count):
        RejectedAttempt.objects.create(
            endpoint=endpoint, status=401, reason="Wrong or missing token", preset="token", at=timezone.now() - ago
        )


def posted(catcher: Catcher) -> list[dict[str, Any]]:
    """The JSON bodies the catcher received, in order."""
    return [json.loads(request["body"]) for request in catcher.requests]
