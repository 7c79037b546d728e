"""Every provider as data: a preset names its scheme family with that provider's parameters,
and everything else the inbox needs to know about the provider.

A preset holds where the event type and idempotency key live (`event_type`,
`idempotency_key`), the handshake it answers (handshakes.py), what a test delivery adds
(`sample_headers`; the scheme builds the body and signs it), whether the inbox generates the
secret (the scheme says how) or the provider issues it (`secret_pattern` checks a pasted one),
and what staff paste where. Nothing outside this table branches on a provider's name.

Adding a provider of a known family is one `register(Preset(...))` here and its published
test vector in tests/verification/ (docs/architecture.md, "Where things go").
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inbox.verification.base import Delivery, Scheme, SchemeSettings, first_text
from inbox.verification.body_fields import BodyFieldsScheme
from inbox.verification.ed25519 import Ed25519Scheme
from inbox.verification.handshakes import (
    DiscordPing,
    Handshake,
    MetaSubscription,
    SlackChallenge,
    TwitchChallenge,
    ZoomValidation,
)
from inbox.verification.signature_list import SignatureListScheme
from inbox.verification.standard import StandardWebhooksScheme
from inbox.verification.template_hmac import HMAC_OPTION_DEFAULTS, HmacScheme, configured_hmac
from inbox.verification.tokens import BasicScheme, NoScheme, TokenScheme, token_in_header
from inbox.verification.url_params import UrlParamsScheme

# Where senders that follow no preset put the event type and the idempotency key.
GENERIC_HEADERS = ("X-GitHub-Event", "X-Gitlab-Event", "X-Shopify-Topic", "X-Event-Type", "X-Webhook-Event")
GENERIC_PATHS = ("type", "event_type", "event.type", "event")
GENERIC_IDEMPOTENCY = ("Idempotency-Key", "webhook-id", "svix-id", "X-GitHub-Delivery", "X-Shopify-Webhook-Id")
DEFAULT_PRESET = "token"
# A token chosen by hand instead of generated (the form, the API and create_endpoint).
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    scheme: Scheme
    source: str  # the documentation page or SDK file the parameters come from
    instructions: str  # what to paste where in the provider's dashboard; {url} is the receiver URL
    generates_secret: bool = False  # we generate it (True) or the provider issues it (False)
    secret_label: str = "Signing secret"
    event_type_headers: tuple[str, ...] = ()
    event_type_paths: tuple[str, ...] = ()  # dotted paths into the JSON payload
    idempotency_headers: tuple[str, ...] = ()
    idempotency_paths: tuple[str, ...] = ()
    handshake: Handshake | None = None
    secret_pattern: str = ""  # a regex a provider-issued secret must match
    # Headers a test delivery carries besides the signature's (see `sample_request`).
    sample_headers: Mapping[str, str] = field(default_factory=dict)
    # For presets staff configure on the endpoint (the token's header, generic HMAC's
    # parameters): builds the scheme from the endpoint's settings. None: `scheme` as it is.
    configure: Callable[[SchemeSettings], Scheme] | None = None

    @property
    def secret_kind(self) -> str:
        return self.scheme.secret_kind

    def scheme_for(self, settings: SchemeSettings) -> Scheme:
        """The scheme an endpoint of this preset verifies with."""
        return self.configure(settings) if self.configure is not None else self.scheme

    def validate_secret(self, value: str) -> str | None:
        """A reason the value cannot be this preset's secret, or None."""
        if not value or value != value.strip() or not value.isprintable():
            return "Enter the secret without spaces around it."
        if len(value) > 500:
            return "That secret is too long."
        if self.scheme.has_secret_format:
            return self.scheme.secret_problem(value)
        if self.secret_pattern and not re.fullmatch(self.secret_pattern, value):
            return f"That does not look like a {self.label} {self.secret_label.lower()}."
        if len(value) < 8:
            return "That secret is too short."
        return None

    def chosen_secret_problem(self, value: str, *, required: bool) -> str:
        """Why `value` cannot be given to a new endpoint of this preset (or one switched to
        it), '' when it can: the one rule of the form, the API and `create_endpoint`.
        `required`: the endpoint takes on this preset now, so a secret the provider issues
        must be pasted."""
        if value:
            if self.secret_kind in ("none", "basic"):
                return f"{self.label} takes no secret."
            if problem := self.validate_secret(value):
                return problem
            if self.secret_kind == "token" and len(value) < MIN_TOKEN_LENGTH:
                return f"A token needs at least {MIN_TOKEN_LENGTH} characters."
            return ""
        if required and not self.generates_secret and self.secret_kind != "none":
            return f"Paste the {self.secret_label.lower()} that {self.label} gives you."
        return ""

    def event_type(self, headers: Mapping[str, str], payload: Any) -> str:
        """The delivery's event type: the preset's own header or payload path, else a generic one."""
        found = first_text(
            headers,
            payload,
            (*self.event_type_headers, *GENERIC_HEADERS),
            (*self.event_type_paths, *GENERIC_PATHS),
        )
        return found.partition(":")[2][:200]

    def idempotency_key(self, headers: Mapping[str, str], payload: Any, *, payload_id: bool = False) -> str | None:
        """The delivery's idempotency key, or None. `payload_id`: the endpoint also treats the
        payload's top-level id as the key."""
        paths = (*self.idempotency_paths, *(("id",) if payload_id else ()))
        # A preset that names its own key uses only that one: a generic header is not covered by
        # the provider's signature, and trusting it would let a captured delivery be replayed
        # under fresh keys.
        own = self.idempotency_headers or self.idempotency_paths
        names = self.idempotency_headers if own else GENERIC_IDEMPOTENCY
        key = first_text(headers, payload, names, paths)
        if not key:
            return None
        if len(key) > 200:
            # Long keys are hashed rather than cut, so two distinct keys never collide.
            key = "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
        return key

    def sample_request(self, scheme: Scheme, url: str, secret: str, now: float) -> tuple[bytes, dict[str, str]]:
        """A test event signed the way this preset signs with `scheme`, for `send_test_webhook`."""
        event_id = "evt_test_" + secrets.token_hex(8)
        headers = {"Content-Type": "application/json", "User-Agent": "webhook-inbox-test/1", **self.sample_headers}
        if self.idempotency_headers:
            # The provider's delivery id (X-GitHub-Delivery, Linear-Delivery, …), fresh each time
            # like the provider's: a test event gets its idempotency key, and a second one is not
            # taken for a duplicate of the first. A scheme that signs the id keeps this one.
            headers[self.idempotency_headers[0]] = str(uuid.uuid4())
        payload: dict[str, Any] = {
            "type": "inbox.test",
            "id": event_id,
            "event_id": event_id,
            "data": {"message": "A test event from Webhook Inbox"},
        }
        body, headers["Content-Type"] = scheme.sample_body(payload, secret, now)
        headers.update(scheme.sign(Delivery("POST", url, headers, body, now), secret))
        return body, headers


PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


register(
    Preset(
        "token",
        "Shared token in a header",
        TokenScheme(),
        source="-",
        instructions="Send the token in the {header} header with every request to {url}.",
        generates_secret=True,
        secret_label="Token",
        configure=token_in_header,
    )
)
register(
    Preset(
        "basic",
        "HTTP Basic authentication",
        BasicScheme(),
        source="RFC 7617, The 'Basic' HTTP Authentication Scheme",
        instructions=(
            "Configure HTTP Basic authentication with the username and password shown once, and the URL {url}."
        ),
        generates_secret=True,
        secret_label="Password",
    )
)
register(
    Preset(
        "none",
        "None: the secret URL alone",
        NoScheme(),
        source="-",
        instructions="Anyone who knows {url} can post to it: keep it private, or pick a scheme.",
    )
)
register(
    Preset(
        # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        "github",
        "GitHub",
        HmacScheme(header="X-Hub-Signature-256", prefix="sha256="),
        source="https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries",
        instructions=(
            "Repository or organization → Settings → Webhooks → Add webhook. Payload URL: {url}. "
            "Content type: application/json. Secret: the secret shown once here."
        ),
        generates_secret=True,
        event_type_headers=("X-GitHub-Event",),
        idempotency_headers=("X-GitHub-Delivery",),
    )
)
register(
    Preset(
        # stripe-python, stripe/_webhook.py: WebhookSignature, DEFAULT_TOLERANCE = 300, "{t}.{payload}"
        "stripe",
        "Stripe",
        SignatureListScheme(header="Stripe-Signature"),
        source="https://docs.stripe.com/webhooks#verify-manually ; stripe-python stripe/_webhook.py",
        instructions=(
            "Dashboard → Developers → Webhooks → Add endpoint with the URL {url}, then reveal the "
            "endpoint's signing secret (whsec_…) and paste it here."
        ),
        secret_pattern=r"whsec_[A-Za-z0-9+/=_-]{8,}",
        event_type_paths=("type",),
        idempotency_paths=("id",),
    )
)
register(
    Preset(
        # https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook
        "shopify",
        "Shopify",
        HmacScheme(header="X-Shopify-Hmac-Sha256", encoding="base64"),
        source="https://shopify.dev/docs/apps/build/webhooks/subscribe/https",
        instructions=(
            "Subscribe the webhook with the address {url}; paste the app's client secret (or, for "
            "admin-created webhooks, the key shown under Settings → Notifications → Webhooks) here."
        ),
        event_type_headers=("X-Shopify-Topic",),
        idempotency_headers=("X-Shopify-Webhook-Id", "X-Shopify-Event-Id"),
    )
)
register(
    Preset(
        # https://api.slack.com/authentication/verifying-requests-from-slack ; tolerance 5 minutes
        "slack",
        "Slack",
        HmacScheme(
            header="X-Slack-Signature",
            prefix="v0=",
            template="v0:{timestamp}:{body}",
            timestamp_header="X-Slack-Request-Timestamp",
            tolerance=300,
        ),
        source="https://api.slack.com/authentication/verifying-requests-from-slack",
        instructions=(
            "api.slack.com/apps → your app → Basic Information → App Credentials: paste the Signing "
            "Secret here. Event Subscriptions → Request URL: {url} (the url_verification challenge "
            "is answered automatically)."
        ),
        event_type_paths=("event.type", "type"),
        idempotency_paths=("event_id",),
        handshake=SlackChallenge(),
    )
)
register(
    Preset(
        # https://www.standardwebhooks.com/ (spec) ; the standardwebhooks package verifies
        "standard",
        "Standard Webhooks",
        StandardWebhooksScheme(prefixes=("webhook", "svix")),
        source="https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md",
        instructions="Give the sender the URL {url} and the signing secret (whsec_…) shown once here.",
        generates_secret=True,
        event_type_paths=("type", "event_type"),
        idempotency_headers=("webhook-id", "svix-id"),
    )
)
register(
    Preset(
        # https://docs.svix.com/receiving/verifying-payloads/how-manual ; Clerk and Resend send through Svix
        "svix",
        "Svix (Clerk, Resend, …)",
        StandardWebhooksScheme(prefixes=("svix", "webhook")),
        source="https://docs.svix.com/receiving/verifying-payloads/how-manual",
        instructions=(
            "In the provider's webhook settings (Clerk: Configure → Webhooks; Resend: Webhooks) add the "
            "endpoint {url}, then copy its signing secret (whsec_…) here."
        ),
        secret_pattern=r"whsec_[A-Za-z0-9+/=]{8,}",
        event_type_paths=("type", "event_type"),
        idempotency_headers=("svix-id", "webhook-id"),
    )
)
register(
    Preset(
        # https://www.twilio.com/docs/usage/webhooks/webhooks-security ; twilio-python request_validator.py
        "twilio",
        "Twilio",
        UrlParamsScheme(),
        source="https://www.twilio.com/docs/usage/webhooks/webhooks-security",
        instructions=(
            "Console → Account → API keys & tokens: paste the Auth Token here. Set the webhook URL of your "
            "number or service to {url} exactly (the signature covers the URL)."
        ),
        secret_pattern=r"[0-9a-f]{32}",
        event_type_paths=("EventType", "SmsStatus", "CallStatus"),
        idempotency_headers=("I-Twilio-Idempotency-Token",),
    )
)
register(
    Preset(
        # https://developers.facebook.com/docs/graph-api/webhooks/getting-started
        "meta",
        "Meta (WhatsApp, Messenger, Instagram)",
        HmacScheme(header="X-Hub-Signature-256", prefix="sha256="),
        source="https://developers.facebook.com/docs/graph-api/webhooks/getting-started",
        instructions=(
            "App Dashboard → Webhooks (or WhatsApp → Configuration): Callback URL {url}, Verify token: "
            "the verify token shown once here. Paste the app secret (App settings → Basic) here. The "
            "GET verification request is answered automatically."
        ),
        secret_label="App secret",
        event_type_paths=("object",),
        handshake=MetaSubscription(),
        secret_pattern=r"[0-9a-f]{32}",
    )
)
register(
    Preset(
        # https://developer.paddle.com/webhooks/signature-verification ; Paddle-Signature: ts=…;h1=…
        "paddle",
        "Paddle",
        SignatureListScheme(
            header="Paddle-Signature",
            pair_separator=";",
            timestamp_key="ts",
            signature_key="h1",
            template="{timestamp}:{body}",
            tolerance=5,
        ),
        source="https://developer.paddle.com/webhooks/signature-verification",
        instructions=(
            "Paddle → Developer tools → Notifications → New destination with the URL {url}; paste the "
            "destination's secret key (pdl_ntfset_…) here."
        ),
        secret_pattern=r"pdl_ntfset_[A-Za-z0-9_]{8,}",
        event_type_paths=("event_type",),
        idempotency_paths=("event_id",),
    )
)
register(
    Preset(
        # https://linear.app/developers/webhooks#securing-webhooks ; webhookTimestamp within 60 s
        "linear",
        "Linear",
        HmacScheme(
            header="Linear-Signature", timestamp_json_field="webhookTimestamp", timestamp_format="unix_ms", tolerance=60
        ),
        source="https://linear.app/developers/webhooks",
        instructions="Settings → API → Webhooks → New webhook with the URL {url}; paste its signing secret here.",
        secret_pattern=r"lin_wh_[A-Za-z0-9]{8,}",
        event_type_headers=("Linear-Event",),
        event_type_paths=("type",),
        idempotency_headers=("Linear-Delivery",),
    )
)
register(
    Preset(
        # https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint-validating-security-request-headers
        "discord",
        "Discord",
        Ed25519Scheme(),
        source="https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint",
        instructions=(
            "Developer Portal → your application → General Information: paste the Public Key here, and set "
            "the Interactions Endpoint URL (or Webhook Events URL) to {url}. Discord's PING is answered."
        ),
        secret_label="Public key",
        event_type_paths=("event.type", "type"),
        handshake=DiscordPing(),
    )
)
register(
    Preset(
        # https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message
        "twitch",
        "Twitch EventSub",
        HmacScheme(
            header="Twitch-Eventsub-Message-Signature",
            prefix="sha256=",
            template="{id}{timestamp}{body}",
            id_header="Twitch-Eventsub-Message-Id",
            timestamp_header="Twitch-Eventsub-Message-Timestamp",
            timestamp_format="rfc3339",
            tolerance=600,
        ),
        source="https://dev.twitch.tv/docs/eventsub/handling-webhook-events/",
        instructions=(
            "Create the EventSub subscription with transport method webhook, callback {url} and the secret "
            "shown once here. The webhook_callback_verification challenge is answered automatically."
        ),
        generates_secret=True,
        event_type_headers=("Twitch-Eventsub-Subscription-Type",),
        idempotency_headers=("Twitch-Eventsub-Message-Id",),
        handshake=TwitchChallenge(),
        # A test event is a notification (not the callback verification) of its own type.
        sample_headers={
            "Twitch-Eventsub-Message-Type": "notification",
            "Twitch-Eventsub-Subscription-Type": "inbox.test",
        },
    )
)
register(
    Preset(
        # https://docs.gitlab.com/user/project/integrations/webhooks/#create-a-webhook (secret token)
        "gitlab",
        "GitLab",
        TokenScheme(header="X-Gitlab-Token"),
        source="https://docs.gitlab.com/user/project/integrations/webhooks/",
        instructions=(
            "Project → Settings → Webhooks → Add new webhook: URL {url}, Secret token: the token shown once here."
        ),
        generates_secret=True,
        secret_label="Secret token",
        event_type_headers=("X-Gitlab-Event",),
        idempotency_headers=("Idempotency-Key", "X-Gitlab-Event-UUID"),
    )
)
register(
    Preset(
        # https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/#securing-webhooks
        "mailgun",
        "Mailgun",
        BodyFieldsScheme(),
        source="https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks",
        instructions="Send → Webhooks: add {url} for the events you want; paste the HTTP webhook signing key here.",
        secret_label="Webhook signing key",
        event_type_paths=("event-data.event", "event"),
        # Mailgun signs timestamp + token only, and asks receivers to refuse a reused token:
        # the token is the key, so a replayed signature stores nothing new.
        idempotency_paths=("signature.token",),
    )
)
register(
    Preset(
        # https://developer.squareup.com/docs/webhooks/step3validate ; notification URL + body, base64
        "square",
        "Square",
        HmacScheme(header="X-Square-HmacSha256-Signature", encoding="base64", template="{url}{body}"),
        source="https://developer.squareup.com/docs/webhooks/step3validate",
        instructions=(
            "Developer Console → your application → Webhooks → Subscriptions: notification URL {url} exactly "
            "(the signature covers it); paste the subscription's signature key here."
        ),
        secret_label="Signature key",
        event_type_paths=("type",),
        idempotency_paths=("event_id",),
    )
)
register(
    Preset(
        # https://developers.zoom.us/docs/api/webhooks/#verify-webhook-events
        "zoom",
        "Zoom",
        HmacScheme(
            header="x-zm-signature",
            prefix="v0=",
            template="v0:{timestamp}:{body}",
            timestamp_header="x-zm-request-timestamp",
            tolerance=300,
        ),
        source="https://developers.zoom.us/docs/api/webhooks/",
        instructions=(
            "Zoom App Marketplace → your app → Features → Access: paste the Secret Token here; Event "
            "subscriptions → Event notification endpoint URL: {url} (URL validation is answered)."
        ),
        secret_label="Secret token",
        event_type_paths=("event",),
        handshake=ZoomValidation(),
    )
)
register(
    Preset(
        # https://developers.intercom.com/docs/webhooks/setting-up-webhooks#signed-notifications
        "intercom",
        "Intercom",
        HmacScheme(header="X-Hub-Signature", digest="sha1", prefix="sha1="),
        source="https://developers.intercom.com/docs/webhooks/setting-up-webhooks",
        instructions=(
            "Developer Hub → your app → Webhooks: endpoint URL {url}; paste the app's client secret "
            "(Basic information) here."
        ),
        secret_label="Client secret",
        event_type_paths=("topic",),
        idempotency_paths=("id",),
    )
)

register(
    Preset(
        "hmac",
        "Generic HMAC (configure by hand)",
        HmacScheme(header=HMAC_OPTION_DEFAULTS["header"]),  # type: ignore[arg-type]
        source="-",
        instructions=(
            "Sign each request with HMAC over the configured template with the secret shown once here, "
            "and send it to {url}."
        ),
        generates_secret=True,
        configure=configured_hmac,
    )
)


def preset_choices() -> list[tuple[str, str]]:
    return [(name, preset.label) for name, preset in PRESETS.items()]
