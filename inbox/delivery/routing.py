"""Routing: which messages a destination gets, in what shape, signed how, and when.

For each destination and message, before anything is sent (docs/architecture.md, "The
processing state machine"):

1. its **filter** (the message list's own query string, evaluated by the list's FilterSet
   in inbox/filters.py) does not keep the message: the attempt is *skipped*, for good;
2. it is **paused** (by staff, or by the circuit breaker): the attempt is *held*; resuming
   wakes what it holds, oldest first;
3. its **max rate** has no turn left in the current window: the attempt is *deferred* to
   the window where its turn comes, a reschedule rather than a failure.

Otherwise the body is **transformed** (JMESPath over the JSON body) and **signed**
(Standard Webhooks) and sent. Its outcome feeds the circuit breaker.

The rate counter is shared by every worker: in Redis when the inbox has one (one INCR per
forward, no row lock, and the counter expires by itself), else in the destination's own row
(one conditional UPDATE in a short transaction: PostgreSQL's row lock, SQLite's write lock,
serialise the workers). A process-local cache would let each worker send at the full rate.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jmespath
from django.core.cache import caches
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django_redis.cache import RedisCache
from jmespath.exceptions import JMESPathError
from standardwebhooks.webhooks import Webhook

from inbox import filters
from inbox.delivery import queue
from inbox.models import (
    AttemptStatus,
    AuditAction,
    AuditEntry,
    Destination,
    Endpoint,
    Message,
    Status,
    Verification,
    parse_max_rate,
)

logger = logging.getLogger("inbox.routing")

VERIFIED_HEADER = "X-Webhook-Inbox-Verified"
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
DRY_RUN_SIZE = 500


class RoutingError(Exception):
    """A transform or a signature that cannot be made for this message: the attempt fails
    with this text."""


@dataclass(frozen=True)
class Decision:
    """Why a destination does not send a message now: skipped, held or deferred (to `due`)."""

    status: str
    note: str
    due: datetime | None = None


def decide(destination: Destination, message: Message, now: datetime | None = None) -> Decision | None:
    """Whether the destination sends the message now (None), or why not. A filter that no
    longer validates raises RoutingError: staff must see it, not lose messages to it."""
    try:
        keep = filters.matches(destination.filter, message)
    except ValueError as exc:
        raise RoutingError(f"The destination's filter is no longer valid: {exc}") from None
    if not keep:
        return Decision(AttemptStatus.SKIPPED, "Not sent: the destination's filter does not match this message.")
    if destination.paused:
        return Decision(AttemptStatus.HELD, "Held: the destination is paused; resuming it sends this message.")
    due = take_turn(destination, now)
    if due is not None:
        return Decision(
            AttemptStatus.DEFERRED,
            f"Rescheduled: the destination's rate ({destination.max_rate}) has no turn left before {due:%H:%M:%S} UTC.",
            due,
        )
    return None


# --- Transform --------------------------------------------------------------------------------
def transformed(expression: str, message: Message) -> bytes:
    """The JMESPath `expression`'s result over the message's JSON body, as JSON bytes."""
    if message.json is None:
        raise RoutingError("Not sent: the body is not JSON, and this destination transforms JSON.")
    try:
        result = jmespath.search(expression, message.json)
    except JMESPathError as exc:
        raise RoutingError(f"The transform failed on this message: {str(exc).strip().splitlines()[0]}") from None
    return json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode()


def preview(expression: str, message: Message) -> str:
    """The forwarded body the transform makes of a stored message, for the form's preview."""
    return json.dumps(json.loads(transformed(expression, message)), ensure_ascii=False, indent=2)


# --- Signature ----------------------------------------------------------------------------------
def webhook_id(message: Message) -> str:
    """The same for every retry of a round, so a receiver can deduplicate; a replay is a new
    delivery staff asked for, so it gets an id of its own."""
    return f"msg_{message.pk}" + (f"_replay{message.replays}" if message.replays else "")


def signature_headers(
    destination: Destination, message: Message, body: bytes, now: datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers over `body`, signed now (so a replay passes a receiver's
    timestamp tolerance), with every secret in use: two signatures during a rotation's grace."""
    secrets = destination.signing_secrets(now)
    if not secrets:
        raise RoutingError("Not sent: the destination signs, but its signing secret cannot be decrypted.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RoutingError("Not sent: Standard Webhooks signs text, and this body is not UTF-8.") from None
    moment = (now or timezone.now()).astimezone(UTC)
    msg_id = webhook_id(message)
    signatures = [Webhook(secret).sign(msg_id, moment, text) for secret in secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def verified_by(message: Message) -> str:
    """How the inbox verified the original: the preset's name ("stripe"), or "none"."""
    return message.endpoint.auth if message.verification == Verification.VERIFIED else "none"


def without(headers: dict[str, str], names: set[str]) -> dict[str, str]:
    """`headers` less any of `names`, whatever their case: the inbox's own headers replace an
    original's (a sender must not be able to pass its own X-Webhook-Inbox-Verified on)."""
    lowered = {n.lower() for n in names}
    return {k: v for k, v in headers.items() if k.lower() not in lowered}


# --- Rate ---------------------------------------------------------------------------------------
def take_turn(destination: Destination, now: datetime | None = None) -> datetime | None:
    """Take a turn under the destination's max rate: None to send now, else when to come
    back. The counter is per fixed window; those over the limit get, in the order they
    asked, the turns of the windows after, spread across each window."""
    rate = parse_max_rate(destination.max_rate)
    if rate is None:
        return None
    limit, window = rate
    moment = (now or timezone.now()).timestamp()
    index = int(moment // window)
    position = _count(destination.pk, index, window)
    if position <= limit:
        return None
    later, place = divmod(position - 1, limit)
    return datetime.fromtimestamp((index + later) * window + place * window / limit, UTC)


def _count(destination_id: int, index: int, window: int) -> int:
    """This forward's place in the window (1 for the first)."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        key = f"destination-rate:{destination_id}:{index}"
        try:
            cache.add(key, 0, timeout=window * 2 + 60)
            return int(cache.incr(key))
        except Exception:
            logger.warning(
                "rate counter: Redis did not answer; counting in the database destination=%s", destination_id
            )
    return count_in_database(destination_id, index)


def count_in_database(destination_id: int, index: int) -> int:
    with transaction.atomic():
        Destination.objects.filter(pk=destination_id).update(
            rate_count=Case(When(rate_window=index, then=F("rate_count") + 1), default=Value(1)),
            rate_window=index,
        )
        counted: int = Destination.objects.filter(pk=destination_id).values_list("rate_count", flat=True).get()
    return counted


# --- Pause, resume and the circuit breaker ------------------------------------------------------
def record_outcome(destination: Destination, ok: bool) -> None:
    """Count failed attempts in a row; pause the destination when they reach its threshold."""
    if ok:
        # Only when the row loaded for this round had failures: a success must not cost every
        # forward a write (on SQLite, the database's one write lock, which the receiver needs).
        if destination.consecutive_failures:
            Destination.objects.filter(pk=destination.pk).update(consecutive_failures=0)
        return
    with transaction.atomic():
        Destination.objects.filter(pk=destination.pk).update(consecutive_failures=F("consecutive_failures") + 1)
        failures = Destination.objects.filter(pk=destination.pk).values_list("consecutive_failures", flat=True).get()
    threshold = destination.breaker_threshold
    if threshold and failures >= threshold:
        pause(destination, None, f"{failures} failed attempts in a row (the circuit breaker)")


def pause(destination: Destination, user: Any, reason: str) -> bool:
    """Pause the destination (False when it already was): its messages wait until resumed."""
    paused = Destination.objects.filter(pk=destination.pk, paused=False).update(
        paused=True, paused_at=timezone.now(), paused_reason=reason[:200]
    )
    if paused:
        destination.paused, destination.paused_reason = True, reason[:200]
        AuditEntry.record(
            user, AuditAction.DESTINATION_PAUSED, destination.display_url, _endpoint(destination), reason=reason
        )
        logger.warning("destination paused id=%s: %s", destination.pk, reason)
    return bool(paused)


def resume(destination: Destination, user: Any, now: datetime | None = None) -> int:
    """Resume the destination and wake what it held, oldest first, spaced at its max rate;
    the number of messages woken."""
    now = now or timezone.now()
    Destination.objects.filter(pk=destination.pk).update(
        paused=False, paused_at=None, paused_reason="", consecutive_failures=0
    )
    destination.paused, destination.paused_reason, destination.consecutive_failures = False, "", 0
    rate = parse_max_rate(destination.max_rate)
    spacing = timedelta(seconds=rate[1] / rate[0]) if rate else timedelta(0)
    woken = 0
    for pk in Message.objects.held_for(destination).values_list("pk", flat=True).iterator():
        due = now + spacing * woken
        # Only if still held: a replay or a purge may have moved it on meanwhile.
        if Message.objects.filter(pk=pk, status=Status.PENDING, next_attempt_at__isnull=True).update(
            next_attempt_at=due
        ):
            queue.wake(pk, run_after=due if spacing else None)
            woken += 1
    AuditEntry.record(
        user, AuditAction.DESTINATION_RESUMED, destination.display_url, _endpoint(destination), messages_held=woken
    )
    logger.info("destination resumed id=%s woke=%s", destination.pk, woken)
    return woken


def _endpoint(destination: Destination) -> Endpoint:
    endpoint: Endpoint = destination.endpoint
    return endpoint


# --- Dry run ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DryRun:
    considered: int
    matched: list[Message]
    count: int


def dry_run(query: str, endpoint: Endpoint, size: int = DRY_RUN_SIZE, shown: int = 20) -> DryRun:
    """Of the endpoint's last `size` messages, those the filter would have sent."""
    recent = list(endpoint.messages.newest_first().values_list("pk", flat=True)[:size])
    kept = filters.matching(query, Message.objects.filter(pk__in=recent)).newest_first()
    return DryRun(considered=len(recent), matched=list(kept.for_list()[:shown]), count=kept.count())
