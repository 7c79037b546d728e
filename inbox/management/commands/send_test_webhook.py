from __future__ import annotations

from typing import Any

import httpx
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inbox.delivery.samples import post_test_webhook
from inbox.models import Endpoint


class Command(BaseCommand):
    help = "Sign a sample event with the endpoint's own preset and post it to the endpoint's URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("endpoint", help="The endpoint's name (or id).")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["endpoint"]
        endpoint = Endpoint.objects.named(name)
        if endpoint is None:
            raise CommandError(f"No endpoint named {name!r}.")
        if not endpoint.can_sign_tests:
            raise CommandError(
                f"{endpoint.preset.label} endpoints keep only a digest or a public key, so this inbox cannot sign "
                "for them; use the curl example on the endpoint page with your credential."
            )
        try:
            response = post_test_webhook(endpoint)
        except httpx.HTTPError as exc:
            raise CommandError(f"Could not reach {endpoint.url}: {exc.__class__.__name__}") from None
        self.stdout.write(f"{endpoint.url} answered {response.status_code}: {response.text.strip()[:200]}")
        if not 200 <= response.status_code < 300:
            raise CommandError("The receiver refused the test event.")
