from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from inbox.audit import audited_command
from inbox.models import DEFAULT_RATE, Destination, Endpoint, parse_methods
from inbox.verification import PRESETS


class Command(BaseCommand):
    help = "Create an endpoint and print its receiver URL and credential, once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="A unique name for the endpoint.")
        parser.add_argument("--auth", default="token", choices=list(PRESETS), help="The verification preset.")
        parser.add_argument(
            "--secret",
            help="A secret the provider issued or you chose (required for presets whose provider issues it).",
        )
        parser.add_argument("--rate", default=DEFAULT_RATE, help="Rate limit per sender IP, e.g. 120/m.")
        parser.add_argument("--methods", default="POST", help="Comma-separated allowed methods, e.g. POST,GET.")
        parser.add_argument("--header", default="X-Webhook-Token", help="The header that carries the token.")
        parser.add_argument(
            "--forward-to",
            action="append",
            default=[],
            metavar="URL",
            help="Forward every accepted message to this URL (repeat for several destinations).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")

    @audited_command  # the endpoint and its destinations, through the models' audit signals
    def handle(self, *args: Any, **options: Any) -> None:
        preset = PRESETS[options["auth"]]
        endpoint = Endpoint(
            name=options["name"],
            auth=preset.name,
            rate_limit=options["rate"],
            allowed_methods=",".join(parse_methods(options["methods"])),
            token_header=options["header"],
        )
        secret = options["secret"]
        if secret is not None:
            if preset.secret_kind in ("none", "basic"):
                raise CommandError(f"--secret does not apply to --auth {preset.name}.")
            if not secret:
                raise CommandError("--secret: give a value, or leave --secret out to have one generated.")
            if problem := preset.chosen_secret_problem(secret, required=True):
                raise CommandError(f"--secret: {problem}")
        try:
            shown = endpoint.set_secret_answered(secret)
        except ValueError as exc:
            raise CommandError(f"--auth {preset.name} needs --secret: {exc}") from None
        if len(set(options["forward_to"])) < len(options["forward_to"]):
            raise CommandError("--forward-to: this endpoint already forwards to this URL (given twice).")
        destinations = [Destination(url=url) for url in options["forward_to"]]
        try:
            endpoint.full_clean()
            for destination in destinations:
                destination.full_clean(exclude=["endpoint"])
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise CommandError(problems) from None
        with transaction.atomic():
            endpoint.save()
            for destination in destinations:
                destination.endpoint = endpoint
                destination.save()

        if options["json"]:
            data: dict[str, Any] = {
                "id": endpoint.pk,
                "name": endpoint.name,
                "slug": endpoint.slug,
                "url": endpoint.url,
                "auth": endpoint.auth,
                "rate": endpoint.rate_limit,
                "methods": list(endpoint.methods),
                "forward_to": [d.url for d in destinations],
                **shown,
            }
            if "token" in shown:
                data["token_header"] = endpoint.credential_header
            self.stdout.write(json.dumps(data))
            return
        self.stdout.write(f'Created endpoint "{endpoint.name}" ({preset.label})')
        self.stdout.write(f"  URL:   {endpoint.url}")
        for destination in destinations:
            self.stdout.write(f"  Forwards to: {destination.display_url}")
        for label, value in shown.items():
            self.stdout.write(f"  {label.replace('_', ' ').capitalize()}: {value}")
        if "token" in shown:
            self.stdout.write(f"  Send it in the {endpoint.credential_header} header.")
        if shown:
            self.stdout.write("  This is shown only this once.")
