from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inbox.filters import clean_destination_filter
from inbox.management import clean_or_exit
from inbox.models import SIGN_STANDARD, Destination, Endpoint, validate_header_name

# A model field's problem, named by the option that set it.
OPTIONS = {"url": "URL", "transform": "--transform", "max_rate": "--max-rate", "timeout_seconds": "--timeout"}


class Command(BaseCommand):
    help = "Forward an endpoint's messages to a URL, filtered, transformed, signed and throttled as asked."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("endpoint", help="The endpoint's name (or id).")
        parser.add_argument("url", help="Where messages are POSTed.")
        parser.add_argument(
            "--filter",
            default="",
            metavar="QUERY",
            help="Only messages matching this message-list query string, e.g. 'event_type=invoice.*'.",
        )
        parser.add_argument("--transform", default="", metavar="EXPR", help="A JMESPath expression over the JSON body.")
        parser.add_argument(
            "--sign", choices=[SIGN_STANDARD], help="Sign with Standard Webhooks headers; prints the secret once."
        )
        parser.add_argument("--max-rate", default="", metavar="RATE", help="At most this many forwards: 10/s, 100/m.")
        parser.add_argument("--paused", action="store_true", help="Create it paused: messages wait until resumed.")
        parser.add_argument(
            "--headers", default="*", metavar="H,...", help="Original headers to pass on (default * for all)."
        )
        parser.add_argument("--timeout", type=int, default=10, metavar="S", help="Seconds per attempt (1-60).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["endpoint"]
        endpoint = Endpoint.objects.named(name)
        if endpoint is None:
            raise CommandError(f"No endpoint named {name!r}.")
        headers = [h.strip() for h in options["headers"].split(",") if h.strip()]
        destination = Destination(
            endpoint=endpoint,
            url=options["url"],
            transform=options["transform"].strip(),
            sign=options["sign"] or "",
            max_rate=options["max_rate"].strip(),
            paused=options["paused"],
            forward_headers=", ".join(headers),
            timeout_seconds=options["timeout"],
        )
        try:
            destination.filter = clean_destination_filter(options["filter"], endpoint.pk)
        except ValidationError as exc:
            raise CommandError(f"--filter: {' '.join(exc.messages)}") from None
        try:
            for header in headers:
                if header != "*":
                    validate_header_name(header)
        except ValidationError as exc:
            raise CommandError(f"--headers: {' '.join(exc.messages)}") from None
        clean_or_exit(destination, OPTIONS)
        secret = destination.set_signing_secret() if destination.sign else ""
        if destination.paused:
            destination.paused_reason = "created paused"
        destination.save()

        if options["json"]:
            data: dict[str, Any] = {
                "id": destination.pk,
                "endpoint": endpoint.name,
                "url": destination.url,
                "filter": destination.filter,
                "transform": destination.transform,
                "sign": destination.sign,
                "max_rate": destination.max_rate,
                "paused": destination.paused,
                "headers": destination.forward_headers,
                "timeout": destination.timeout_seconds,
            }
            if secret:
                data["signing_secret"] = secret
            self.stdout.write(json.dumps(data))
            return
        self.stdout.write(f'Added destination #{destination.pk} to "{endpoint.name}": {destination.display_url}')
        if destination.filter:
            self.stdout.write(f"  Filter: {destination.filter}")
        if secret:
            self.stdout.write(f"  Signing secret: {secret}")
            self.stdout.write("  This is shown only this once.")
