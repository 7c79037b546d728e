"""Handshakes: a provider's check that a URL is theirs to use, answered at once, never stored.

A preset names its handshake (`Preset.handshake`); the receiver asks it at two points of the
pipeline and knows nothing of any provider:

- `answer_get`, before any body is read, for a check that comes as a GET of its own (Meta's
  subscription check; the receiver allows GET for it);
- `answer`, after the delivery verified, for a check that comes as a signed delivery
  (Slack's url_verification, Twitch's callback verification, Discord's PING, Zoom's URL
  validation).

A handshake that is one but carries no usable challenge (missing, not a string, empty, or
longer than `MAX_CHALLENGE`) is refused with 400 and a short reason, never answered 200
with something the provider cannot match.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from inbox.verification.base import Answer, Delivery, payload_value

# The longest challenge echoed. Providers send short random tokens (Slack's documented example
# is 52 characters, Zoom's plainToken 22, Meta's hub.challenge a number, Twitch's a few dozen):
# 1,000 is far beyond any of them and still a small answer. A longer one is refused rather
# than cut: a cut echo could never match what the provider expects.
MAX_CHALLENGE = 1000


def challenge(value: Any, name: str) -> str | Answer:
    """`value` as the challenge `name` to answer with, or the 400 saying why it cannot be: it
    must be a non-empty string of at most MAX_CHALLENGE characters."""
    if value is None:
        reason = f"Missing {name}."
    elif not isinstance(value, str):
        reason = f"{name} is not a string."
    elif not value:
        reason = f"Empty {name}."
    elif len(value) > MAX_CHALLENGE:
        reason = f"{name} is longer than {MAX_CHALLENGE:,} characters."
    else:
        return value
    return Answer(400, f"{reason}\n".encode())


def echo(value: Any, name: str) -> Answer:
    """The challenge echoed as it came (200, text/plain), or the 400 refusing it."""
    found = challenge(value, name)
    return found if isinstance(found, Answer) else Answer(200, found.encode())


def is_int(value: Any, number: int) -> bool:
    """`value` is the JSON integer `number`: not true or false, not 1.0."""
    return type(value) is int and value == number


class Handshake:
    # Answers a GET of its own with `answer_get`: the receiver allows GET for it.
    answers_get = False
    # Presents a verify token of our choosing: one is generated with the secret, shown once
    # and kept as a digest (the endpoint's token digest).
    uses_verify_token = False

    def answer_get(self, query: Mapping[str, str], check_token: Callable[[str], str]) -> Answer | None:
        """The answer to a GET that is this handshake, or None when it is not one.
        `check_token` says which stored verify token a presented one matches ('' for none)."""
        return None

    def answer(self, delivery: Delivery, payload: Any, secret: str) -> Answer | None:
        """The answer to a verified delivery that is this handshake, or None when it is an
        ordinary delivery (stored as usual). `secret` is the one it verified with."""
        return None


@dataclass(frozen=True)
class SlackChallenge(Handshake):
    def answer(self, delivery: Delivery, payload: Any, secret: str) -> Answer | None:
        if isinstance(payload, dict) and payload.get("type") == "url_verification":
            return echo(payload.get("challenge"), "challenge")
        return None


@dataclass(frozen=True)
class TwitchChallenge(Handshake):
    type_header: str = "Twitch-Eventsub-Message-Type"

    def answer(self, delivery: Delivery, payload: Any, secret: str) -> Answer | None:
        if delivery.header(self.type_header) == "webhook_callback_verification":
            return echo(payload.get("challenge") if isinstance(payload, dict) else None, "challenge")
        return None


@dataclass(frozen=True)
class DiscordPing(Handshake):
    def answer(self, delivery: Delivery, payload: Any, secret: str) -> Answer | None:
        if isinstance(payload, dict):
            # Only the JSON integers 1 and 0 are PINGs: `true`, `1.0` or `false` are not.
            if is_int(payload.get("type"), 1) and "event" not in payload:  # interactions PING → PONG
                return Answer(200, b'{"type": 1}', "application/json")
            if is_int(payload.get("type"), 0):  # webhook events PING: 204, empty
                return Answer(204, b"", "application/json")
        return None


@dataclass(frozen=True)
class ZoomValidation(Handshake):
    def answer(self, delivery: Delivery, payload: Any, secret: str) -> Answer | None:
        if not (isinstance(payload, dict) and payload.get("event") == "endpoint.url_validation"):
            return None
        plain_token = challenge(payload_value(payload, "payload.plainToken"), "payload.plainToken")
        if isinstance(plain_token, Answer):
            return plain_token
        encrypted = hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()
        body = json.dumps({"plainToken": plain_token, "encryptedToken": encrypted}).encode()
        return Answer(200, body, "application/json")


@dataclass(frozen=True)
class MetaSubscription(Handshake):
    """Meta's GET subscription check: echo hub.challenge when hub.verify_token is ours."""

    answers_get = True
    uses_verify_token = True

    def answer_get(self, query: Mapping[str, str], check_token: Callable[[str], str]) -> Answer | None:
        if query.get("hub.mode") != "subscribe":
            return None
        if not check_token(query.get("hub.verify_token", "")):
            return Answer(403, b"Invalid hub.verify_token.\n")
        return echo(query.get("hub.challenge"), "hub.challenge")
