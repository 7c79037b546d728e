"""Processing in the dashboard: forwarding destinations, replays, and bulk actions."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages as django_messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from inbox.dashboard.forms import DestinationForm, DestinationRotateForm
from inbox.dashboard.views.common import (
    HtmxHttpRequest,
    ask,
    filtered_messages,
    get_endpoint,
    list_url,
    parse_ids,
    post_or_back,
    query_without,
    staff_required,
)
from inbox.dashboard.views.messages import pick_two
from inbox.delivery.bulk import BULK_ACTIONS, in_batches
from inbox.delivery.queue import enqueue_processing
from inbox.delivery.routing import RoutingError, dry_run, pause, resume
from inbox.delivery.routing import preview as routing_preview
from inbox.delivery.work import has_work
from inbox.filters import MessageFilter, describe_query
from inbox.models import (
    BULK_PAST,
    AlertRule,
    AuditAction,
    AuditEntry,
    BulkAction,
    BulkJob,
    Destination,
    Endpoint,
    Message,
    MessageQuerySet,
)
from inbox.permissions import needs
from inbox.secrets import decrypt, encrypt
from inbox.tasks import run_bulk_job

logger = logging.getLogger("inbox.views")

# A selection travels in the form body; beyond this, replay the filter instead.
MAX_SELECTION = 500


# --- Destinations -----------------------------------------------------------------------------
# A new signing secret crosses the redirect after a save or a rotation in the session,
# encrypted, and is shown once by the destination's page (as endpoint secrets are, in
# inbox/dashboard/views/endpoints.py).
SHOWN_SIGNING_SECRET_KEY = "inbox.shown_signing_secret"
SHOWN_SECRET_SECONDS = 600
RECENT_FOR_PREVIEW = 20


@staff_required
@require_http_methods(["GET", "POST"])
@needs("inbox.change_endpoint")
def destination_create(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_endpoint(pk)
    # "Forward messages like these" on the list links here with the list's filter.
    initial = {"filter": request.GET.get("filter", "")[:2000]}
    form = DestinationForm(
        request.POST or None, instance=Destination(endpoint=endpoint), initial=initial, recent=_recent(endpoint)
    )
    return _destination_form(request, form, endpoint, None)


@staff_required
@require_http_methods(["GET", "POST"])
@needs("inbox.change_endpoint")
def destination_edit(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination.objects.select_related("endpoint"), pk=pk)
    endpoint = destination.endpoint
    form = DestinationForm(request.POST or None, instance=destination, recent=_recent(endpoint))
    return _destination_form(request, form, endpoint, destination)


def _destination_form(
    request: HttpRequest, form: DestinationForm, endpoint: Endpoint, destination: Destination | None
) -> HttpResponse:
    """The destination form's three buttons: save, a dry run of the filter, a preview of the
    transform. The last two save nothing and report only on the field they try."""
    action = request.POST.get("_action", "save")
    context: dict[str, Any] = {"form": form, "endpoint": endpoint, "destination": destination}
    if destination is not None:
        context["delete_question"] = destination_question(
            destination, AlertRule.objects.going_with(destination).described()[0]
        )
    if request.method == "POST" and action in ("dry_run", "preview"):
        form.is_valid()
        field = "filter" if action == "dry_run" else "transform"
        _only_errors_of(form, field, "preview_message")
        if field not in form.errors:
            if action == "dry_run":
                context["dry_run"] = dry_run(form.cleaned_data["filter"], endpoint)
            else:
                context["preview"] = _preview(
                    endpoint, form.cleaned_data["transform"], form.cleaned_data.get("preview_message")
                )
        return render(request, "inbox/destination_form.html", context)
    if request.method == "POST" and form.is_valid():
        new = destination is None
        saved = form.save(commit=False)
        secret = ""
        if saved.sign and not saved.signing_secret_encrypted:
            secret = saved.set_signing_secret()
        elif not saved.sign:
            saved.signing_secret_encrypted = saved.previous_signing_secret_encrypted = ""
            saved.previous_signing_expires_at = None
        if new and saved.paused:
            saved.paused_at, saved.paused_reason = timezone.now(), "paused when created"
        saved.save()
        if new:
            django_messages.success(request, f"Messages are now forwarded to {saved.display_url}.")
            AuditEntry.record(request.user, AuditAction.DESTINATION_ADDED, saved.display_url, endpoint)
        else:
            django_messages.success(request, "Destination saved.")
            AuditEntry.record(
                request.user,
                AuditAction.DESTINATION_CHANGED,
                saved.display_url,
                endpoint,
                changed=sorted(set(form.changed_data) - {"preview_message"}),
            )
        if secret:
            _remember_signing_secret(request, saved, secret)
            return redirect("inbox:destination-edit", saved.pk)
        return redirect(endpoint)
    if destination is not None:
        context["signing_secret"] = _pop_signing_secret(request, destination)
        context["rotate_form"] = DestinationRotateForm()
        context["held"] = Message.objects.held_for(destination).count_upto(CONFIRM_COUNT_CAP)
    response = render(request, "inbox/destination_form.html", context)
    if context.get("signing_secret"):
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
    return response


def _only_errors_of(form: DestinationForm, *names: str) -> None:
    """Keep the errors of the fields a dry run or preview tries: a URL not typed yet is no
    reason to refuse to try a filter."""
    for name in list(form.errors):
        if name not in names:
            del form.errors[name]
            if name in form.fields:
                form.fields[name].widget.attrs.pop("autofocus", None)


def _recent(endpoint: Endpoint) -> list[tuple[int, str]]:
    rows = endpoint.messages.newest_first().filter(json__isnull=False).values_list("pk", "event_type", "received_at")
    return [
        (pk, f"#{pk} {event or '(no event type)'} · {timezone.localtime(at):%Y-%m-%d %H:%M}")
        for pk, event, at in rows[:RECENT_FOR_PREVIEW]
    ]


def _preview(endpoint: Endpoint, expression: str, message_id: int | None) -> dict[str, Any]:
    messages = endpoint.messages.filter(json__isnull=False).newest_first()
    message = messages.filter(pk=message_id).first() if message_id else messages.first()
    if message is None:
        return {"error": "This endpoint has no stored JSON message to preview on yet."}
    if not expression:
        return {"message": message, "error": "No transform: the original body is sent as it arrived."}
    try:
        return {"message": message, "body": routing_preview(expression, message)}
    except RoutingError as exc:
        return {"message": message, "error": str(exc)}


def _remember_signing_secret(request: HttpRequest, destination: Destination, secret: str) -> None:
    payload = json.dumps({"destination": destination.pk, "at": time.time(), "secret": secret})
    request.session[SHOWN_SIGNING_SECRET_KEY] = encrypt(payload)


def _pop_signing_secret(request: HttpRequest, destination: Destination) -> str:
    stored = request.session.get(SHOWN_SIGNING_SECRET_KEY)
    if not stored:
        return ""
    try:
        payload = json.loads(decrypt(stored))
    except ValueError:  # a rotated-away key or a damaged session: nothing to show
        logger.warning("a signing secret kept for display could not be read; dropped")
        del request.session[SHOWN_SIGNING_SECRET_KEY]
        return ""
    if payload.get("destination") != destination.pk:
        return ""
    del request.session[SHOWN_SIGNING_SECRET_KEY]
    if time.time() - float(payload.get("at", 0)) > SHOWN_SECRET_SECONDS:
        return ""
    return str(payload.get("secret", ""))


@staff_required
@require_POST
@needs("inbox.change_endpoint")
def destination_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination.objects.select_related("endpoint"), pk=pk)
    form = DestinationRotateForm(request.POST)
    if not destination.sign or not form.is_valid():
        django_messages.error(request, "This destination does not sign; there is no secret to rotate.")
        return redirect("inbox:destination-edit", destination.pk)
    grace = timedelta(hours=form.cleaned_data["grace"])
    secret = destination.rotate_signing_secret(grace)
    AuditEntry.record(
        request.user,
        AuditAction.DESTINATION_ROTATED,
        destination.display_url,
        destination.endpoint,
        grace_hours=form.cleaned_data["grace"],
    )
    _remember_signing_secret(request, destination, secret)
    django_messages.success(
        request,
        f"New signing secret. The previous one also signs for {form.cleaned_data['grace']} more hours."
        if grace
        else "New signing secret; the previous one no longer signs.",
    )
    return redirect("inbox:destination-edit", destination.pk)


@staff_required
@require_POST
@needs("inbox.change_endpoint")
def destination_pause(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination.objects.select_related("endpoint"), pk=pk)
    if pause(destination, request.user, f"paused by {request.user.get_username()}"):
        django_messages.success(request, f"Paused {destination.display_url}: its messages wait until you resume it.")
    return redirect(destination.endpoint)


@staff_required
@require_POST
@needs("inbox.change_endpoint")
def destination_resume(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination.objects.select_related("endpoint"), pk=pk)
    woken = resume(destination, request.user)
    held = f"{woken} held message{'s' if woken != 1 else ''} {'are' if woken != 1 else 'is'} being sent, oldest first"
    django_messages.success(request, f"Resumed {destination.display_url}: {held}.")
    return redirect(destination.endpoint)


@staff_required
@post_or_back(lambda request, pk: reverse("inbox:destination-edit", args=[pk]))
@needs("inbox.change_endpoint")
def destination_delete(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination.objects.select_related("endpoint"), pk=pk)
    endpoint = destination.endpoint
    # Its alert rules go with it (their foreign key cascades): the question names them.
    rules, details = AlertRule.objects.going_with(destination).described()
    if request.POST.get("confirmed") != "yes":
        # The edit page's script asks in a dialog and sets the field; without it, ask here.
        question = destination_question(destination, rules)
        return ask(
            request,
            question,
            ["Messages are no longer forwarded there. The attempts already made stay on their messages."],
            action_url=reverse("inbox:destination-delete", args=[destination.pk]),
            button="Delete destination",
            cancel_url=reverse("inbox:destination-edit", args=[destination.pk]),
        )
    destination.delete()
    AuditEntry.record(request.user, AuditAction.DESTINATION_DELETED, destination.display_url, endpoint, **details)
    return redirect(endpoint)


def destination_question(destination: Destination, rules: str) -> str:
    """The delete question, for the edit page's dialog and the page that asks without
    JavaScript: the destination, and the alert rules that go with it (`rules`)."""
    also = f" and {rules}" if rules else ""
    return f"Delete the destination {destination.display_url} of “{destination.endpoint.name}”{also}?"


# --- Replay -------------------------------------------------------------------------------------
@staff_required
@post_or_back(lambda request, pk: reverse("inbox:message-detail", args=[pk]))
@needs("inbox.change_message")
def message_replay(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(Message.objects.select_related("endpoint"), pk=pk)
    Message.objects.filter(pk=message.pk).start_replay()
    enqueue_processing(message.pk)
    AuditEntry.record(request.user, AuditAction.MESSAGES_REPLAYED, f"message #{message.pk}", message.endpoint)
    if has_work(message.endpoint, message.event_type):
        django_messages.success(request, f"Message #{message.pk} queued for processing again.")
    else:
        django_messages.warning(request, "Replayed, but its endpoint has no destination or handler to run.")
    query = query_without(request, "before", "after")
    return redirect(message.get_absolute_url() + (f"?{query}" if query else ""))


@staff_required
@post_or_back(list_url)
def messages_bulk(request: HttpRequest) -> HttpResponse:
    """A bulk action (`action`: replay, delete, mark_read, mark_unread) on the chosen
    messages (`ids`), or, with `_all` after the action, on every message matching the
    list's filter (in the query string). Whole filters, and replays, run as background
    jobs with a progress page; a selection is deleted or marked at once.

    Deletes, and replays of a whole filter, happen only with `confirmed=yes`: without it
    the answer is a page that asks, naming what and how many. The list's script asks in a
    dialog for a selection and sets the field; a whole filter always asks on that page,
    so the question holds without JavaScript.

    The filter is the query string's and nothing else: a POST whose body carries a filter
    field is refused (the body's filter would otherwise be ignored and the action hit
    every message). A whole filter's delete or replay acts only with the signed token its
    confirmation page carries, bound to the user, the action, the exact filter and the
    count that page showed; without it, the question is asked again."""
    if refused := _filter_in_body(request):
        return refused
    requested = request.POST.get("action", "")
    if requested == "compare":
        # Compare only reads: any staff may, and it goes to a GET page of its own (the
        # bulk form is a POST so that its CSRF token never travels in a URL).
        chosen = list(dict.fromkeys(parse_ids(request.POST.getlist("ids"))))
        if len(chosen) != 2:
            django_messages.error(request, pick_two(len(chosen)))
            return redirect(_list_url(request))
        return redirect(reverse("inbox:message-compare") + "?" + urlencode([("ids", v) for v in chosen]))
    scope = "all" if requested.endswith("_all") else "selected"
    if requested.removesuffix("_all") not in BulkAction.values:
        django_messages.error(request, "Choose an action.")
        return redirect(_list_url(request))
    action = BulkAction(requested.removesuffix("_all"))
    permission = "inbox.delete_message" if action == BulkAction.DELETE else "inbox.change_message"
    if not request.user.has_perm(permission):
        raise PermissionDenied
    job = BulkJob(action=action)
    job.created_by = request.user  # type: ignore[assignment]  # staff_required: a real user
    label = action.label.lower()
    words = ""
    if scope == "all":
        filterset = filtered_messages(request)
        if not filterset.is_valid():
            reasons = " ".join(" ".join(errors) for errors in filterset.errors.values())
            django_messages.error(request, f"The filter is not valid; nothing was {BULK_PAST[action]}. {reasons}")
            return redirect(_list_url(request))
        job.query = query_without(request, "before", "after")
        words = filterset.describe()
        matching = filterset.qs
    else:
        ids = sorted(set(parse_ids(request.POST.getlist("ids"))))
        if not ids:
            django_messages.error(request, f"Select messages to {label} first.")
            return redirect(_list_url(request))
        if len(ids) > MAX_SELECTION:
            django_messages.error(request, f"Select at most {MAX_SELECTION} messages, or act on the whole filter.")
            return redirect(_list_url(request))
        job.ids = ids
        matching = Message.objects.filter(pk__in=ids)
    details: dict[str, Any] = {}
    if _asks_first(action, scope) and not _confirmed(request, action, scope, job, details):
        return _confirm_bulk(request, action, scope, matching, words)
    if job.ids:
        target = f"{len(job.ids)} selected message{'s' if len(job.ids) != 1 else ''}"
    else:
        target = f"every message matching {words}" if words else "every message (no filter)"
    if AUDIT_ACTIONS[action] == AuditAction.MESSAGES_MARKED:
        details["read"] = action == BulkAction.MARK_READ
    entry = AuditEntry.record(request.user, AUDIT_ACTIONS[action], target, None, **details)
    if job.ids and action != BulkAction.REPLAY:
        # A page's worth is done at once; the worker is for whole filters and replays.
        done = in_batches(Message.objects.filter(pk__in=job.ids), BULK_ACTIONS[action])
        django_messages.success(request, f"{done} message{'s' if done != 1 else ''} {BULK_PAST[action]}.")
        return redirect(_list_url(request))
    job.save()
    entry.details["bulk_job"] = job.pk
    entry.save(update_fields=["details"])
    run_bulk_job.enqueue(job.pk)
    return redirect(job)


def _filter_in_body(request: HttpRequest) -> HttpResponse | None:
    smuggled = sorted(set(request.POST) & set(MessageFilter.base_filters))
    if not smuggled:
        return None
    logger.warning("bulk action refused: filter fields in the form body: %s", ", ".join(smuggled)[:200])
    django_messages.error(
        request,
        f"Nothing was done: a filter ({', '.join(smuggled)}) was sent in the form, not in the list's "
        "address. Filter the list, then use its buttons.",
    )
    return redirect(_list_url(request))


AUDIT_ACTIONS = {
    BulkAction.REPLAY: AuditAction.MESSAGES_REPLAYED,
    BulkAction.DELETE: AuditAction.MESSAGES_DELETED,
    BulkAction.MARK_READ: AuditAction.MESSAGES_MARKED,
    BulkAction.MARK_UNREAD: AuditAction.MESSAGES_MARKED,
}

# A confirmation counts this far and no further: "more than 10,000" is enough to decide.
CONFIRM_COUNT_CAP = 10_000
CONFIRM_SALT = "inbox.bulk-confirmation"
CONFIRM_MAX_AGE = 60 * 60  # a question left open in a tab for longer is asked again


def _confirmation_token(request: HttpRequest, action: BulkAction, query: str, count: int) -> str:
    """What the confirmation page posts back: who was asked, what, about which filter, the
    count they saw and the newest message there was (`m`): the job leaves alone what arrives
    after the question, which the count did not include. Signed (SECRET_KEY), so no other
    form or script can forge it."""
    newest = Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return signing.dumps(
        {"u": request.user.pk, "a": action.value, "q": query, "n": count, "m": newest}, salt=CONFIRM_SALT
    )


def _confirmed(request: HttpRequest, action: BulkAction, scope: str, job: BulkJob, details: dict[str, Any]) -> bool:
    """Whether the person answered this question: `confirmed=yes`, and for a whole filter
    the signed token of its page (whose count goes into the audit `details`, and whose
    newest message bounds the job)."""
    if request.POST.get("confirmed") != "yes":
        return False
    if scope != "all":
        return True
    shown = _confirmed_question(request, action, job.query)
    if shown is None:
        return False  # not this page's question (or too old): ask it
    details["confirmed_count"], job.upto_id = shown
    return True


def _confirmed_question(request: HttpRequest, action: BulkAction, query: str) -> tuple[int, int] | None:
    """The count the person was shown and the newest message id then, if the POST carries
    a valid token for exactly this action and filter; None otherwise."""
    try:
        data = signing.loads(request.POST.get("confirmation", ""), salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or (data.get("u"), data.get("a"), data.get("q")) != (
        request.user.pk,
        action.value,
        query,
    ):
        return None
    count, newest = data.get("n"), data.get("m")
    if not isinstance(count, int) or not isinstance(newest, int):
        return None
    return count, newest


def _asks_first(action: BulkAction, scope: str) -> bool:
    """Deletes cannot be undone; a whole filter's replay sends every match out again."""
    return action == BulkAction.DELETE or (scope == "all" and action == BulkAction.REPLAY)


def _confirm_bulk(
    request: HttpRequest, action: BulkAction, scope: str, matching: MessageQuerySet, words: str
) -> HttpResponse:
    """The page that asks before a bulk delete or replay, naming what and how many."""
    verb = action.label  # "Delete", "Replay"
    if scope == "selected":
        count = matching.count()  # at most MAX_SELECTION ids
        many = f"{count:,} selected message{'s' if count != 1 else ''}"
        question, button = f"{verb} {many}?", f"{verb} {many}"
    else:
        count = matching.count_upto(CONFIRM_COUNT_CAP)
        if count > CONFIRM_COUNT_CAP:
            many = f"the more than {CONFIRM_COUNT_CAP:,} messages"
        else:
            many = f"the {count:,} message" if count == 1 else f"all {count:,} messages"
        where = "matching this filter" if words else "in the inbox"
        question, button = f"{verb} {many} {where}?", f"{verb} {many.removeprefix('the ')}"
    if not count:
        django_messages.info(request, f"No message matches; nothing was {BULK_PAST[action]}.")
        return redirect(_list_url(request))
    lines = []
    if scope == "all":
        lines.append(
            f"The filter: {words}." if words else "No filter is applied: this is every message of every endpoint."
        )
        if count > CONFIRM_COUNT_CAP:
            lines.append(
                f"Counting stopped at {CONFIRM_COUNT_CAP:,} to keep this page fast; "
                "the job acts on every match and reports the total."
            )
    if action == BulkAction.DELETE:
        lines.append("This cannot be undone.")
    else:
        lines.append("Each is processed again: forwarded to its endpoint's destinations and handlers.")
    fields = [("action", request.POST["action"])]
    fields += [("ids", str(pk)) for pk in parse_ids(request.POST.getlist("ids"))] if scope == "selected" else []
    query = query_without(request, "before", "after")
    if scope == "all":
        fields.append(("confirmation", _confirmation_token(request, action, query, count)))
    return ask(
        request,
        question,
        lines,
        action_url=reverse("inbox:messages-bulk") + (f"?{query}" if query else ""),
        button=button,
        cancel_url=_list_url(request),
        fields=fields,
        replay=action == BulkAction.REPLAY,  # not red: it can be done again, unlike a delete
    )


def _list_url(request: HttpRequest) -> str:
    return list_url(request)


@staff_required
@require_GET
def job_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(BulkJob.objects.select_related("created_by"), pk=pk)
    template = "inbox/job_detail.html#progress" if request.htmx else "inbox/job_detail.html"
    return render(request, template, {"job": job, "filter_words": describe_query(job.query) if job.query else ""})
