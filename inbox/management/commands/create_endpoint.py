from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inbox.models import DEFAULT_RATE, AuthScheme, Endpoint, token_digest

MIN_SECRET_LENGTH = 16


class Command(BaseCommand):
    help = "Create an endpoint and print its receiver URL and credential, once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="A unique name for the endpoint.")
        parser.add_argument(
            "--auth", default=AuthScheme.TOKEN, choices=AuthScheme.values, help="How deliveries are verified."
        )
        parser.add_argument(
            "--secret",
            help=f"Use this token instead of generating one (at least {MIN_SECRET_LENGTH} characters).",
        )
        parser.add_argument("--rate", default=DEFAULT_RATE, help="Rate limit per sender IP, e.g. 120/m.")
        parser.add_argument("--methods", default="POST", help="Comma-separated allowed methods, e.g. POST,GET.")
        parser.add_argument("--header", default="X-Webhook-Token", help="The header that carries the token.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")

    def handle(self, *args: Any, **options: Any) -> None:
        endpoint = Endpoint(
            name=options["name"],
            auth=options["auth"],
            rate_limit=options["rate"],
            allowed_methods=",".join(m.strip().upper() for m in options["methods"].split(",") if m.strip()),
            token_header=options["header"],
        )
        token = None
        secret = options["secret"]
        if endpoint.uses_token:
            if secret is not None:
                if len(secret) < MIN_SECRET_LENGTH or not secret.isprintable() or secret != secret.strip():
                    raise CommandError(
                        f"--secret must be {MIN_SECRET_LENGTH}+ printable characters without surrounding spaces."
                    )
                endpoint.token_digest = token_digest(secret)
                token = secret
            else:
                token = endpoint.set_new_token()
        elif secret is not None:
            raise CommandError(f"--secret does not apply to --auth {endpoint.auth}.")
        try:
            endpoint.full_clean()
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise CommandError(problems) from None
        endpoint.save()

        if options["json"]:
            data: dict[str, Any] = {
                "id": endpoint.pk,
                "name": endpoint.name,
                "slug": endpoint.slug,
                "url": endpoint.url,
                "auth": endpoint.auth,
                "rate": endpoint.rate_limit,
                "methods": list(endpoint.methods),
            }
            if token is not None:
                data["token"] = token
                data["token_header"] = endpoint.token_header
            self.stdout.write(json.dumps(data))
            return
        self.stdout.write(f'Created endpoint "{endpoint.name}"')
        self.stdout.write(f"  URL:   {endpoint.url}")
        if token is not None:
            self.stdout.write(f"  Token: {token}")
            self.stdout.write(f"  Send it in the {endpoint.token_header} header. It is shown only this once.")
