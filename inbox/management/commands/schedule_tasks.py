from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from inbox.tasks import schedule_periodic


class Command(BaseCommand):
    help = (
        "Queue the worker's periodic tasks (daily retention purge, minutely housekeeping and alert "
        "evaluation) unless they are already queued. Run it before starting workers; running it again is harmless."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        queued = schedule_periodic()
        self.stdout.write(f"Queued: {', '.join(queued)}." if queued else "Periodic tasks already queued.")
