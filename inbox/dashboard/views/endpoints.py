"""Endpoint management: create, show, edit, rotate, delete, send a test."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

from django.contrib import messages as django_messages
from django.db.models import OuterRef, Subquery
from django.forms import BooleanField
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods

from inbox import counters
from inbox.dashboard import charts
from inbox.dashboard.forms import EndpointForm, RotateForm
from inbox.dashboard.viewer import endpoint_curl, endpoint_curl_variables
from inbox.dashboard.views.common import HtmxHttpRequest, ask, get_endpoint, post_or_back, staff_required
from inbox.delivery import handlers
from inbox.models import AlertRule, AuditAction, AuditEntry, Endpoint, Message, Status
from inbox.permissions import needs
from inbox.secrets import decrypt, encrypt
from inbox.tasks import send_test_webhook

logger = logging.getLogger("inbox.views")


# --- Endpoints ----------------------------------------------------------------------------
@staff_required
@require_GET
def endpoint_list(request: HttpRequest) -> HttpResponse:
    last = Message.objects.filter(endpoint=OuterRef("pk")).order_by("-received_at").values("received_at")[:1]
    endpoints = Endpoint.objects.annotate(last_received_at=Subquery(last))
    return render(request, "inbox/endpoint_list.html", {"endpoints": endpoints})


# --- A new secret, shown once -------------------------------------------------------------
# Create, rotate and a scheme change answer with a redirect (a reload must not create or
# rotate again), so the secret crosses to the next GET in the session: encrypted with the
# inbox's Fernet keys (a dump of the session table does not hand it out), popped by the
# first page that shows it, and dropped unread after SHOWN_SECRET_SECONDS. Never in a URL.
SHOWN_SECRET_KEY = "inbox.shown_secret"
SHOWN_SECRET_SECONDS = 600


def remember_secret(request: HttpRequest, endpoint: Endpoint, shown: dict[str, str], url: bool = False) -> None:
    """Keep `shown` (and with `url`, the receiver URL, itself a credential shown once: after
    a create and a new URL) for the next GET of the endpoint's page."""
    if url:
        shown = {**shown, "url": endpoint.url}
    if shown:
        payload = json.dumps({"endpoint": endpoint.pk, "at": time.time(), "shown": shown})
        request.session[SHOWN_SECRET_KEY] = encrypt(payload)


def pop_secret(request: HttpRequest, endpoint: Endpoint) -> dict[str, str]:
    """What `remember_secret` kept for this endpoint, once; {} otherwise."""
    stored = request.session.get(SHOWN_SECRET_KEY)
    if not stored:
        return {}
    try:
        payload = json.loads(decrypt(stored))
    except Exception:  # a rotated-away key or a damaged session: nothing to show
        logger.warning("a secret kept for display could not be read; dropped")
        del request.session[SHOWN_SECRET_KEY]
        return {}
    if payload.get("endpoint") != endpoint.pk:
        return {}  # another endpoint's: it stays for that endpoint's page
    del request.session[SHOWN_SECRET_KEY]
    if time.time() - float(payload.get("at", 0)) > SHOWN_SECRET_SECONDS:
        return {}
    shown: dict[str, str] = payload.get("shown") or {}
    return shown


def _secret_page(request: HttpRequest, endpoint: Endpoint) -> HttpResponse:
    """The endpoint page; the one GET after a create or rotation also shows the new secret."""
    shown = pop_secret(request, endpoint)
    shown_url = shown.pop("url", "")
    rejected = endpoint.rejected_attempts.all()
    recent = list(endpoint.messages.for_list()[:10])
    context = {
        "endpoint": endpoint,
        "shown": shown,
        "recent": recent,
        "waiting": not recent,
        "shown_url": shown_url,
        "curl": endpoint_curl(endpoint, shown, shown_url),
        "curl_variables": endpoint_curl_variables(endpoint),
        "instructions": endpoint.preset.instructions.replace("{url}", shown_url or endpoint.masked_url).replace(
            "{header}", endpoint.credential_header
        ),
        "counts": counters.for_endpoint(endpoint.pk),
        "rejected": rejected[:20],
        "rejected_count": rejected.count(),
        "can_send_test": endpoint.can_sign_tests,
        "destinations": endpoint.destinations.all(),
        "handlers": handlers.registered_for(endpoint.name),
        "signal_listeners": handlers.message_received.has_listeners(Message),
        "failures": endpoint.failure_rate(since=timezone.now() - timedelta(hours=24)),
        **_overview(request, endpoint),
    }
    response = render(request, "inbox/endpoint_detail.html", context)
    if shown or shown_url:
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
    since = charts.hour_starts(hours, now)[0]
    series = charts.hourly_series(endpoint.hourly_counts(since), hours, now)
    received = sum(count for _, count in series)
    return {
        "period": period,
        "chart": charts.bar_chart(series, f"Messages per hour, last {period}: {received} in all"),
        "received": received,
        "failed": endpoint.messages.filter(received_at__gte=since, status=Status.FAILED).count(),
        "last_received": endpoint.messages.newest_first().values_list("received_at", flat=True).first(),
    }


def _endpoint_form(request: HttpRequest, endpoint: Endpoint | None = None) -> EndpointForm:
    """The endpoint form: bound to a submit; unbound on a GET, and when a browser without
    script asks for the chosen preset's fields (`_preset`): what was typed is kept, nothing
    is checked yet, and the secret (never echoed) is typed again."""
    if request.method != "POST":
        return EndpointForm(instance=endpoint)
    if "_preset" not in request.POST:
        return EndpointForm(request.POST, instance=endpoint)
    typed: dict[str, Any] = {name: request.POST.get(name) for name in EndpointForm.base_fields if name in request.POST}
    for name, field in EndpointForm.base_fields.items():
        if isinstance(field, BooleanField):
            typed[name] = name in request.POST  # an unticked box is absent from the POST
    typed.pop("secret", None)
    return EndpointForm(initial=typed, instance=endpoint)


@staff_required
@require_http_methods(["GET", "POST"])
@needs("inbox.add_endpoint")
def endpoint_create(request: HttpRequest) -> HttpResponse:
    form = _endpoint_form(request)
    if form.is_bound and form.is_valid():
        endpoint = form.save(commit=False)
        endpoint.created_by = request.user  # type: ignore[assignment]
        endpoint.scheme_options = form.scheme_options()
        shown = endpoint.set_secret(form.cleaned_data["secret"] or None)
        endpoint.save()
        AuditEntry.record(request.user, AuditAction.ENDPOINT_CREATED, endpoint.name, endpoint, preset=endpoint.auth)
        remember_secret(request, endpoint, shown, url=True)
        return redirect(endpoint)
    return render(request, "inbox/endpoint_form.html", {"form": form})


@staff_required
@require_GET
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _secret_page(request, get_endpoint(pk))


@staff_required
@post_or_back(lambda request: reverse("inbox:endpoint-list"))
@needs("inbox.add_endpoint")
def endpoint_quick(request: HttpRequest) -> HttpResponse:
    """One click: a token endpoint with the defaults, then its page with the token (once)
    and the curl to send, waiting for the first delivery."""
    endpoint, shown = Endpoint.objects.create_quick(created_by=request.user)
    AuditEntry.record(
        request.user, AuditAction.ENDPOINT_CREATED, endpoint.name, endpoint, preset=endpoint.auth, quick=True
    )
    remember_secret(request, endpoint, shown, url=True)
    return redirect(endpoint)


@staff_required
@require_GET
def endpoint_first_delivery(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The endpoint page's live wait: 204 (htmx keeps polling) while nothing changed; the
    wait again with a count when deliveries were refused; once a message is stored, the
    message, which ends the polling, and the recent messages out of band."""
    endpoint = get_endpoint(pk)
    if not request.htmx:
        return redirect(endpoint)
    recent = list(endpoint.messages.for_list()[:10])
    if recent:
        context = {"endpoint": endpoint, "recent": recent, "first": recent[-1], "oob": True}
        return render(request, "inbox/endpoint_detail.html#arrived", context)
    # Still waiting. Refusals (a wrong token, a bad signature) are why a first delivery
    # never shows: say so as they come, and keep polling.
    rejected = endpoint.rejected_attempts.all()
    rejected_count = rejected.count()
    if str(rejected_count) == request.GET.get("refused"):
        return HttpResponse(status=204)
    context = {"endpoint": endpoint, "rejected": rejected[:1], "rejected_count": rejected_count}
    return render(request, "inbox/endpoint_detail.html#waiting", context)


@staff_required
@require_http_methods(["GET", "POST"])
@needs("inbox.change_endpoint")
def endpoint_edit(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_endpoint(pk)
    options_before = dict(endpoint.scheme_options)
    form = _endpoint_form(request, endpoint)
    if form.is_bound and form.is_valid():
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
        remember_secret(request, endpoint, shown)
        return redirect(endpoint)
    return render(request, "inbox/endpoint_form.html", {"form": form, "endpoint": endpoint})


@staff_required
@require_http_methods(["GET", "POST"])
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
        remember_secret(request, endpoint, shown)
        return redirect(endpoint)
    return render(request, "inbox/endpoint_rotate.html", {"form": form, "endpoint": endpoint})


@staff_required
@require_http_methods(["GET", "POST"])
@needs("inbox.change_endpoint")
def endpoint_new_url(request: HttpRequest, pk: int) -> HttpResponse:
    """A new receiver URL, shown once, for when the old one was lost or leaked. It asks
    first (a GET is the question): the old URL stops working at once."""
    endpoint = get_endpoint(pk)
    if request.method == "POST" and request.POST.get("confirmed") == "yes":
        endpoint.new_url()
        AuditEntry.record(request.user, AuditAction.SECRET_ROTATED, endpoint.name, endpoint, secret="receiver URL")
        remember_secret(request, endpoint, {}, url=True)
        return redirect(endpoint)
    question = f"Give “{endpoint.name}” a new receiver URL?"
    return ask(
        request,
        question,
        [
            f"Its current URL ({endpoint.masked_url}) stops working at once: providers that still send "
            "there get 404 until you give them the new one.",
            "The new URL is shown once, on the next page.",
        ],
        action_url=reverse("inbox:endpoint-new-url", args=[endpoint.pk]),
        button="Make a new URL",
        cancel_url=endpoint.get_absolute_url(),
    )


@staff_required
@post_or_back(lambda request, pk: reverse("inbox:endpoint-detail", args=[pk]))
@needs("inbox.change_endpoint")
def endpoint_send_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_endpoint(pk)
    if not endpoint.can_sign_tests:
        return redirect(endpoint)
    send_test_webhook.enqueue(endpoint.pk)
    AuditEntry.record(request.user, AuditAction.TEST_SENT, endpoint.name, endpoint)
    django_messages.success(request, "Test event queued: the worker signs it and posts it to the receiver URL.")
    return redirect(endpoint)


@staff_required
@require_http_methods(["GET", "POST"])
@needs("inbox.delete_endpoint")
def endpoint_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_endpoint(pk)
    if request.method == "POST":
        # Its alert rules go with it (the database cascades): the entry names them.
        _, details = AlertRule.objects.going_with(endpoint).described()
        AuditEntry.record(
            request.user, AuditAction.ENDPOINT_DELETED, endpoint.name, endpoint, id=endpoint.pk, **details
        )
        endpoint.delete()
        return redirect("inbox:endpoint-list")
    context = {
        "endpoint": endpoint,
        # Bounded: the question needs "more than 10,000", not a COUNT over millions.
        "message_count": endpoint.messages.all().count_upto(DELETE_COUNT_CAP),
        "count_cap": DELETE_COUNT_CAP,
        "destinations": endpoint.destinations.count(),
        # Rules scoped to it (or to one of its destinations) go with it: a rule left without
        # its endpoint would silently watch every endpoint.
        "alert_rules": AlertRule.objects.going_with(endpoint).count(),
    }
    return render(request, "inbox/endpoint_confirm_delete.html", context)


DELETE_COUNT_CAP = 10_000
