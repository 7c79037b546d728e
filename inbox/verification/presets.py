"""How deliveries are verified: a few scheme families, and every provider as data over them.

A family is a small frozen dataclass with `verify` (and `sign`, for test deliveries). A
provider preset is a `Preset`: which family with which parameters, where the event type and
idempotency key live, which handshakes it answers, and what staff paste where. Adding a
provider of a known family is one preset and its published vector.

Every `verify` turns malformed input of any kind into a refusal with a short reason; none
raises. Secrets are compared in constant time with `hmac.compare_digest`.
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
from typing import Any
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook

from inbox.secrets import token_digest

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
    content_type: str = "text/plain"


def _timestamp(value: str, fmt: str) -> float | None:
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


def _decide(matched: str, reason: str, status: int = 401) -> Verdict:
    """Accept with the label of the secret that matched, or refuse with `reason`."""
    return Verdict(ok=True, matched=matched) if matched else refuse(reason, status)


def _check_tolerance(ts: float | None, now: float, tolerance: int | None) -> Verdict | None:
    if ts is None:
        return refuse("Invalid timestamp.")
    if tolerance is not None and abs(now - ts) > tolerance:
        return refuse("Timestamp outside the tolerance." if ts < now else "Timestamp in the future.")
    return None


def _mac(secret: bytes, message: bytes, digest: str) -> bytes:
    return hmac.new(secret, message, DIGESTS[digest]).digest()


def _encode(raw: bytes, encoding: str) -> str:
    return raw.hex() if encoding == "hex" else base64.b64encode(raw).decode()


def _matches(expected: bytes, presented: Sequence[str], encoding: str) -> bool:
    """Constant-time comparison of a MAC with every presented candidate."""
    wanted = _encode(expected, encoding).encode()
    found = False
    for candidate in presented:
        cleaned = candidate.strip().lower() if encoding == "hex" else candidate.strip()
        found |= hmac.compare_digest(wanted, cleaned.encode("utf-8", "surrogateescape"))
    return found


def _render(template: str, parts: Mapping[str, bytes]) -> bytes:
    """Build the signed content from a template such as `v0:{timestamp}:{body}`."""
    out = b""
    for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
        out += literal.encode()
        if name:
            out += parts[name]
    return out


def _first_signature_header(delivery: Delivery, name: str) -> str | Verdict:
    value = delivery.header(name)
    if not value:
        return refuse(f"Missing {name} header.")
    if len(value) > MAX_SIGNATURE_HEADER:
        return refuse(f"{name} header too long.")
    return value


# --- Families -----------------------------------------------------------------------------
class Scheme:
    """Base of the families: stores what kind of secret it needs."""

    secret_kind = "hmac"  # hmac | token | basic | public_key | none

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret]) -> Verdict:
        raise NotImplementedError

    def sign(self, delivery: Delivery, secret: str) -> dict[str, str]:
        """Headers that make `delivery` verify with `secret` (test deliveries). Schemes whose
        secret this inbox keeps only as a digest or a public key cannot sign."""
        raise NotImplementedError

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


@dataclass(frozen=True)
class NoScheme(Scheme):
    secret_kind = "none"

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret]) -> Verdict:
        return Verdict(ok=True)

    def sign(self, delivery: Delivery, secret: str) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class TokenScheme(Scheme):
    """A shared token in a header, stored as a keyed digest (see `inbox.secrets.token_digest`)."""

    header: str = "X-Webhook-Token"
    secret_kind = "token"

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret], header: str | None = None) -> Verdict:
        name = header or self.header
        presented = delivery.header(name)
        if not presented:
            return refuse(f"Missing {name} header.", 403)
        if len(presented) > MAX_SIGNATURE_HEADER:
            return refuse(f"{name} header too long.", 403)
        digest = token_digest(presented)
        matched = self._each(secrets_, lambda s: hmac.compare_digest(digest, s.value))
        return _decide(matched, f"Invalid {name}.", 403)


@dataclass(frozen=True)
class BasicScheme(Scheme):
    """HTTP Basic: `secret.value` is the digest of "username:password"."""

    secret_kind = "basic"

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret]) -> Verdict:
        value = delivery.header("Authorization")
        scheme, _, encoded = value.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return refuse("Missing HTTP Basic credentials.")
        try:
            pair = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return refuse("Malformed HTTP Basic credentials.")
        digest = token_digest(pair)
        matched = self._each(secrets_, lambda s: hmac.compare_digest(digest, s.value))
        return _decide(matched, "Invalid HTTP Basic credentials.")


@dataclass(frozen=True)
class HmacScheme(Scheme):
    """HMAC over a template of the raw body and named headers (GitHub, Shopify, Slack, ...)."""

    header: str
    digest: str = "sha256"
    encoding: str = "hex"  # hex | base64
    prefix: str = ""  # e.g. "sha256=", "v0="
    template: str = "{body}"  # placeholders: body, timestamp, id, url
    timestamp_header: str = ""
    timestamp_json_field: str = ""  # Linear puts the timestamp in the payload
    timestamp_format: str = "unix"  # unix | unix_ms | rfc3339
    tolerance: int | None = None  # seconds
    id_header: str = ""

    def _parts(self, delivery: Delivery) -> dict[str, bytes] | Verdict:
        parts = {"body": delivery.body, "url": delivery.url.encode()}
        if self.id_header:
            message_id = delivery.header(self.id_header)
            if not message_id:
                return refuse(f"Missing {self.id_header} header.")
            parts["id"] = message_id.encode()
        if self.timestamp_header:
            raw_ts = delivery.header(self.timestamp_header)
            if not raw_ts:
                return refuse(f"Missing {self.timestamp_header} header.")
            problem = _check_tolerance(_timestamp(raw_ts, self.timestamp_format), delivery.now, self.tolerance)
            if problem:
                return problem
            parts["timestamp"] = raw_ts.encode()
        elif self.timestamp_json_field:
            try:
                value = json.loads(delivery.body).get(self.timestamp_json_field)
            except (ValueError, AttributeError, RecursionError):
                return refuse("Body is not a JSON object.")
            ts = _timestamp(str(value), self.timestamp_format) if isinstance(value, int) else None
            problem = _check_tolerance(ts, delivery.now, self.tolerance)
            if problem:
                return problem
        return parts

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret]) -> Verdict:
        value = _first_signature_header(delivery, self.header)
        if isinstance(value, Verdict):
            return value
        if self.prefix and not value.startswith(self.prefix):
            return refuse(f"{self.header} does not start with {self.prefix}.")
        presented = value[len(self.prefix) :]
        parts = self._parts(delivery)
        if isinstance(parts, Verdict):
            return parts
        message = _render(self.template, parts)
        matched = self._each(
            secrets_, lambda s: _matches(_mac(s.value.encode(), message, self.digest), [presented], self.encoding)
        )
        return _decide(matched, "Signature mismatch.")

    def sign(self, delivery: Delivery, secret: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        parts = {"body": delivery.body, "url": delivery.url.encode()}
        if self.id_header:
            headers[self.id_header] = delivery.header(self.id_header) or "test-" + secrets.token_hex(8)
            parts["id"] = headers[self.id_header].encode()
        if self.timestamp_header:
            stamp = (
                datetime.fromtimestamp(delivery.now, UTC).isoformat().replace("+00:00", "Z")
                if self.timestamp_format == "rfc3339"
                else str(int(delivery.now * (1000 if self.timestamp_format == "unix_ms" else 1)))
            )
            headers[self.timestamp_header] = stamp
            parts["timestamp"] = stamp.encode()
        mac = _mac(secret.encode(), _render(self.template, parts), self.digest)
        headers[self.header] = self.prefix + _encode(mac, self.encoding)
        return headers


@dataclass(frozen=True)
class SignatureListScheme(Scheme):
    """Stripe-style `t=…,v1=…,v1=…` lists (Paddle: `ts=…;h1=…`); any listed signature may match."""

    header: str
    pair_separator: str = ","
    timestamp_key: str = "t"
    signature_key: str = "v1"
    template: str = "{timestamp}.{body}"
    tolerance: int | None = 300
    digest: str = "sha256"

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret]) -> Verdict:
        value = _first_signature_header(delivery, self.header)
        if isinstance(value, Verdict):
            return value
        timestamps, signatures = [], []
        for pair in value.split(self.pair_separator):
            key, _, item = pair.strip().partition("=")
            if key == self.timestamp_key:
                timestamps.append(item)
            elif key == self.signature_key:
                signatures.append(item)
        if len(timestamps) != 1:
            return refuse(f"{self.header} has no single timestamp.")
        if not signatures:
            return refuse(f"{self.header} has no {self.signature_key} signature.")
        problem = _check_tolerance(_timestamp(timestamps[0], "unix"), delivery.now, self.tolerance)
        if problem:
            return problem
        message = _render(self.template, {"timestamp": timestamps[0].encode(), "body": delivery.body})
        matched = self._each(
            secrets_, lambda s: _matches(_mac(s.value.encode(), message, self.digest), signatures, "hex")
        )
        return _decide(matched, "Signature mismatch.")

    def sign(self, delivery: Delivery, secret: str) -> dict[str, str]:
        stamp = str(int(delivery.now))
        mac = _mac(
            secret.encode(), _render(self.template, {"timestamp": stamp.encode(), "body": delivery.body}), self.digest
        )
        sep = self.pair_separator
        return {self.header: f"{self.timestamp_key}={stamp}{sep}{self.signature_key}={mac.hex()}"}


@dataclass(frozen=True)
class StandardWebhooksScheme(Scheme):
    """Standard Webhooks, verified by the `standardwebhooks` package, accepting the
    `webhook-*` header names and Svix's `svix-*` ones."""

    prefixes: tuple[str, ...] = ("webhook", "svix")

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret]) -> Verdict:
        for prefix in self.prefixes:
            if delivery.header(f"{prefix}-signature"):
                break
        else:
            return refuse(f"Missing {self.prefixes[0]}-signature header.")
        names = ("id", "timestamp", "signature")
        headers = {f"webhook-{name}": delivery.header(f"{prefix}-{name}") for name in names}
        if any(len(v) > MAX_SIGNATURE_HEADER for v in headers.values()):
            return refuse("Signature headers too long.")
        missing = [f"{prefix}-{name}" for name in names if not headers[f"webhook-{name}"]]
        if missing:
            return refuse(f"Missing {missing[0]} header.")
        ts = _timestamp(headers["webhook-timestamp"], "unix")
        problem = _check_tolerance(ts, delivery.now, 300)
        if problem:
            return problem

        def check(secret: Secret) -> bool:
            try:
                Webhook(secret.value).verify(delivery.body, headers, json_parse=False)
            except Exception:
                return False
            return True

        matched = self._each(secrets_, check)
        return _decide(matched, "Signature mismatch.")

    def sign(self, delivery: Delivery, secret: str) -> dict[str, str]:
        message_id = delivery.header("webhook-id") or "msg_" + secrets.token_hex(12)
        stamp = datetime.fromtimestamp(int(delivery.now), UTC)
        signature = Webhook(secret).sign(message_id, stamp, delivery.body.decode())
        prefix = self.prefixes[0]
        return {
            f"{prefix}-id": message_id,
            f"{prefix}-timestamp": str(int(delivery.now)),
            f"{prefix}-signature": signature,
        }


@dataclass(frozen=True)
class Ed25519Scheme(Scheme):
    """Public-key signatures over timestamp + body (Discord)."""

    signature_header: str = "X-Signature-Ed25519"
    timestamp_header: str = "X-Signature-Timestamp"
    tolerance: int | None = 300
    secret_kind = "public_key"

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret]) -> Verdict:
        signature = _first_signature_header(delivery, self.signature_header)
        if isinstance(signature, Verdict):
            return signature
        stamp = delivery.header(self.timestamp_header)
        if not stamp:
            return refuse(f"Missing {self.timestamp_header} header.")
        problem = _check_tolerance(_timestamp(stamp, "unix"), delivery.now, self.tolerance)
        if problem:
            return problem
        try:
            raw_signature = bytes.fromhex(signature)
        except ValueError:
            return refuse(f"{self.signature_header} is not hex.")
        message = stamp.encode() + delivery.body

        def check(secret: Secret) -> bool:
            try:
                Ed25519PublicKey.from_public_bytes(bytes.fromhex(secret.value)).verify(raw_signature, message)
            except (InvalidSignature, ValueError):
                return False
            return True

        matched = self._each(secrets_, check)
        return _decide(matched, "Signature mismatch.")


@dataclass(frozen=True)
class UrlParamsScheme(Scheme):
    """Twilio: HMAC-SHA1 over the full URL plus the sorted POST parameters, base64. JSON
    bodies are covered by a `bodySHA256` query parameter instead."""

    header: str = "X-Twilio-Signature"

    @staticmethod
    def signed_content(delivery: Delivery) -> bytes | None:
        content_type = delivery.header("Content-Type").split(";")[0].strip().lower()
        if content_type == "application/x-www-form-urlencoded":
            try:
                params = parse_qsl(delivery.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
            except UnicodeDecodeError:
                return None
            return (delivery.url + "".join(k + v for k, v in sorted(params))).encode()
        return delivery.url.encode()

    @staticmethod
    def _url_variants(url: str) -> list[str]:
        # As twilio-python's RequestValidator.validate: the URL as given, without its port,
        # and with the scheme's default port added when it has none.
        variants = [url]
        match = re.match(r"^(https?)://([^/:]+)(:\d+)?(.*)$", url)
        if match:
            scheme, host, port, rest = match.groups()
            if port:
                variants.append(f"{scheme}://{host}{rest}")
            else:
                variants.append(f"{scheme}://{host}{':443' if scheme == 'https' else ':80'}{rest}")
        return variants

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret]) -> Verdict:
        value = _first_signature_header(delivery, self.header)
        if isinstance(value, Verdict):
            return value
        is_form = delivery.header("Content-Type").split(";")[0].strip().lower() == "application/x-www-form-urlencoded"
        if delivery.body and not is_form and "bodySHA256" not in delivery.query:
            # Without bodySHA256 only the URL is signed: a body would go unverified.
            return refuse("Body not covered by the signature (no bodySHA256).")
        if "bodySHA256" in delivery.query:
            digest = hashlib.sha256(delivery.body).hexdigest()
            presented = delivery.query["bodySHA256"].lower().encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(digest.encode(), presented):
                return refuse("bodySHA256 does not match the body.")
        candidates = []
        for url in self._url_variants(delivery.url):
            content = self.signed_content(Delivery(delivery.method, url, delivery.headers, delivery.body, delivery.now))
            if content is None:
                return refuse("Form body is not UTF-8.")
            candidates.append(content)
        matched = self._each(
            secrets_,
            lambda s: any(_matches(_mac(s.value.encode(), c, "sha1"), [value], "base64") for c in candidates),
        )
        return _decide(matched, "Signature mismatch.")

    def sign(self, delivery: Delivery, secret: str) -> dict[str, str]:
        content = self.signed_content(delivery) or b""
        return {self.header: base64.b64encode(_mac(secret.encode(), content, "sha1")).decode()}


@dataclass(frozen=True)
class BodyFieldsScheme(Scheme):
    """Mailgun: the signature travels in the body: HMAC-SHA256(key, timestamp + token), hex."""

    tolerance: int | None = 300

    @staticmethod
    def _fields(delivery: Delivery) -> dict[str, str] | None:
        try:
            if delivery.header("Content-Type").startswith("application/json"):
                data = json.loads(delivery.body).get("signature")
            else:
                data = dict(parse_qsl(delivery.body.decode("utf-8")))
        except (ValueError, AttributeError, RecursionError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict):
            return None
        values = {k: data.get(k) for k in ("timestamp", "token", "signature")}
        return {k: str(v) for k, v in values.items() if isinstance(v, (str, int))} if all(values.values()) else None

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret]) -> Verdict:
        fields = self._fields(delivery)
        if fields is None or len(fields) != 3:
            return refuse("Missing signature fields in the body.")
        problem = _check_tolerance(_timestamp(fields["timestamp"], "unix"), delivery.now, self.tolerance)
        if problem:
            return problem
        message = (fields["timestamp"] + fields["token"]).encode()
        matched = self._each(
            secrets_, lambda s: _matches(_mac(s.value.encode(), message, "sha256"), [fields["signature"]], "hex")
        )
        return _decide(matched, "Signature mismatch.")

    def sign(self, delivery: Delivery, secret: str) -> dict[str, str]:
        return {}  # the signature is part of the body; see `sign_body`

    @staticmethod
    def sign_body(payload: dict[str, Any], secret: str, now: float) -> bytes:
        stamp, token = str(int(now)), secrets.token_hex(25)
        signature = _mac(secret.encode(), (stamp + token).encode(), "sha256").hex()
        return json.dumps(
            {"signature": {"timestamp": stamp, "token": token, "signature": signature}, **payload}
        ).encode()


# --- Presets --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    scheme: Scheme
    source: str  # the documentation page or SDK file the parameters come from
    instructions: str  # what to paste where in the provider's dashboard; {url} is the receiver URL
    generates_secret: bool = False  # we generate it (True) or the provider issues it (False)
    secret_label: str = "Signing secret"
    event_type_headers: tuple[str, ...] = ()
    event_type_paths: tuple[str, ...] = ()  # dotted paths into the JSON payload
    idempotency_headers: tuple[str, ...] = ()
    idempotency_paths: tuple[str, ...] = ()
    handshake: str = ""  # slack | twitch | discord | zoom | meta
    secret_pattern: str = ""  # a regex a provider-issued secret must match

    @property
    def secret_kind(self) -> str:
        return self.scheme.secret_kind

    def new_secret(self) -> str:
        if isinstance(self.scheme, StandardWebhooksScheme):
            return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        if self.secret_kind == "token":
            return "whi_" + secrets.token_urlsafe(32)
        return secrets.token_urlsafe(32)

    def validate_secret(self, value: str) -> str | None:
        """A reason the value cannot be this preset's secret, or None."""
        if not value or value != value.strip() or not value.isprintable():
            return "Enter the secret without spaces around it."
        if len(value) > 500:
            return "That secret is too long."
        if self.secret_kind == "public_key":
            try:
                Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))
            except ValueError:
                return "Enter the application's public key: 64 hexadecimal characters."
        elif isinstance(self.scheme, StandardWebhooksScheme):
            try:
                Webhook(value)
            except Exception:
                return "Enter the signing secret as shown by the provider (whsec_…)."
        elif self.secret_pattern and not re.fullmatch(self.secret_pattern, value):
            return f"That does not look like a {self.label} {self.secret_label.lower()}."
        elif len(value) < 8:
            return "That secret is too short."
        return None


GENERIC_HEADERS = ("X-GitHub-Event", "X-Gitlab-Event", "X-Shopify-Topic", "X-Event-Type", "X-Webhook-Event")
GENERIC_PATHS = ("type", "event_type", "event.type", "event")
GENERIC_IDEMPOTENCY = ("Idempotency-Key", "webhook-id", "svix-id", "X-GitHub-Delivery", "X-Shopify-Webhook-Id")

PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


register(
    Preset(
        "token",
        "Shared token in a header",
        TokenScheme(),
        source="-",
        instructions="Send the token in the {header} header with every request to {url}.",
        generates_secret=True,
        secret_label="Token",
    )
)
register(
    Preset(
        "basic",
        "HTTP Basic authentication",
        BasicScheme(),
        source="RFC 7617, The 'Basic' HTTP Authentication Scheme",
        instructions=(
            "Configure HTTP Basic authentication with the username and password shown once, and the URL {url}."
        ),
        generates_secret=True,
        secret_label="Password",
    )
)
register(
    Preset(
        "none",
        "None: the secret URL alone",
        NoScheme(),
        source="-",
        instructions="Anyone who knows {url} can post to it: keep it private, or pick a scheme.",
    )
)
register(
    Preset(
        # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        "github",
        "GitHub",
        HmacScheme(header="X-Hub-Signature-256", prefix="sha256="),
        source="https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries",
        instructions=(
            "Repository or organization → Settings → Webhooks → Add webhook. Payload URL: {url}. "
            "Content type: application/json. Secret: the secret shown once here."
        ),
        generates_secret=True,
        event_type_headers=("X-GitHub-Event",),
        idempotency_headers=("X-GitHub-Delivery",),
    )
)
register(
    Preset(
        # stripe-python, stripe/_webhook.py: WebhookSignature, DEFAULT_TOLERANCE = 300, "{t}.{payload}"
        "stripe",
        "Stripe",
        SignatureListScheme(header="Stripe-Signature"),
        source="https://docs.stripe.com/webhooks#verify-manually ; stripe-python stripe/_webhook.py",
        instructions=(
            "Dashboard → Developers → Webhooks → Add endpoint with the URL {url}, then reveal the "
            "endpoint's signing secret (whsec_…) and paste it here."
        ),
        secret_pattern=r"whsec_[A-Za-z0-9+/=_-]{8,}",
        event_type_paths=("type",),
        idempotency_paths=("id",),
    )
)
register(
    Preset(
        # https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook
        "shopify",
        "Shopify",
        HmacScheme(header="X-Shopify-Hmac-Sha256", encoding="base64"),
        source="https://shopify.dev/docs/apps/build/webhooks/subscribe/https",
        instructions=(
            "Subscribe the webhook with the address {url}; paste the app's client secret (or, for "
            "admin-created webhooks, the key shown under Settings → Notifications → Webhooks) here."
        ),
        event_type_headers=("X-Shopify-Topic",),
        idempotency_headers=("X-Shopify-Webhook-Id", "X-Shopify-Event-Id"),
    )
)
register(
    Preset(
        # https://api.slack.com/authentication/verifying-requests-from-slack ; tolerance 5 minutes
        "slack",
        "Slack",
        HmacScheme(
            header="X-Slack-Signature",
            prefix="v0=",
            template="v0:{timestamp}:{body}",
            timestamp_header="X-Slack-Request-Timestamp",
            tolerance=300,
        ),
        source="https://api.slack.com/authentication/verifying-requests-from-slack",
        instructions=(
            "api.slack.com/apps → your app → Basic Information → App Credentials: paste the Signing "
            "Secret here. Event Subscriptions → Request URL: {url} (the url_verification challenge "
            "is answered automatically)."
        ),
        event_type_paths=("event.type", "type"),
        idempotency_paths=("event_id",),
        handshake="slack",
    )
)
register(
    Preset(
        # https://www.standardwebhooks.com/ (spec) ; the standardwebhooks package verifies
        "standard",
        "Standard Webhooks",
        StandardWebhooksScheme(prefixes=("webhook", "svix")),
        source="https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md",
        instructions="Give the sender the URL {url} and the signing secret (whsec_…) shown once here.",
        generates_secret=True,
        event_type_paths=("type", "event_type"),
        idempotency_headers=("webhook-id", "svix-id"),
    )
)
register(
    Preset(
        # https://docs.svix.com/receiving/verifying-payloads/how-manual ; Clerk and Resend send through Svix
        "svix",
        "Svix (Clerk, Resend, …)",
        StandardWebhooksScheme(prefixes=("svix", "webhook")),
        source="https://docs.svix.com/receiving/verifying-payloads/how-manual",
        instructions=(
            "In the provider's webhook settings (Clerk: Configure → Webhooks; Resend: Webhooks) add the "
            "endpoint {url}, then copy its signing secret (whsec_…) here."
        ),
        secret_pattern=r"whsec_[A-Za-z0-9+/=]{8,}",
        event_type_paths=("type", "event_type"),
        idempotency_headers=("svix-id", "webhook-id"),
    )
)
register(
    Preset(
        # https://www.twilio.com/docs/usage/webhooks/webhooks-security ; twilio-python request_validator.py
        "twilio",
        "Twilio",
        UrlParamsScheme(),
        source="https://www.twilio.com/docs/usage/webhooks/webhooks-security",
        instructions=(
            "Console → Account → API keys & tokens: paste the Auth Token here. Set the webhook URL of your "
            "number or service to {url} exactly (the signature covers the URL)."
        ),
        secret_pattern=r"[0-9a-f]{32}",
        event_type_paths=("EventType", "SmsStatus", "CallStatus"),
        idempotency_headers=("I-Twilio-Idempotency-Token",),
    )
)
register(
    Preset(
        # https://developers.facebook.com/docs/graph-api/webhooks/getting-started
        "meta",
        "Meta (WhatsApp, Messenger, Instagram)",
        HmacScheme(header="X-Hub-Signature-256", prefix="sha256="),
        source="https://developers.facebook.com/docs/graph-api/webhooks/getting-started",
        instructions=(
            "App Dashboard → Webhooks (or WhatsApp → Configuration): Callback URL {url}, Verify token: "
            "the verify token shown once here. Paste the app secret (App settings → Basic) here. The "
            "GET verification request is answered automatically."
        ),
        secret_label="App secret",
        event_type_paths=("object",),
        handshake="meta",
        secret_pattern=r"[0-9a-f]{32}",
    )
)
register(
    Preset(
        # https://developer.paddle.com/webhooks/signature-verification ; Paddle-Signature: ts=…;h1=…
        "paddle",
        "Paddle",
        SignatureListScheme(
            header="Paddle-Signature",
            pair_separator=";",
            timestamp_key="ts",
            signature_key="h1",
            template="{timestamp}:{body}",
            tolerance=5,
        ),
        source="https://developer.paddle.com/webhooks/signature-verification",
        instructions=(
            "Paddle → Developer tools → Notifications → New destination with the URL {url}; paste the "
            "destination's secret key (pdl_ntfset_…) here."
        ),
        secret_pattern=r"pdl_ntfset_[A-Za-z0-9_]{8,}",
        event_type_paths=("event_type",),
        idempotency_paths=("event_id",),
    )
)
register(
    Preset(
        # https://linear.app/developers/webhooks#securing-webhooks ; webhookTimestamp within 60 s
        "linear",
        "Linear",
        HmacScheme(
            header="Linear-Signature", timestamp_json_field="webhookTimestamp", timestamp_format="unix_ms", tolerance=60
        ),
        source="https://linear.app/developers/webhooks",
        instructions="Settings → API → Webhooks → New webhook with the URL {url}; paste its signing secret here.",
        secret_pattern=r"lin_wh_[A-Za-z0-9]{8,}",
        event_type_headers=("Linear-Event",),
        event_type_paths=("type",),
        idempotency_headers=("Linear-Delivery",),
    )
)
register(
    Preset(
        # https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint-validating-security-request-headers
        "discord",
        "Discord",
        Ed25519Scheme(),
        source="https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint",
        instructions=(
            "Developer Portal → your application → General Information: paste the Public Key here, and set "
            "the Interactions Endpoint URL (or Webhook Events URL) to {url}. Discord's PING is answered."
        ),
        secret_label="Public key",
        event_type_paths=("event.type", "type"),
        handshake="discord",
    )
)
register(
    Preset(
        # https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message
        "twitch",
        "Twitch EventSub",
        HmacScheme(
            header="Twitch-Eventsub-Message-Signature",
            prefix="sha256=",
            template="{id}{timestamp}{body}",
            id_header="Twitch-Eventsub-Message-Id",
            timestamp_header="Twitch-Eventsub-Message-Timestamp",
            timestamp_format="rfc3339",
            tolerance=600,
        ),
        source="https://dev.twitch.tv/docs/eventsub/handling-webhook-events/",
        instructions=(
            "Create the EventSub subscription with transport method webhook, callback {url} and the secret "
            "shown once here. The webhook_callback_verification challenge is answered automatically."
        ),
        generates_secret=True,
        event_type_headers=("Twitch-Eventsub-Subscription-Type",),
        idempotency_headers=("Twitch-Eventsub-Message-Id",),
        handshake="twitch",
    )
)
register(
    Preset(
        # https://docs.gitlab.com/user/project/integrations/webhooks/#create-a-webhook (secret token)
        "gitlab",
        "GitLab",
        TokenScheme(header="X-Gitlab-Token"),
        source="https://docs.gitlab.com/user/project/integrations/webhooks/",
        instructions=(
            "Project → Settings → Webhooks → Add new webhook: URL {url}, Secret token: the token shown once here."
        ),
        generates_secret=True,
        secret_label="Secret token",
        event_type_headers=("X-Gitlab-Event",),
        idempotency_headers=("Idempotency-Key", "X-Gitlab-Event-UUID"),
    )
)
register(
    Preset(
        # https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/#securing-webhooks
        "mailgun",
        "Mailgun",
        BodyFieldsScheme(),
        source="https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks",
        instructions="Send → Webhooks: add {url} for the events you want; paste the HTTP webhook signing key here.",
        secret_label="Webhook signing key",
        event_type_paths=("event-data.event", "event"),
        # Mailgun signs timestamp + token only, and asks receivers to refuse a reused token:
        # the token is the key, so a replayed signature stores nothing new.
        idempotency_paths=("signature.token",),
    )
)
register(
    Preset(
        # https://developer.squareup.com/docs/webhooks/step3validate ; notification URL + body, base64
        "square",
        "Square",
        HmacScheme(header="X-Square-HmacSha256-Signature", encoding="base64", template="{url}{body}"),
        source="https://developer.squareup.com/docs/webhooks/step3validate",
        instructions=(
            "Developer Console → your application → Webhooks → Subscriptions: notification URL {url} exactly "
            "(the signature covers it); paste the subscription's signature key here."
        ),
        secret_label="Signature key",
        event_type_paths=("type",),
        idempotency_paths=("event_id",),
    )
)
register(
    Preset(
        # https://developers.zoom.us/docs/api/webhooks/#verify-webhook-events
        "zoom",
        "Zoom",
        HmacScheme(
            header="x-zm-signature",
            prefix="v0=",
            template="v0:{timestamp}:{body}",
            timestamp_header="x-zm-request-timestamp",
            tolerance=300,
        ),
        source="https://developers.zoom.us/docs/api/webhooks/",
        instructions=(
            "Zoom App Marketplace → your app → Features → Access: paste the Secret Token here; Event "
            "subscriptions → Event notification endpoint URL: {url} (URL validation is answered)."
        ),
        secret_label="Secret token",
        event_type_paths=("event",),
        handshake="zoom",
    )
)
register(
    Preset(
        # https://developers.intercom.com/docs/webhooks/setting-up-webhooks#signed-notifications
        "intercom",
        "Intercom",
        HmacScheme(header="X-Hub-Signature", digest="sha1", prefix="sha1="),
        source="https://developers.intercom.com/docs/webhooks/setting-up-webhooks",
        instructions=(
            "Developer Hub → your app → Webhooks: endpoint URL {url}; paste the app's client secret "
            "(Basic information) here."
        ),
        secret_label="Client secret",
        event_type_paths=("topic",),
        idempotency_paths=("id",),
    )
)

HMAC_OPTION_DEFAULTS = {
    "header": "X-Signature",
    "digest": "sha256",
    "encoding": "hex",
    "prefix": "",
    "template": "{body}",
    "timestamp_header": "",
    "tolerance": 300,
}
register(
    Preset(
        "hmac",
        "Generic HMAC (configure by hand)",
        HmacScheme(header=HMAC_OPTION_DEFAULTS["header"]),  # type: ignore[arg-type]
        source="-",
        instructions=(
            "Sign each request with HMAC over the configured template with the secret shown once here, "
            "and send it to {url}."
        ),
        generates_secret=True,
    )
)


def generic_hmac_scheme(options: Mapping[str, Any]) -> HmacScheme:
    merged = {**HMAC_OPTION_DEFAULTS, **{k: v for k, v in options.items() if k in HMAC_OPTION_DEFAULTS}}
    # Options may have been edited by hand (admin, shell): fall back rather than fail, so a
    # bad option refuses deliveries with a reason instead of raising on every one.
    for name in ("header", "digest", "encoding", "prefix", "template", "timestamp_header"):
        if not isinstance(merged[name], str):
            merged[name] = HMAC_OPTION_DEFAULTS[name]
    if not merged["header"]:
        merged["header"] = HMAC_OPTION_DEFAULTS["header"]
    if merged["digest"] not in DIGESTS:
        merged["digest"] = "sha256"
    if merged["encoding"] not in ("hex", "base64"):
        merged["encoding"] = "hex"
    tolerance = str(merged["tolerance"])
    if not (tolerance.isascii() and tolerance.isdigit()):
        merged["tolerance"] = HMAC_OPTION_DEFAULTS["tolerance"]
    # Only placeholders this scheme fills: {timestamp} needs a timestamp header.
    fillable = {"body", "url", *(("timestamp",) if merged["timestamp_header"] else ())}
    if not set(re.findall(r"\{(\w*)\}", merged["template"])) <= fillable or "{" in re.sub(
        r"\{\w+\}", "", merged["template"]
    ):
        merged["template"] = HMAC_OPTION_DEFAULTS["template"]
    return HmacScheme(
        header=merged["header"],
        digest=merged["digest"],
        encoding=merged["encoding"],
        prefix=merged["prefix"],
        template=merged["template"],
        timestamp_header=merged["timestamp_header"],
        tolerance=int(merged["tolerance"]) if merged["timestamp_header"] else None,
    )


def preset_choices() -> list[tuple[str, str]]:
    return [(name, preset.label) for name, preset in PRESETS.items()]


# --- Reading the payload the preset's way ------------------------------------------------------
def json_path(payload: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(payload, dict):
            return None
        payload = payload.get(part)
    return payload


def first_text(delivery_headers: Mapping[str, str], payload: Any, headers: Sequence[str], paths: Sequence[str]) -> str:
    for header in headers:
        value = delivery_headers.get(header)
        if value:
            return f"{header.lower()}:{value}"
    for path in paths:
        value = json_path(payload, path)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return f"{path}:{value}"
    return ""


# --- Handshakes ------------------------------------------------------------------------------
def meta_subscription(query: Mapping[str, str], check_verify_token: Callable[[str], str]) -> Answer | None:
    """Meta's GET subscription check: echo hub.challenge when hub.verify_token is ours."""
    if query.get("hub.mode") != "subscribe":
        return None
    if not check_verify_token(query.get("hub.verify_token", "")):
        return Answer(403, b"Invalid hub.verify_token.\n")
    return Answer(200, query.get("hub.challenge", "")[:1000].encode())


def handshake_answer(preset: Preset, delivery: Delivery, payload: Any, secret: str) -> Answer | None:
    """A verified delivery that is a provider's handshake gets its answer and is not stored."""
    kind = preset.handshake
    if kind == "slack" and isinstance(payload, dict) and payload.get("type") == "url_verification":
        return Answer(200, str(payload.get("challenge", ""))[:1000].encode())
    if kind == "twitch" and delivery.header("Twitch-Eventsub-Message-Type") == "webhook_callback_verification":
        challenge = payload.get("challenge", "") if isinstance(payload, dict) else ""
        return Answer(200, str(challenge)[:1000].encode())
    if kind == "discord" and isinstance(payload, dict):
        if payload.get("type") == 1 and "event" not in payload:  # interactions PING → PONG
            return Answer(200, b'{"type": 1}', "application/json")
        if payload.get("type") == 0:  # webhook events PING: 204, empty
            return Answer(204, b"", "application/json")
    if kind == "zoom" and isinstance(payload, dict) and payload.get("event") == "endpoint.url_validation":
        plain_token = json_path(payload, "payload.plainToken")
        if not isinstance(plain_token, str):
            return Answer(400, b"Missing payload.plainToken.\n")
        encrypted = hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()
        body = json.dumps({"plainToken": plain_token, "encryptedToken": encrypted}).encode()
        return Answer(200, body, "application/json")
    return None


# --- Test deliveries ---------------------------------------------------------------------------
def sample_request(preset: Preset, scheme: Scheme, url: str, secret: str, now: float) -> tuple[bytes, dict[str, str]]:
    """A test event signed the way `preset` signs, for `send_test_webhook`."""
    event_id = "evt_test_" + secrets.token_hex(8)
    headers = {"Content-Type": "application/json", "User-Agent": "webhook-inbox-test/1"}
    payload: dict[str, Any] = {
        "type": "inbox.test",
        "id": event_id,
        "event_id": event_id,
        "data": {"message": "A test event from Webhook Inbox"},
    }
    if preset.name == "linear":
        payload["webhookTimestamp"] = int(now * 1000)
    if preset.name == "twitch":
        headers["Twitch-Eventsub-Message-Type"] = "notification"
        headers["Twitch-Eventsub-Subscription-Type"] = "inbox.test"
    if isinstance(scheme, BodyFieldsScheme):
        body = BodyFieldsScheme.sign_body({"event-data": {"event": "inbox.test", "id": event_id}}, secret, now)
    elif isinstance(scheme, UrlParamsScheme):
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = (
            f"MessageSid=SM{secrets.token_hex(16)}&Body=A+test+event+from+Webhook+Inbox&EventType=inbox.test".encode()
        )
    else:
        body = json.dumps(payload).encode()
    headers.update(scheme.sign(Delivery("POST", url, headers, body, now), secret))
    return body, headers
