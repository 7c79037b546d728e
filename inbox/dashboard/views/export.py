"""Export of the message list: `/messages/export.ndjson?<the list's query string>` and
`/messages/export.csv?<same>`. Streamed in keyset batches, so a million messages take the
memory of one batch, and each batch costs what a list page costs."""

from __future__ import annotations

import base64
import csv
import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from inbox.dashboard.views.common import filtered_messages, staff_required
from inbox.models import Message, MessageQuerySet

logger = logging.getLogger("inbox.views")

BATCH = 1000
CSV_COLUMNS = [
    "id",
    "endpoint",
    "received_at",
    "method",
    "event_type",
    "content_type",
    "body_size",
    "status",
    "verification",
    "remote_addr",
    "idempotency_key",
    "query_string",
    "headers",
    "body",
    "body_base64",
]
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def each_message(messages: MessageQuerySet) -> Iterator[Message]:
    """Every message of `messages`, newest first, fetched BATCH at a time by keyset."""
    messages = messages.select_related("endpoint").only(
        *[f.name for f in Message._meta.concrete_fields if f.name != "endpoint"], "endpoint__name"
    )
    batch = list(messages.newest_first()[:BATCH])
    while batch:
        yield from batch
        last = batch[-1]
        batch = list(messages.older_than(last.received_at, last.pk)[:BATCH])


def as_record(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "endpoint": message.endpoint.name,
        "received_at": message.received_at.isoformat(),
        "method": message.method,
        "query_string": message.query_string,
        "content_type": message.content_type,
        "headers": message.headers,
        "event_type": message.event_type,
        "idempotency_key": message.idempotency_key,
        "remote_addr": message.remote_addr,
        "verification": message.verification,
        "status": message.status,
        "body_size": message.body_size,
        "json": message.json,
        "body_base64": base64.b64encode(message.body).decode("ascii"),
    }


def ndjson_lines(messages: Iterable[Message]) -> Iterator[str]:
    for message in messages:
        yield json.dumps(as_record(message), ensure_ascii=False, separators=(",", ":")) + "\n"


class _Line:
    """A file-like object csv.writer writes one row into, handed back as a string."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> str:
    text = "" if value is None else value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(messages: Iterable[Message]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_COLUMNS)
    for message in messages:
        record = as_record(message)
        record["headers"] = json.dumps(message.headers, ensure_ascii=False)
        record["body"] = message.body_text or ""
        yield writer.writerow([_cell(record[column]) for column in CSV_COLUMNS])


def _export(request: HttpRequest, kind: str) -> HttpResponse | StreamingHttpResponse:
    filterset = filtered_messages(request)
    if not filterset.is_valid():
        errors = "; ".join(f"{name}: {' '.join(e)}" for name, e in filterset.errors.items())
        return HttpResponse(f"Invalid filter: {errors}\n", status=400, content_type="text/plain; charset=utf-8")
    messages = each_message(filterset.qs)
    if kind == "ndjson":
        response = StreamingHttpResponse(ndjson_lines(messages), content_type="application/x-ndjson; charset=utf-8")
    else:
        response = StreamingHttpResponse(csv_lines(messages), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="messages-{stamp}.{kind}"'
    logger.info("export kind=%s by user=%s", kind, request.user.pk)
    return response


@staff_required
@require_GET
def export_ndjson(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    return _export(request, "ndjson")


@staff_required
@require_GET
def export_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    return _export(request, "csv")
