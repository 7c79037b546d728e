"""How deliveries are verified: a few scheme families, and every provider as data over them.

    base.py            what a verifier sees (Delivery, Secret) and says (Verdict, Answer);
                       the Scheme every family extends
    tokens.py          none, a shared token in a header, HTTP Basic
    template_hmac.py   HMAC over a template (GitHub, Shopify, Slack, ...; generic HMAC)
    signature_list.py  Stripe-style t=…,v1=… lists (Stripe, Paddle)
    standard.py        Standard Webhooks and Svix
    ed25519.py         public-key signatures (Discord)
    url_params.py      URL plus form parameters (Twilio)
    body_fields.py     a signature inside the body (Mailgun)
    handshakes.py      URL checks answered without storing (Slack, Twitch, Discord, Zoom, Meta)
    presets.py         the providers, as complete data over the families

It imports nothing of the inbox but inbox.secrets (docs/architecture.md, "Layers"). The
names below are its public API.
"""

from __future__ import annotations

from inbox.verification.base import (
    DIGESTS,
    Answer,
    Delivery,
    Scheme,
    SchemeSettings,
    Secret,
    Verdict,
    media_type,
)
from inbox.verification.body_fields import BodyFieldsScheme
from inbox.verification.ed25519 import Ed25519Scheme
from inbox.verification.handshakes import Handshake
from inbox.verification.presets import (
    DEFAULT_PRESET,
    GENERIC_HEADERS,
    GENERIC_IDEMPOTENCY,
    GENERIC_PATHS,
    PRESETS,
    Preset,
    preset_choices,
)
from inbox.verification.signature_list import SignatureListScheme
from inbox.verification.standard import StandardWebhooksScheme
from inbox.verification.template_hmac import HMAC_OPTION_DEFAULTS, HmacScheme, generic_hmac_scheme
from inbox.verification.tokens import BasicScheme, NoScheme, TokenScheme
from inbox.verification.url_params import UrlParamsScheme

__all__ = [
    "DEFAULT_PRESET",
    "DIGESTS",
    "GENERIC_HEADERS",
    "GENERIC_IDEMPOTENCY",
    "GENERIC_PATHS",
    "HMAC_OPTION_DEFAULTS",
    "PRESETS",
    "Answer",
    "BasicScheme",
    "BodyFieldsScheme",
    "Delivery",
    "Ed25519Scheme",
    "Handshake",
    "HmacScheme",
    "NoScheme",
    "Preset",
    "Scheme",
    "SchemeSettings",
    "Secret",
    "SignatureListScheme",
    "StandardWebhooksScheme",
    "TokenScheme",
    "UrlParamsScheme",
    "Verdict",
    "generic_hmac_scheme",
    "media_type",
    "preset_choices",
]
