"""The evaluator: every minute the worker (inbox.tasks.evaluate_alerts) measures each rule,
opens an alert when its condition starts to hold, resolves it when it stops, and sends the
two notifications each alert gets: one when it opens, one when it resolves.

The state lives in the database (the Alert rows and their notices), so a restarted worker
goes on where the last one stopped. Transitions are conditional writes: the constraint
"one unresolved alert per rule" refuses a second opening, and a notification is claimed
by a conditional UPDATE of its try count before it is sent, so two evaluators running at
once neither open nor notify twice.

A notification that fails is logged, kept on the alert (its error, its tries) and tried
again at the next evaluation, up to MAX_NOTICE_TRIES; nothing here raises out of
`evaluate`: one broken rule or channel never stops the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import DatabaseError, IntegrityError, models, transaction
from django.utils import timezone

from inbox.alerts import channels
from inbox.alerts.conditions import Reading, measure
from inbox.models import UNRESOLVED, Alert, AlertRule, AlertState, Notice

logger = logging.getLogger("inbox.alerts")

# One try a minute: an hour of a channel being down before a notification is given up.
MAX_NOTICE_TRIES = 60
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
    elif not reading.firing and alert is not None and _resolve(rule, alert, reading, now):
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
        open_notice=open_notice,
        resolve_notice=resolve_notice,
        notice_tries=0,
    )
    return bool(done)


def notify_due(now: datetime, report: Report) -> None:
    """Send every notification that is due: an opening not yet sent (still open), a
    resolution not yet sent; failed ones again, up to MAX_NOTICE_TRIES."""
    due = (
        Alert.objects.filter(
            models.Q(state__in=UNRESOLVED, open_notice__in=RETRIED) | models.Q(resolve_notice__in=RETRIED)
        )
        .filter(notice_tries__lt=MAX_NOTICE_TRIES)
        .select_related("rule", "rule__endpoint", "rule__destination", "rule__destination__endpoint")
        .order_by("pk")
    )
    for alert in due:
        resolving = alert.resolve_notice in RETRIED
        notice_field = "resolve_notice" if resolving else "open_notice"
        rule = alert.rule
        if rule.muted:
            Alert.objects.filter(pk=alert.pk).update(**{notice_field: Notice.MUTED})
            continue
        # Claim this try: a second evaluator finds the count moved and leaves it.
        claimed = Alert.objects.filter(pk=alert.pk, notice_tries=alert.notice_tries).update(
            notice_tries=models.F("notice_tries") + 1, noticed_at=now
        )
        if not claimed:
            continue
        tries = alert.notice_tries + 1
        try:
            sent = channels.send(rule, alert, channels.RESOLVED if resolving else channels.OPENED)
        except Exception as exc:  # a channel's bug must not stop the evaluator
            logger.exception("alert notification crashed alert=%s", alert.pk)
            sent = channels.Sent(False, f"{exc.__class__.__name__}: {str(exc)[:300]}")
        if sent.ok:
            Alert.objects.filter(pk=alert.pk).update(**{notice_field: Notice.SENT}, notice_error="", notice_tries=0)
            report.sent += 1
            continue
        gave_up = tries >= MAX_NOTICE_TRIES
        Alert.objects.filter(pk=alert.pk).update(
            **{notice_field: Notice.GAVE_UP if gave_up else Notice.FAILED}, notice_error=sent.error[:2000]
        )
        report.failed += 1
        logger.warning(
            "alert notification failed alert=%s rule=%s try=%s%s: %s",
            alert.pk,
            rule.pk,
            tries,
            " (gave up)" if gave_up else "",
            sent.error,
        )
