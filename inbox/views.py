"""The staff dashboard: the message list, the payload viewer, and endpoint management."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.contrib import messages as django_messages
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from inbox import stats
from inbox.filters import MessageFilter
from inbox.forms import EndpointForm, RotateForm
from inbox.models import Endpoint, Message
from inbox.payload import body_view
from inbox.tasks import send_test_webhook

logger = logging.getLogger("inbox.views")

PAGE_SIZE = 50
View = Callable[..., HttpResponseBase]


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def staff_required(view: View) -> View:
    """Anonymous users go to the login page; signed-in users who are not staff get 403."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def rate_limited(request: HttpRequest, exception: Exception) -> HttpResponse:
    """RATELIMIT_VIEW: what django-ratelimit's middleware answers when a limit trips."""
    logger.warning("rate limited path=%s", "login" if request.path.startswith("/accounts/") else "dashboard")
    response = render(request, "429.html", status=429)
    response["Retry-After"] = "60"
    return response


def _get_endpoint(pk: int) -> Endpoint:
    return get_object_or_404(Endpoint, pk=pk)


def _filtered_messages(request: HttpRequest) -> MessageFilter:
    return MessageFilter(request.GET, queryset=Message.objects.all())


def _query_without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


# --- Messages -----------------------------------------------------------------------------
@require_GET
@staff_required
def message_list(request: HtmxHttpRequest) -> HttpResponse:
    filterset = _filtered_messages(request)
    messages: list[Message] = []
    older_cursor = newer_cursor = None
    if filterset.is_valid():
        qs = filterset.qs.for_list()
        before = Message.parse_cursor(request.GET.get("before", ""))
        after = Message.parse_cursor(request.GET.get("after", ""))
        if after is not None:
            # Paging back towards the newest: fetch in ascending order, then flip.
            rows = list(qs.newer_than(*after)[: PAGE_SIZE + 1])
            has_newer = len(rows) > PAGE_SIZE
            messages = rows[:PAGE_SIZE][::-1]
            has_older = True
        else:
            base = qs.older_than(*before) if before is not None else qs.newest_first()
            rows = list(base[: PAGE_SIZE + 1])
            has_older = len(rows) > PAGE_SIZE
            messages = rows[:PAGE_SIZE]
            has_newer = before is not None
        if messages and has_older:
            older_cursor = messages[-1].cursor
        if messages and has_newer:
            newer_cursor = messages[0].cursor
    base_query = _query_without(request, "before", "after")
    context = {
        "filter": filterset,
        "messages_page": messages,
        "older_cursor": older_cursor,
        "newer_cursor": newer_cursor,
        "base_query": base_query,
        "is_filtered": bool(base_query),
    }
    template = (
        "inbox/message_list.html#results" if request.htmx and not request.htmx.boosted else "inbox/message_list.html"
    )
    return render(request, template, context)


@require_GET
@staff_required
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(Message.objects.select_related("endpoint"), pk=pk)
    filterset = _filtered_messages(request)
    newer = older = None
    if filterset.is_valid():
        qs = filterset.qs.only("id")
        newer = qs.newer_than(message.received_at, message.pk).first()
        older = qs.older_than(message.received_at, message.pk).first()
    context = {
        "message": message,
        "body": body_view(message),
        "query_params": parse_qsl(message.query_string, keep_blank_values=True),
        "newer": newer,
        "older": older,
        "list_query": _query_without(request, "before", "after"),
    }
    return render(request, "inbox/message_detail.html", context)


@require_GET
@staff_required
def message_raw(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(Message, pk=pk)
    # Always an attachment of an inert type: a body is never rendered by the browser.
    response = HttpResponse(message.body, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="message-{message.pk}.bin"'
    return response


@require_POST
@staff_required
def message_delete(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(Message, pk=pk)
    message.delete()
    logger.info("message deleted id=%s by user=%s", pk, request.user.pk)
    query = _query_without(request, "before", "after")
    return redirect(f"/?{query}" if query else "/")


# --- Endpoints ----------------------------------------------------------------------------
@require_GET
@staff_required
def endpoint_list(request: HttpRequest) -> HttpResponse:
    last = Message.objects.filter(endpoint=OuterRef("pk")).order_by("-received_at").values("received_at")[:1]
    endpoints = Endpoint.objects.annotate(last_received_at=Subquery(last))
    return render(request, "inbox/endpoint_list.html", {"endpoints": endpoints})


def _secret_page(
    request: HttpRequest, endpoint: Endpoint, shown: dict[str, str] | None = None, status: int = 200
) -> HttpResponse:
    """The endpoint page; with `shown`, the one response that ever shows its new secret."""
    rejected = endpoint.rejected_attempts.all()
    context = {
        "endpoint": endpoint,
        "shown": shown or {},
        "instructions": endpoint.preset.instructions.replace("{url}", endpoint.url).replace(
            "{header}", endpoint.credential_header
        ),
        "counts": stats.counts(endpoint.pk),
        "recent": endpoint.messages.for_list()[:10],
        "rejected": rejected[:20],
        "rejected_count": rejected.count(),
        "can_send_test": endpoint.can_sign_tests,
    }
    response = render(request, "inbox/endpoint_detail.html", context, status=status)
    if shown:
        # The secret must not linger in any cache or in the browser's history.
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
    return response


@require_http_methods(["GET", "POST"])
@staff_required
def endpoint_create(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint = form.save(commit=False)
        endpoint.created_by = request.user  # type: ignore[assignment]
        endpoint.scheme_options = form.scheme_options()
        shown = endpoint.set_secret(form.cleaned_data["secret"] or None)
        endpoint.save()
        logger.info("endpoint created id=%s preset=%s by user=%s", endpoint.pk, endpoint.auth, request.user.pk)
        # Rendered, not redirected: the secret is shown in this response and stored nowhere.
        return _secret_page(request, endpoint, shown, status=201)
    return render(request, "inbox/endpoint_form.html", {"form": form})


@require_GET
@staff_required
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _secret_page(request, _get_endpoint(pk))


@require_http_methods(["GET", "POST"])
@staff_required
def endpoint_edit(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _get_endpoint(pk)
    form = EndpointForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        endpoint = form.save(commit=False)
        endpoint.scheme_options = form.scheme_options()
        shown: dict[str, str] = {}
        if form.auth_changed or form.cleaned_data["secret"]:
            # A new scheme or a pasted secret replaces the credential outright.
            shown = endpoint.set_secret(form.cleaned_data["secret"] or None)
            endpoint.previous_expires_at = None
        endpoint.save()
        logger.info("endpoint changed id=%s by user=%s", endpoint.pk, request.user.pk)
        if shown:
            return _secret_page(request, endpoint, shown)
        return redirect(endpoint)
    return render(request, "inbox/endpoint_form.html", {"form": form, "endpoint": endpoint})


@require_http_methods(["GET", "POST"])
@staff_required
def endpoint_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _get_endpoint(pk)
    if endpoint.secret_kind == "none":
        return redirect(endpoint)
    form = RotateForm(request.POST or None, endpoint=endpoint)
    if request.method == "POST" and form.is_valid():
        grace = timedelta(hours=form.cleaned_data["grace_hours"])
        shown = endpoint.rotate_secret(form.cleaned_data["secret"] or None, grace=grace)
        logger.info("endpoint secret rotated id=%s by user=%s", endpoint.pk, request.user.pk)
        return _secret_page(request, endpoint, shown)
    return render(request, "inbox/endpoint_rotate.html", {"form": form, "endpoint": endpoint})


@require_POST
@staff_required
def endpoint_send_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _get_endpoint(pk)
    if not endpoint.can_sign_tests:
        return redirect(endpoint)
    send_test_webhook.enqueue(endpoint.pk)
    django_messages.success(request, "Test event queued: the worker signs it and posts it to the receiver URL.")
    return redirect(endpoint)


@require_http_methods(["GET", "POST"])
@staff_required
def endpoint_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _get_endpoint(pk)
    if request.method == "POST":
        endpoint.delete()
        logger.info("endpoint deleted id=%s by user=%s", pk, request.user.pk)
        return redirect("inbox:endpoint-list")
    return render(request, "inbox/endpoint_confirm_delete.html", {"endpoint": endpoint})


# --- Health -------------------------------------------------------------------------------
@require_GET
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
