"""Bulk jobs: one action (replay, delete, mark read or unread) on many messages, in batches.

One module for both callers: the dashboard runs a page's selection at once (`in_batches`
with an action of `BULK_ACTIONS`), and the worker runs whole filters and replays as a
`BulkJob` (`run_job`, from the `run_bulk_job` task), with its progress on a page of its own.
A job over a filter keeps the message list's query string and is resolved here with the
list's own FilterSet (inbox/filters.py, the message query language every layer above models
shares).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.http import QueryDict
from django.utils import timezone

from inbox.delivery import queue
from inbox.filters import MessageFilter
from inbox.models import BulkAction, BulkJob, JobStatus, Message, MessageQuerySet

logger = logging.getLogger("inbox.tasks")

# Bulk replays queue behind live traffic: a fresh delivery should not wait for a replay
# of last month's messages.
REPLAY_PRIORITY = -10
BULK_BATCH = 500


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
        queue.wake(pk, priority=REPLAY_PRIORITY)


BULK_ACTIONS: dict[str, Callable[[list[int]], object]] = {
    BulkAction.REPLAY: _replay_ids,
    BulkAction.DELETE: lambda ids: Message.objects.filter(pk__in=ids).delete(),
    BulkAction.MARK_READ: lambda ids: Message.objects.filter(pk__in=ids).update(read=True),
    BulkAction.MARK_UNREAD: lambda ids: Message.objects.filter(pk__in=ids).update(read=False),
}


def replay(messages: MessageQuerySet, progress: Callable[[int], object] | None = None) -> int:
    """Start a new processing round for every message here and queue each one; how many."""
    return in_batches(messages, _replay_ids, progress)


def job_messages(job: BulkJob) -> MessageQuerySet:
    """The messages a job acts on: its chosen ids, or every message its filter matches."""
    if job.ids:
        return Message.objects.filter(pk__in=job.ids)
    filterset = MessageFilter(QueryDict(job.query), queryset=Message.objects.all())
    if not filterset.is_valid():
        raise ValueError(f"invalid filter: {filterset.errors.as_text()}")
    messages: MessageQuerySet = filterset.qs
    if job.upto_id is not None:
        messages = messages.filter(pk__lte=job.upto_id)
    return messages


def run_job(job_id: int) -> int:
    """Apply a BulkJob's action to each of its messages, in batches, recording progress."""
    job = BulkJob.objects.get(pk=job_id)
    BulkJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, progressed_at=timezone.now())
    try:
        messages = job_messages(job)
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


def fail_stalled() -> int:
    """Mark failed the running jobs whose worker stopped (no progress within a lease); how many."""
    stalled = timezone.now() - timedelta(seconds=settings.INBOX_PROCESSING_LEASE_SECONDS)
    return BulkJob.objects.filter(status=JobStatus.RUNNING, progressed_at__lt=stalled).update(
        status=JobStatus.FAILED,
        finished_at=timezone.now(),
        error="The worker stopped during this job. Messages replayed so far stay replayed; start it again "
        "to replay the rest (those already done are processed once more).",
    )
