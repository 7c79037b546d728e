"""Reference views the ingest benchmark loads beside the real receiver, on the same server.

They are the yardsticks docs/architecture.md names ("The ingest pipeline"): a bare view (the
server's and Django's own cost), one raw durable INSERT per request (the floor a durable
receiver could reach with one round trip), and the typical tutorial receiver (ORM create plus
a delete of old rows in the request).
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from inbox.models import Endpoint, Message

RAW_TABLE = "bench_raw_insert"


def create_raw_table() -> None:
    kind = "BIGSERIAL" if connection.vendor == "postgresql" else "INTEGER"
    blob = "BYTEA" if connection.vendor == "postgresql" else "BLOB"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {RAW_TABLE} "
            f"(id {kind} PRIMARY KEY, received_at TIMESTAMP NOT NULL, body {blob} NOT NULL, headers TEXT NOT NULL)"
        )


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    request.body  # noqa: B018 - read it, as every receiver must
    return HttpResponse("ok\n", content_type="text/plain")


@csrf_exempt
def raw_insert(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {RAW_TABLE} (received_at, body, headers) VALUES (%s, %s, %s)",  # noqa: S608
            [timezone.now(), request.body, json.dumps(dict(request.headers))],
        )
    return HttpResponse("ok\n", content_type="text/plain")


@csrf_exempt
def lean_insert(request: HttpRequest) -> HttpResponse:
    # The same INSERT as raw_insert, served by tests/bench/wsgi.py's lean handler (security
    # and common middleware only).
    return raw_insert(request)


@csrf_exempt
def tutorial(request: HttpRequest, slug: str) -> HttpResponse:
    # What most "receive a webhook in Django" posts write: look the endpoint up, create the
    # row with the ORM, and keep the table small by deleting old rows right there.
    endpoint = Endpoint.objects.get(slug=slug)
    message = Message(endpoint=endpoint, method="POST", headers=dict(request.headers), json=json.loads(request.body))
    message.set_body(request.body)
    message.save()
    Message.objects.filter(endpoint=endpoint, received_at__lt=timezone.now() - timedelta(days=7)).delete()
    return HttpResponse("ok\n", content_type="text/plain")
