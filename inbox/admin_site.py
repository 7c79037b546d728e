"""The Django admin, for superusers only.

Staff run the inbox from the dashboard, where every change is checked against their
group's permissions and audited with their name. The admin edits rows as they are (an
endpoint's verification, any message), so it is kept for superusers: a viewer or a
manager who opens /admin/ gets 403, not a login form that invites another account.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar, cast

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

_View = TypeVar("_View", bound=Callable[..., Any])


class SuperuserAdminSite(admin.AdminSite):
    site_header = "Webhook Inbox administration"
    site_title = "Webhook Inbox admin"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and user.is_superuser)

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        inner = super().admin_view(view, cacheable)

        def refuse_signed_in_others(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            # Anonymous visitors still get the login page; signed-in non-superusers a 403.
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied
            return inner(request, *args, **kwargs)

        return cast("_View", update_wrapper(refuse_signed_in_others, inner))

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.user.is_authenticated and not self.has_permission(request):
            raise PermissionDenied
        return super().login(request, extra_context)
