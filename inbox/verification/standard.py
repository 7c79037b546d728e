"""Standard Webhooks (`webhook-*` headers) and Svix (`svix-*`), verified by the
`standardwebhooks` package: Clerk, Resend and every sender that follows the spec.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from standardwebhooks import Webhook

from inbox.verification.base import (
    MAX_SIGNATURE_HEADER,
    Delivery,
    Scheme,
    Secret,
    Verdict,
    check_tolerance,
    decide,
    parse_timestamp,
    refuse,
)


@dataclass(frozen=True)
class StandardWebhooksScheme(Scheme):
    """Standard Webhooks, verified by the `standardwebhooks` package, accepting the
    `webhook-*` header names and Svix's `svix-*` ones."""

    prefixes: tuple[str, ...] = ("webhook", "svix")
    has_secret_format = True

    def secret_problem(self, value: str) -> str | None:
        try:
            Webhook(value)
        except Exception:
            return "Enter the signing secret as shown by the provider (whsec_…)."
        return None

    def new_secret(self) -> str:
        return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()

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
        ts = parse_timestamp(headers["webhook-timestamp"], "unix")
        problem = check_tolerance(ts, delivery.now, 300)
        if problem:
            return problem

        def check(secret: Secret) -> bool:
            try:
                Webhook(secret.value).verify(delivery.body, headers, json_parse=False)
            except Exception:
                return False
            return True

        matched = self._each(secrets_, check)
        return decide(matched, "Signature mismatch.")

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
