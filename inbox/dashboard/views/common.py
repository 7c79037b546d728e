"""What every dashboard view shares: the staff check, the filtered message list, 429 and health."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages as django_messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_safe
from django_htmx.middleware import HtmxDetails
from django_ratelimit.core import is_ratelimited
from django_ratelimit.exceptions import Ratelimited

from inbox.dashboard.textfilters import bidi_text
from inbox.filters import MessageFilter
from inbox.models import AuditEntry, Endpoint, Message
from inbox.permissions import View

logger = logging.getLogger("inbox.views")

# A row id as it may travel in a form or query string: digits that fit a bigint column.
ROW_ID = re.compile(r"[0-9]{1,18}")


def parse_ids(values: list[str]) -> list[int]:
    """The values that are row ids, as ints, in their order; anything else is dropped."""
    return [int(v) for v in values if ROW_ID.fullmatch(v)]


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def staff_required(view: View) -> View:
    """Anonymous users go to the login page; signed-in users who are not staff get 403.

    Put it first, above @require_POST and the like: a visitor who is not signed in is sent
    to sign in whatever the method, not told which methods a page takes."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def post_or_back(back: Callable[..., str]) -> Callable[[View], View]:
    """POST only, but a GET (a reload of the confirmation page a POST answered, whose URL
    is the action's; a bookmark; a pasted link) goes back to where the action was offered,
    saying nothing was done, instead of a blank 405. `back(request, **kwargs)` is that URL.
    Put it where @require_POST would go, under @staff_required."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method == "POST":
                return view(request, *args, **kwargs)
            if request.method in ("GET", "HEAD"):
                django_messages.info(
                    request, "Nothing was done: that page only answers a button press. Try again here."
                )
                return redirect(back(request, **kwargs))
            return HttpResponseNotAllowed(["POST"])

        return wrapper

    return decorator


def ask(
    request: HttpRequest,
    question: str,
    lines: list[str],
    *,
    action_url: str,
    button: str,
    cancel_url: str,
    fields: list[tuple[str, str]] | None = None,
    replay: bool = False,
) -> HttpResponse:
    """The page that asks before a destructive action when no script asked in a dialog:
    the question, what it means, a button that posts `action_url` again with
    `confirmed=yes` and `fields`, and a way back that does nothing. `replay`: not red, it
    can be done again."""
    context = {
        "title": question,
        "question": question,
        "lines": lines,
        "action_url": action_url,
        "fields": fields or [],
        "button": button,
        "cancel_url": cancel_url,
        "replay": replay,
    }
    return render(request, "inbox/confirm.html", context)


def list_url(request: HttpRequest) -> str:
    """The message list with the request's filter (no paging)."""
    query = query_without(request, "before", "after")
    return reverse("inbox:message-list") + (f"?{query}" if query else "")


_login_form_view = auth_views.LoginView.as_view(redirect_authenticated_user=True)


def login(request: HttpRequest) -> HttpResponseBase:
    """Django's login view, with password guessing slowed per client address (POSTs only).

    When the rate-limit cache does not answer, sign-in waits (503) rather than letting
    guesses through unmetered, and never turns into a 500."""
    try:
        limited = is_ratelimited(request, group="login", key="ip", rate="10/m", method="POST", increment=True)
    except Exception:  # The cache client raises its own error types (redis, sockets).
        logger.warning("rate-limit cache unavailable; sign-in refused for now")
        response = HttpResponse(
            "Sign-in is unavailable for a moment; retry shortly.\n", status=503, content_type="text/plain"
        )
        response["Retry-After"] = "30"
        return response
    if limited:
        raise Ratelimited()  # answered by RATELIMIT_VIEW (429) through the middleware
    return _login_form_view(request)


def rate_limited(request: HttpRequest, exception: Exception) -> HttpResponse:
    """RATELIMIT_VIEW: what django-ratelimit's middleware answers when a limit trips."""
    logger.warning("rate limited path=%s", "login" if request.path.startswith("/accounts/") else "dashboard")
    response = render(request, "429.html", status=429)
    response["Retry-After"] = "60"
    return response


def get_endpoint(pk: int) -> Endpoint:
    return get_object_or_404(Endpoint, pk=pk)


def filtered_messages(request: HttpRequest) -> MessageFilter:
    filterset = MessageFilter(request.GET, queryset=Message.objects.all())
    # An <option> holds no markup: the endpoint's name with its bidi controls as plain markers.
    filterset.form.fields["endpoint"].label_from_instance = lambda endpoint: bidi_text(endpoint.name)
    return filterset


def query_without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


# --- Audit log ----------------------------------------------------------------------------
AUDIT_PAGE = 100


@staff_required
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    """Who changed what, when: newest first, AUDIT_PAGE a page, by endpoint if asked."""
    entries = AuditEntry.objects.select_related("endpoint")
    endpoint = None
    # A value that is not a row id must not quietly widen the page to the whole log.
    invalid = [
        name for name in ("endpoint", "before") if request.GET.get(name, "") and not parse_ids([request.GET[name]])
    ]
    if invalid:
        logger.info("audit log refused invalid %s", ", ".join(invalid))
        context: dict[str, object] = {
            "entries": [],
            "invalid": [f"{name}: enter a whole number (a row id)." for name in invalid],
        }
        return render(request, "inbox/audit_list.html", context, status=400)
    if endpoint_id := parse_ids([request.GET.get("endpoint", "")]):
        endpoint = Endpoint.objects.filter(pk=endpoint_id[0]).first()
        entries = entries.filter(endpoint_id=endpoint_id[0])
    if before := parse_ids([request.GET.get("before", "")]):
        entries = entries.filter(pk__lt=before[0])
    page = list(entries.order_by("-pk")[: AUDIT_PAGE + 1])
    context = {
        "entries": page[:AUDIT_PAGE],
        "older": page[AUDIT_PAGE - 1].pk if len(page) > AUDIT_PAGE else None,
        "endpoint": endpoint,
    }
    return render(request, "inbox/audit_list.html", context)


# --- Health -------------------------------------------------------------------------------
@require_safe  # GET and HEAD: many monitors ask with HEAD
def healthz(request: HttpRequest) -> HttpResponse:
    """200 `ok` when the database (and Redis, when configured) answers; 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if settings.REDIS_URL:
            cache.get("healthz")
    except Exception:
        logger.warning("health check failed", exc_info=True)
        return HttpResponse("unavailable\n", status=503, content_type="text/plain")
    return HttpResponse("ok\n", content_type="text/plain")
