from __future__ import annotations

from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "inbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from inbox import checks  # noqa: F401 - registers the system checks
        from inbox.permissions import ensure_groups

        post_migrate.connect(ensure_groups, sender=self)
