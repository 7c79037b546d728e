"""Endpoint management: create, show, edit, rotate, delete, send a test."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.contrib import messages as django_messages
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from inbox import charts, stats
from inbox.delivery import handlers
from inbox.forms import EndpointForm, RotateForm
from inbox.models import AuditAction, AuditEntry, Endpoint, Message, Status
from inbox.permissions import needs
from inbox.tasks import send_test_webhook
from inbox.views.common import get_endpoint, staff_required

logger = logging.getLogger("inbox.views")


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
        "destinations": endpoint.destinations.all(),
        "handlers": handlers.registered_for(endpoint.name),
        "signal_listeners": handlers.message_received.has_listeners(Message),
        "failures": endpoint.failure_rate(since=timezone.now() - timedelta(hours=24)),
        **_overview(request, endpoint),
    }
    response = render(request, "inbox/endpoint_detail.html", context, status=status)
    if shown:
        # The secret must not linger in any cache or in the browser's history.
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
    return response


PERIODS = {"day": 24, "week": 24 * 7}


def _overview(request: HttpRequest, endpoint: Endpoint) -> dict[str, Any]:
    """Messages per hour over the chosen period as a chart, and what happened to them."""
    period = request.GET.get("period", "day")
    period = period if period in PERIODS else "day"
    hours = PERIODS[period]
    now = timezone.now()
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    series = charts.hourly_series(endpoint.hourly_counts(since), hours, now)
    received = sum(count for _, count in series)
    return {
        "period": period,
        "chart": charts.bar_chart(series, f"Messages per hour, last {period}: {received} in all"),
        "received": received,
        "failed": endpoint.messages.filter(received_at__gte=since, status=Status.FAILED).count(),
        "last_received": endpoint.messages.newest_first().values_list("received_at", flat=True).first(),
    }


@require_http_methods(["GET", "POST"])
@staff_required
@needs("inbox.add_endpoint")
def endpoint_create(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint = form.save(commit=False)
        endpoint.created_by = request.user  # type: ignore[assignment]
        endpoint.scheme_options = form.scheme_options()
        shown = endpoint.set_secret(form.cleaned_data["secret"] or None)
        endpoint.save()
        AuditEntry.record(request.user, AuditAction.ENDPOINT_CREATED, endpoint.name, endpoint, preset=endpoint.auth)
        # Rendered, not redirected: the secret is shown in this response and stored nowhere.
        return _secret_page(request, endpoint, shown, status=201)
    return render(request, "inbox/endpoint_form.html", {"form": form})


@require_GET
@staff_required
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _secret_page(request, get_endpoint(pk))


@require_http_methods(["GET", "POST"])
@staff_required
@needs("inbox.change_endpoint")
def endpoint_edit(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_endpoint(pk)
    options_before = dict(endpoint.scheme_options)
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
        # Field names only: a pasted secret's value never reaches the log.
        changed = sorted(name for name in form.changed_data if name in EndpointForm.Meta.fields)
        if endpoint.scheme_options != options_before:
            changed.append("scheme_options")
        AuditEntry.record(
            request.user,
            AuditAction.ENDPOINT_CHANGED,
            endpoint.name,
            endpoint,
            changed=changed,
            secret_replaced=bool(shown),
        )
        if shown:
            return _secret_page(request, endpoint, shown)
        return redirect(endpoint)
    return render(request, "inbox/endpoint_form.html", {"form": form, "endpoint": endpoint})


@require_http_methods(["GET", "POST"])
@staff_required
@needs("inbox.change_endpoint")
def endpoint_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_endpoint(pk)
    if endpoint.secret_kind == "none":
        return redirect(endpoint)
    form = RotateForm(request.POST or None, endpoint=endpoint)
    if request.method == "POST" and form.is_valid():
        grace = timedelta(hours=form.cleaned_data["grace_hours"])
        shown = endpoint.rotate_secret(form.cleaned_data["secret"] or None, grace=grace)
        AuditEntry.record(
            request.user,
            AuditAction.SECRET_ROTATED,
            endpoint.name,
            endpoint,
            grace_hours=form.cleaned_data["grace_hours"],
            pasted=bool(form.cleaned_data["secret"]),
        )
        return _secret_page(request, endpoint, shown)
    return render(request, "inbox/endpoint_rotate.html", {"form": form, "endpoint": endpoint})


@require_POST
@staff_required
@needs("inbox.change_endpoint")
def endpoint_send_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_endpoint(pk)
    if not endpoint.can_sign_tests:
        return redirect(endpoint)
    send_test_webhook.enqueue(endpoint.pk)
    AuditEntry.record(request.user, AuditAction.TEST_SENT, endpoint.name, endpoint)
    django_messages.success(request, "Test event queued: the worker signs it and posts it to the receiver URL.")
    return redirect(endpoint)


@require_http_methods(["GET", "POST"])
@staff_required
@needs("inbox.delete_endpoint")
def endpoint_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_endpoint(pk)
    if request.method == "POST":
        AuditEntry.record(request.user, AuditAction.ENDPOINT_DELETED, endpoint.name, endpoint, id=endpoint.pk)
        endpoint.delete()
        return redirect("inbox:endpoint-list")
    return render(request, "inbox/endpoint_confirm_delete.html", {"endpoint": endpoint})
