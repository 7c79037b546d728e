from __future__ import annotations

from importlib import import_module

from django.apps import AppConfig
from django.db.models.signals import post_migrate

from inbox import checks  # noqa: F401 - registers the system checks
from inbox.permissions import ensure_groups


class InboxConfig(AppConfig):
    name = "inbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(ensure_groups, sender=self)
        # The one place where the top is wired to the layers below it: inbox.tasks connects
        # inbox.delivery.queue to its process_message task as it is imported, and it can only
        # be imported once the models are (docs/architecture.md, "Layers").
        import_module("inbox.tasks")
