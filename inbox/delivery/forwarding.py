"""Outbound HTTP for forwarding, with SSRF protection.

A destination URL is typed by staff, but what it resolves to can change at any time (DNS
rebinding) and a redirect can point anywhere. So every hop is resolved here, every
address it resolves to is checked, and the connection goes to the checked address itself
(Host header and TLS server name keep the original hostname): nothing between the check
and the connect can swap the address.

Which addresses are refused is inbox/addresses.py's to say (the same policy checks a
destination when it is saved).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx
from django.conf import settings

from inbox.addresses import address_refusal, literal_address
from inbox.models import REDACTED

# Only method-preserving redirects are followed: a 301/302/303 would turn the POST into
# a GET and drop the payload, which is never what a forward means.
FOLLOWED_REDIRECTS = (307, 308)
MAX_REDIRECTS = 3
EXCERPT_BYTES = 2048
# Never copied from the original request: hop-by-hop headers, what httpx sets itself, and
# anything that carries a credential or a proxy's view of the client.
DROPPED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "accept-encoding",
        "authorization",
        "proxy-authorization",
        "cookie",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
USER_AGENT = "webhook-inbox/1 (forward)"


class Refused(Exception):
    """The destination may not be contacted."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    excerpt: str = ""
    error: str = ""
    duration_ms: int = 0


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order of preference (a seam the
    tests replace)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_addresses(url: httpx.URL) -> list[str]:
    """The addresses to try for `url`, in order, after checking every one its host resolves to."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host, port)]
        except OSError as exc:
            raise Refused(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    if not addresses:
        raise Refused(f"cannot resolve {host}")
    allow_private = settings.FORWARD_ALLOW_PRIVATE
    # Every address must pass: a name that also resolves to a private address is refused
    # as a whole, so a round-robin record cannot smuggle one in.
    for ip in addresses:
        reason = address_refusal(ip, allow_private)
        if reason:
            raise Refused(f"refused destination {host}: {reason}")
    return [str(ip) for ip in addresses]


def outbound_headers(original: dict[str, str], names: str, redacted: frozenset[str]) -> dict[str, str]:
    """The original headers a destination asked for ('*' for all that may travel)."""
    wanted = {n.strip().lower() for n in names.split(",") if n.strip()}
    copy_all = "*" in wanted
    return {
        name: value
        for name, value in original.items()
        if (copy_all or name.lower() in wanted)
        and name.lower() not in DROPPED_HEADERS
        and name.lower() not in redacted
        and value != REDACTED
    }


# What verifies TLS certificates (the tests swap in a context that trusts their own CA).
verify: ssl.SSLContext | bool = True


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    """POST `body` to `url`, checking every hop, within `timeout` seconds overall; never raises.

    Each forward gets its own connection: a pooled TLS connection is keyed by the pinned
    address, and reusing it for another hostname on that address would skip the second
    hostname's certificate check. httpx's timeouts bound each read, not the whole exchange,
    so a watchdog closes the client at the deadline: a destination that trickles its answer
    cannot hold a worker past it.
    """
    started = time.monotonic()
    deadline = started + timeout

    def done(ok: bool, **fields: object) -> Outcome:
        return Outcome(ok=ok, duration_ms=round((time.monotonic() - started) * 1000), **fields)  # type: ignore[arg-type]

    # trust_env=False: an HTTP(S)_PROXY from the environment would connect on our behalf
    # to an address we never checked.
    client = httpx.Client(trust_env=False, follow_redirects=False, verify=verify)
    watchdog = threading.Timer(timeout, client.close)
    watchdog.daemon = True
    watchdog.start()
    current = url
    try:
        for _ in range(MAX_REDIRECTS + 1):
            target = httpx.URL(current)
            if target.scheme not in ("http", "https"):
                return done(False, error=f"refused destination: scheme {target.scheme!r} is not http(s)")
            response, excerpt = _send(client, target, body, headers, deadline)
            location = response.headers.get("location")
            if response.status_code in FOLLOWED_REDIRECTS and location:
                current = urljoin(current, location)
                continue
            ok = 200 <= response.status_code < 300
            error = "" if ok else f"answered {response.status_code}, expected 2xx"
            return done(ok, status_code=response.status_code, excerpt=excerpt, error=error)
        return done(False, error=f"more than {MAX_REDIRECTS} redirects")
    except Refused as exc:
        return done(False, error=str(exc))
    except httpx.TimeoutException:
        return done(False, error=f"timed out after {timeout:g} s")
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError, RuntimeError) as exc:
        if time.monotonic() >= deadline:
            return done(False, error=f"timed out after {timeout:g} s")
        if isinstance(exc, httpx.ConnectError):
            return done(False, error=f"connection failed: {_reason(exc)}")
        return done(False, error=f"{exc.__class__.__name__}: {_reason(exc)}")
    finally:
        watchdog.cancel()
        client.close()


def _send(
    client: httpx.Client, target: httpx.URL, body: bytes, headers: dict[str, str], deadline: float
) -> tuple[httpx.Response, str]:
    """One hop: try each checked address in the resolver's order until one connects."""
    addresses = checked_addresses(target)
    request_headers = {
        "User-Agent": USER_AGENT,
        **headers,
        "Host": target.netloc.decode("ascii"),
        # A compressed answer could expand without bound; only an excerpt is kept.
        "Accept-Encoding": "identity",
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    for index, address in enumerate(addresses):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise httpx.TimeoutException("deadline")
        request = client.build_request(
            "POST",
            target.copy_with(host=address),
            content=body,
            headers=request_headers,
            timeout=httpx.Timeout(remaining, connect=min(remaining, 5.0)),
            extensions=extensions,
        )
        try:
            response = client.send(request, stream=True)
        except httpx.ConnectError:
            if index == len(addresses) - 1:
                raise
            continue  # e.g. an IPv6 address on a host without IPv6: try the next one
        try:
            return response, _read_excerpt(response, deadline)
        finally:
            response.close()
    raise Refused(f"cannot resolve {target.host}")


def _read_excerpt(response: httpx.Response, deadline: float) -> str:
    # Only the start of the answer is kept; the rest is never read into memory. What
    # arrived by the deadline is enough: the status code already decided the outcome.
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size >= EXCERPT_BYTES or time.monotonic() >= deadline:
                break
    except (httpx.HTTPError, OSError, RuntimeError):
        pass  # closed by the watchdog or the peer mid-answer: keep what came
    return printable(b"".join(chunks)[:EXCERPT_BYTES].decode("utf-8", "replace"))


def printable(text: str) -> str:
    """Text any database column can hold: PostgreSQL refuses NUL in text."""
    return text.replace("\x00", "\ufffd")


def _reason(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text[:300]
