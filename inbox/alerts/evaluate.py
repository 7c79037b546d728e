"""The evaluator: every minute the worker (inbox.tasks.evaluate_alerts) measures each rule,
opens an alert when its condition starts to hold, resolves it when it stops, and sends the
two notifications each alert gets: one when it opens, one when it resolves.

The state lives in the database (the Alert rows and their notices), so a restarted worker
goes on where the last one stopped. Transitions are conditional writes: the constraint
"one unresolved alert per rule" refuses a second opening, and a notification is claimed
by a conditional UPDATE of its try count before it is sent, so two evaluators running at
once neither open nor notify twice.

Sending runs in the worker, so a slow or dead channel must not hold it: each notification
has a short timeout (INBOX_ALERT_NOTIFY_TIMEOUT_SECONDS, 5 s), all sending in one evaluation
stops after INBOX_ALERT_SEND_BUDGET_SECONDS (10 s; what is left waits for the next one,
oldest alert first), a channel (a notify URL or address) that fails is not tried again in
the same evaluation, and a failed notification backs off: tried again after 1, 2, 4, 8...
minutes, at most an hour apart, and given up after MAX_NOTICE_TRIES (about 4 hours). So
notifications cost the worker at most the budget of each minute, and a dead channel one
timeout now and then. Nothing here raises out of `evaluate`: one broken rule or channel
never stops the others.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, models, transaction
from django.utils import timezone

from inbox.alerts import channels
from inbox.alerts.conditions import Reading, measure
from inbox.models import MAX_NOTICE_TRIES, UNRESOLVED, Alert, AlertRule, AlertState, Notice

logger = logging.getLogger("inbox.alerts")

# A failed notification waits 1, 2, 4... minutes before its next try, at most this long.
MAX_BACKOFF = timedelta(hours=1)
# A send starts only with this much of the budget left (or its whole timeout, if shorter); it
# gets its timeout or what is left of the budget, whichever is shorter.
MIN_SEND_SECONDS = 1.0
# Resolved alerts are kept this long, then pruned by the evaluator.
KEEP_RESOLVED = timedelta(days=90)
RETRIED = (Notice.PENDING, Notice.FAILED)


@dataclass
class Report:
    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    errors: int = 0
    # Due, but left for the next evaluation: the budget was spent, or their channel failed.
    deferred: int = 0


def evaluate(now: datetime | None = None) -> Report:
    """Measure every rule, open and resolve alerts, send what is due."""
    now = now or timezone.now()
    report = Report()
    unresolved = {alert.rule_id: alert for alert in Alert.objects.open()}
    for rule in AlertRule.objects.for_evaluation():
        try:
            reading = measure(rule, now)
            _apply(rule, reading, unresolved.get(rule.pk), now, report)
        except DatabaseError:
            report.errors += 1
            logger.exception("alert rule %s could not be evaluated", rule.pk)
    notify_due(now, report)
    Alert.objects.filter(state=AlertState.RESOLVED, resolved_at__lt=now - KEEP_RESOLVED).delete()
    return report


def _apply(rule: AlertRule, reading: Reading, alert: Alert | None, now: datetime, report: Report) -> None:
    if reading.firing and alert is None:
        opened = _open(rule, reading, now)
        if opened is not None:
            report.opened.append(opened.pk)
            logger.warning("alert opened rule=%s alert=%s %s", rule.pk, opened.pk, reading.summary)
    elif not reading.firing and not reading.inconclusive and alert is not None and _resolve(rule, alert, reading, now):
        report.resolved.append(alert.pk)
        logger.info("alert resolved rule=%s alert=%s %s", rule.pk, alert.pk, reading.summary)


def _open(rule: AlertRule, reading: Reading, now: datetime) -> Alert | None:
    try:
        with transaction.atomic():
            return Alert.objects.create(
                rule=rule,
                opened_at=now,
                summary=reading.summary[:500],
                counts=reading.counts,
                link=reading.link[:500],
                open_notice=Notice.MUTED if rule.muted else Notice.PENDING,
            )
    except IntegrityError:
        return None  # another evaluator opened it a moment ago: one alert, one notification


def _resolve(rule: AlertRule, alert: Alert, reading: Reading, now: datetime) -> bool:
    open_notice: str
    resolve_notice: str
    if alert.open_notice == Notice.SENT:
        # Whoever was told it opened is told it is over (unless the rule is muted since).
        open_notice, resolve_notice = Notice.SENT, Notice.MUTED if rule.muted else Notice.PENDING
    elif alert.open_notice in RETRIED:
        # Nobody heard it open: a lone "resolved" would only confuse.
        open_notice = resolve_notice = Notice.DROPPED
    else:
        open_notice, resolve_notice = alert.open_notice, Notice.MUTED if rule.muted else Notice.DROPPED
    done = Alert.objects.filter(pk=alert.pk, state__in=UNRESOLVED).update(
        state=AlertState.RESOLVED,
        resolved_at=now,
        resolved_summary=reading.summary[:500],
        resolved_counts=reading.counts,
        open_notice=open_notice,
        resolve_notice=resolve_notice,
        notice_tries=0,
        notice_next_at=None,
    )
    return bool(done)


def backoff(tries: int) -> timedelta:
    """How long a notification that failed `tries` times waits: 1, 2, 4... minutes, capped."""
    return min(timedelta(minutes=2 ** min(tries - 1, 10)), MAX_BACKOFF)


def notify_due(now: datetime, report: Report) -> None:
    """Send the notifications that are due, oldest alert first, within the time budget: an
    opening not yet sent (still open), a resolution not yet sent; failed ones again once
    their backoff has passed, up to MAX_NOTICE_TRIES."""
    due = (
        Alert.objects.filter(
            models.Q(state__in=UNRESOLVED, open_notice__in=RETRIED) | models.Q(resolve_notice__in=RETRIED)
        )
        .filter(notice_tries__lt=MAX_NOTICE_TRIES)
        .filter(models.Q(notice_next_at__isnull=True) | models.Q(notice_next_at__lte=now))
        .select_related("rule", "rule__endpoint", "rule__destination", "rule__destination__endpoint")
        .order_by("pk")
    )
    started = time.monotonic()
    budget = float(settings.INBOX_ALERT_SEND_BUDGET_SECONDS)
    timeout = float(settings.INBOX_ALERT_NOTIFY_TIMEOUT_SECONDS)
    failing: set[str] = set()  # channels that failed in this evaluation: not tried again in it
    for alert in due:
        resolving = alert.resolve_notice in RETRIED
        notice_field = "resolve_notice" if resolving else "open_notice"
        rule = alert.rule
        if rule.muted:
            Alert.objects.filter(pk=alert.pk).update(**{notice_field: Notice.MUTED}, notice_next_at=None)
            continue
        left = budget - (time.monotonic() - started)
        if rule.notify in failing or left < min(MIN_SEND_SECONDS, timeout):
            report.deferred += 1
            continue
        # Claim this try: a second evaluator finds the count moved and leaves it.
        claimed = Alert.objects.filter(pk=alert.pk, notice_tries=alert.notice_tries).update(
            notice_tries=models.F("notice_tries") + 1, noticed_at=now
        )
        if not claimed:
            continue
        tries = alert.notice_tries + 1
        try:
            sent = channels.send(rule, alert, channels.RESOLVED if resolving else channels.OPENED, min(timeout, left))
        except Exception as exc:  # a channel's bug must not stop the evaluator
            logger.exception("alert notification crashed alert=%s", alert.pk)
            sent = channels.Sent(False, f"{exc.__class__.__name__}: {str(exc)[:300]}")
        if sent.ok:
            Alert.objects.filter(pk=alert.pk).update(
                **{notice_field: Notice.SENT}, notice_error="", notice_tries=0, notice_next_at=None
            )
            report.sent += 1
            continue
        failing.add(rule.notify)
        gave_up = tries >= MAX_NOTICE_TRIES
        Alert.objects.filter(pk=alert.pk).update(
            **{notice_field: Notice.GAVE_UP if gave_up else Notice.FAILED},
            notice_error=sent.error[:2000],
            notice_next_at=None if gave_up else now + backoff(tries),
        )
        report.failed += 1
        logger.warning(
            "alert notification failed alert=%s rule=%s try=%s%s: %s",
            alert.pk,
            rule.pk,
            tries,
            " (gave up)" if gave_up else f" (next try in {backoff(tries)})",
            sent.error,
        )
    if report.deferred:
        logger.info("alert notifications deferred to the next evaluation: %s", report.deferred)
