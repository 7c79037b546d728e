"""Twilio: HMAC-SHA1 over the full URL plus the sorted form parameters, base64."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
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
    decide,
    hmac_digest,
    mac_matches,
    media_type,
    read_signature_header,
    refuse,
)

FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class UrlParamsScheme(Scheme):
    """Twilio: HMAC-SHA1 over the full URL plus the sorted POST parameters, base64. JSON
    bodies are covered by a `bodySHA256` query parameter instead."""

    header: str = "X-Twilio-Signature"

    @staticmethod
    def signed_content(delivery: Delivery) -> bytes | None:
        if media_type(delivery.header("Content-Type")) == FORM:
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
        value = read_signature_header(delivery, self.header)
        if isinstance(value, Verdict):
            return value
        is_form = media_type(delivery.header("Content-Type")) == FORM
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
            lambda s: any(mac_matches(hmac_digest(s.value.encode(), c, "sha1"), [value], "base64") for c in candidates),
        )
        return decide(matched, "Signature mismatch.")

    def sign(self, delivery: Delivery, secret: str) -> dict[str, str]:
        content = self.signed_content(delivery) or b""
        return {self.header: base64.b64encode(hmac_digest(secret.encode(), content, "sha1")).decode()}

    def sample_body(self, payload: dict[str, Any], secret: str, now: float) -> tuple[bytes, str]:
        # Twilio posts form fields, never JSON.
        body = f"MessageSid=SM{secrets.token_hex(16)}&Body=A+test+event+from+Webhook+Inbox&EventType={payload['type']}"
        return body.encode(), FORM
