"""Background work, run by `manage.py db_worker` (django.tasks with django-tasks-db): the
entry points only. What they run lives in inbox/delivery/ and the models.

Queued rows name each task by its path here (`inbox.tasks.process_message`, ...), so these
names stay where they are. django-tasks-db has no periodic tasks and no retries of its own.
Periodic work here is a task that queues its own next run (`schedule_periodic` starts each
chain once, and again after a crash broke it); retries are new wake-ups queued with
`run_after` (inbox/delivery/processing.py), through inbox/delivery/queue.py, which this
module connects to `process_message` when it is imported.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.tasks import Task, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from inbox.alerts import evaluate
from inbox.delivery import bulk, processing, queue, samples
from inbox.models import Endpoint, Message, RejectedAttempt

logger = logging.getLogger("inbox.tasks")

PURGE_INTERVAL = timedelta(days=1)
HOUSEKEEPING_INTERVAL = timedelta(minutes=1)
ALERTS_INTERVAL = timedelta(minutes=1)
# The search indexes' flush (PostgreSQL): how often; how long its own finished task rows are
# kept (one every 2 s would be 300,000 a week before the daily prune); and a priority above
# process_message's, so a backlog of wake-ups cannot starve it while the lists fill.
SEARCH_FLUSH_INTERVAL = timedelta(seconds=2)
SEARCH_FLUSH_RESULTS_KEPT = timedelta(minutes=1)
SEARCH_FLUSH_PRIORITY = 10


# --- Processing -----------------------------------------------------------------------------
@task()
def process_message(message_id: int) -> str:
    """One processing attempt of one message (forwarding, handlers)."""
    return processing.process(message_id)


def ready_processing_tasks() -> bool:
    """Whether wake-ups are due and waiting to be picked up (a backlog)."""
    return DBTaskResult.objects.ready().filter(task_path=process_message.module_path).exists()


class ProcessingQueue:
    """inbox/delivery/queue.py's wake-ups, as `process_message` tasks."""

    def wake(self, message_id: int, *, priority: int = 0, run_after: datetime | None = None) -> None:
        process_message.using(priority=priority, run_after=run_after).enqueue(message_id)

    def backlog(self) -> bool:
        return ready_processing_tasks()


queue.connect(ProcessingQueue())


@task()
def run_bulk_job(job_id: int) -> int:
    """Apply a BulkJob's action to each of its messages, in batches, recording progress."""
    return bulk.run_job(job_id)


# --- Periodic work ----------------------------------------------------------------------------
def _schedule(periodic: Task, interval: timedelta) -> bool:  # type: ignore[type-arg]
    """Queue the next run of `periodic` unless one is already waiting; True when queued."""
    if DBTaskResult.objects.filter(task_path=periodic.module_path, status="READY").exists():
        return False
    periodic.using(run_after=timezone.now() + interval).enqueue()
    return True


@task()
def purge_messages_daily() -> int:
    """The daily retention purge, and the pruning of finished task results."""
    try:
        report = Endpoint.objects.purge(settings.INBOX_PURGE_BATCH_SIZE)
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
    its rejected-attempt log; and the search flush's chain, if it broke."""
    try:
        closed, requeued = processing.recover()
        bulk.fail_stalled()
        for endpoint in Endpoint.objects.all():
            RejectedAttempt.trim(endpoint)
        return [closed, requeued]
    finally:
        _schedule(housekeeping, HOUSEKEEPING_INTERVAL)
        # A crash between two flushes breaks that chain until the next `schedule_tasks`
        # (search stays exact meanwhile, the receiver merges full lists itself): restart it.
        schedule_search_flush()


@task(priority=SEARCH_FLUSH_PRIORITY)
def flush_search_indexes() -> int:
    """Every 2 s on PostgreSQL: merge the pending lists the receiver's INSERTs appended to
    into the search indexes (`MessageQuerySet.flush_search_indexes`); the pages merged."""
    try:
        return Message.objects.flush_search_indexes()
    finally:
        cutoff = timezone.now() - SEARCH_FLUSH_RESULTS_KEPT
        DBTaskResult.objects.finished().filter(
            task_path=flush_search_indexes.module_path, finished_at__lt=cutoff
        ).delete()
        _schedule(flush_search_indexes, SEARCH_FLUSH_INTERVAL)


def schedule_search_flush() -> bool:
    """Start the flush chain unless it is waiting. PostgreSQL only: SQLite has no search
    indexes, and a task every 2 s would be a write competing with the receiver's."""
    return connection.vendor == "postgresql" and _schedule(flush_search_indexes, timedelta(0))


@task()
def evaluate_alerts() -> list[int]:
    """Every minute: measure each alert rule, open and resolve alerts, send their
    notifications (inbox/alerts/evaluate.py). A chain of its own: a slow notification
    channel delays no housekeeping."""
    try:
        report = evaluate.evaluate()
        return [len(report.opened), len(report.resolved), report.sent, report.failed]
    finally:
        _schedule(evaluate_alerts, ALERTS_INTERVAL)


def schedule_periodic() -> list[str]:
    """Start every periodic chain that is not already waiting; the names of those queued."""
    queued = []
    if schedule_daily_purge():
        queued.append("daily purge")
    if _schedule(housekeeping, timedelta(0)):
        queued.append("housekeeping")
    if _schedule(evaluate_alerts, timedelta(0)):
        queued.append("alerts")
    if schedule_search_flush():
        queued.append("search index flush")
    return queued


# --- Test deliveries --------------------------------------------------------------------------
@task()
def send_test_webhook(endpoint_id: int) -> int:
    """Sign a sample event with the endpoint's own preset and post it to its receiver URL."""
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    response = samples.post_test_webhook(endpoint)
    logger.info("test webhook endpoint=%s answered %s", endpoint.pk, response.status_code)
    return response.status_code
