"""The message list, the payload viewer, and actions on messages."""

from __future__ import annotations

import contextlib
import logging
from urllib.parse import parse_qsl, urlencode

from django.contrib import messages as django_messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from inbox.dashboard.viewer import CURL_INLINE_LIMIT, body_view, compare, curl_body_file, curl_command, json_tree
from inbox.dashboard.views.common import (
    HtmxHttpRequest,
    ask,
    filtered_messages,
    parse_ids,
    post_or_back,
    query_without,
    staff_required,
)
from inbox.filters import MessageFilter, clean_destination_filter
from inbox.models import AuditAction, AuditEntry, Message
from inbox.permissions import needs

logger = logging.getLogger("inbox.views")

PAGE_SIZE = 50
# The collapsible tree is for documents a person reads; bigger ones get the plain view.
TREE_BODY_LIMIT = 256 * 1024


# --- Messages -----------------------------------------------------------------------------
@staff_required
@require_GET
def message_list(request: HtmxHttpRequest) -> HttpResponse:
    filterset = filtered_messages(request)
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
    base_query = query_without(request, "before", "after")
    newest_first_page = filterset.is_valid() and "before" not in request.GET and "after" not in request.GET
    context: dict[str, object] = {
        # Live updates poll for what is newer than the top row, on the first page only.
        "live_since": (messages[0].cursor if messages else "0_0") if newest_first_page else None,
        "filter": filterset,
        "messages_page": messages,
        "older_cursor": older_cursor,
        "newer_cursor": newer_cursor,
        "base_query": base_query,
        "is_filtered": bool(base_query),
    }
    partial = bool(request.htmx and not request.htmx.boosted)
    # Filters besides the search box sit behind "Filters (n)"; an htmx answer updates n
    # out of band, since the form itself is not swapped.
    context["active_filters"] = filterset.active_filters()
    context["route_url"] = _route_url(request, filterset)
    context["filter_count_oob"] = partial
    template = "inbox/message_list.html#results" if partial else "inbox/message_list.html"
    return render(request, template, context)


def _route_url(request: HttpRequest, filterset: MessageFilter) -> str:
    """ "Forward messages like these": the destination form of the endpoint the list is
    filtered on, carrying the rest of the list's filter (empty when there is no one endpoint)."""
    if not filterset.is_valid() or not request.user.has_perm("inbox.change_endpoint"):
        return ""
    endpoint = filterset.form.cleaned_data.get("endpoint")
    if endpoint is None:
        return ""
    query = query_without(request, "before", "after", "endpoint")
    # In its readable stored form; a filter that cannot route (status=failed) goes as it is,
    # for the form to say why.
    with contextlib.suppress(ValidationError):
        query = clean_destination_filter(query, endpoint.pk)
    url = reverse("inbox:destination-create", args=[endpoint.pk])
    return url + ("?" + urlencode({"filter": query}) if query else "")


@staff_required
@require_GET
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(Message.objects.select_related("endpoint"), pk=pk)
    if not message.read:
        # Opening a message reads it for the whole team, like a shared mailbox.
        Message.objects.filter(pk=message.pk).update(read=True)
    filterset = filtered_messages(request)
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
        # The viewer pages through the list's filter: say why it cannot, as the list does.
        "filter_errors": None if filterset.is_valid() else filterset.error_list(),
        "list_query": query_without(request, "before", "after"),
        "attempts": message.processing_attempts.all(),
        "tree": json_tree(message.json) if message.json is not None and message.body_size <= TREE_BODY_LIMIT else None,
        # The receiver URL is a credential shown once, when it was made: "$RECEIVER_URL" here.
        "curl": curl_command(message),
        # Too big for a command line (or not UTF-8): the curl reads the raw download.
        "curl_body_file": curl_body_file(message),
        "curl_inline_limit": CURL_INLINE_LIMIT,
    }
    return render(request, "inbox/message_detail.html", context)


@staff_required
@require_GET
def message_raw(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(Message, pk=pk)
    # Always an attachment of an inert type: a body is never rendered by the browser.
    response = HttpResponse(message.body, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="message-{message.pk}.bin"'
    return response


@staff_required
@post_or_back(lambda request, pk: reverse("inbox:message-detail", args=[pk]) + _query(request))
@needs("inbox.delete_message")
def message_delete(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(Message.objects.select_related("endpoint"), pk=pk)
    query = query_without(request, "before", "after")
    if request.POST.get("confirmed") != "yes":
        # The message page's script asks in a dialog and sets the field; without it, ask here.
        question = f"Delete message #{message.pk}?"
        kind = f"the {message.event_type} event" if message.event_type else f"the {message.method} request"
        received = f"{timezone.localtime(message.received_at):%Y-%m-%d %H:%M:%S %Z}"
        return ask(
            request,
            question,
            [f"It is {kind} that “{message.endpoint.name}” received {received}.", "This cannot be undone."],
            action_url=request.get_full_path(),
            button="Delete message",
            cancel_url=message.get_absolute_url() + (f"?{query}" if query else ""),
        )
    message.delete()
    AuditEntry.record(request.user, AuditAction.MESSAGES_DELETED, f"message #{pk}", message.endpoint)
    return redirect(reverse("inbox:message-list") + (f"?{query}" if query else ""))


def _query(request: HttpRequest) -> str:
    query = query_without(request, "before", "after")
    return f"?{query}" if query else ""


def pick_two(ticked: int) -> str:
    return f"Pick exactly two messages to compare; {ticked} {'is' if ticked == 1 else 'are'} ticked."


@staff_required
@require_GET
def message_compare(request: HttpRequest) -> HttpResponse:
    """Two messages side by side: a line diff of their metadata, headers and bodies."""
    # Counted before anything is cut: three ticked must not silently compare two of them.
    ids = list(dict.fromkeys(parse_ids(request.GET.getlist("ids"))))
    if len(ids) != 2:
        django_messages.error(request, pick_two(len(ids)))
        query = query_without(request, "ids", "before", "after", "csrfmiddlewaretoken")
        return redirect(reverse("inbox:message-list") + (f"?{query}" if query else ""))
    found = Message.objects.select_related("endpoint").in_bulk(ids)
    if len(found) != 2:
        raise Http404
    older, newer = sorted(found.values(), key=lambda m: (m.received_at, m.pk))
    context = {"older": older, "newer": newer, "diff": compare(older, newer)}
    return render(request, "inbox/message_compare.html", context)


@staff_required
@require_GET
def message_list_new(request: HttpRequest) -> HttpResponse:
    """Live updates: the list's rows newer than `since`, for htmx to put on top (204: none)."""
    filterset = filtered_messages(request)
    since = Message.parse_cursor(request.GET.get("since", ""))
    if not filterset.is_valid() or since is None:
        # Never "no news" for a filter that is not one (the list page shows the reason).
        errors = "; ".join(f"{name}: {' '.join(e)}" for name, e in filterset.errors.items()) or "since: not a cursor"
        return HttpResponse(f"Invalid filter: {errors}\n", status=400, content_type="text/plain; charset=utf-8")
    rows = list(filterset.qs.for_list().newer_than(*since)[:PAGE_SIZE])
    if not rows:
        return HttpResponse(status=204)
    if request.GET.get("empty") == "1":
        # The page has no table to add rows to yet: show the first messages by reloading it.
        response = HttpResponse(status=200)
        response["HX-Refresh"] = "true"
        return response
    context = {
        "rows": rows[::-1],
        "live_since": rows[-1].cursor,
        "base_query": query_without(request, "before", "after", "since", "empty"),
        "messages_page": True,
    }
    return render(request, "inbox/message_list.html#live", context)
