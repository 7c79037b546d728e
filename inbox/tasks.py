"""Background work, run by `manage.py db_worker` (django.tasks with django-tasks-db).

django-tasks-db has no periodic tasks and no retries of its own. Periodic work here is a
task that queues its own next run (`schedule_periodic` starts each chain once, and again
after a crash broke it); retries are new tasks queued with `run_after` (inbox/delivery/processing.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import DatabaseError, transaction
from django.http import QueryDict
from django.tasks import Task, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from inbox.delivery import processing
from inbox.filters import MessageFilter
from inbox.models import BulkAction, BulkJob, Endpoint, JobStatus, Message, MessageQuerySet, RejectedAttempt

logger = logging.getLogger("inbox.tasks")

PURGE_INTERVAL = timedelta(days=1)
HOUSEKEEPING_INTERVAL = timedelta(minutes=1)
# Bulk replays queue behind live traffic: a fresh delivery should not wait for a replay
# of last month's messages.
REPLAY_PRIORITY = -10
BULK_BATCH = 500


# --- Processing -----------------------------------------------------------------------------
@task()
def process_message(message_id: int) -> str:
    """One processing attempt of one message (forwarding, handlers)."""
    return processing.process(message_id)


def enqueue_processing(message_id: int, priority: int = 0) -> None:
    """Queue a wake-up for a pending message. A failure is logged, not raised: the message
    is stored as pending, and the recovery sweep queues it again."""
    try:
        process_message.using(priority=priority).enqueue(message_id)
    except DatabaseError:
        logger.exception("could not queue processing of message id=%s; the recovery sweep will", message_id)


def ready_processing_tasks() -> bool:
    """Whether wake-ups are due and waiting to be picked up (a backlog)."""
    return DBTaskResult.objects.ready().filter(task_path=process_message.module_path).exists()


def in_batches(
    messages: MessageQuerySet, apply: Callable[[list[int]], object], progress: Callable[[int], object] | None = None
) -> int:
    """Apply `apply` to the ids of `messages`, BULK_BATCH at a time, newest first, each
    batch in one transaction; how many. A bulk action over millions never holds them in
    memory, never locks more than a batch, and a batch is done entirely or not at all."""
    done, last_pk = 0, None
    while True:
        batch = messages.order_by("-pk") if last_pk is None else messages.filter(pk__lt=last_pk).order_by("-pk")
        ids = list(batch.values_list("pk", flat=True)[:BULK_BATCH])
        if not ids:
            return done
        with transaction.atomic():
            apply(ids)
        done += len(ids)
        last_pk = ids[-1]
        if progress is not None:
            progress(done)


def _replay_ids(ids: list[int]) -> None:
    Message.objects.filter(pk__in=ids).start_replay()
    for pk in ids:
        process_message.using(priority=REPLAY_PRIORITY).enqueue(pk)


BULK_ACTIONS: dict[str, Callable[[list[int]], object]] = {
    BulkAction.REPLAY: _replay_ids,
    BulkAction.DELETE: lambda ids: Message.objects.filter(pk__in=ids).delete(),
    BulkAction.MARK_READ: lambda ids: Message.objects.filter(pk__in=ids).update(read=True),
    BulkAction.MARK_UNREAD: lambda ids: Message.objects.filter(pk__in=ids).update(read=False),
}


def replay(messages: MessageQuerySet, progress: Callable[[int], object] | None = None) -> int:
    """Start a new processing round for every message here and queue each one; how many."""
    return in_batches(messages, _replay_ids, progress)


@task()
def run_bulk_job(job_id: int) -> int:
    """Apply a BulkJob's action to each of its messages, in batches, recording progress."""
    job = BulkJob.objects.get(pk=job_id)
    BulkJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, progressed_at=timezone.now())
    try:
        if job.ids:
            messages = Message.objects.filter(pk__in=job.ids)
        else:
            filterset = MessageFilter(QueryDict(job.query), queryset=Message.objects.all())
            if not filterset.is_valid():
                raise ValueError(f"invalid filter: {filterset.errors.as_text()}")
            messages = filterset.qs
        total = messages.count()
        BulkJob.objects.filter(pk=job.pk).update(total=total)
        done = in_batches(
            messages,
            BULK_ACTIONS[job.action],
            progress=lambda n: BulkJob.objects.filter(pk=job.pk).update(done=n, progressed_at=timezone.now()),
        )
    except Exception as exc:
        BulkJob.objects.filter(pk=job.pk).update(
            status=JobStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    BulkJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE, finished_at=timezone.now(), total=done)
    logger.info("bulk job id=%s action=%s done on %s messages", job.pk, job.action, done)
    return done


# --- Periodic work ----------------------------------------------------------------------------
def _schedule(periodic: Task, interval: timedelta) -> bool:  # type: ignore[type-arg]
    """Queue the next run of `periodic` unless one is already waiting; True when queued."""
    if DBTaskResult.objects.filter(task_path=periodic.module_path, status="READY").exists():
        return False
    periodic.using(run_after=timezone.now() + interval).enqueue()
    return True


def purge_all(batch_size: int | None = None) -> dict[str, int]:
    """Apply every endpoint's retention and cap; {endpoint name: messages deleted}."""
    batch_size = batch_size or settings.INBOX_PURGE_BATCH_SIZE
    report = {}
    for endpoint in Endpoint.objects.all():
        report[endpoint.name] = endpoint.purge(batch_size)
    return report


@task()
def purge_messages_daily() -> int:
    """The daily retention purge, and the pruning of finished task results."""
    try:
        report = purge_all()
        deleted = sum(report.values())
        cutoff = timezone.now() - timedelta(days=settings.INBOX_TASK_RESULT_DAYS)
        pruned, _ = DBTaskResult.objects.finished().filter(finished_at__lt=cutoff).delete()
        logger.info("retention purge deleted %s messages and %s task results", deleted, pruned)
        return deleted
    finally:
        schedule_daily_purge()


def schedule_daily_purge() -> bool:
    return _schedule(purge_messages_daily, PURGE_INTERVAL)


@task()
def housekeeping() -> list[int]:
    """Every minute: the processing recovery sweep (attempts a killed worker left open,
    wake-ups that were lost), bulk jobs whose worker stopped, then each endpoint's cap on
    its rejected-attempt log."""
    try:
        closed, requeued = processing.recover()
        stalled = timezone.now() - timedelta(seconds=settings.INBOX_PROCESSING_LEASE_SECONDS)
        BulkJob.objects.filter(status=JobStatus.RUNNING, progressed_at__lt=stalled).update(
            status=JobStatus.FAILED,
            finished_at=timezone.now(),
            error="The worker stopped during this job. Messages replayed so far stay replayed; start it again "
            "to replay the rest (those already done are processed once more).",
        )
        for endpoint in Endpoint.objects.all():
            RejectedAttempt.trim(endpoint)
        return [closed, requeued]
    finally:
        _schedule(housekeeping, HOUSEKEEPING_INTERVAL)


def schedule_periodic() -> list[str]:
    """Start every periodic chain that is not already waiting; the names of those queued."""
    queued = []
    if schedule_daily_purge():
        queued.append("daily purge")
    if _schedule(housekeeping, timedelta(0)):
        queued.append("housekeeping")
    return queued


# --- Test deliveries --------------------------------------------------------------------------
def post_test_webhook(endpoint: Endpoint) -> httpx.Response:
    body, headers = endpoint.test_request()
    return httpx.post(endpoint.url, content=body, headers=headers, timeout=10)


@task()
def send_test_webhook(endpoint_id: int) -> int:
    """Sign a sample event with the endpoint's own preset and post it to its receiver URL."""
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    response = post_test_webhook(endpoint)
    logger.info("test webhook endpoint=%s answered %s", endpoint.pk, response.status_code)
    return response.status_code
