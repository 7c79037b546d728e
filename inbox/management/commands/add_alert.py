from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inbox.audit import audited_command
from inbox.management import clean_or_exit
from inbox.models import (
    DEFAULT_MIN_ATTEMPTS,
    DEFAULT_SILENCE_WINDOW_SECONDS,
    DEFAULT_WINDOW_SECONDS,
    AlertKind,
    AlertRule,
    AuditAction,
    AuditEntry,
    Destination,
    Endpoint,
    format_window,
    parse_window,
)

# A model field's problem, named by the option that set it.
OPTIONS = {
    "name": "NAME",
    "kind": "--when",
    "endpoint": "--endpoint",
    "destination": "--destination",
    "threshold": "--threshold",
    "window_seconds": "--window",
    "min_attempts": "--min-attempts",
    "notify": "--notify",
}


def positive(value: str) -> int:
    """An argparse type: a whole number, 0 or more (the model says what each kind accepts)."""
    if not value.isdigit():
        raise ValueError(value)
    return int(value)


class Command(BaseCommand):
    help = (
        "Add an alert rule: the worker checks it every minute, opens an alert on /alerts/ when it holds and "
        "notifies a webhook (Slack, Teams, any URL) or an email address when it opens and when it resolves."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The rule's name (unique), shown in every notification.")
        parser.add_argument("--endpoint", metavar="ENDPOINT", help="The endpoint's name (or id); default: every one.")
        parser.add_argument(
            "--destination",
            metavar="ID",
            type=positive,
            help="Only this destination's forwards (failed, failure_rate); its endpoint is implied.",
        )
        parser.add_argument(
            "--when",
            required=True,
            choices=list(AlertKind.values),
            help="failed: a message's retries are spent; failure_rate: over N%% of forward attempts failed; "
            "silence: nothing received for the window; rejections: N or more refused deliveries.",
        )
        parser.add_argument(
            "--threshold",
            type=positive,
            metavar="N",
            help="failed: messages (default 1); failure_rate: percent, 1-99 (default 50); rejections: "
            "refused deliveries (default 10); silence takes none.",
        )
        parser.add_argument(
            "--window",
            metavar="WINDOW",
            help=f"How far back to look: 5m, 2h, 1d (1m to 7d; default {format_window(DEFAULT_WINDOW_SECONDS)}, "
            f"{format_window(DEFAULT_SILENCE_WINDOW_SECONDS)} for silence).",
        )
        parser.add_argument(
            "--min-attempts",
            type=positive,
            default=DEFAULT_MIN_ATTEMPTS,
            metavar="N",
            help=f"failure_rate: fewer attempts in the window never alert (default {DEFAULT_MIN_ATTEMPTS}).",
        )
        parser.add_argument(
            "--notify", required=True, metavar="URL|email:ADDRESS", help="A URL that gets a JSON POST, or an email."
        )
        parser.add_argument("--muted", action="store_true", help="Create it muted: alerts listed, nobody notified.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")

    @audited_command
    def handle(self, *args: Any, **options: Any) -> None:
        kind = options["when"]
        rule = AlertRule(
            name=options["name"],
            kind=kind,
            threshold=options["threshold"],
            min_attempts=options["min_attempts"],
            notify=options["notify"],
            muted=options["muted"],
        )
        rule.endpoint = self._endpoint(options["endpoint"])
        if options["destination"] is not None:
            destination = Destination.objects.filter(pk=options["destination"]).first()
            if destination is None:
                raise CommandError(f"--destination: no destination with id {options['destination']}.")
            rule.destination = destination
        default = DEFAULT_SILENCE_WINDOW_SECONDS if kind == AlertKind.SILENCE else DEFAULT_WINDOW_SECONDS
        try:
            rule.window_seconds = parse_window(options["window"]) if options["window"] is not None else default
        except ValidationError as exc:
            raise CommandError(f"--window: {' '.join(exc.messages)}") from None
        clean_or_exit(rule, OPTIONS)
        rule.save()
        AuditEntry.record(
            None, AuditAction.ALERT_RULE_CREATED, f"alert rule “{rule.name}”", rule.endpoint, kind=rule.kind
        )

        if options["json"]:
            data = {
                "id": rule.pk,
                "name": rule.name,
                "when": rule.kind,
                "endpoint": rule.endpoint.name if rule.endpoint else None,
                "destination": rule.destination_id,
                "threshold": rule.threshold,
                "window": rule.window,
                "min_attempts": rule.min_attempts,
                "notify": rule.notify,
                "muted": rule.muted,
            }
            self.stdout.write(json.dumps(data))
            return
        self.stdout.write(f"Added alert rule #{rule.pk} “{rule.name}”: {rule.condition}, {rule.scope}.")
        self.stdout.write(f"  Notifies: {rule.notify_display}{' (muted)' if rule.muted else ''}")

    def _endpoint(self, name: str | None) -> Endpoint | None:
        if name is None:
            return None
        endpoint = Endpoint.objects.named(name)
        if endpoint is None:
            raise CommandError(f"--endpoint: no endpoint named {name!r}.")
        return endpoint
