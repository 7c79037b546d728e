from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inbox.models import ApiScope, ApiToken


class Command(BaseCommand):
    help = "Create an API token for a staff user and print it, once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The staff user the token acts as.")
        parser.add_argument("--name", default="cli", help="A name to recognise the token by (default: cli).")
        parser.add_argument("--scope", default=ApiScope.READ, choices=ApiScope.values, help="read (default) or write.")
        parser.add_argument("--json", action="store_true", help='Print {"id", "name", "scope", "token"}.')

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        if not user.is_staff or not user.is_active:
            raise CommandError(f"{user.get_username()} is not active staff: the API serves staff only.")
        name = options["name"].strip()
        if not name or len(name) > 100:
            raise CommandError("--name: give 1 to 100 characters.")
        token, value = ApiToken.objects.issue(user, name, options["scope"])
        if options["json"]:
            self.stdout.write(json.dumps({"id": token.pk, "name": token.name, "scope": token.scope, "token": value}))
            return
        self.stdout.write(f'Created API token "{token.name}" ({token.scope}) for {user.get_username()}')
        self.stdout.write(f"  Token: {value}")
        self.stdout.write("  Send it as: Authorization: Bearer <token>. This is shown only this once.")
