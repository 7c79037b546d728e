"""Outbound HTTP for forwarding, with SSRF protection.

A destination URL is typed by staff, but what it resolves to can change at any time (DNS
rebinding) and a redirect can point anywhere. So every hop is resolved here, every
address it resolves to is checked, and the connection goes to the checked address itself
(Host header and TLS server name keep the original hostname): nothing between the check
and the connect can swap the address.

Loopback and private addresses are refused unless FORWARD_ALLOW_PRIVATE is set (local
development, tests); link-local and cloud metadata addresses are refused always.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services that do not sit in link-local space (169.254.169.254 and fe80::/10
# are link-local and refused as such).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192", "168.63.129.16")
)
# Carrier-grade NAT (RFC 6598): neither global nor, to Python, private.
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
LEGACY_NUMERIC = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)
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


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and that a translator would reach:
    NAT64 (64:ff9b::/96), IPv4-compatible (::/96), IPv4-translated (::ffff:0:0:0/96), 6to4, Teredo."""
    found = []
    if ip in NAT64 or ip in IPV4_TRANSLATED or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def address_refusal(ip: IPAddress, allow_private: bool) -> str:
    """Why `ip` may not be contacted, or '' when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        else:
            # An address that embeds a refused IPv4 address is refused with it: on a
            # DNS64/NAT64 network, 64:ff9b::a9fe:a9fe *is* 169.254.169.254.
            for inner in embedded_ipv4(ip):
                if reason := address_refusal(inner, allow_private):
                    return f"{ip} embeds {reason}"
    if ip.is_link_local or ip in METADATA_ADDRESSES:
        return f"{ip} is a link-local or cloud metadata address"
    if ip.is_multicast or ip.is_unspecified:
        return f"{ip} is not a unicast address"
    if ip.is_loopback or ip.is_private or ip in SHARED_ADDRESS_SPACE:
        if allow_private:
            return ""
        return f"{ip} is a loopback or private address (set FORWARD_ALLOW_PRIVATE=true to allow it)"
    if ip.is_global:
        return ""
    return f"{ip} is not a public unicast address"


def literal_address(host: str) -> IPAddress | None:
    """`host` as an IP address when it is one, including the legacy numeric forms
    (2130706433, 0x7f.1, 127.1) that resolvers still accept."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if LEGACY_NUMERIC.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def validate_destination_url(url: str) -> None:
    """Form and command-line check: http(s) only, parseable, and no refused literal address."""
    try:
        parsed = httpx.URL(url)
        # The dashboard shows the URL through urlsplit, which is stricter (port range,
        # user info): a URL that only one of them accepts is refused here, not later.
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for an out-of-range port
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ValidationError("Enter a valid URL.") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host or not parts.hostname:
        raise ValidationError("Enter an http:// or https:// URL.")
    ip = literal_address(parsed.host)
    if ip is None:
        return  # A hostname: resolved and checked at every send.
    reason = address_refusal(ip, settings.FORWARD_ALLOW_PRIVATE)
    if reason:
        raise ValidationError(f"Refused destination: {reason}.")


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
        and value != "[redacted]"
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
