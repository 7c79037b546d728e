"""Server time and query count of the dashboard's pages on a large inbox.

Run against a database seeded with `manage.py seed_messages --count N`:

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/inbox_bench \\
        .venv/bin/python tests/bench/dashboard.py [--repeat 7] [--json out.json]

Each page is requested in-process with Django's test client (the whole request: middleware,
queries, template rendering; no network), several times; the median and the worst are
reported with the number of queries of one request.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_ENV", "development")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from inbox.models import Endpoint, Message  # noqa: E402


def measure(client: Client, url: str, repeat: int) -> dict[str, Any]:
    client.get(url)  # warm: connection, caches, template loading
    times = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            if getattr(response, "streaming", False):
                for _chunk in response.streaming_content:
                    pass
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 204), (url, response.status_code)
        queries = len(captured.captured_queries)
    return {"url": url, "median_ms": statistics.median(times), "max_ms": max(times), "queries": queries}


def pages() -> dict[str, str]:
    """The dashboard's pages as staff use them, on the seeded endpoints."""
    stripe = Endpoint.objects.get(name="seed-stripe")
    # The cursor of page 200 (rows 9,951..10,000), as the list's "Older" links would carry it.
    row = Message.objects.newest_first().values_list("received_at", "id")[199 * 50 - 1]
    page_200 = Message(received_at=row[0], pk=row[1]).cursor
    newest = Message.objects.newest_first().first()
    assert newest is not None
    day = (newest.received_at - timedelta(days=30)).date()
    return {
        "list, first page": "/",
        "list, page 200": f"/?before={page_200}",
        "filter: endpoint": f"/?endpoint={stripe.pk}",
        "filter: event type": "/?event_type=invoice.paid",
        "filter: method": "/?method=POST",
        "filter: processing failed": "/?status=failed",
        "filter: unread": "/?read=false",
        "filter: content type": "/?content_type=application/x-www",
        "filter: received in a day": f"/?received_after={day}T00:00&received_before={day}T23:59",
        "search: common word (q=invoice)": "/?q=invoice",
        "search: rare string (q=in_0000424242)": "/?q=in_0000424242",
        "JSON path: data.object.status = paid": "/?json=data.object.status%20%3D%20paid",
        "JSON path + endpoint": f"/?endpoint={stripe.pk}&json=data.object.currency%20%3D%20gbp",
        "message page": f"/messages/{newest.pk}/",
        "endpoint page (chart, week)": f"/endpoints/{stripe.pk}/?period=week",
        "live poll, nothing new": f"/messages/new/?since={newest.cursor}",
    }


def staff_client() -> Client:
    user = get_user_model().objects.filter(is_superuser=True).first() or get_user_model().objects.create_superuser(
        "bench", password=None
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


def run(repeat: int) -> list[dict[str, Any]]:
    client = staff_client()
    results = []
    print(f"{Message.objects.count():,} messages on {connection.vendor}; median of {repeat} requests each\n")
    print(f"{'page':42} {'median ms':>10} {'max ms':>8} {'queries':>8}")
    for name, url in pages().items():
        result = measure(client, url, repeat) | {"page": name}
        results.append(result)
        print(f"{name:42} {result['median_ms']:10.1f} {result['max_ms']:8.1f} {result['queries']:8}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = run(args.repeat)
    if args.json:
        summary = {"messages": Message.objects.count(), "vendor": connection.vendor, "results": results}
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
