"""What each kind of alert rule measures, and whether its condition holds now.

Every query is bounded by the rule's window and served by an index: attempts by
(status, started_at) or (endpoint, started_at), refused deliveries by (endpoint, at) or
(at), the newest message by (endpoint, received_at) or (received_at). None scans the
message table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

from inbox.models import (
    DEFAULT_THRESHOLDS,
    AlertKind,
    AlertRule,
    Attempt,
    AttemptStatus,
    Message,
    RejectedAttempt,
    Status,
    describe_window,
)


@dataclass(frozen=True)
class Reading:
    """One evaluation of a rule: whether its condition holds, in one line, with the numbers
    and the dashboard path of what it concerns."""

    firing: bool
    summary: str
    counts: dict[str, Any] = field(default_factory=dict)
    link: str = ""
    # Not enough to open an alert, nor to say it is over: an open alert stays open (a failure
    # rate over too few attempts, some of them failed).
    inconclusive: bool = False


def measure(rule: AlertRule, now: datetime | None = None) -> Reading:
    now = now or timezone.now()
    since = now - timedelta(seconds=rule.window_seconds)
    if rule.kind == AlertKind.FAILED:
        return _failed(rule, since)
    if rule.kind == AlertKind.FAILURE_RATE:
        return _failure_rate(rule, since)
    if rule.kind == AlertKind.SILENCE:
        return _silence(rule, now, since)
    return _rejections(rule, since)


def _threshold(rule: AlertRule) -> int:
    return rule.threshold if rule.threshold is not None else DEFAULT_THRESHOLDS.get(rule.kind, 1)


def _where(rule: AlertRule) -> str:
    if rule.destination is not None:
        return f" on {rule.endpoint or rule.destination.endpoint} via {rule.destination.display_url}"
    if rule.endpoint is not None:
        return f" on {rule.endpoint.name}"
    return " on any endpoint"


def _attempts(rule: AlertRule, since: datetime) -> models.QuerySet[Attempt]:
    attempts = Attempt.objects.filter(started_at__gte=since)
    if rule.endpoint_id is not None:
        attempts = attempts.filter(endpoint_id=rule.endpoint_id)
    if rule.destination is not None:
        attempts = attempts.filter(target=rule.destination.target)
    return attempts


def list_link(**query: Any) -> str:
    """The message list with these filters (its own query parameters)."""
    values = {k: v for k, v in query.items() if v not in (None, "")}
    path = reverse("inbox:message-list")
    return f"{path}?{urlencode(values)}" if values else path


def _failed(rule: AlertRule, since: datetime) -> Reading:
    # A message is failed once the attempt that spent its last retry failed: its failed
    # attempts in the window, whose message is failed now. A replay (pending again) takes it
    # out, so replaying what failed resolves the alert.
    failed = (
        _attempts(rule, since)
        .filter(status=AttemptStatus.FAILED, message__status=Status.FAILED)
        .values("message_id")
        .distinct()
        .count()
    )
    threshold = _threshold(rule)
    noun = "message" if failed == 1 else "messages"
    summary = f"{failed} {noun} failed (retries spent) in the last {describe_window(rule.window_seconds)}"
    return Reading(
        firing=failed >= threshold,
        summary=summary + _where(rule),
        counts={"failed_messages": failed, "threshold": threshold},
        # Every failed message, not only the window's: the list filters by when a message was
        # received, and one received hours ago may have spent its last retry a minute ago;
        # `received_after` would hide it. Replaying them all is what resolves the alert.
        link=list_link(endpoint=rule.endpoint_id, status=Status.FAILED),
    )


def _failure_rate(rule: AlertRule, since: datetime) -> Reading:
    # Skipped, held and deferred attempts sent nothing: neither a success nor a failure.
    counts = (
        _attempts(rule, since)
        .filter(status__in=[AttemptStatus.SUCCEEDED, AttemptStatus.FAILED])
        .aggregate(total=models.Count("id"), failed=models.Count("id", filter=models.Q(status=AttemptStatus.FAILED)))
    )
    total, failed = counts["total"], counts["failed"]
    threshold = _threshold(rule)
    percent = round(failed * 100 / total) if total else 0
    enough = total >= rule.min_attempts
    firing = enough and failed * 100 > threshold * total
    window = describe_window(rule.window_seconds)
    attempts = f"{total} forward attempt{'' if total == 1 else 's'}"
    if not enough:
        # Too few attempts to open an alert; an open one resolves only once none of them
        # failed (traffic stopping is not the failures stopping).
        summary = f"{attempts} in the last {window}"
        summary += f", {failed} failed" if failed else ", none failed"
        summary += f" (fewer than the {rule.min_attempts} a rate needs)"
    else:
        summary = f"{percent}% of {attempts} failed in the last {window} (over {threshold}% alerts)"
    received_after = timezone.localtime(since).strftime("%Y-%m-%dT%H:%M")
    return Reading(
        firing=firing,
        summary=summary + _where(rule),
        counts={"failed_attempts": failed, "attempts": total, "percent": percent, "threshold": threshold},
        link=list_link(endpoint=rule.endpoint_id, received_after=received_after),
        inconclusive=not enough and failed > 0,
    )


def _silence(rule: AlertRule, now: datetime, since: datetime) -> Reading:
    messages = Message.objects.all() if rule.endpoint_id is None else Message.objects.filter(endpoint=rule.endpoint_id)
    last = messages.order_by("-received_at").values_list("received_at", flat=True).first()
    # A new rule (or a new endpoint) gets a whole window before it calls the quiet silence.
    reference = max(last, rule.created_at) if last is not None else rule.created_at
    window = describe_window(rule.window_seconds)
    where = f"on {rule.endpoint.name}" if rule.endpoint is not None else "on any endpoint"
    heard = "nothing ever received" if last is None else f"last message {timesince(last, now)} ago"
    firing = reference < since
    summary = f"Nothing received {where} for {window} ({heard})" if firing else f"Received {where} ({heard})"
    return Reading(
        firing=firing,
        summary=summary,
        counts={"last_received_at": last.isoformat() if last else None, "window_seconds": rule.window_seconds},
        link=list_link(endpoint=rule.endpoint_id),
    )


def _rejections(rule: AlertRule, since: datetime) -> Reading:
    refused = RejectedAttempt.objects.filter(at__gte=since)
    if rule.endpoint_id is not None:
        refused = refused.filter(endpoint_id=rule.endpoint_id)
    count = refused.count()  # capped per endpoint (RejectedAttempt.CAP_PER_ENDPOINT)
    threshold = _threshold(rule)
    noun = "delivery" if count == 1 else "deliveries"
    # Refused deliveries are not messages: their log is on the endpoint's page.
    link = (
        reverse("inbox:endpoint-detail", args=[rule.endpoint_id])
        if rule.endpoint_id is not None
        else reverse("inbox:endpoint-list")
    )
    return Reading(
        firing=count >= threshold,
        summary=f"{count} {noun} refused in the last {describe_window(rule.window_seconds)}{_where(rule)}",
        counts={"refused": count, "threshold": threshold},
        link=link,
    )
