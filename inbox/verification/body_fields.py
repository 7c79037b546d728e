"""Mailgun: the signature travels in the body, HMAC-SHA256(key, timestamp + token), hex."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from inbox.verification.base import (
    Delivery,
    Scheme,
    Secret,
    Verdict,
    check_tolerance,
    decide,
    hmac_digest,
    mac_matches,
    parse_timestamp,
    refuse,
)


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
        problem = check_tolerance(parse_timestamp(fields["timestamp"], "unix"), delivery.now, self.tolerance)
        if problem:
            return problem
        message = (fields["timestamp"] + fields["token"]).encode()
        matched = self._each(
            secrets_,
            lambda s: mac_matches(hmac_digest(s.value.encode(), message, "sha256"), [fields["signature"]], "hex"),
        )
        return decide(matched, "Signature mismatch.")

    def sign(self, delivery: Delivery, secret: str) -> dict[str, str]:
        return {}  # the signature is part of the body; see `sign_body`

    def sample_body(self, payload: dict[str, Any], secret: str, now: float) -> tuple[bytes, str]:
        event = {"event-data": {"event": payload["type"], "id": payload["id"]}}
        return self.sign_body(event, secret, now), "application/json"

    @staticmethod
    def sign_body(payload: dict[str, Any], secret: str, now: float) -> bytes:
        stamp, token = str(int(now)), secrets.token_hex(25)
        signature = hmac_digest(secret.encode(), (stamp + token).encode(), "sha256").hex()
        return json.dumps(
            {"signature": {"timestamp": stamp, "token": token, "signature": signature}, **payload}
        ).encode()
