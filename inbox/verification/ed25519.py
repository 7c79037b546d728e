"""Public-key signatures: Ed25519 over timestamp + body (Discord). The inbox keeps only the
provider's public key, so it can verify but never sign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from inbox.verification.base import (
    Delivery,
    Scheme,
    Secret,
    Verdict,
    check_tolerance,
    decide,
    parse_timestamp,
    read_signature_header,
    refuse,
)


@dataclass(frozen=True)
class Ed25519Scheme(Scheme):
    """Public-key signatures over timestamp + body (Discord)."""

    signature_header: str = "X-Signature-Ed25519"
    timestamp_header: str = "X-Signature-Timestamp"
    tolerance: int | None = 300
    secret_kind = "public_key"
    has_secret_format = True

    def secret_problem(self, value: str) -> str | None:
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))
        except ValueError:
            return "Enter the application's public key: 64 hexadecimal characters."
        return None

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret]) -> Verdict:
        signature = read_signature_header(delivery, self.signature_header)
        if isinstance(signature, Verdict):
            return signature
        stamp = delivery.header(self.timestamp_header)
        if not stamp:
            return refuse(f"Missing {self.timestamp_header} header.")
        problem = check_tolerance(parse_timestamp(stamp, "unix"), delivery.now, self.tolerance)
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
        return decide(matched, "Signature mismatch.")
