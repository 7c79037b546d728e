from __future__ import annotations

from importlib import import_module

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate

from inbox import checks  # noqa: F401 - registers the system checks
from inbox.permissions import ensure_groups


class InboxConfig(AppConfig):
    name = "inbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(ensure_groups, sender=self)
        # Audit receivers and task wiring need the models: imported once they are.
        import_module("inbox.auditlog").connect()
        # The one place where the top is wired to the layers below it: inbox.tasks connects
        # inbox.delivery.queue to its process_message task as it is imported, and it can only
        # be imported once the models are (docs/architecture.md, "Layers").
        import_module("inbox.tasks")


class InboxAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the inbox's own site: for superusers only (inbox.admin_site).
    Listed in INSTALLED_APPS by its path; `default = False` keeps InboxConfig the app's own."""

    default = False
    default_site = "inbox.admin_site.SuperuserAdminSite"
