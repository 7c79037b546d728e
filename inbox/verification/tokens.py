"""Credentials the sender presents as they are: none, a shared token in a header, HTTP Basic.

Tokens and passwords are generated here and kept only as keyed digests
(`inbox.secrets.token_digest`), so these schemes verify against digests and cannot sign.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from inbox.secrets import token_digest
from inbox.verification.base import (
    MAX_SIGNATURE_HEADER,
    Delivery,
    Scheme,
    SchemeSettings,
    Secret,
    Verdict,
    decide,
    refuse,
)


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

    def new_secret(self) -> str:
        return "whi_" + secrets.token_urlsafe(32)

    @property
    def credential_header(self) -> str:
        return self.header

    def verify(self, delivery: Delivery, secrets_: Sequence[Secret], header: str | None = None) -> Verdict:
        name = header or self.header
        presented = delivery.header(name)
        if not presented:
            return refuse(f"Missing {name} header.", 403)
        if len(presented) > MAX_SIGNATURE_HEADER:
            return refuse(f"{name} header too long.", 403)
        digest = token_digest(presented)
        matched = self._each(secrets_, lambda s: hmac.compare_digest(digest, s.value))
        return decide(matched, f"Invalid {name}.", 403)


@dataclass(frozen=True)
class BasicScheme(Scheme):
    """HTTP Basic: `secret.value` is the digest of "username:password"."""

    secret_kind = "basic"

    def new_secret(self) -> str:
        return secrets.token_urlsafe(24)  # the password; the username is the endpoint's

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
        return decide(matched, "Invalid HTTP Basic credentials.")


def token_in_header(settings: SchemeSettings) -> TokenScheme:
    """The shared-token preset's scheme: the token travels in the header staff chose."""
    return TokenScheme(header=settings.token_header)
