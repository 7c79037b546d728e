from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from inbox import listen


class Command(BaseCommand):
    help = "Forward an endpoint's new messages to a local app (the listen client; see README)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs="*", metavar="--server URL --token TOKEN --endpoint NAME --to URL")

    def run_from_argv(self, argv: list[str]) -> None:
        # The client parses its own options (the same as `python listen.py ...`).
        raise SystemExit(listen.main(argv[2:]))

    def handle(self, *args: Any, **options: Any) -> None:
        raise SystemExit(listen.main(list(args)))
