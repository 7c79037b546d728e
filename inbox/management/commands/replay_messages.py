from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inbox.audit import audited_command
from inbox.delivery.bulk import replay
from inbox.models import AuditAction, AuditEntry, Endpoint, Message, Status


class Command(BaseCommand):
    help = (
        "Process messages again (forwarding and handlers), by id or by endpoint; the worker runs them. "
        "Examples: replay_messages 12 13 · replay_messages --endpoint stripe --status failed"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="Message ids.")
        parser.add_argument("--endpoint", metavar="NAME", help="Every message of this endpoint.")
        parser.add_argument(
            "--status", choices=Status.values, help="Only messages in this processing state (with --endpoint)."
        )

    @audited_command
    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[int] = options["ids"]
        name: str | None = options["endpoint"]
        endpoint: Endpoint | None = None
        if bool(ids) == bool(name):
            raise CommandError("Give message ids or --endpoint NAME (not both).")
        if ids:
            if options["status"]:
                raise CommandError("--status goes with --endpoint.")
            messages = Message.objects.filter(pk__in=ids)
            missing = set(ids) - set(messages.values_list("pk", flat=True))
            if missing:
                raise CommandError(f"No message with id {', '.join(map(str, sorted(missing)))}.")
        else:
            endpoint = Endpoint.objects.filter(name=name).first()
            if endpoint is None:
                raise CommandError(f'No endpoint named "{name}".')
            messages = endpoint.messages.all()
            if options["status"]:
                messages = messages.filter(status=options["status"])
        replayed = replay(messages)
        if endpoint is None:
            target = f"{replayed} message{'s' if replayed != 1 else ''} by id"
            AuditEntry.record(None, AuditAction.MESSAGES_REPLAYED, target, ids=sorted(ids)[:100])
        else:
            status = f" with status {options['status']}" if options["status"] else ""
            target = f"{replayed} message{'s' if replayed != 1 else ''} of “{endpoint.name}”{status}"
            AuditEntry.record(None, AuditAction.MESSAGES_REPLAYED, target, endpoint)
        self.stdout.write(f"Queued {replayed} message{'s' if replayed != 1 else ''} for processing.")
