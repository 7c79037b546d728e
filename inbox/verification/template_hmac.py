"""HMAC over a template of the raw body, the URL and named headers: GitHub, Shopify, Slack,
Linear, Meta, Twitch, Zoom, Square, Intercom, and the generic HMAC staff configure by hand.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inbox.verification.base import (
    DIGESTS,
    Delivery,
    Scheme,
    SchemeSettings,
    Secret,
    Verdict,
    check_tolerance,
    decide,
    encode_mac,
    hmac_digest,
    mac_matches,
    parse_timestamp,
    read_signature_header,
    refuse,
    render_template,
)


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
            problem = check_tolerance(parse_timestamp(raw_ts, self.timestamp_format), delivery.now, self.tolerance)
            if problem:
                return problem
            parts["timestamp"] = raw_ts.encode()
        elif self.timestamp_json_field:
            try:
                value = json.loads(delivery.body).get(self.timestamp_json_field)
            except (ValueError, AttributeError, RecursionError):
                return refuse("Body is not a JSON object.")
            ts = parse_timestamp(str(value), self.timestamp_format) if isinstance(value, int) else None
            problem = check_tolerance(ts, delivery.now, self.tolerance)
            if problem:
                return problem
        return parts

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret]) -> Verdict:
        value = read_signature_header(delivery, self.header)
        if isinstance(value, Verdict):
            return value
        if self.prefix and not value.startswith(self.prefix):
            return refuse(f"{self.header} does not start with {self.prefix}.")
        presented = value[len(self.prefix) :]
        parts = self._parts(delivery)
        if isinstance(parts, Verdict):
            return parts
        message = render_template(self.template, parts)
        matched = self._each(
            secrets_,
            lambda s: mac_matches(hmac_digest(s.value.encode(), message, self.digest), [presented], self.encoding),
        )
        return decide(matched, "Signature mismatch.")

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
        mac = hmac_digest(secret.encode(), render_template(self.template, parts), self.digest)
        headers[self.header] = self.prefix + encode_mac(mac, self.encoding)
        return headers

    def sample_body(self, payload: dict[str, Any], secret: str, now: float) -> tuple[bytes, str]:
        if self.timestamp_json_field:
            # The timestamp travels in the payload (Linear): a test event carries it there too.
            stamp = int(now * 1000) if self.timestamp_format == "unix_ms" else int(now)
            payload = {**payload, self.timestamp_json_field: stamp}
        return super().sample_body(payload, secret, now)


HMAC_OPTION_DEFAULTS = {
    "header": "X-Signature",
    "digest": "sha256",
    "encoding": "hex",
    "prefix": "",
    "template": "{body}",
    "timestamp_header": "",
    "tolerance": 300,
}


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


def configured_hmac(settings: SchemeSettings) -> HmacScheme:
    """The generic HMAC preset's scheme, from the options staff set on the endpoint."""
    return generic_hmac_scheme(settings.scheme_options)
