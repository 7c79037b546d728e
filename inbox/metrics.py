"""`/metrics`: the inbox's figures in the Prometheus text format, for a scraper or staff.

Read from the database at scrape time by a collector of our own, not kept in
prometheus_client's counters: those live in one process, and the inbox runs several web
processes and a worker. The counts come from the `Counter` table (inbox/counters.py), which
retention purges never touch; the pending figures from the partial index of pending
messages. Names and labels are a contract (docs/architecture.md, "Contracts"): `endpoint`
is the endpoint's name, `destination` its id (never its URL, which may carry a secret),
`outcome` the attempt's status. No slug or secret is ever part of the output.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from inbox import counters
from inbox.models import Alert, AttemptStatus, Counter, CounterKind, Destination, Endpoint, Message

logger = logging.getLogger("inbox.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Per endpoint (label `endpoint`, its name): the counter's name and help, by kind.
ENDPOINT_COUNTERS = {
    CounterKind.RECEIVED: ("inbox_messages_received", "Messages accepted and stored."),
    CounterKind.REJECTED: ("inbox_deliveries_rejected", "Deliveries refused (verification, size, handshake)."),
    CounterKind.RATE_LIMITED: ("inbox_deliveries_rate_limited", "Deliveries answered 429 (rate limit)."),
    CounterKind.DUPLICATE: ("inbox_deliveries_duplicate", "Deliveries of an idempotency key already stored."),
}
# Every outcome an attempt ends with; each destination shows them all, 0 until one happens.
OUTCOMES = [status.value for status in AttemptStatus if status != AttemptStatus.RUNNING]

__all__ = ["InboxCollector", "metrics"]


class InboxCollector(Collector):
    """Everything /metrics shows, read from the database when it is scraped."""

    def collect(self) -> Iterator[Metric]:
        # This process's own latest counts; the other processes' are at most one flush old.
        counters.flush()
        yield from self._counts()
        yield from self._pending()
        yield from self._alerts_open()

    def _counts(self) -> Iterator[Metric]:
        names = dict(Endpoint.objects.order_by("name").values_list("pk", "name"))
        destinations = list(Destination.objects.order_by("pk").values_list("pk", flat=True))
        found: dict[tuple[str, int, int, str], int] = {
            (kind, endpoint_id, destination_id, outcome): value
            for kind, endpoint_id, destination_id, outcome, value in Counter.objects.values_list(
                "kind", "endpoint_id", "destination_id", "outcome", "value"
            )
        }
        for kind, (name, documentation) in ENDPOINT_COUNTERS.items():
            family = CounterMetricFamily(name, documentation, labels=["endpoint"])
            # Every endpoint, 0 until its first count, so that rate() sees the first one;
            # ids of endpoints deleted since are left out.
            for pk, endpoint_name in names.items():
                family.add_metric([endpoint_name], found.get((kind.value, pk, 0, ""), 0))
            yield family
        forwards = CounterMetricFamily(
            "inbox_forward_attempts",
            "Attempts to forward a message to a destination, by outcome (succeeded, failed, "
            "skipped by its filter, held while paused, deferred by its rate).",
            labels=["destination", "outcome"],
        )
        forward = CounterKind.FORWARD_ATTEMPTS.value
        for pk in destinations:
            for outcome in OUTCOMES:
                forwards.add_metric([str(pk), outcome], found.get((forward, 0, pk, outcome), 0))
        yield forwards

    def _pending(self) -> Iterator[Metric]:
        now = timezone.now()
        pending, oldest_due = Message.objects.pending_figures(now)
        yield GaugeMetricFamily(
            "inbox_messages_pending",
            "Messages waiting to be processed (due, waiting for a retry, or held by a paused destination).",
            value=pending,
        )
        yield GaugeMetricFamily(
            "inbox_oldest_pending_seconds",
            "How long the pending message that has waited longest for the worker has been due "
            "(since it arrived, or since its retry's time); 0 when the worker keeps up.",
            value=0.0 if oldest_due is None else max(0.0, (now - oldest_due).total_seconds()),
        )

    def _alerts_open(self) -> Iterator[Metric]:
        # Acknowledged alerts still count: someone is on it, but the condition holds.
        yield GaugeMetricFamily(
            "inbox_alerts_open",
            "Alerts whose condition still holds (open or acknowledged, not resolved).",
            value=Alert.objects.open().count(),
        )


def _registry() -> CollectorRegistry:
    # A registry of its own: the default one adds this process's own figures (memory, GC),
    # which would differ with every process a scrape happens to reach.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(InboxCollector())
    return registry


def _bearer(request: HttpRequest) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _refusal(status: int, reason: str) -> HttpResponse:
    response = HttpResponse(reason + "\n", status=status, content_type="text/plain; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """For `Authorization: Bearer $METRICS_TOKEN` or a staff session; 401 or 403 otherwise."""
    given = _bearer(request)
    expected: str = settings.METRICS_TOKEN
    if given is not None:
        # Constant time; an unset METRICS_TOKEN matches nothing.
        if not (expected and hmac.compare_digest(given.encode(), expected.encode())):
            logger.warning("metrics refused: wrong bearer token")
            return _refusal(401, "Wrong bearer token.")
    elif not request.user.is_authenticated:
        return _refusal(401, "Send Authorization: Bearer $METRICS_TOKEN, or log in as staff.")
    elif not request.user.is_staff:
        return _refusal(403, "Staff only.")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE)
