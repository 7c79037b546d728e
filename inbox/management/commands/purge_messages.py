from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inbox.audit import audited_command
from inbox.models import AuditAction, AuditEntry, Endpoint
from inbox.tasks import schedule_daily_purge


class Command(BaseCommand):
    help = "Delete messages past each endpoint's retention (and beyond its cap), in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=None, help="Rows per DELETE statement.")
        parser.add_argument(
            "--schedule",
            action="store_true",
            help="Do not purge now; make sure the worker's daily purge task is queued.",
        )

    @audited_command
    def handle(self, *args: Any, **options: Any) -> None:
        if options["schedule"]:
            queued = schedule_daily_purge()
            self.stdout.write("Daily purge queued." if queued else "Daily purge already queued.")
            return
        batch_size = options["batch_size"]
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        report = Endpoint.objects.purge(batch_size or settings.INBOX_PURGE_BATCH_SIZE)
        for name, deleted in report.items():
            if deleted:
                self.stdout.write(f"  {name}: {deleted}")
        total = sum(report.values())
        if total:
            # The scheduled purge is policy; one run by hand is someone's decision.
            AuditEntry.record(
                None,
                AuditAction.MESSAGES_DELETED,
                f"{total} messages past retention or cap",
                endpoints={name: n for name, n in report.items() if n},
            )
        self.stdout.write(f"Deleted {total} messages.")
