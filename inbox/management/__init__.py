"""The management commands (in commands/), and what more than one of them needs."""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import models


def clean_or_exit(instance: models.Model, options: Mapping[str, str]) -> None:
    """The model's own validation, its errors as one line naming each field's command-line
    option (`options` maps field names to them), as a CommandError: a non-zero exit."""
    try:
        instance.full_clean()
    except ValidationError as exc:
        problems = "; ".join(f"{options.get(f, f)}: {' '.join(m)}" for f, m in exc.message_dict.items())
        raise CommandError(problems) from None
