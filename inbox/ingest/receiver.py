"""The public receiver: `/hooks/<slug>/`.

A short explicit pipeline (docs/architecture.md, "The ingest pipeline"): look the endpoint up, check
the method, rate-limit, bound the body, verify, then store in one INSERT that also
deduplicates, and only then answer 2xx. Every refusal is a 4xx with a short plain reason
and a log line; a database that does not answer gives 503, never a 2xx for an unstored
message. Log lines name endpoints by id, never by slug: the slug is the secret URL.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import DatabaseError, connection, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit.core import get_usage

from inbox import counters
from inbox.delivery.queue import enqueue_processing
from inbox.delivery.work import has_work
from inbox.ingest import ratelimit
from inbox.ingest.body import SLOW, json_text, parse_json, parse_json_as_is, preview, stored_headers
from inbox.ingest.endpoints import endpoint_for_slug
from inbox.ingest.store import Row, store
from inbox.models import Endpoint, RejectedAttempt, Status, Verification, body_as_text
from inbox.verification import Answer, Delivery, Verdict

logger = logging.getLogger("inbox.receiver")

RATE_GROUP = "inbox.receive"


def plain(status: int, reason: str, **headers: str) -> HttpResponse:
    response = HttpResponse(reason + "\n", status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def client_ip(request: HttpRequest) -> str:
    """The sender's address: REMOTE_ADDR, or X-Forwarded-For behind trusted proxies."""
    known: str | None = getattr(request, "_inbox_client_ip", None)
    if known is None:
        known = request._inbox_client_ip = _client_ip(request)  # type: ignore[attr-defined]
    return known


def _client_ip(request: HttpRequest) -> str:
    hops = settings.TRUSTED_PROXY_HOPS
    candidate = request.META.get("REMOTE_ADDR", "")
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
    # Parsed once per distinct address (a provider sends from a few): about 2 % of a
    # delivery. Only address-sized text is kept, so the cache stays small whatever arrives.
    return _cached_address(candidate) if len(candidate) <= 45 else _canonical_address(candidate)


def _canonical_address(candidate: str) -> str:
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return ""


_cached_address = functools.lru_cache(maxsize=4096)(_canonical_address)


# --- The pipeline --------------------------------------------------------------------------
def _rate_limit_key(group: str, request: HttpRequest) -> str:
    endpoint: Endpoint = request.inbox_endpoint  # type: ignore[attr-defined]
    return f"{endpoint.pk}:{client_ip(request)}"


def _rate(group: str, request: HttpRequest) -> str:
    endpoint: Endpoint = request.inbox_endpoint  # type: ignore[attr-defined]
    return endpoint.rate_limit


def _over_rate_limit(request: HttpRequest, endpoint: Endpoint) -> HttpResponse | None:
    # The limit sizes the batch of counts the rate-limit cache leases from Redis.
    ratelimit.expect(endpoint.rate_limit)
    try:
        usage = get_usage(request, group=RATE_GROUP, key=_rate_limit_key, rate=_rate, increment=True)
        cache_failed = usage is not None and usage["limit"] == 0 and usage["time_left"] == -1
    except ImproperlyConfigured:
        raise
    except Exception:  # The cache client raises its own error types (redis, sockets).
        usage, cache_failed = None, True
    finally:
        ratelimit.forget_expected()
    if cache_failed:
        logger.warning(
            "rate-limit cache unavailable endpoint=%s fail_open=%s", endpoint.pk, endpoint.rate_limit_fail_open
        )
        if endpoint.rate_limit_fail_open:
            return None
        return plain(503, "Rate limiter unavailable; retry later.", Retry_After="5")
    if usage is not None and usage["should_limit"]:
        counters.add(counters.RATE_LIMITED, endpoint.pk)
        logger.info("rate limited endpoint=%s ip=%s", endpoint.pk, client_ip(request))
        return plain(429, "Too many requests.", Retry_After=str(max(1, usage["time_left"])))
    return None


def _read_body(request: HttpRequest, endpoint: Endpoint) -> bytes | HttpResponse:
    limit = endpoint.max_body_bytes
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared:
        try:
            length = int(declared)
        except ValueError:
            return plain(400, "Invalid Content-Length.")
        if length < 0:
            return plain(400, "Invalid Content-Length.")
        if length > limit:
            return plain(413, f"Body larger than this endpoint's limit of {filesizeformat(limit)}.")
    elif "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() or request.META.get(
        "SERVER_PROTOCOL", ""
    ).startswith("HTTP/2"):
        # No length: Django reads nothing, and although the server decodes chunks into
        # wsgi.input, it does not say when a sender hung up before the last one, so a
        # truncated body would be stored as if whole. A buffering proxy in front turns
        # chunked bodies into ones with a length (README, "Production").
        return plain(411, "Content-Length required.")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return plain(413, f"Body larger than this endpoint's limit of {filesizeformat(limit)}.")
    if declared and len(raw) < int(declared):
        # The sender went away mid-body: storing the part that arrived would keep a
        # message the provider never sent, and it will retry the whole one.
        return plain(400, "Incomplete body.")
    return raw


def _declared_length(request: HttpRequest) -> int:
    try:
        return max(0, min(int(request.META.get("CONTENT_LENGTH") or 0), 2**31 - 1))
    except ValueError:
        return 0


def _delivery(request: HttpRequest, endpoint: Endpoint, raw: bytes) -> Delivery:
    query = request.META.get("QUERY_STRING", "")
    # URL-signing providers (Twilio, Square) signed the public URL, not what a proxy shows us.
    url = endpoint.url + (f"?{query}" if query else "")
    return Delivery(
        method=request.method or "",
        url=url,
        headers=request.headers,
        body=raw,
        now=time.time(),
        query={k: str(v) for k, v in request.GET.items()},
    )


def _refuse(request: HttpRequest, endpoint: Endpoint, status: int, reason: str, body_size: int = 0) -> HttpResponse:
    counters.add(counters.REJECTED, endpoint.pk)
    ip = client_ip(request)
    logger.warning("refused delivery endpoint=%s ip=%s status=%s reason=%s", endpoint.pk, ip, status, reason)
    RejectedAttempt.record(
        endpoint,
        remote_addr=ip or None,
        status=status,
        reason=reason[:200],
        headers=stored_headers(request, endpoint),
        body_size=body_size,
    )
    response = plain(status, reason)
    if status == 401 and endpoint.secret_kind == "basic":
        response["WWW-Authenticate"] = 'Basic realm="webhook inbox"'
    return response


def _row(request: HttpRequest, endpoint: Endpoint, raw: bytes, payload: Any, verdict: Verdict) -> Row:
    """The message's row, built directly with database-ready values (inbox/ingest/store.py)."""
    ops = connection.ops
    body_text = body_as_text(raw)
    query_string = request.META.get("QUERY_STRING", "")
    content_type = request.META.get("CONTENT_TYPE", "")[:255]
    if payload is SLOW:
        payload = parse_json(raw)
        json = None if payload is None else json_text(payload)
    elif payload is not None and body_text is not None:
        json = body_text  # the body is storable JSON as it is: no second encoding
    else:
        json = None if payload is None else json_text(payload)
    event_type = endpoint.preset.event_type(request.headers, payload)
    received_at = timezone.now()
    pending = has_work(endpoint, event_type)
    ip = client_ip(request)
    row = Row(
        {
            "endpoint_id": endpoint.pk,
            "received_at": ops.adapt_datetimefield_value(received_at),
            "method": request.method or "",
            "query_string": query_string,
            "content_type": content_type,
            "headers": json_text(stored_headers(request, endpoint)),
            "body_text": body_text,
            "body_bytes": None if body_text is not None else raw,
            "body_size": len(raw),
            "preview": preview(raw, body_text, query_string, content_type),
            "json": json,
            "event_type": event_type,
            "idempotency_key": endpoint.preset.idempotency_key(
                request.headers, payload, payload_id=endpoint.dedupe_on_payload_id
            ),
            # Canonical text already (client_ip parsed it once per address): each database
            # takes the text as the column's type, with no second parse here.
            "remote_addr": ip or None,
            "verification": Verification.UNVERIFIED if endpoint.secret_kind == "none" else Verification.VERIFIED,
            "secret_used": verdict.matched,
            "status": Status.PENDING if pending else Status.SKIPPED,
            "next_attempt_at": ops.adapt_datetimefield_value(received_at) if pending else None,
        }
    )
    return row


def _handshake_answer(request: HttpRequest, endpoint: Endpoint, answer: Answer, body_size: int = 0) -> HttpResponse:
    """A handshake's answer. One the provider got wrong (a 4xx) is a refusal like any other:
    logged, counted, in the rejected log."""
    if answer.status >= 400:
        reason = answer.body.decode(errors="replace").strip()
        return _refuse(request, endpoint, answer.status, reason, body_size)
    logger.info("handshake answered endpoint=%s preset=%s", endpoint.pk, endpoint.preset.name)
    return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The outcome of a delivery the endpoint took (stored, or a duplicate of a stored one):
    its configured answer. Every accepted delivery to an endpoint gets the same answer, so
    the lean path (inbox/ingest/wsgi.py) builds it once per endpoint instead of per request."""

    endpoint: Endpoint


# RFC 9110 (15.3.5, 15.3.6): a 204 and a 205 carry no content, whatever the endpoint's body says.
NO_CONTENT = frozenset({204, 205})


def accepted_response(endpoint: Endpoint) -> HttpResponse:
    body = "" if endpoint.response_status in NO_CONTENT else endpoint.response_body
    return HttpResponse(body, status=endpoint.response_status, content_type=endpoint.answer_content_type)


# Every answer of the receiver: nothing in it may run, be framed, or be loaded as a script or
# a style by a page of the dashboard's origin, whatever an endpoint was configured to answer.
ANSWER_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
}


@csrf_exempt
def receive(request: HttpRequest, slug: str) -> HttpResponse:
    return response_for(receive_delivery(request, slug))


def response_for(outcome: HttpResponse | Accepted) -> HttpResponse:
    """The receiver's answer to an outcome of `receive_delivery`."""
    response = accepted_response(outcome.endpoint) if isinstance(outcome, Accepted) else outcome
    for name, value in ANSWER_HEADERS.items():
        response[name] = value
    return response


def receive_delivery(request: HttpRequest, slug: str) -> HttpResponse | Accepted:
    """The pipeline: a refusal (or a handshake's answer), or Accepted once the message is
    stored. Raises Http404 for an unknown or disabled slug."""
    try:
        return _receive(request, slug)
    except Http404:
        raise
    except SuspiciousOperation as exc:
        logger.warning("malformed request refused: %s", exc.__class__.__name__)
        return plain(400, "Malformed request.")
    except DatabaseError:
        logger.exception("database unavailable while receiving")
        return plain(503, "Storage unavailable; retry later.", Retry_After="5")
    except Exception:
        # A bug must not turn into a 500 the provider may not retry: 503 asks it to.
        logger.exception("unexpected error while receiving")
        return plain(503, "Temporarily unable to accept; retry later.", Retry_After="5")


def _receive(request: HttpRequest, slug: str) -> HttpResponse | Accepted:
    endpoint = endpoint_for_slug(slug)
    if endpoint is None:
        raise Http404

    handshake = endpoint.preset.handshake
    allowed = endpoint.methods
    if handshake is not None and handshake.answers_get and "GET" not in allowed:
        allowed = (*allowed, "GET")  # the handshake's own GET, answered below, never stored
    if request.method in ("HEAD", "OPTIONS"):
        # Some providers probe a URL before they use it; neither ever stores anything.
        response = HttpResponse(
            status=200 if request.method == "HEAD" else 204, content_type="text/plain; charset=utf-8"
        )
        response["Allow"] = ", ".join((*allowed, "HEAD", "OPTIONS"))
        return response
    if request.method not in allowed:
        logger.info("method not allowed endpoint=%s method=%s", endpoint.pk, (request.method or "")[:10])
        response = plain(405, f"Method not allowed; use {', '.join(allowed)}.")
        response["Allow"] = ", ".join((*allowed, "HEAD", "OPTIONS"))  # answered too (above)
        return response

    request.inbox_endpoint = endpoint  # type: ignore[attr-defined]
    limited = _over_rate_limit(request, endpoint)
    if limited is not None:
        return limited

    if handshake is not None and handshake.answers_get and request.method == "GET":
        answer = handshake.answer_get(request.GET, endpoint.check_token)
        if answer is not None:
            return _handshake_answer(request, endpoint, answer)
        if "GET" not in endpoint.methods:
            # Not a subscription check, and plain GETs are not allowed: what is.
            methods = ", ".join(endpoint.methods)
            return plain(405, f"Method not allowed; use {methods}.", Allow=f"{methods}, HEAD, OPTIONS")

    raw = _read_body(request, endpoint)
    if isinstance(raw, HttpResponse):
        # In the rejected log too, like every refusal the "Rejected" count counts: a 413 is
        # the refusal a user can act on (raise the limit), so it must say which and why.
        reason = raw.content.decode().strip()
        return _refuse(request, endpoint, raw.status_code, reason, _declared_length(request))

    delivery = _delivery(request, endpoint, raw)
    credentials = endpoint.credentials()
    verdict = endpoint.scheme.verify(delivery, credentials)
    if not verdict.ok:
        return _refuse(request, endpoint, verdict.status, verdict.reason, len(raw))

    payload = parse_json_as_is(raw)
    if handshake is not None:
        # Parsed for the handshake only: `payload` stays SLOW, so the row below never takes
        # the body's own text as its JSON when that text is not storable as it is (\u0000).
        parsed = parse_json(raw) if payload is SLOW else payload
        secret = next((c.value for c in credentials if c.label == verdict.matched), "")
        answer = handshake.answer(delivery, parsed, secret)
        if answer is not None:
            return _handshake_answer(request, endpoint, answer, len(raw))

    row = _row(request, endpoint, raw, payload, verdict)
    # Counted in memory once the row is committed (or refused as a duplicate), written by
    # the process's counter thread: no round trip here (inbox/counters.py).
    if not store(row):
        counters.add(counters.DUPLICATE, endpoint.pk)
        logger.info("duplicate delivery endpoint=%s", endpoint.pk)
        return Accepted(endpoint)
    counters.add(counters.RECEIVED, endpoint.pk)
    if row.values["status"] == Status.PENDING and row.pk is not None:
        # Only messages with something to do cost a queue row. Outside a transaction
        # (the receiver runs in autocommit) on_commit runs at once: the row is committed.
        transaction.on_commit(functools.partial(enqueue_processing, row.pk))
    return Accepted(endpoint)
