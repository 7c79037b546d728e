from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class InboxConfig(AppConfig):
    name = "inbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from inbox import audit, checks  # noqa: F401 - checks registers the system checks
        from inbox.permissions import ensure_groups

        post_migrate.connect(ensure_groups, sender=self)
        audit.connect()


class InboxAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the inbox's own site: for superusers only (inbox.admin_site).
    Listed in INSTALLED_APPS by its path; `default = False` keeps InboxConfig the app's own."""

    default = False
    default_site = "inbox.admin_site.SuperuserAdminSite"
