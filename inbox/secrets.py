"""Digests of generated tokens, and encryption of the secrets a scheme needs in clear.

The bottom of the house: it imports nothing of the inbox, so models and verification can
both use it (docs/architecture.md, "Layers"). Nothing here is ever logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    # Each configured key becomes a Fernet key through SHA-256, so any string works; the
    # first encrypts, all decrypt (rotate by putting the new key first).
    return MultiFernet([Fernet(base64.urlsafe_b64encode(hashlib.sha256(k.encode()).digest())) for k in keys])


def encrypt(value: str) -> str:
    return _fernet(tuple(settings.INBOX_ENCRYPTION_KEYS)).encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    try:
        return _fernet(tuple(settings.INBOX_ENCRYPTION_KEYS)).decrypt(value.encode()).decode()
    except InvalidToken:
        # Encrypted under a key that is no longer configured: the secret is unusable, and
        # verification will refuse until staff set it again.
        return ""


def token_digest(token: str) -> str:
    """Keyed digest of a generated token.

    Tokens are 256-bit random strings, so a fast keyed hash is as strong as a slow password
    hash here, and costs microseconds on every request instead of tens of milliseconds.
    """
    key = settings.INBOX_SECRET_KEY.encode()
    return hmac.new(key, token.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
