"""Background work, run by `manage.py db_worker` (django.tasks with django-tasks-db)."""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
from django.conf import settings
from django.tasks import task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from inbox.models import Endpoint

logger = logging.getLogger("inbox.tasks")

PURGE_INTERVAL = timedelta(days=1)


def purge_all(batch_size: int | None = None) -> dict[str, int]:
    """Apply every endpoint's retention and cap; {endpoint name: messages deleted}."""
    batch_size = batch_size or settings.INBOX_PURGE_BATCH_SIZE
    report = {}
    for endpoint in Endpoint.objects.all():
        report[endpoint.name] = endpoint.purge(batch_size)
    return report


@task()
def purge_messages_daily() -> int:
    """The daily retention purge. It queues its own next run, so one run queued once
    (`manage.py purge_messages --schedule`, which `make run` calls) keeps it going."""
    try:
        report = purge_all()
        deleted = sum(report.values())
        logger.info("retention purge deleted %s messages", deleted)
        return deleted
    finally:
        schedule_daily_purge(force=True)


def schedule_daily_purge(force: bool = False) -> bool:
    """Queue the next daily purge unless one is already waiting; True when queued."""
    if not force and DBTaskResult.objects.filter(task_path=purge_messages_daily.module_path, status="READY").exists():
        return False
    purge_messages_daily.using(run_after=timezone.now() + PURGE_INTERVAL).enqueue()
    return True


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
