"""Who is calling the API and what they may do: bearer tokens, scopes, rate limits, errors.

A token (inbox.models.ApiToken) acts as its user, with that user's Django permissions
(inbox.permissions), capped by its scope: a read token may only read. A missing or wrong
token is 401, a refusal by scope or permission 403, always as JSON (inbox/api/errors.py).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django_ratelimit.core import is_ratelimited
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

# Not rest_framework.views: DRF imports these classes (its settings) while importing that module.
from inbox.models import ApiToken

logger = logging.getLogger("inbox.api")


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>`; the token's user must still be active staff."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None  # no credentials: permissions answer 401
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise exceptions.AuthenticationFailed("Send the token as `Authorization: Bearer <token>`.")
        token = ApiToken.objects.authenticate(value.strip())
        if token is None or not token.user.is_active or not token.user.is_staff:
            # The same answer for unknown, revoked and disowned tokens: nothing to probe.
            logger.info("api token refused")
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        token.touch()
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (with WWW-Authenticate) rather than 403 when no token came.
        return self.keyword


class TokenPermission(BasePermission):
    """Scope first (a read token never writes), then the user's Django permission for the
    action (`view.permission_for(request)`; None: any staff may, like the dashboard's pages)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return False  # not authenticated: DRF turns this into 401
        writes = request.method not in SAFE_METHODS and not getattr(view, "read_scope_writes", False)
        if writes and not token.can_write:
            self.message = "This token's scope is read: it cannot change anything."
            return False
        permission_for = getattr(view, "permission_for", None)
        permission = permission_for(request) if permission_for is not None else None
        if permission and not request.user.has_perm(permission):
            self.message = f"Your account lacks the permission {permission}."
            return False
        return True


class TokenRateThrottle(BaseThrottle):
    """INBOX_API_RATE requests per token, counted by django-ratelimit in the shared cache."""

    group = "api"

    def rate(self) -> str:
        return str(settings.INBOX_API_RATE)

    def key(self, request: Request, token: ApiToken) -> str:
        return f"token:{token.pk}"

    def allow_request(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True  # refused anyway, by authentication or permissions
        key = self.key(request, token)
        try:
            limited = is_ratelimited(
                request, group=self.group, key=lambda group, req: key, rate=self.rate(), increment=True
            )
        except Exception:  # a cache that does not answer: the API keeps serving, and says so
            logger.warning("rate-limit cache unavailable; api request not counted")
            return True
        return not limited

    def wait(self) -> float:
        return 60.0


class ListenerRateThrottle(TokenRateThrottle):
    """listen's polls and reports: INBOX_LISTEN_RATE per listener (token + listener name),
    apart from the token's other calls, so that several listeners on one token (or a busy
    endpoint's reports) do not starve each other or the token's scripts."""

    group = "listen"

    def rate(self) -> str:
        return str(settings.INBOX_LISTEN_RATE)

    def key(self, request: Request, token: ApiToken) -> str:
        name = request.query_params.get("name") or (request.data.get("name") if isinstance(request.data, dict) else "")
        return f"token:{token.pk}:listener:{str(name or 'default')[:100]}"
