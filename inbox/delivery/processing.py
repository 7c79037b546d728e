"""Processing one message: forward it to the endpoint's destinations and run its handlers.

Called by the `process_message` task (inbox/tasks.py); queues its retries through
inbox/delivery/queue.py. The message row carries the state
(status, attempt count, next due time, lease); a task is only a wake-up. One run:

1. claim the message with a conditional UPDATE (one worker wins; duplicates do nothing);
2. run every target that has not succeeded in this round, one Attempt row each;
3. all succeeded: processed. Otherwise retry after an exponential, jittered delay, or
   mark it failed when the endpoint's retries are spent. A destination's routing
   (inbox/delivery/routing.py) may skip a message (its filter), hold it (paused) or
   defer it (its max rate): none of these is a failure, and a round that only waits gives
   its attempt back (`Message.postpone`).
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from inbox import counters
from inbox.delivery import forwarding, handlers, queue, routing
from inbox.delivery.work import has_work
from inbox.models import Attempt, AttemptStatus, Destination, Message, Status

logger = logging.getLogger("inbox.processing")

SIGNAL_TARGET = "signal:message_received"
# Claims beyond the endpoint's retries that a message gets before it is marked failed, for
# attempts that never finished (a worker killed mid-attempt is not the message's fault).
CRASH_ALLOWANCE = 3
MESSAGE_ID_HEADER = "X-Webhook-Inbox-Message-Id"
POSTPONED = "postponed"
__all__ = ["has_work", "process", "recover", "retry_delay", "targets_for"]


def retry_delay(retry: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait before retry number `retry` (1-based).

    Exponential: INBOX_RETRY_BASE_SECONDS x INBOX_RETRY_FACTOR^(retry-1), so with the
    defaults (40 s, x2.7) the first retry comes within a minute and five span about an
    hour. Each delay is jittered by +-20% so that the messages of one outage do not all
    come back at the same second.
    """
    base = settings.INBOX_RETRY_BASE_SECONDS * settings.INBOX_RETRY_FACTOR ** (retry - 1)
    jitter = (rng or random).uniform(0.8, 1.2)
    return timedelta(seconds=base * jitter)


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    run: Callable[[Message], forwarding.Outcome]
    destination: Destination | None = None


def forward_request(destination: Destination, message: Message) -> tuple[bytes, dict[str, str]]:
    """The body and headers a destination is sent for a message: transformed and signed as
    the destination says. RoutingError when that cannot be done for this message."""
    headers = forwarding.outbound_headers(
        message.headers, destination.forward_headers, message.endpoint.redacted_header_names()
    )
    body = message.body
    content_type = message.content_type
    if destination.transform:
        body = routing.transformed(destination.transform, message)
        content_type = "application/json"
    own = {"Content-Type", MESSAGE_ID_HEADER, routing.VERIFIED_HEADER}
    if destination.sign:
        own.update(routing.SIGNATURE_HEADERS)
    headers = routing.without(headers, own)
    if content_type:
        headers["Content-Type"] = content_type
    headers[MESSAGE_ID_HEADER] = str(message.pk)
    headers[routing.VERIFIED_HEADER] = routing.verified_by(message)
    if destination.sign:
        headers.update(routing.signature_headers(destination, message, body))
    return body, headers


def _forward(destination: Destination) -> Callable[[Message], forwarding.Outcome]:
    def run(message: Message) -> forwarding.Outcome:
        try:
            body, headers = forward_request(destination, message)
        except routing.RoutingError as exc:
            return forwarding.Outcome(ok=False, error=str(exc))
        return forwarding.post(destination.url, body, headers, destination.timeout_seconds)

    return run


def _call(func: Callable[[Message], object]) -> Callable[[Message], forwarding.Outcome]:
    def run(message: Message) -> forwarding.Outcome:
        started = time.monotonic()
        try:
            func(message)
        except Exception:
            # The whole traceback is kept on the attempt: it is what a developer needs.
            error = traceback.format_exc()
            return forwarding.Outcome(ok=False, error=error, duration_ms=_ms(started))
        return forwarding.Outcome(ok=True, duration_ms=_ms(started))

    return run


def _send_signal(message: Message) -> forwarding.Outcome:
    started = time.monotonic()
    failures = [
        "".join(traceback.format_exception(result)) if result.__traceback__ else repr(result)
        for receiver, result in handlers.message_received.send_robust(sender=Message, message=message)
        if isinstance(result, Exception)
    ]
    return forwarding.Outcome(ok=not failures, error="\n".join(failures), duration_ms=_ms(started))


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def targets_for(message: Message) -> list[Target]:
    """Everything that should run for this message, in a stable order."""
    endpoint = message.endpoint
    found = [
        Target(d.target, f"Forward to {d.display_url}", _forward(d), d)
        for d in endpoint.destinations.filter(enabled=True)
    ]
    found += [
        Target(f"handler:{h.name}", f"Handler {h.name}", _call(h.func))
        for h in handlers.handlers_for(endpoint.name, message.event_type)
    ]
    if handlers.message_received.has_listeners(Message):
        found.append(Target(SIGNAL_TARGET, "Signal message_received", _send_signal))
    return found


def process(message_id: int, now: datetime | None = None) -> str:
    """Run one attempt of one message; returns what happened, for the task's result."""
    message = Message.objects.select_related("endpoint").filter(pk=message_id).first()
    if message is None:
        return "gone"  # Deleted or purged since it was queued.
    lease = timedelta(seconds=settings.INBOX_PROCESSING_LEASE_SECONDS)
    if not message.claim(lease, now):
        return "not due"  # Another worker has it, or a duplicate wake-up.

    endpoint = message.endpoint
    if message.attempts > endpoint.max_retries + CRASH_ALLOWANCE:
        # Claimed again and again without ever finishing: something in this message
        # kills the worker. Stop handing it out.
        message.finish(Status.FAILED)
        logger.error("message failed id=%s: %s attempts never finished", message.pk, message.attempts)
        return Status.FAILED
    try:
        outcome, due = _run_round(message)
    except Exception:
        # A bug, a deleted message, a database hiccup: this attempt failed, and the
        # message goes on to its retry or to failed like any other failure, never
        # staying claimed for the recovery sweep to hand out again and again.
        logger.exception("processing attempt crashed id=%s", message.pk)
        outcome, due = Status.FAILED, None
    if outcome == POSTPONED:
        # Only waiting (a paused destination, a rate's next turn): not a retry.
        if message.postpone(due) and due is not None:
            queue.wake(message.pk, run_after=due)
        logger.info("message postponed id=%s until=%s", message.pk, due or "resumed")
        return "held" if due is None else "rescheduled"
    if outcome in (Status.SKIPPED, Status.PROCESSED):
        message.finish(outcome)
        logger.info("message %s id=%s attempt=%s", outcome, message.pk, message.attempts)
        return outcome

    retry = message.attempts  # attempts so far = the number of the retry to come
    if retry <= endpoint.max_retries:
        due = timezone.now() + retry_delay(retry)
        if message.finish(Status.PENDING, due):
            queue.wake(message.pk, run_after=due)
        logger.info("message retry scheduled id=%s retry=%s", message.pk, retry)
        return "retry"
    message.finish(Status.FAILED)
    logger.warning("message failed id=%s after %s attempts", message.pk, message.attempts)
    return Status.FAILED


def _run_round(message: Message) -> tuple[str, datetime | None]:
    """Run every target that has not succeeded in this round: skipped, processed, failed,
    or postponed (with the time to come back, None to wait for a resume)."""
    done = set(
        message.processing_attempts.filter(
            replay=message.replays, status__in=[AttemptStatus.SUCCEEDED, AttemptStatus.SKIPPED]
        ).values_list("target", flat=True)
    )
    targets = [t for t in targets_for(message) if t.key not in done]
    if not targets and not done:
        return Status.SKIPPED, None
    results = [_attempt(message, t) for t in targets]
    if AttemptStatus.FAILED in results:
        return Status.FAILED, None
    waits = [r for r in results if isinstance(r, routing.Decision) and r.status != AttemptStatus.SKIPPED]
    if waits:
        dues = [w.due for w in waits if w.due is not None]
        return POSTPONED, min(dues) if dues else None
    # Every target this round (now or in an earlier attempt) left it alone: nothing was done.
    sent = AttemptStatus.SUCCEEDED in results or (
        message.processing_attempts.filter(replay=message.replays, status=AttemptStatus.SUCCEEDED).exists()
    )
    return (Status.PROCESSED if sent else Status.SKIPPED), None


def _attempt(message: Message, target: Target) -> str | routing.Decision:
    """One target's attempt: its status, or the routing decision that stopped it."""
    decision: routing.Decision | None = None
    error = ""
    if target.destination is not None:
        try:
            decision = routing.decide(target.destination, message)
        except routing.RoutingError as exc:
            error = str(exc)
    attempt = Attempt.objects.create(
        message=message,
        endpoint_id=message.endpoint_id,
        replay=message.replays,
        number=message.attempts,
        target=target.key,
        label=target.label[:500],
    )
    if decision is not None or error:
        status = decision.status if decision is not None else AttemptStatus.FAILED
        Attempt.objects.filter(pk=attempt.pk).update(status=status, error=decision.note if decision else error)
        if target.destination is not None:
            counters.add_forward_attempt(target.destination.pk, status)
        return decision if decision is not None else AttemptStatus.FAILED
    outcome = target.run(message)
    # An UPDATE, not save(): when the message was deleted meanwhile (a purge, staff), its
    # attempts went with it and there is nothing left to record.
    Attempt.objects.filter(pk=attempt.pk).update(
        status=AttemptStatus.SUCCEEDED if outcome.ok else AttemptStatus.FAILED,
        duration_ms=outcome.duration_ms,
        status_code=outcome.status_code,
        response_excerpt=forwarding.printable(outcome.excerpt),
        error=forwarding.printable(outcome.error[:20000]),
    )
    if target.destination is not None:
        # In memory, written by the process's counter thread (inbox/counters.py).
        counters.add_forward_attempt(
            target.destination.pk, AttemptStatus.SUCCEEDED if outcome.ok else AttemptStatus.FAILED
        )
        routing.record_outcome(target.destination, outcome.ok)
    return AttemptStatus.SUCCEEDED if outcome.ok else AttemptStatus.FAILED


def recover(now: datetime | None = None, limit: int = 1000) -> tuple[int, int]:
    """The recovery sweep: (attempts closed, messages requeued).

    A worker killed mid-attempt leaves an Attempt 'running' and the message leased; once
    the lease lapses the attempt is closed as failed and the message is queued again. A
    message whose wake-up was lost (the enqueue failed after the INSERT committed) is
    queued again the same way.
    """
    now = now or timezone.now()
    lease = timedelta(seconds=settings.INBOX_PROCESSING_LEASE_SECONDS)
    stale = Attempt.objects.filter(status=AttemptStatus.RUNNING, started_at__lt=now - lease)
    closed = 0
    for pk, target in stale.values_list("pk", "target")[:limit]:
        # One by one (there are none unless a worker was killed), so that only the attempts
        # this sweep closed count as failed forwards, never one a slow worker finished meanwhile.
        if Attempt.objects.filter(pk=pk, status=AttemptStatus.RUNNING).update(
            status=AttemptStatus.FAILED, error="The worker stopped during this attempt; the message was queued again."
        ):
            closed += 1
            if target.startswith(Destination.TARGET_PREFIX):
                counters.add_forward_attempt(int(target.removeprefix(Destination.TARGET_PREFIX)), AttemptStatus.FAILED)
    if queue.backlog():
        # Wake-ups are still waiting in the queue: a backlog, not a loss. Requeueing now
        # would only double the backlog.
        return closed, 0
    requeued = 0
    for pk in Message.objects.overdue(now, timedelta(seconds=30)).values_list("pk", flat=True)[:limit]:
        queue.wake(pk)
        requeued += 1
    if closed or requeued:
        logger.warning("recovery sweep closed=%s requeued=%s", closed, requeued)
    return closed, requeued
