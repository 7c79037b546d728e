"""Which network addresses the inbox may contact: the SSRF policy for forwarding.

Loopback and private addresses are refused unless FORWARD_ALLOW_PRIVATE is set (local
development, tests); link-local and cloud metadata addresses are refused always. Used where a
destination is saved (the model's validator: a refused literal address is a form error or a
failing command) and by inbox/delivery/forwarding.py at every send, redirects included,
after resolving the host. It imports nothing of the inbox, so models can use it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services that do not sit in link-local space (169.254.169.254 and fe80::/10
# are link-local and refused as such).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192", "168.63.129.16")
)
# Names that resolve to a metadata service (or to loopback) wherever they resolve at all:
# refused when a destination is saved, not only when the send resolves them.
METADATA_HOSTNAMES = frozenset(
    ("metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal")
)
LOOPBACK_HOSTNAMES = frozenset(("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"))
# Carrier-grade NAT (RFC 6598): neither global nor, to Python, private.
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
# A DNS name in its ASCII (punycode) form: labels of 1-63 letters, digits, hyphens (and the
# underscores some internal names carry), no hyphen at either end, 253 characters at most.
HOSTNAME = re.compile(r"(?=.{1,253}$)(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*")
LEGACY_NUMERIC = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


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
        # httpx decodes an IDNA host here: a malformed "xn--" label raises (a UnicodeError).
        host = parsed.host
        ascii_host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ValidationError("Enter a valid URL.") from exc
    if parsed.scheme not in ("http", "https") or not host or not parts.hostname:
        raise ValidationError("Enter an http:// or https:// URL.")
    if parts.port == 0:
        raise ValidationError("Enter a valid URL.")
    # A literal with a trailing dot (169.254.169.254.) is still that address to a resolver.
    ip = literal_address(host.removesuffix("."))
    if ip is None and not HOSTNAME.fullmatch(ascii_host.removesuffix(".")):
        # What no resolver would look up (a..b, -a.com, a 300-character label): refused now,
        # not as a raw codec error at every send.
        raise ValidationError("Enter a valid URL: the host name is not valid.")
    if ip is None:
        host = host.rstrip(".").lower()
        if host in METADATA_HOSTNAMES:
            raise ValidationError(f"Refused destination: {host} is a cloud metadata service.")
        if (host in LOOPBACK_HOSTNAMES or host.endswith(".localhost")) and not settings.FORWARD_ALLOW_PRIVATE:
            raise ValidationError(
                f"Refused destination: {host} is a loopback address (set FORWARD_ALLOW_PRIVATE=true to allow it)."
            )
        return  # Any other hostname: resolved and checked at every send.
    reason = address_refusal(ip, settings.FORWARD_ALLOW_PRIVATE)
    if reason:
        raise ValidationError(f"Refused destination: {reason}.")
