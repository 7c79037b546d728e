"""Processing in the dashboard: forwarding destinations, replays, and bulk replay jobs."""

from __future__ import annotations

import logging
import re

from django.contrib import messages as django_messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from inbox.forms import DestinationForm
from inbox.models import BulkJob, Destination, Message
from inbox.tasks import enqueue_processing, run_bulk_job
from inbox.views.common import HtmxHttpRequest, filtered_messages, get_endpoint, query_without, staff_required

logger = logging.getLogger("inbox.views")

# A selection travels in the form body; beyond this, replay the filter instead.
MAX_SELECTION = 500
MESSAGE_ID = re.compile(r"[0-9]{1,18}")


# --- Destinations -----------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
@staff_required
def destination_create(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_endpoint(pk)
    form = DestinationForm(request.POST or None, instance=Destination(endpoint=endpoint))
    if request.method == "POST" and form.is_valid():
        destination = form.save()
        django_messages.success(request, f"Messages are now forwarded to {destination.display_url}.")
        logger.info("destination added id=%s endpoint=%s by user=%s", destination.pk, endpoint.pk, request.user.pk)
        return redirect(endpoint)
    return render(request, "inbox/destination_form.html", {"form": form, "endpoint": endpoint})


@require_http_methods(["GET", "POST"])
@staff_required
def destination_edit(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination.objects.select_related("endpoint"), pk=pk)
    form = DestinationForm(request.POST or None, instance=destination)
    if request.method == "POST" and form.is_valid():
        form.save()
        django_messages.success(request, "Destination saved.")
        logger.info("destination changed id=%s by user=%s", destination.pk, request.user.pk)
        return redirect(destination.endpoint)
    context = {"form": form, "endpoint": destination.endpoint, "destination": destination}
    return render(request, "inbox/destination_form.html", context)


@require_POST
@staff_required
def destination_delete(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(Destination.objects.select_related("endpoint"), pk=pk)
    endpoint = destination.endpoint
    destination.delete()
    logger.info("destination deleted id=%s by user=%s", pk, request.user.pk)
    return redirect(endpoint)


# --- Replay -------------------------------------------------------------------------------------
@require_POST
@staff_required
def message_replay(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(Message.objects.select_related("endpoint"), pk=pk)
    Message.objects.filter(pk=message.pk).start_replay()
    enqueue_processing(message.pk)
    logger.info("message replay id=%s by user=%s", message.pk, request.user.pk)
    if message.endpoint.has_work(message.event_type):
        django_messages.success(request, f"Message #{message.pk} queued for processing again.")
    else:
        django_messages.warning(request, "Replayed, but its endpoint has no destination or handler to run.")
    query = query_without(request, "before", "after")
    return redirect(message.get_absolute_url() + (f"?{query}" if query else ""))


@require_POST
@staff_required
def messages_replay(request: HttpRequest) -> HttpResponse:
    """Replay the chosen messages (`ids`), or every message matching the list's filter
    (`all=1` with the filter in the query string), as a background job."""
    job = BulkJob()
    job.created_by = request.user  # type: ignore[assignment]  # staff_required: a real user
    if request.POST.get("all") == "1":
        filterset = filtered_messages(request)
        if not filterset.is_valid():
            django_messages.error(request, "The filter is not valid; nothing was replayed.")
            return redirect("inbox:message-list")
        job.query = query_without(request, "before", "after")
    else:
        ids = sorted({int(v) for v in request.POST.getlist("ids") if MESSAGE_ID.fullmatch(v)})
        if not ids:
            django_messages.error(request, "Select messages to replay first.")
            return redirect(_list_url(request))
        if len(ids) > MAX_SELECTION:
            django_messages.error(request, f"Select at most {MAX_SELECTION} messages, or replay the whole filter.")
            return redirect(_list_url(request))
        job.ids = ids
    job.save()
    run_bulk_job.enqueue(job.pk)
    logger.info("bulk replay id=%s queued by user=%s", job.pk, request.user.pk)
    return redirect(job)


def _list_url(request: HttpRequest) -> str:
    query = query_without(request, "before", "after")
    return "/" + (f"?{query}" if query else "")


@require_GET
@staff_required
def job_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(BulkJob.objects.select_related("created_by"), pk=pk)
    template = "inbox/job_detail.html#progress" if request.htmx else "inbox/job_detail.html"
    return render(request, template, {"job": job})
