from __future__ import annotations

import json
import random
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from inbox.models import Endpoint, Message, Status, Verification

ENDPOINTS = ["seed-stripe", "seed-github", "seed-shopify", "seed-forms"]
STRIPE_EVENTS = [
    "invoice.paid",
    "invoice.payment_failed",
    "customer.created",
    "charge.refunded",
    "checkout.session.completed",
]
GITHUB_EVENTS = ["push", "pull_request", "issues", "workflow_run", "release"]
SHOPIFY_TOPICS = ["orders/create", "orders/paid", "products/update", "customers/create"]
STATUSES = [Status.SKIPPED] * 80 + [Status.PROCESSED] * 15 + [Status.FAILED] * 3 + [Status.PENDING] * 2


class Command(BaseCommand):
    help = (
        "Fill the inbox with COUNT realistic messages over several endpoints and the last DAYS days, "
        "with bulk inserts (for benchmarks and trying the dashboard at scale)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=10_000)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--seed", type=int, default=1, help="Random seed, for repeatable data.")

    def handle(self, *args: Any, **options: Any) -> None:
        count, days, batch_size = options["count"], options["days"], options["batch_size"]
        if count < 1 or days < 1 or batch_size < 1:
            raise CommandError("--count, --days and --batch-size must be at least 1.")
        rng = random.Random(options["seed"])  # noqa: S311 - repeatable test data
        endpoints = []
        for name in ENDPOINTS:
            endpoint = Endpoint.objects.filter(name=name).first()
            if endpoint is None:
                endpoint = Endpoint(name=name, retention_days=max(days + 1, 30), description="Seeded test data.")
                endpoint.set_secret()
                endpoint.save()
            endpoints.append(endpoint)
        started = time.monotonic()
        now = timezone.now()
        step = timedelta(days=days) / count
        first = now - timedelta(days=days)
        made = 0
        # On PostgreSQL two connections COPY while this thread builds the next batch: the
        # database's index maintenance, not Python, is the slow part, and it uses one core
        # per connection.
        writers = ThreadPoolExecutor(2) if connection.vendor == "postgresql" else None
        in_flight: list[Future[None]] = []
        while made < count:
            batch = [
                self.row(rng, endpoints, first + step * (made + n) + rng.random() * step, made + n)
                for n in range(min(batch_size, count - made))
            ]
            if writers is not None:
                in_flight.append(writers.submit(copy_rows, batch))
                while len(in_flight) >= 2:
                    in_flight.pop(0).result()
            else:
                with transaction.atomic():
                    Message.objects.bulk_create(Message(**row) for row in batch)
            made += len(batch)
            if made % (batch_size * 20) == 0 or made == count:
                rate = made / (time.monotonic() - started)
                self.stdout.write(f"  {made:,} messages ({rate:,.0f}/s)")
        for future in in_flight:
            future.result()
        if writers is not None:
            writers.shutdown()
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            # What autovacuum would do in the next minutes (planner statistics, the GIN
            # indexes' pending lists), done now so it does not run under a benchmark.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE) inbox_message")
        self.stdout.write(f"Seeded {count:,} messages in {time.monotonic() - started:.1f} s.")

    def row(self, rng: random.Random, endpoints: list[Endpoint], at: Any, n: int) -> dict[str, Any]:
        """One message's column values (plain values: a model instance costs more than the row)."""
        endpoint = endpoints[n % len(endpoints)]
        kind = endpoint.name
        headers = {"Content-Type": "application/json", "User-Agent": "seed/1.0", "X-Webhook-Token": "[redacted]"}
        if kind == "seed-stripe":
            event = rng.choice(STRIPE_EVENTS)
            status = "paid" if event == "invoice.paid" else rng.choice(["open", "void", "draft", "paid"])
            payload: Any = {
                "id": f"evt_{n:012d}",
                "type": event,
                "created": int(at.timestamp()),
                "data": {
                    "object": {
                        "id": f"in_{n:010d}",
                        "status": status,
                        "amount_due": rng.randint(100, 99_999),
                        "currency": rng.choice(["eur", "usd", "gbp"]),
                        "customer": f"cus_{rng.randint(1, 5000):06d}",
                    }
                },
            }
            headers["Stripe-Signature"] = f"t={int(at.timestamp())},v1={rng.getrandbits(128):032x}"
        elif kind == "seed-github":
            event = rng.choice(GITHUB_EVENTS)
            payload = {
                "action": rng.choice(["opened", "closed", "completed", "created"]),
                "repository": {"full_name": f"acme/repo-{rng.randint(1, 40)}"},
                "sender": {"login": f"dev{rng.randint(1, 200)}"},
                "commits": [
                    {"id": f"{rng.getrandbits(160):040x}", "message": "Fix things"} for _ in range(rng.randint(0, 3))
                ],
            }
            headers["X-GitHub-Event"] = event
            headers["X-GitHub-Delivery"] = f"{rng.getrandbits(128):032x}"
        elif kind == "seed-shopify":
            event = rng.choice(SHOPIFY_TOPICS)
            payload = {
                "id": n,
                "email": f"customer{rng.randint(1, 9999)}@example.com",
                "total_price": f"{rng.uniform(5, 500):.2f}",
                "line_items": [
                    {"sku": f"SKU-{rng.randint(1, 300)}", "quantity": rng.randint(1, 4)}
                    for _ in range(rng.randint(1, 4))
                ],
            }
            headers["X-Shopify-Topic"] = event
        else:
            event = ""
            payload = None
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = (
            json.dumps(payload) if payload is not None else f"name=Visitor+{n}&email=v{n}%40example.com&message=Hello"
        ).encode()
        text = body.decode()
        return {
            "endpoint_id": endpoint.pk,
            "received_at": at,
            "method": "POST",
            "query_string": "",
            "content_type": headers["Content-Type"],
            "headers": headers,
            "body_text": text,
            "body_bytes": None,
            "body_size": len(body),
            "preview": " ".join(text[:400].split())[:200],
            "json": payload,
            "event_type": event,
            "idempotency_key": None,
            "remote_addr": f"203.0.113.{rng.randint(1, 254)}",
            "verification": Verification.VERIFIED.value,
            "secret_used": "",
            "status": rng.choice(STATUSES).value,
            "attempts": 0,
            "replays": 0,
            "next_attempt_at": None,
            "lease_until": None,
            "read": rng.random() < 0.9,
        }


def copy_rows(rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY: the fastest way in, several times bulk_create's INSERT."""
    columns = list(rows[0])
    sql = f"COPY inbox_message ({', '.join(columns)}) FROM STDIN"
    encoded = {"headers", "json"}
    try:
        with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row([json.dumps(row[c]) if c in encoded and row[c] is not None else row[c] for c in columns])
    finally:
        connection.close()  # this runs in a writer thread, whose connection would linger
