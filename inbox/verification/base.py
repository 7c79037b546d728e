"""What every scheme family shares: the delivery a verifier sees, what it answers, helpers.

A family is a small frozen dataclass over `Scheme` with `verify` (and `sign`, for test
deliveries); it also says what kind of secret it keeps, how a new one is generated, whether a
pasted one has a format of its own, and how a test delivery's body is built. Every `verify`
turns malformed input of any kind into a refusal with a short reason; none raises. Secrets are
compared in constant time with `hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

MAX_SIGNATURE_HEADER = 4096
DIGESTS: dict[str, Callable[[], Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


# --- What a verifier sees and says ------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    method: str
    url: str  # the public URL the provider called: PUBLIC_BASE_URL + path + query
    headers: Mapping[str, str]  # case-insensitive (Django's request.headers)
    body: bytes
    now: float  # seconds since the epoch
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str:
        return self.headers.get(name) or ""


@dataclass(frozen=True)
class Secret:
    """One usable credential: `value` is the secret itself (HMAC key, public key) or, for
    digest-stored tokens, the stored digest; `label` says which one matched."""

    value: str
    label: str = "current"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""
    status: int = 401
    matched: str = ""


def refuse(reason: str, status: int = 401) -> Verdict:
    return Verdict(ok=False, reason=reason, status=status)


@dataclass(frozen=True)
class Answer:
    """A handshake's reply: answered at once, nothing stored."""

    status: int
    body: bytes
    # The body is UTF-8 (an echoed challenge may hold any character): say so.
    content_type: str = "text/plain; charset=utf-8"


def parse_timestamp(value: str, fmt: str) -> float | None:
    value = value.strip()
    try:
        if fmt == "unix":
            return float(int(value)) if value.isdigit() and len(value) < 15 else None
        if fmt == "unix_ms":
            return int(value) / 1000 if value.isdigit() and len(value) < 18 else None
        if fmt == "rfc3339":
            # Twitch sends nanoseconds; Python parses up to microseconds.
            match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", value)
            if not match:
                return None
            fraction = (match.group(2) or "")[:7]
            stamp = datetime.fromisoformat(match.group(1) + fraction + match.group(3).replace("Z", "+00:00"))
            return stamp.astimezone(UTC).timestamp()
    except (ValueError, OverflowError):
        return None
    return None


def decide(matched: str, reason: str, status: int = 401) -> Verdict:
    """Accept with the label of the secret that matched, or refuse with `reason`."""
    return Verdict(ok=True, matched=matched) if matched else refuse(reason, status)


def check_tolerance(ts: float | None, now: float, tolerance: int | None) -> Verdict | None:
    if ts is None:
        return refuse("Invalid timestamp.")
    if tolerance is not None and abs(now - ts) > tolerance:
        return refuse("Timestamp outside the tolerance." if ts < now else "Timestamp in the future.")
    return None


def hmac_digest(secret: bytes, message: bytes, digest: str) -> bytes:
    return hmac.new(secret, message, DIGESTS[digest]).digest()


def encode_mac(raw: bytes, encoding: str) -> str:
    return raw.hex() if encoding == "hex" else base64.b64encode(raw).decode()


def mac_matches(expected: bytes, presented: Sequence[str], encoding: str) -> bool:
    """Constant-time comparison of a MAC with every presented candidate."""
    wanted = encode_mac(expected, encoding).encode()
    found = False
    for candidate in presented:
        cleaned = candidate.strip().lower() if encoding == "hex" else candidate.strip()
        found |= hmac.compare_digest(wanted, cleaned.encode("utf-8", "surrogateescape"))
    return found


def render_template(template: str, parts: Mapping[str, bytes]) -> bytes:
    """Build the signed content from a template such as `v0:{timestamp}:{body}`."""
    out = b""
    for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
        out += literal.encode()
        if name:
            out += parts[name]
    return out


def read_signature_header(delivery: Delivery, name: str) -> str | Verdict:
    value = delivery.header(name)
    if not value:
        return refuse(f"Missing {name} header.")
    if len(value) > MAX_SIGNATURE_HEADER:
        return refuse(f"{name} header too long.")
    return value


class SchemeSettings(Protocol):
    """What a preset that staff configure reads from its endpoint (see `Preset.configure`)."""

    @property
    def token_header(self) -> str: ...

    @property
    def scheme_options(self) -> Mapping[str, Any]: ...


# --- The base of every family ------------------------------------------------------------
class Scheme:
    """Base of the families: stores what kind of secret it needs."""

    secret_kind = "hmac"  # hmac | token | basic | public_key | none

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret]) -> Verdict:
        raise NotImplementedError

    def sign(self, delivery: Delivery, secret: str) -> dict[str, str]:
        """Headers that make `delivery` verify with `secret` (test deliveries). Schemes whose
        secret this inbox keeps only as a digest or a public key cannot sign."""
        raise NotImplementedError

    @property
    def credential_header(self) -> str:
        """The header that carries the credential itself, as sent ('' when none does): it is
        redacted when stored and never forwarded."""
        return ""

    # Whether a pasted secret has a format of the scheme's own (a public key, whsec_…) that
    # `secret_problem` checks; other secrets are checked against the preset's pattern.
    has_secret_format = False

    def secret_problem(self, value: str) -> str | None:
        """A reason `value` is not a secret of this scheme's own format, or None."""
        return None

    def new_secret(self) -> str:
        """A fresh secret, for the presets where the inbox generates it."""
        return secrets.token_urlsafe(32)

    def sample_body(self, payload: dict[str, Any], secret: str, now: float) -> tuple[bytes, str]:
        """A test delivery's body carrying `payload`, and its content type."""
        return json.dumps(payload).encode(), "application/json"

    def _each(self, secrets_: Sequence[Secret], check: Callable[[Secret], bool]) -> str:
        """The label of the first secret that `check` accepts, trying every one so the time
        taken does not depend on which matched."""
        matched = ""
        for secret in secrets_:
            try:
                ok = check(secret)
            except (ValueError, TypeError, KeyError, binascii.Error, UnicodeError):
                ok = False
            if ok and not matched:
                matched = secret.label
        return matched


# --- Reading headers and payloads ------------------------------------------------------
def payload_value(payload: Any, path: str) -> Any:
    """The value at a dotted path into a JSON payload (`event.type`), or None."""
    for part in path.split("."):
        if not isinstance(payload, dict):
            return None
        payload = payload.get(part)
    return payload


def first_text(delivery_headers: Mapping[str, str], payload: Any, headers: Sequence[str], paths: Sequence[str]) -> str:
    """`name:value` of the first of `headers`, then of `paths` into the payload, that is set."""
    for header in headers:
        value = delivery_headers.get(header)
        if value:
            return f"{header.lower()}:{value}"
    for path in paths:
        value = payload_value(payload, path)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return f"{path}:{value}"
    return ""


def media_type(content_type: str) -> str:
    """The media type of a Content-Type value, lower-cased, without its parameters."""
    return content_type.split(";", maxsplit=1)[0].strip().lower()
