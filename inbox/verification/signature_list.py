"""Stripe-style signature lists: `t=…,v1=…,v1=…` (Stripe), `ts=…;h1=…` (Paddle).

Any listed signature may match, which is how these providers rotate their secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    read_signature_header,
    refuse,
    render_template,
)


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
        value = read_signature_header(delivery, self.header)
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
        problem = check_tolerance(parse_timestamp(timestamps[0], "unix"), delivery.now, self.tolerance)
        if problem:
            return problem
        message = render_template(self.template, {"timestamp": timestamps[0].encode(), "body": delivery.body})
        matched = self._each(
            secrets_, lambda s: mac_matches(hmac_digest(s.value.encode(), message, self.digest), signatures, "hex")
        )
        return decide(matched, "Signature mismatch.")

    def sign(self, delivery: Delivery, secret: str) -> dict[str, str]:
        stamp = str(int(delivery.now))
        mac = hmac_digest(
            secret.encode(),
            render_template(self.template, {"timestamp": stamp.encode(), "body": delivery.body}),
            self.digest,
        )
        sep = self.pair_separator
        return {self.header: f"{self.timestamp_key}={stamp}{sep}{self.signature_key}={mac.hex()}"}
