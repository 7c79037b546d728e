"""Who may do what in the dashboard, with Django's own groups and permissions.

Every staff member may look (the list, messages, endpoints, the audit log, exports).
Changing things needs a model permission:

    inbox.add_endpoint       create endpoints
    inbox.change_endpoint    edit, rotate secrets, send test events, manage destinations
    inbox.delete_endpoint    delete endpoints
    inbox.change_message     replay, mark read/unread
    inbox.delete_message     delete messages
    inbox.add_alertrule      create alert rules
    inbox.change_alertrule   edit, mute and unmute alert rules
    inbox.delete_alertrule   delete alert rules
    inbox.change_alert       acknowledge alerts

Two groups are kept in step after every migrate: "Inbox viewers" (view permissions
only) and "Inbox managers" (everything above). Superusers have every permission.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

View = Callable[..., HttpResponseBase]

MANAGERS = "Inbox managers"
VIEWERS = "Inbox viewers"
MODELS = (
    "endpoint",
    "destination",
    "message",
    "attempt",
    "bulkjob",
    "rejectedattempt",
    "auditentry",
    "alertrule",
    "alert",
)


def ensure_groups(**kwargs: Any) -> None:
    """post_migrate: create both groups and give them their permissions."""
    # From the app registry: this module is imported as the app loads, before any model is.
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    inbox_permissions = Permission.objects.filter(content_type__app_label="inbox", content_type__model__in=MODELS)
    managers, _ = Group.objects.get_or_create(name=MANAGERS)
    managers.permissions.add(*inbox_permissions)
    viewers, _ = Group.objects.get_or_create(name=VIEWERS)
    viewers.permissions.add(*inbox_permissions.filter(codename__startswith="view_"))


def needs(permission: str) -> Callable[[View], View]:
    """Refuse (403) a signed-in staff member who lacks `permission`; stack it under
    @staff_required, which sends anonymous visitors to the login page first."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.has_perm(permission):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
