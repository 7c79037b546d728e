from __future__ import annotations

import base64
import hmac
import logging
import re
import secrets
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit

import jmespath
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.db import DatabaseError, IntegrityError, connections, models, transaction
from django.db.models.functions import TruncHour
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from jmespath.exceptions import JMESPathError

from inbox import audit
from inbox.addresses import validate_destination_url
from inbox.secrets import decrypt, encrypt, token_digest
from inbox.verification import DEFAULT_PRESET, PRESETS, Preset, Scheme, Secret, preset_choices

RATE_RE = re.compile(r"^[1-9][0-9]{0,8}/(?:[1-9][0-9]{0,4})?[smhd]$")
HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,99}$")
RECEIVER_METHODS = ("POST", "PUT", "PATCH", "DELETE", "GET")
DEFAULT_RATE = "600/m"
DEFAULT_MAX_BODY = 1024 * 1024
# Headers that carry credentials in any scheme; their values never reach the database.
ALWAYS_REDACTED = frozenset({"authorization", "proxy-authorization", "cookie", "x-webhook-token"})
REDACTED = "[redacted]"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

logger = logging.getLogger("inbox.models")


def validate_rate(value: str) -> None:
    if not RATE_RE.match(value):
        raise ValidationError("Enter a rate such as 120/m: a count, a slash, an optional number and one of s, m, h, d.")


MAX_RATE_RE = re.compile(r"^[1-9][0-9]{0,6}/[smh]$")
RATE_UNITS = {"s": 1, "m": 60, "h": 3600}


def validate_max_rate(value: str) -> None:
    if value and not MAX_RATE_RE.match(value):
        raise ValidationError("Enter a rate such as 10/s, 100/m or 1000/h: a count, a slash and one of s, m, h.")


def parse_max_rate(value: str) -> tuple[int, int] | None:
    """(count, window in seconds) of a max rate ("100/m" -> (100, 60)); None for no limit."""
    if not value or not MAX_RATE_RE.match(value):
        return None
    count, unit = value.split("/")
    return int(count), RATE_UNITS[unit]


def validate_transform(value: str) -> None:
    """A JMESPath expression that compiles (the jmespath package runs no code: it only
    reshapes JSON)."""
    if not value.strip():
        return
    try:
        jmespath.compile(value)
    except JMESPathError as exc:
        # The package's message spans lines and points with a caret: one line, with the column.
        first = str(exc).strip().splitlines()[0].rstrip(":") if str(exc).strip() else exc.__class__.__name__
        position = getattr(exc, "lex_position", None)
        where = f" (at character {position + 1})" if isinstance(position, int) else ""
        raise ValidationError(f"Not a JMESPath expression: {first}{where}.", code="transform") from None


def validate_header_name(value: str) -> None:
    if not HEADER_NAME_RE.match(value):
        raise ValidationError("Enter an HTTP header name: letters, digits and dashes.")


# Headers a server, a proxy or the HTTP framing itself owns: a token there would be stripped,
# rewritten or mistaken for something else on the way in (or leak into a cookie jar).
RESERVED_TOKEN_HEADERS = frozenset(
    {
        "host", "content-type", "content-length", "content-encoding", "transfer-encoding", "authorization",
        "proxy-authorization", "cookie", "set-cookie", "connection", "keep-alive", "te", "trailer", "upgrade",
        "proxy-connection", "expect", "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
        "x-real-ip", "user-agent", "accept", "accept-encoding", "date", "range",
    }
)  # fmt: skip


def validate_token_header(value: str) -> None:
    validate_header_name(value)
    if value.lower() in RESERVED_TOKEN_HEADERS:
        raise ValidationError(f"{value} is a standard HTTP header that servers and proxies own; pick another name.")


# The only content types an endpoint may answer with: none of them is run or rendered as a
# page by a browser, so an answer can never become a script or a page on the dashboard's
# origin (docs/architecture.md, "The receiver's answers"). Older rows with another type
# answer as text/plain (Endpoint.answer_content_type).
INERT_CONTENT_TYPES = (
    "text/plain",
    "application/json",
    "application/xml",
    "text/xml",
    "application/x-www-form-urlencoded",
)
# C0 and C1 controls, DEL and lone surrogates: invisible in a page, and able to spoof or
# break what is shown around them. Newline and tab are allowed where text has lines.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
LINE_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def content_type_base(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def validate_message_cap(value: int | None) -> None:
    # 0 would read as "no cap" to some and purge everything to the rest: empty means no cap.
    if value is not None and value < 1:
        raise ValidationError("Keep at least 1 message, or leave it empty for no cap.")


def validate_inert_content_type(value: str) -> None:
    if content_type_base(value) not in INERT_CONTENT_TYPES:
        raise ValidationError(f"Answer with one of {', '.join(INERT_CONTENT_TYPES)}.")
    if LINE_CONTROL_RE.search(value):
        raise ValidationError("Enter a single-line content type.")


def validate_single_line(value: str) -> None:
    if LINE_CONTROL_RE.search(value):
        raise ValidationError("Remove the control characters (line breaks, tabs, invisible characters).")


# Format characters (zero-width spaces and joiners, bidi controls such as U+202E), and the
# line and paragraph separators U+2028/U+2029: invisible, or line breaks a mail header
# refuses. A name people read in a chat, a subject line or a page holds none of them.
INVISIBLE_CATEGORIES = frozenset({"Cf", "Zl", "Zp"})
# Blank characters Unicode files elsewhere: the Hangul fillers (letters that render as
# nothing), the combining grapheme joiner and the variation selectors.
INVISIBLE_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u034f" + "".join(map(chr, range(0xFE00, 0xFE10))))


def _invisible(char: str) -> bool:
    return char in INVISIBLE_CHARACTERS or unicodedata.category(char) in INVISIBLE_CATEGORIES


def validate_visible_name(value: str) -> None:
    """validate_single_line (C0/C1 controls), and no invisible format character or line
    separator either: for names that travel outside the page (an alert rule's, in a
    notification's text and an email subject)."""
    validate_single_line(value)
    found = sorted({char for char in value if _invisible(char)})
    if found:
        codes = ", ".join(f"U+{ord(char):04X}" for char in found[:5])
        raise ValidationError(f"Remove the invisible characters ({codes}).", code="invisible")


def mark_invisible(value: str) -> str:
    """Text with each control, invisible format character (U+202E, U+200B...) and line or
    paragraph separator shown as a marker, `⟨U+202E⟩`, the dashboard's (textfilters.bidi)
    for what travels outside the page: a notification's text, an email subject, an echoed
    query value. Older rows may hold what validate_visible_name now refuses."""
    return "".join(
        f"⟨U+{ord(char):04X}⟩" if _invisible(char) or unicodedata.category(char) in ("Cc", "Cs") else char
        for char in value
    )


def validate_text(value: str) -> None:
    if CONTROL_RE.search(value):
        raise ValidationError("Remove the invisible control characters (line breaks and tabs are fine).")


def parse_methods(value: str) -> tuple[str, ...]:
    """The HTTP methods in a comma-separated list ("post, GET" -> ("POST", "GET"))."""
    return tuple(m.strip().upper() for m in value.split(",") if m.strip())


def validate_methods(value: str) -> None:
    methods = parse_methods(value)
    if not methods:
        raise ValidationError("Allow at least one method.")
    unknown = [m for m in methods if m not in RECEIVER_METHODS]
    if unknown:
        raise ValidationError(
            f"Unsupported method(s): {', '.join(unknown)}. Choose from {', '.join(RECEIVER_METHODS)}."
        )


def new_slug() -> str:
    # 24 random bytes: 192 bits, 32 URL-safe characters.
    return secrets.token_urlsafe(24)


class EndpointQuerySet(models.QuerySet["Endpoint"]):
    def enabled(self) -> EndpointQuerySet:
        return self.filter(enabled=True)

    def named(self, value: str) -> Endpoint | None:
        """The endpoint a command-line argument names: by its name, else by its id."""
        endpoint = self.filter(name=value).first()
        if endpoint is None and value.isdigit():
            endpoint = self.filter(pk=int(value)).first()
        return endpoint

    def create_quick(self, created_by: Any = None) -> tuple[Endpoint, dict[str, str]]:
        """A token endpoint with every default and a generated name (`quick-3f9a2c`): a URL
        to try in one click. Returns it and its token, to be shown once."""
        for _ in range(5):
            endpoint = Endpoint(
                name=f"quick-{secrets.token_hex(3)}",
                description="Made with Quick endpoint: rename it, or pick a provider's preset, under Edit.",
                created_by=created_by,
            )
            shown = endpoint.set_secret()
            try:
                with transaction.atomic():
                    endpoint.save()
            except IntegrityError:
                continue  # the name was taken (1 in 16 million): draw another
            return endpoint, shown
        raise IntegrityError("no free quick endpoint name after 5 tries")

    def purge(self, batch_size: int) -> dict[str, int]:
        """Apply each endpoint's retention and cap, in batches; {endpoint name: messages deleted}."""
        return {endpoint.name: endpoint.purge(batch_size) for endpoint in self}


# What staff set on an endpoint, in the order it is shown: the dashboard's form and the
# API's serializer both take this list.
ENDPOINT_SETTINGS = (
    "name",
    "description",
    "enabled",
    "auth",
    "token_header",
    "allowed_methods",
    "rate_limit",
    "rate_limit_fail_open",
    "max_body_bytes",
    "retention_days",
    "max_messages",
    "dedupe_on_payload_id",
    "max_retries",
    "response_status",
    "response_content_type",
    "response_body",
)


class Endpoint(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    slug = models.CharField(max_length=64, unique=True, default=new_slug, editable=False)
    enabled = models.BooleanField(default=True, help_text="A disabled endpoint answers 404.")

    auth = models.CharField(max_length=20, choices=preset_choices, default="token")
    token_header = models.CharField(
        max_length=100,
        default="X-Webhook-Token",
        validators=[validate_header_name],
        help_text="The request header that carries the token.",
    )
    # Generated tokens and passwords are kept as keyed digests; secrets the scheme needs in
    # clear (HMAC keys, public keys) are kept encrypted with INBOX_ENCRYPTION_KEYS.
    token_digest = models.CharField(max_length=64, blank=True, editable=False)
    secret_encrypted = models.TextField(blank=True, editable=False)
    basic_username = models.CharField(max_length=100, blank=True, editable=False)
    # After a rotation the previous credential keeps working until previous_expires_at.
    previous_token_digest = models.CharField(max_length=64, blank=True, editable=False)
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    token_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    scheme_options = models.JSONField(default=dict, blank=True, help_text="Generic HMAC parameters.")

    allowed_methods = models.CharField(
        max_length=40,
        default="POST",
        validators=[validate_methods],
        help_text="Comma-separated: POST, PUT, PATCH, DELETE, GET.",
    )
    rate_limit = models.CharField(
        max_length=20,
        default=DEFAULT_RATE,
        validators=[validate_rate],
        help_text="Requests per sender IP, e.g. 120/m, 10/s, 5000/h.",
    )
    rate_limit_fail_open = models.BooleanField(
        default=True,
        help_text="When the rate-limit cache is down, keep accepting (and log) instead of answering 503.",
    )
    max_body_bytes = models.PositiveIntegerField(
        default=DEFAULT_MAX_BODY,
        validators=[MinValueValidator(1), MaxValueValidator(50 * 1024 * 1024)],
        help_text="Larger bodies are refused with 413.",
    )
    retention_days = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1), MaxValueValidator(3650)])
    max_messages = models.PositiveIntegerField(
        null=True, blank=True, help_text="Keep at most this many messages (oldest purged first)."
    )
    dedupe_on_payload_id = models.BooleanField(
        default=False,
        help_text="Also treat the JSON payload's top-level id as the idempotency key.",
    )

    max_retries = models.PositiveSmallIntegerField(
        default=5,
        validators=[MaxValueValidator(20)],
        help_text="Retries of a failed forward or handler, with exponential backoff (5 span about an hour).",
    )

    response_status = models.PositiveSmallIntegerField(
        default=200, validators=[MinValueValidator(200), MaxValueValidator(299)]
    )
    response_body = models.TextField(default="Message received.", blank=True, max_length=10000)
    response_content_type = models.CharField(max_length=100, default="text/plain")

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DB_SET_NULL, editable=False
    )

    objects = EndpointQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("inbox:endpoint-detail", args=[self.pk])

    def clean_fields(self, exclude: Any = None) -> None:
        # Here rather than as field validators so the dashboard's form and create_endpoint
        # (both call full_clean) refuse the same things without a schema migration.
        errors: dict[str, Any] = {}
        try:
            super().clean_fields(exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        checks = (
            ("name", validate_single_line),
            ("description", validate_text),
            ("token_header", validate_token_header),
            ("response_content_type", validate_inert_content_type),
            ("max_messages", validate_message_cap),
        )
        for field, check in checks:
            if field in errors or (exclude and field in exclude):
                continue
            try:
                check(getattr(self, field))
            except ValidationError as exc:
                errors[field] = exc.error_list
        if errors:
            raise ValidationError(errors)

    @property
    def answer_content_type(self) -> str:
        """The configured content type if it is inert, text/plain otherwise (rows saved
        before the allowlist existed)."""
        value = self.response_content_type
        if not (content_type_base(value) in INERT_CONTENT_TYPES and not LINE_CONTROL_RE.search(value)):
            return "text/plain; charset=utf-8"
        if "charset=" in value.lower() or content_type_base(value) == "application/json":
            return value  # JSON is UTF-8 by definition (RFC 8259) and takes no charset
        # The body is sent encoded as UTF-8 (DEFAULT_CHARSET): say so, or a client may read
        # a non-ASCII answer as Latin-1.
        return f"{value}; charset=utf-8"

    @property
    def path(self) -> str:
        return receiver_path(self.slug)

    @property
    def url(self) -> str:
        return settings.PUBLIC_BASE_URL + self.path

    @property
    def masked_url(self) -> str:
        """The receiver URL as pages show it after it was first shown: the slug is the
        credential, so only its first characters, to tell endpoints apart."""
        return f"{settings.PUBLIC_BASE_URL}{receiver_path(self.slug)[: -len(self.slug) - 1]}{self.slug[:4]}…/"

    def new_url(self) -> None:
        """A new slug: the old receiver URL answers 404 from now on (the receiver's cache
        forgets this endpoint when it is saved)."""
        self.slug = new_slug()
        self.save(update_fields=["slug", "updated_at"])

    @property
    def methods(self) -> tuple[str, ...]:
        return parse_methods(self.allowed_methods)

    # --- Verification ----------------------------------------------------------------
    @property
    def preset(self) -> Preset:
        return PRESETS.get(self.auth) or PRESETS[DEFAULT_PRESET]

    @property
    def scheme(self) -> Scheme:
        return self.preset.scheme_for(self)

    @property
    def secret_kind(self) -> str:
        return self.scheme.secret_kind

    def rotation_problem(self, value: str) -> str:
        """Why `value` cannot replace this endpoint's secret, '' when it can (empty: generate
        one, where the preset generates its secrets). The rotate form's and the API's rule."""
        preset = self.preset
        if self.secret_kind == "none":
            return f"{preset.label} has no secret to rotate."
        if value:
            if self.secret_kind == "basic":
                return "HTTP Basic passwords are always generated."
            return preset.validate_secret(value) or ""
        if not preset.generates_secret and self.secret_kind not in ("token", "basic"):
            return f"Paste the new {preset.secret_label.lower()} from {preset.label}."
        return ""

    @property
    def credential_header(self) -> str:
        """The header a token travels in, for token schemes ('' otherwise)."""
        return self.scheme.credential_header

    @property
    def previous_valid(self) -> bool:
        return self.previous_expires_at is not None and self.previous_expires_at > timezone.now()

    def set_secret(self, value: str | None = None) -> dict[str, str]:
        """Set a new credential, generated unless `value` is given, and return what must be
        shown to staff this once (nothing of it is stored in clear)."""
        kind = self.secret_kind
        if kind == "none":
            self.token_digest = self.secret_encrypted = ""
            return {}
        if kind == "token":
            value = value or self.scheme.new_secret()
            self.token_digest = token_digest(value)
            return {"token": value}
        if kind == "basic":
            self.basic_username = self.basic_username or "inbox-" + secrets.token_hex(4)
            value = value or self.scheme.new_secret()
            self.token_digest = token_digest(f"{self.basic_username}:{value}")
            return {"username": self.basic_username, "password": value}
        shown: dict[str, str] = {}
        if value is None:
            if not self.preset.generates_secret:
                raise ValueError(f"{self.preset.label} issues this secret: paste it from the provider.")
            value = self.scheme.new_secret()
            shown["secret"] = value
        self.secret_encrypted = encrypt(value)
        handshake = self.preset.handshake
        if handshake is not None and handshake.uses_verify_token:
            # The handshake (Meta's GET subscription check) presents a verify token of our choosing.
            verify_token = secrets.token_urlsafe(24)
            self.token_digest = token_digest(verify_token)
            shown["verify_token"] = verify_token
        return shown

    def set_secret_answered(self, value: str | None = None) -> dict[str, str]:
        """`set_secret` for a program (the API, `create_endpoint`): a secret it chose comes back
        with the rest of the credential, so one answer holds all of it."""
        shown = self.set_secret(value)
        if value is not None and self.secret_kind != "token":
            shown.setdefault("secret", value)
        return shown

    def rotate_secret(self, value: str | None = None, grace: timedelta = timedelta(hours=24)) -> dict[str, str]:
        """Replace the credential; the previous one keeps verifying for `grace`."""
        previous_digest, previous_secret = self.token_digest, self.secret_encrypted
        shown = self.set_secret(value)
        self.previous_token_digest, self.previous_secret_encrypted = previous_digest, previous_secret
        now = timezone.now()
        self.previous_expires_at = now + grace if grace > timedelta(0) else None
        self.token_rotated_at = now
        self.save()
        return shown

    def _current_and_previous(self, current: str, previous: str) -> list[Secret]:
        found = [Secret(current, "current")] if current else []
        if previous and self.previous_valid:
            found.append(Secret(previous, "previous"))
        return found

    def token_digests(self) -> list[Secret]:
        return self._current_and_previous(self.token_digest, self.previous_token_digest)

    def credentials(self) -> list[Secret]:
        """What the scheme verifies against: the current credential, and the previous one
        during its grace period. Digests for token kinds, the secret itself otherwise."""
        if self.secret_kind in ("token", "basic"):
            return self.token_digests()
        current = self._decrypted(self.secret_encrypted)
        # Decrypt the previous secret only while it may still be used: this runs per request.
        previous = self._decrypted(self.previous_secret_encrypted) if self.previous_valid else ""
        return self._current_and_previous(current, previous)

    def _decrypted(self, value: str) -> str:
        # The receiver verifies with the same cached endpoint object for a few seconds:
        # decrypt each ciphertext once per object, not on every delivery.
        if not value:
            return ""
        memo: dict[str, str] = self.__dict__.setdefault("_decrypted_secrets", {})
        if value not in memo:
            memo[value] = decrypt(value)
        return memo[value]

    @property
    def can_sign_tests(self) -> bool:
        """Whether this endpoint holds what it takes to sign a test delivery: not for
        digest-stored tokens and passwords, nor for a public key."""
        return self.secret_kind in ("hmac", "none")

    def test_request(self) -> tuple[bytes, dict[str, str]]:
        current = next((c.value for c in self.credentials() if c.label == "current"), "")
        return self.preset.sample_request(self.scheme, self.url, current, time.time())

    def check_token(self, presented: str | None) -> str:
        """Which stored token digest `presented` matches ("current", "previous" or "")."""
        if not presented:
            return ""
        digest = token_digest(presented)
        # Every candidate is compared, so the time taken does not say which one matched.
        matched = [s.label for s in self.token_digests() if hmac.compare_digest(digest, s.value)]
        return matched[0] if matched else ""

    def purge(self, batch_size: int, now: datetime | None = None) -> int:
        """Delete messages past this endpoint's retention, then any beyond its cap."""
        deleted = Message.objects.expired(self, now).delete_in_batches(batch_size)
        cutoff = (now or timezone.now()) - timedelta(days=self.retention_days)
        self.rejected_attempts.filter(at__lt=cutoff).delete()
        if self.max_messages is not None:
            # The newest row past the cap; it and everything older go.
            first_extra = self.messages.newest_first().values_list("received_at", "id")[
                self.max_messages : self.max_messages + 1
            ]
            for received_at, pk in first_extra:
                over_cap = self.messages.filter(
                    models.Q(received_at__lt=received_at) | models.Q(received_at=received_at, pk__lte=pk)
                )
                deleted += over_cap.delete_in_batches(batch_size)
        return deleted

    def redacted_header_names(self) -> frozenset[str]:
        return ALWAYS_REDACTED | {self.credential_header.lower()} - {""}

    # --- Processing -------------------------------------------------------------------
    @property
    def active_destinations(self) -> list[Destination]:
        # The receiver's endpoint cache prefetches these (inbox/ingest/endpoints.py), so the
        # receiver asks the database nothing.
        prefetched: list[Destination] | None = getattr(self, "enabled_destinations", None)
        if prefetched is not None:
            return prefetched
        return list(self.destinations.filter(enabled=True))

    def hourly_counts(self, since: datetime) -> dict[datetime, int]:
        """{hour: messages received} since `since`, from the (endpoint, received_at) index."""
        rows = (
            self.messages.filter(received_at__gte=since)
            .annotate(hour=TruncHour("received_at"))
            .order_by()
            .values_list("hour")
            .annotate(count=models.Count("id"))
        )
        return {hour: count for hour, count in rows}

    def failure_rate(self, since: datetime) -> tuple[int, int]:
        """(failed, finished) processing attempts since `since`."""
        # Skipped, held and deferred attempts sent nothing: they are neither a success nor a failure.
        finished = self.attempts.filter(
            started_at__gte=since, status__in=[AttemptStatus.SUCCEEDED, AttemptStatus.FAILED]
        )
        counts = finished.aggregate(
            total=models.Count("id"), failed=models.Count("id", filter=models.Q(status=AttemptStatus.FAILED))
        )
        return counts["failed"], counts["total"]


@lru_cache(maxsize=4096)
def body_as_text(raw: bytes) -> str | None:
    """The body as `body_text` keeps it: UTF-8 without NUL, else None (kept as bytes)."""
    if b"\x00" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def receiver_path(slug: str) -> str:
    # The receiver asks for its own URL on every delivery (URL-signing schemes sign it), and
    # reversing it costs about a twentieth of a delivery: once per script prefix and slug.
    return _receiver_path(get_script_prefix(), slug)


@lru_cache(maxsize=4096)
def _receiver_path(prefix: str, slug: str) -> str:
    return reverse("receiver", args=[slug])  # reverse() reads the same prefix itself


# --- Messages ---------------------------------------------------------------------------
class Verification(models.TextChoices):
    VERIFIED = "verified", "Verified"
    UNVERIFIED = "unverified", "Not verified (no scheme)"


class Status(models.TextChoices):
    """Where a message is in processing (forwarding and handlers)."""

    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (nothing to do)"


class MessageCondition(Protocol):
    """A condition on messages that applies itself to a queryset, such as a JSON path query
    (inbox.jsonpath, a layer above this module: models never import it)."""

    def apply(self, messages: MessageQuerySet) -> MessageQuerySet: ...


# PostgreSQL's GIN indexes for search and the JSON path filter (migration 0005), whose
# pending lists the worker merges (migration 0014, MessageQuerySet.flush_search_indexes).
SEARCH_INDEXES = ("message_body_trgm", "message_headers_trgm", "message_json_path")
_UNFLUSHED_REPORTED: set[str] = set()


def _report_unflushed(name: str, reason: str) -> None:
    """One warning per index and process: the flush runs every 2 s."""
    if name not in _UNFLUSHED_REPORTED:
        _UNFLUSHED_REPORTED.add(name)
        logger.warning("search index %s was not flushed: %s", name, reason)


class MessageQuerySet(models.QuerySet["Message"]):
    def newest_first(self) -> MessageQuerySet:
        return self.order_by("-received_at", "-id")

    def for_list(self) -> MessageQuerySet:
        # The list never needs the payload itself: the preview column is enough.
        return self.select_related("endpoint").defer("body_text", "body_bytes", "json", "headers")

    def older_than(self, received_at: datetime, pk: int) -> MessageQuerySet:
        """Keyset pagination: rows after (received_at, pk) in newest-first order. Unlike
        OFFSET, page 200 costs what page 1 costs, and no COUNT(*) is ever needed."""
        return self.filter(
            models.Q(received_at__lt=received_at) | models.Q(received_at=received_at, pk__lt=pk)
        ).newest_first()

    def newer_than(self, received_at: datetime, pk: int) -> MessageQuerySet:
        return self.filter(
            models.Q(received_at__gt=received_at) | models.Q(received_at=received_at, pk__gt=pk)
        ).order_by("received_at", "id")

    def search(self, text: str) -> MessageQuerySet:
        """Case-insensitive substring search over bodies and headers. PostgreSQL answers
        it from trigram indexes (migration 0005); SQLite scans."""
        return self.filter(models.Q(body_text__icontains=text) | models.Q(headers__icontains=text))

    def json_path(self, query: MessageCondition) -> MessageQuerySet:
        """Messages whose parsed JSON matches `query` (see inbox.jsonpath)."""
        return query.apply(self)

    def flush_search_indexes(self) -> int:
        """Merge the pending lists of PostgreSQL's search indexes into the indexes; the
        number of pending pages merged (0 elsewhere: SQLite has no search indexes).

        The receiver's INSERT only appends to these lists (migration 0014); merging them
        here, every 2 s in the worker, keeps that work off the 2xx path, and a list that
        never grows large keeps searches, which read it too, fast (docs/architecture.md,
        "Search indexes"). An index that is missing or cannot be flushed (dropped by hand,
        owned by another role) is logged once per process and skipped: search still works,
        and its receiver INSERTs merge the list themselves when it is full.
        """
        connection = connections[self.db]
        if connection.vendor != "postgresql":
            return 0
        merged = 0
        for name in SEARCH_INDEXES:
            try:
                with transaction.atomic(using=self.db), connection.cursor() as cursor:
                    # to_regclass: NULL for a missing index, and the function returns NULL.
                    cursor.execute("SELECT gin_clean_pending_list(to_regclass(%s))", [name])
                    pages = cursor.fetchone()[0]
            except DatabaseError as error:
                _report_unflushed(name, str(error).strip())
                continue
            if pages is None:
                _report_unflushed(name, "the index is missing")
                continue
            merged += pages
        return merged

    def start_replay(self) -> int:
        """Start a new processing round for every message here; the number of messages.

        The lease is dropped too: a worker still busy with the old round finds its round
        gone when it finishes and records nothing on the message.
        """
        return self.update(
            status=Status.PENDING,
            attempts=0,
            replays=models.F("replays") + 1,
            next_attempt_at=timezone.now(),
            lease_until=None,
        )

    def held_for(self, destination: Destination) -> MessageQuerySet:
        """Messages a paused destination holds: pending with no due time, a held attempt of
        that destination in their current round. Oldest first, the order resuming sends them."""
        return self.filter(
            models.Exists(
                Attempt.objects.filter(
                    message=models.OuterRef("pk"),
                    target=destination.target,
                    status=AttemptStatus.HELD,
                    replay=models.OuterRef("replays"),
                )
            ),
            endpoint_id=destination.endpoint_id,
            status=Status.PENDING,
            next_attempt_at__isnull=True,
        ).order_by("received_at", "id")

    def overdue(self, now: datetime, grace: timedelta) -> MessageQuerySet:
        """Pending messages whose wake-up should have run by now and that no worker holds:
        their task was lost (a worker killed mid-attempt, a failed enqueue)."""
        return self.filter(status=Status.PENDING, next_attempt_at__lt=now - grace).filter(
            models.Q(lease_until__isnull=True) | models.Q(lease_until__lt=now)
        )

    def pending_figures(self, now: datetime) -> tuple[int, datetime | None]:
        """How many messages are pending, and the earliest due time of those already due (None:
        none is). Both from the partial index of pending messages (`message_pending_due`),
        never a scan of the table: /metrics asks on every scrape."""
        pending = self.filter(status=Status.PENDING)
        oldest = pending.filter(next_attempt_at__lte=now).aggregate(due=models.Min("next_attempt_at"))["due"]
        return pending.count(), oldest

    def expired(self, endpoint: Endpoint, now: Any | None = None) -> MessageQuerySet:
        now = now or timezone.now()
        return self.filter(endpoint=endpoint, received_at__lt=now - timedelta(days=endpoint.retention_days))

    def count_upto(self, cap: int) -> int:
        """How many rows, counting no further than cap + 1: a confirmation names how many
        it acts on without an unbounded COUNT over a table of millions."""
        return self.order_by().values("pk")[: cap + 1].count()

    def delete_in_batches(self, batch_size: int) -> int:
        """Delete every row of this queryset, batch_size at a time, each in its own short
        statement so that writers (the receiver) wait for one batch at most."""
        deleted = 0
        while True:
            ids = list(self.order_by().values_list("pk", flat=True)[:batch_size])
            if not ids:
                return deleted
            count, _ = Message.objects.filter(pk__in=ids).delete()
            deleted += count


class Message(models.Model):
    # No index of its own: (endpoint, -received_at) and (endpoint, idempotency_key) both
    # start with it, and every index is one more write per accepted message.
    endpoint = models.ForeignKey(Endpoint, on_delete=models.DB_CASCADE, related_name="messages", db_index=False)
    received_at = models.DateTimeField(default=timezone.now)
    method = models.CharField(max_length=10)
    query_string = models.TextField(blank=True)
    content_type = models.CharField(max_length=255, blank=True)
    headers = models.JSONField(default=dict)
    # The raw body, byte for byte: as text when it is UTF-8 without NUL (searchable, and
    # what PostgreSQL text can hold), as bytes otherwise. Exactly one of the two is set.
    body_text = models.TextField(null=True, blank=True)  # noqa: DJ001 - NULL means "the body is bytes"
    body_bytes = models.BinaryField(null=True, blank=True)
    body_size = models.PositiveIntegerField(default=0)
    preview = models.CharField(max_length=200, blank=True)
    json = models.JSONField(null=True, blank=True)
    event_type = models.CharField(max_length=200, blank=True)
    # NULL, not "": a unique constraint treats NULLs as distinct, so deliveries without a
    # key are never mistaken for duplicates of each other.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    verification = models.CharField(max_length=20, choices=Verification.choices)
    secret_used = models.CharField(max_length=10, blank=True, help_text="Which credential matched.")

    # Processing state. The row itself is the source of truth; queued tasks are only
    # wake-ups, so a lost or duplicated task can neither lose a message nor run it twice.
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SKIPPED)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Attempts in the current round.")
    replays = models.PositiveSmallIntegerField(default=0, help_text="Rounds started by a replay.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker holds the message until lease_until; a worker killed mid-attempt lets it
    # lapse and the recovery sweep hands the message to another.
    lease_until = models.DateTimeField(null=True, blank=True)
    # Shared by the team, like a shared mailbox: opening a message marks it read for all.
    read = models.BooleanField(default=False)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-received_at"], name="message_endpoint_received"),
            models.Index(fields=["-received_at", "-id"], name="message_received"),
            models.Index(fields=["event_type"], name="message_event_type"),
            models.Index(fields=["status", "-received_at"], name="message_status_received"),
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="message_pending_due"),
            models.Index(fields=["-received_at", "-id"], condition=models.Q(read=False), name="message_unread"),
        ]
        constraints = [
            # NULL keys are distinct, so only deliveries that carry a key are deduplicated.
            models.UniqueConstraint(fields=["endpoint", "idempotency_key"], name="message_unique_delivery"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event_type or self.method}"

    def get_absolute_url(self) -> str:
        return reverse("inbox:message-detail", args=[self.pk])

    @property
    def body(self) -> bytes:
        if self.body_text is not None:
            return self.body_text.encode("utf-8")
        return bytes(self.body_bytes or b"")

    def set_body(self, raw: bytes) -> None:
        self.body_size = len(raw)
        text = body_as_text(raw)
        self.body_text, self.body_bytes = (text, None) if text is not None else (None, raw)

    @property
    def cursor(self) -> str:
        """This row's position for keyset pagination, as it travels in a URL."""
        micros = (self.received_at - EPOCH) // timedelta(microseconds=1)
        return f"{micros}_{self.pk}"

    @staticmethod
    def parse_cursor(value: str) -> tuple[datetime, int] | None:
        micros, _, pk = value.partition("_")
        try:
            return EPOCH + timedelta(microseconds=int(micros)), int(pk)
        except (ValueError, OverflowError):
            return None

    @property
    def is_text(self) -> bool:
        return self.body_text is not None

    # --- Processing ----------------------------------------------------------------------
    def claim(self, lease: timedelta, now: datetime | None = None) -> bool:
        """Take this message for one attempt, in one conditional UPDATE.

        It succeeds for one worker only: the row must still be pending, due, unleased and
        in the round and attempt this worker loaded. Any other worker, or a duplicate task,
        finds the condition false and leaves the message alone.
        """
        now = now or timezone.now()
        claimed = (
            Message.objects.filter(
                pk=self.pk,
                status=Status.PENDING,
                next_attempt_at__lte=now,
                attempts=self.attempts,
                replays=self.replays,
            )
            .filter(models.Q(lease_until__isnull=True) | models.Q(lease_until__lt=now))
            .update(attempts=models.F("attempts") + 1, lease_until=now + lease)
        )
        if claimed:
            self.attempts += 1
            self.lease_until = now + lease
        return bool(claimed)

    def finish(self, status: str, next_attempt_at: datetime | None = None) -> bool:
        """Record the outcome of the attempt this worker claimed and release the lease;
        False (and nothing written) when a replay has since started a new round."""
        self.status, self.next_attempt_at, self.lease_until = status, next_attempt_at, None
        updated = Message.objects.filter(pk=self.pk, attempts=self.attempts, replays=self.replays).update(
            status=status, next_attempt_at=next_attempt_at, lease_until=None
        )
        return bool(updated)

    def postpone(self, next_attempt_at: datetime | None) -> bool:
        """Give back the attempt this worker claimed, unused: what was left to do waits for a
        paused destination (next_attempt_at None: until it is resumed) or for its turn under a
        destination's rate. Not a retry, so the attempt count goes back down. False when a
        replay has since started a new round."""
        updated = Message.objects.filter(pk=self.pk, attempts=self.attempts, replays=self.replays).update(
            status=Status.PENDING, next_attempt_at=next_attempt_at, lease_until=None, attempts=models.F("attempts") - 1
        )
        if updated:
            self.status, self.next_attempt_at, self.lease_until = Status.PENDING, next_attempt_at, None
            self.attempts -= 1
        return bool(updated)


class RejectedAttempt(models.Model):
    """A refused delivery, as metadata only: never its body, never its secrets."""

    CAP_PER_ENDPOINT = 1000

    endpoint = models.ForeignKey(Endpoint, on_delete=models.DB_CASCADE, related_name="rejected_attempts")
    at = models.DateTimeField(default=timezone.now)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    status = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=200)
    preset = models.CharField(max_length=20)
    headers = models.JSONField(default=dict)
    body_size = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-at"], name="rejected_endpoint_at"),
            # An alert rule over every endpoint counts the refusals of its window (inbox/alerts/).
            models.Index(fields=["-at"], name="rejected_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status} {self.reason}"

    @classmethod
    def record(cls, endpoint: Endpoint, **fields: Any) -> None:
        # One INSERT and nothing else: the cap is enforced by the worker every minute
        # (inbox.tasks.housekeeping), so a flood of refusals costs the receiver no deletes.
        cls.objects.create(endpoint=endpoint, preset=endpoint.auth, **fields)

    @classmethod
    def trim(cls, endpoint: Endpoint) -> None:
        boundary = cls.objects.filter(endpoint=endpoint).values_list("at", flat=True)[
            cls.CAP_PER_ENDPOINT - 1 : cls.CAP_PER_ENDPOINT
        ]
        for at in boundary:
            cls.objects.filter(endpoint=endpoint, at__lt=at).delete()


# --- Processing: destinations, attempts, bulk jobs -------------------------------------------
SIGN_STANDARD = "standard"


class Destination(models.Model):
    """A URL every accepted message of an endpoint is forwarded to."""

    # An attempt's `target` for this destination is the prefix and its id.
    TARGET_PREFIX = "destination:"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.DB_CASCADE, related_name="destinations")
    url = models.CharField(
        "URL", max_length=2000, validators=[validate_destination_url], help_text="Messages are POSTed here."
    )
    enabled = models.BooleanField(default=True)
    timeout_seconds = models.PositiveSmallIntegerField(
        "Timeout (seconds)", default=10, validators=[MinValueValidator(1), MaxValueValidator(60)]
    )
    forward_headers = models.CharField(
        max_length=1000,
        default="*",
        blank=True,
        help_text="Original headers to pass on, comma-separated; * for all of them. Credentials, cookies "
        "and hop-by-hop headers are never passed on.",
    )
    # --- Routing (docs/architecture.md, "Routing") ---------------------------------------
    filter = models.TextField(
        blank=True,
        max_length=2000,
        help_text="Only messages matching this message-list query string are sent, e.g. "
        "event_type=invoice.*&json=data.object.amount>1000. Empty: every message.",
    )
    transform = models.TextField(
        blank=True,
        max_length=2000,
        validators=[validate_transform],
        help_text="A JMESPath expression over the JSON body; its result is sent as JSON. Empty: the original body.",
    )
    sign = models.CharField(
        "Signature",
        max_length=20,
        blank=True,
        choices=[("", "None"), (SIGN_STANDARD, "Standard Webhooks (webhook-id, -timestamp, -signature)")],
    )
    signing_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_signing_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_signing_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    max_rate = models.CharField(
        "Maximum rate",
        max_length=20,
        blank=True,
        validators=[validate_max_rate],
        help_text="At most this many forwards, across every worker: 10/s, 100/m, 1000/h. Over it a forward "
        "waits for its turn, it does not fail. Empty: no limit.",
    )
    paused = models.BooleanField(
        default=False, help_text="A paused destination holds its messages; resuming sends them, oldest first."
    )
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    paused_reason = models.CharField(max_length=200, blank=True, editable=False)
    breaker_threshold = models.PositiveSmallIntegerField(
        "Pause after failures",
        default=20,
        validators=[MaxValueValidator(1000)],
        help_text="Pause this destination after this many failed attempts in a row; 0 never pauses it.",
    )
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    # The database's rate counter (inbox/delivery/routing.py): the current window and how
    # many forwards took a turn in it. Written by conditional UPDATEs only, never by save().
    rate_window = models.BigIntegerField(null=True, blank=True, editable=False)
    rate_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.display_url

    def clean(self) -> None:
        # A second destination with the same URL would deliver every message there twice
        # (the form, the API and add_destination all come through here).
        if self.endpoint_id is not None and self.url:
            others = Destination.objects.filter(endpoint_id=self.endpoint_id, url=self.url).exclude(pk=self.pk)
            if others.exists():
                raise ValidationError({"url": "This endpoint already forwards to this URL."})

    # --- Signing --------------------------------------------------------------------------
    def set_signing_secret(self) -> str:
        """A new whsec_ secret (32 random bytes), stored encrypted; returned to be shown once."""
        value = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.signing_secret_encrypted = encrypt(value)
        return value

    def rotate_signing_secret(self, grace: timedelta = timedelta(hours=24)) -> str:
        """Replace the signing secret; the previous one signs too (a second signature in
        the header) until the grace period ends. Saves; returns the new secret."""
        previous = self.signing_secret_encrypted
        value = self.set_signing_secret()
        self.previous_signing_secret_encrypted = previous if grace > timedelta(0) else ""
        self.previous_signing_expires_at = timezone.now() + grace if grace > timedelta(0) else None
        self.save(
            update_fields=[
                "signing_secret_encrypted",
                "previous_signing_secret_encrypted",
                "previous_signing_expires_at",
            ]
        )
        return value

    def signing_secrets(self, now: datetime | None = None) -> list[str]:
        """The secrets to sign with: the current one, and the previous one in its grace period."""
        found = [decrypt(self.signing_secret_encrypted)] if self.signing_secret_encrypted else []
        expires = self.previous_signing_expires_at
        if self.previous_signing_secret_encrypted and expires is not None and expires > (now or timezone.now()):
            found.append(decrypt(self.previous_signing_secret_encrypted))
        return [s for s in found if s]

    @property
    def target(self) -> str:
        return f"{self.TARGET_PREFIX}{self.pk}"

    @property
    def display_url(self) -> str:
        """The URL without its query string or user info, which may hold the destination's
        own credentials (many webhook URLs carry a token)."""
        try:
            parts = urlsplit(self.url)
            host = parts.hostname or ""
            if ":" in host:  # IPv6: brackets, or the port would read as part of the address
                host = f"[{host}]"
            if parts.port:
                host = f"{host}:{parts.port}"
        except ValueError:
            return "(invalid URL)"  # saved before validation was as strict as it is now
        # Long path segments are tokens more often than not (Slack's, Discord's and this
        # inbox's own hook URLs carry their secret in the path): only their start is shown.
        path = "/".join(s if len(s) <= 12 else s[:4] + "…" for s in parts.path.split("/"))
        return f"{parts.scheme}://{host}{path}" + ("?…" if parts.query else "")


class AttemptStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    # Routing (inbox/delivery/routing.py): none of these is a failure or uses up a retry.
    SKIPPED = "skipped", "Skipped by filter"
    HELD = "held", "Held (destination paused)"
    DEFERRED = "deferred", "Rescheduled (rate limit)"


class Attempt(models.Model):
    """One try of one target (a destination, a handler, the signal) for one message."""

    message = models.ForeignKey(Message, on_delete=models.DB_CASCADE, related_name="processing_attempts")
    # Denormalised from the message so that an endpoint's failure rate is one indexed query.
    endpoint = models.ForeignKey(Endpoint, on_delete=models.DB_CASCADE, related_name="attempts")
    replay = models.PositiveSmallIntegerField(default=0)
    number = models.PositiveSmallIntegerField()
    target = models.CharField(max_length=300)
    label = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=AttemptStatus.choices, default=AttemptStatus.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [
            models.Index(fields=["endpoint", "-started_at"], name="attempt_endpoint_started"),
            models.Index(fields=["status", "started_at"], name="attempt_status_started"),
        ]

    def __str__(self) -> str:
        return f"{self.label} #{self.number}: {self.status}"

    @property
    def error_summary(self) -> str:
        """The line that says what went wrong: for a traceback, its last line."""
        lines = [line for line in self.error.strip().splitlines() if line.strip()]
        return lines[-1][:200] if lines else ""

    @property
    def error_is_long(self) -> bool:
        return self.error_summary != self.error.strip()


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Waiting for the worker"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class BulkAction(models.TextChoices):
    REPLAY = "replay", "Replay"
    DELETE = "delete", "Delete"
    MARK_READ = "mark_read", "Mark read"
    MARK_UNREAD = "mark_unread", "Mark unread"


# What a bulk action is called before and after it ran, for its pages and messages.
BULK_TITLES: dict[str, str] = {
    BulkAction.REPLAY: "Replay messages",
    BulkAction.DELETE: "Delete messages",
    BulkAction.MARK_READ: "Mark messages read",
    BulkAction.MARK_UNREAD: "Mark messages unread",
}
BULK_PAST: dict[str, str] = {
    BulkAction.REPLAY: "replayed",
    BulkAction.DELETE: "deleted",
    BulkAction.MARK_READ: "marked read",
    BulkAction.MARK_UNREAD: "marked unread",
}


class BulkJob(models.Model):
    """An action on many messages, run by the worker, its progress on a page of its own."""

    action = models.CharField(max_length=20, choices=BulkAction.choices, default=BulkAction.REPLAY)
    # Either the message list's query string (every message matching it) or chosen ids.
    query = models.TextField(blank=True)
    ids = models.JSONField(default=list, blank=True)
    # A confirmed whole-filter delete or replay acts on what existed when the question was
    # asked (ids up to this one), never on messages that arrived while it was read.
    upto_id = models.PositiveBigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    total = models.PositiveIntegerField(null=True, blank=True)
    done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Moved on with every batch: a running job that stops moving lost its worker.
    progressed_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DB_SET_NULL, editable=False
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{BULK_TITLES.get(self.action, self.action)} · job #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("inbox:job-detail", args=[self.pk])

    @property
    def past(self) -> str:
        """What the job did to each message: "deleted", "replayed", "marked read"..."""
        return BULK_PAST.get(self.action, self.action)

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.status == JobStatus.DONE else 0
        return min(100, self.done * 100 // self.total)

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)


# --- Audit ------------------------------------------------------------------------------------
class AuditAction(models.TextChoices):
    ENDPOINT_CREATED = "endpoint.created", "Endpoint created"
    ENDPOINT_CHANGED = "endpoint.changed", "Endpoint changed"
    ENDPOINT_DELETED = "endpoint.deleted", "Endpoint deleted"
    SECRET_ROTATED = "endpoint.rotated", "Secret rotated"
    TEST_SENT = "endpoint.test_sent", "Test event sent"
    DESTINATION_ADDED = "destination.added", "Destination added"
    DESTINATION_CHANGED = "destination.changed", "Destination changed"
    DESTINATION_DELETED = "destination.deleted", "Destination deleted"
    DESTINATION_PAUSED = "destination.paused", "Destination paused"
    DESTINATION_RESUMED = "destination.resumed", "Destination resumed"
    DESTINATION_ROTATED = "destination.rotated", "Signing secret rotated"
    MESSAGES_DELETED = "messages.deleted", "Messages deleted"
    MESSAGES_REPLAYED = "messages.replayed", "Messages replayed"
    MESSAGES_MARKED = "messages.marked", "Messages marked"
    TOKEN_CREATED = "token.created", "API token created"
    TOKEN_REVOKED = "token.revoked", "API token revoked"
    ALERT_RULE_CREATED = "alert_rule.created", "Alert rule created"
    ALERT_RULE_CHANGED = "alert_rule.changed", "Alert rule changed"
    ALERT_RULE_DELETED = "alert_rule.deleted", "Alert rule deleted"
    ALERT_RULE_MUTED = "alert_rule.muted", "Alert rule muted"
    ALERT_RULE_UNMUTED = "alert_rule.unmuted", "Alert rule unmuted"
    ALERT_ACKNOWLEDGED = "alert.acknowledged", "Alert acknowledged"


class AuditEntry(models.Model):
    """Who changed what, when. Details name what changed, never a secret's value."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DB_SET_NULL)
    # Kept as text too: the entry outlives the account.
    username = models.CharField(max_length=150)
    action = models.CharField(max_length=30, choices=AuditAction.choices)
    endpoint = models.ForeignKey(Endpoint, null=True, blank=True, on_delete=models.DB_SET_NULL)
    target = models.CharField(max_length=300, help_text="What was acted on, as shown then.")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.target}"

    @property
    def details_text(self) -> list[tuple[str, str]]:
        def text(value: Any) -> str:
            if isinstance(value, bool):
                return "yes" if value else "no"
            if isinstance(value, list):
                return ", ".join(map(str, value)) or "nothing"
            return str(value)

        return [(key.replace("_", " "), text(value)) for key, value in self.details.items()]

    @classmethod
    def record(
        cls, user: Any, action: AuditAction, target: str, endpoint: Endpoint | None = None, **details: Any
    ) -> AuditEntry:
        """Write an entry. In a request, it replaces the plain entry a signal wrote for the
        same endpoint (inbox.audit): one change, one entry, with this call's details."""
        scope = audit.current()
        endpoint_id = endpoint.pk if endpoint is not None else None
        username = user.get_username() if getattr(user, "pk", None) else "(system)"
        if scope is not None and scope.command:
            username = scope.command
            details = {**details, "via": "command"}
        fields = {
            "user": user if getattr(user, "pk", None) else None,
            "username": username,
            "action": action,
            "endpoint": endpoint if endpoint_id else None,
            "target": target[:300],
            "details": details,
        }
        entry: AuditEntry | None = None
        if scope is not None and endpoint_id:
            scope.explained.add(endpoint_id)
            for key, (plain_endpoint, plain) in reversed(scope.plain.items()):
                if plain_endpoint == endpoint_id:
                    entry = plain
                    del scope.plain[key]
                    break
        if entry is None:
            entry = cls.objects.create(**fields)
        else:
            for name, value in fields.items():
                setattr(entry, name, value)
            entry.save()
        audit.log_entry(entry)
        return entry

    @classmethod
    def record_plain(  # noqa: PLR0917 - called by inbox.audit's receivers only
        cls,
        scope: audit.Scope,
        instance: models.Model,
        action: AuditAction,
        target: str,
        endpoint_id: int | None,
        exists: bool,
        **details: Any,
    ) -> None:
        """A signal's entry for a save or delete (inbox.audit), unless the view serving this
        request wrote its own about that endpoint; a second save of the same object in the
        same request adds to the first entry."""
        if endpoint_id in scope.explained:
            return
        key = (instance._meta.label, instance.pk)
        if scope.via in ("admin", "command"):
            details["via"] = scope.via
        known = scope.plain.get(key)
        if known is not None and action == known[1].action and "changed" in details:
            entry = known[1]
            entry.details["changed"] = sorted({*entry.details.get("changed", []), *details.pop("changed")})
            entry.details.update(details)
            entry.save(update_fields=["details"])
            return
        user = scope.user
        entry = cls.objects.create(
            user=user,
            username=user.get_username() if user is not None else (scope.command or "(system)"),
            action=action,
            endpoint_id=endpoint_id if exists else None,
            target=target[:300],
            details=details,
        )
        # Logged when the scope ends (audit.Scope.flush), unless the view's own entry replaces it.
        scope.plain[key] = (endpoint_id, entry)


# --- The API: tokens and listeners' cursors ---------------------------------------------------
class ApiScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)

    def issue(self, user: Any, name: str, scope: str) -> tuple[ApiToken, str]:
        """A new token for `user`; returns it and its value, to be shown this once."""
        value = "whi_" + secrets.token_urlsafe(32)
        token = self.create(user=user, name=name, scope=scope, digest=token_digest(value), prefix=value[:8])
        return token, value

    def authenticate(self, presented: str) -> ApiToken | None:
        """The active token `presented` is, with its user; None for anything else.

        One indexed lookup of the keyed digest: the digest is what the database compares,
        so there is no secret-dependent comparison in Python to time."""
        if not presented or len(presented) > 200:
            return None
        return self.active().select_related("user").filter(digest=token_digest(presented)).first()


class ApiToken(models.Model):
    """A staff member's token for the JSON API, stored as a keyed digest (inbox.secrets):
    the value is shown once when created. It acts with its user's permissions, capped by
    its scope (read: GET only)."""

    # Last use is written at most this often: one UPDATE a minute, not one per request.
    LAST_USED_RESOLUTION = timedelta(minutes=1)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DB_CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=5, choices=ApiScope.choices, default=ApiScope.READ)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters (the fixed "whi_" and four more): enough to recognise a token in
    # a list, far too few to guess the rest.
    prefix = models.CharField(max_length=8, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope})"

    @property
    def can_write(self) -> bool:
        return self.scope == ApiScope.WRITE

    def touch(self, now: datetime | None = None) -> None:
        """Record a use, at most once per LAST_USED_RESOLUTION (a conditional UPDATE)."""
        now = now or timezone.now()
        if self.last_used_at is not None and now - self.last_used_at < self.LAST_USED_RESOLUTION:
            return
        ApiToken.objects.filter(pk=self.pk).filter(
            models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=now - self.LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        self.last_used_at = now

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=self.revoked_at)


class ListenerCursor(models.Model):
    """Where one `listen` client is in an endpoint's messages: per token, endpoint and
    listener name. It moves when the client reports a delivery, so a listener that stops
    and starts again delivers, in order and once, what arrived in between."""

    token = models.ForeignKey(ApiToken, on_delete=models.DB_CASCADE, related_name="cursors")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.DB_CASCADE, related_name="listener_cursors")
    name = models.CharField(max_length=100)
    # The last message delivered (its id; messages are handed out in id order).
    last_message_id = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "endpoint", "name"], name="listener_cursor_unique")]

    def __str__(self) -> str:
        return f"{self.name} on {self.endpoint_id} at {self.last_message_id}"

    def advance(self, message_id: int) -> None:
        """Move past `message_id`, never back (a late report of an older one is harmless)."""
        ListenerCursor.objects.filter(pk=self.pk, last_message_id__lt=message_id).update(
            last_message_id=message_id, seen_at=timezone.now()
        )
        self.last_message_id = max(self.last_message_id, message_id)


# --- Durable counters (docs/architecture.md, "Counters and /metrics") -------------------------
class CounterKind(models.TextChoices):
    """What a counter counts; /metrics names each series after its kind (inbox/metrics.py)."""

    RECEIVED = "received", "Messages received"
    REJECTED = "rejected", "Deliveries refused"
    RATE_LIMITED = "rate_limited", "Deliveries rate limited"
    DUPLICATE = "duplicate", "Duplicate deliveries"
    FORWARD_ATTEMPTS = "forward_attempts", "Forward attempts"


# A series: (kind, endpoint id, destination id, outcome); 0 and "" where a series has no such label.
SeriesKey = tuple[str, int, int, str]


class CounterQuerySet(models.QuerySet["Counter"]):
    def add(self, deltas: dict[SeriesKey, int]) -> None:
        """Add each delta to its series in one statement (one round trip, atomic), creating
        the series at its first count: INSERT … ON CONFLICT DO UPDATE SET value = value + delta,
        which PostgreSQL and SQLite both speak.

        Rows go in key order, so two processes flushing the same series at once queue on
        them in the same order instead of deadlocking each other.
        """
        rows = sorted((key, n) for key, n in deltas.items() if n)
        if not rows:
            return
        db = self.db
        ops = connections[db].ops
        table = ops.quote_name(Counter._meta.db_table)
        columns = ("kind", "endpoint_id", "destination_id", "outcome", "value")
        names = ", ".join(ops.quote_name(c) for c in columns)
        unique = ", ".join(ops.quote_name(c) for c in columns[:4])
        value = ops.quote_name("value")
        placeholders = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
        # Names from the model's metadata, every value a parameter.
        sql = (
            f"INSERT INTO {table} ({names}) VALUES {placeholders} "  # noqa: S608
            f"ON CONFLICT ({unique}) DO UPDATE SET {value} = {table}.{value} + excluded.{value}"
        )
        params = [part for key, n in rows for part in (*key, n)]
        with connections[db].cursor() as cursor:
            cursor.execute(sql, params)

    def for_endpoint(self, endpoint_id: int) -> dict[str, int]:
        """The endpoint's counts by kind (0 for a kind never counted)."""
        found = dict(self.filter(endpoint_id=endpoint_id, destination_id=0).values_list("kind", "value"))
        return {kind.value: int(found.get(kind.value, 0)) for kind in CounterKind}


class Counter(models.Model):
    """One series of a monotonic count: what the receiver refused, rate-limited, stored as a
    duplicate or accepted per endpoint, and forward attempts per destination and outcome.

    Never computed from the messages or attempts tables: retention purges delete those.
    Processes count in memory and add their deltas here every few seconds (inbox/counters.py).
    Plain ids rather than foreign keys: a delta for an endpoint deleted meanwhile must not fail
    the flush of every other series; readers skip ids that no longer exist.
    """

    kind = models.CharField(max_length=20, choices=CounterKind.choices)
    endpoint_id = models.BigIntegerField(default=0)
    destination_id = models.BigIntegerField(default=0)
    # The AttemptStatus of a forward attempt; "" for the endpoint's counts.
    outcome = models.CharField(max_length=10, blank=True, default="")
    value = models.BigIntegerField(default=0)

    objects = CounterQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "endpoint_id", "destination_id", "outcome"], name="counter_series")
        ]

    def __str__(self) -> str:
        where = f"endpoint={self.endpoint_id}"
        if self.destination_id:
            where = f"destination={self.destination_id} {self.outcome}"
        return f"{self.kind} {where} = {self.value}"


# --- Alerts: rules, and the alerts they open (evaluated by inbox/alerts/) ---------------------
class AlertKind(models.TextChoices):
    FAILED = "failed", "A message failed (its retries are spent)"
    FAILURE_RATE = "failure_rate", "Forward failure rate over a threshold"
    SILENCE = "silence", "Nothing received for a while"
    REJECTIONS = "rejections", "Refused deliveries"


WINDOW_RE = re.compile(r"^\s*([1-9][0-9]{0,5})\s*([mhd])\s*$")
WINDOW_UNITS = {"m": 60, "h": 3600, "d": 86400}
# The evaluator runs once a minute: a shorter window could not be told apart. A week is as
# far back as an alert's queries look (the Attempt and RejectedAttempt tables by time).
MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS = 60, 7 * 86400
DEFAULT_WINDOW_SECONDS = 300
DEFAULT_SILENCE_WINDOW_SECONDS = 3600
# What a rule's threshold means, and its default, by kind (silence has none: the window is
# how long is too quiet).
DEFAULT_THRESHOLDS: dict[str, int] = {
    AlertKind.FAILED: 1,
    AlertKind.FAILURE_RATE: 50,
    AlertKind.REJECTIONS: 10,
}
# A failure rate over two attempts says nothing: below this many attempts in the window, a
# failure_rate rule neither opens nor keeps an alert open.
DEFAULT_MIN_ATTEMPTS = 10
EMAIL_PREFIX = "email:"
# A failed notification is tried again after 1, 2, 4... minutes, at most an hour apart
# (inbox/alerts/evaluate.py), and given up after this many tries: about 4 hours after the first.
MAX_NOTICE_TRIES = 10


def parse_window(value: str) -> int:
    """A window as typed ("5m", "2h", "1d") in seconds; ValidationError otherwise."""
    match = WINDOW_RE.match(value or "")
    if not match:
        raise ValidationError("Enter a window such as 5m, 2h or 1d: a number and one of m, h, d.", code="window")
    seconds = int(match.group(1)) * WINDOW_UNITS[match.group(2)]
    if not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS:
        raise ValidationError("Enter a window from 1m to 7d.", code="window")
    return seconds


def format_window(seconds: int) -> str:
    """The short form a window is typed in: 300 -> "5m", 7200 -> "2h"."""
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{max(1, seconds // 60)}m"


def describe_window(seconds: int) -> str:
    """A window in words: 300 -> "5 minutes", 3600 -> "1 hour"."""
    for name, size in (("day", 86400), ("hour", 3600)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {name}{'' if count == 1 else 's'}"
    count = max(1, seconds // 60)
    return f"{count} minute{'' if count == 1 else 's'}"


def validate_notify(value: str) -> None:
    """Where a rule's notifications go: an http(s) URL (a refused literal address is refused
    here, as for a destination) or email:ADDRESS."""
    if value.startswith(EMAIL_PREFIX):
        address = value.removeprefix(EMAIL_PREFIX)
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError("Enter email:ADDRESS with a valid email address.", code="notify") from None
        return
    if LINE_CONTROL_RE.search(value):
        raise ValidationError("Remove the control characters.", code="notify")
    try:
        validate_destination_url(value)
    except ValidationError as exc:
        raise ValidationError(
            f"{' '.join(exc.messages)} Notify an http(s) URL (a Slack or Teams incoming webhook) or email:ADDRESS.",
            code="notify",
        ) from None


class AlertRuleQuerySet(models.QuerySet["AlertRule"]):
    def for_evaluation(self) -> AlertRuleQuerySet:
        return self.select_related("endpoint", "destination").order_by("pk")

    def going_with(self, instance: Endpoint | Destination) -> AlertRuleQuerySet:
        """The rules the database deletes with this endpoint or destination (their foreign
        keys cascade): a rule left without its scope would silently watch everything."""
        if isinstance(instance, Endpoint):
            return self.filter(models.Q(endpoint=instance) | models.Q(destination__endpoint=instance))
        return self.filter(destination=instance)

    def names(self) -> list[str]:
        """Their names, for a question and an audit entry (bounded: a page names a few)."""
        return list(self.order_by("name").values_list("name", flat=True)[:RULES_NAMED])

    def described(self) -> tuple[str, dict[str, list[str]]]:
        """What a deletion's question says of them ("its 1 alert rule “Dest rate”", or "")
        and what its audit entry records (`alert_rules`: their names), read before the
        delete: the database removes them with it, so no signal or entry of theirs follows."""
        names, count = self.names(), self.count()
        if not count:
            return "", {}
        listed = names + ([f"and {count - len(names)} more"] if count > len(names) else [])
        return describe_rules(names, count), {"alert_rules": listed}


# How many rules a deletion's question and audit entry name; the rest are counted.
RULES_NAMED = 20


def describe_rules(names: list[str], count: int, shown: int = 5) -> str:
    """ "its 1 alert rule “Dest rate”", "its 3 alert rules “A”, “B” and “C”", or "" for none."""
    if not count:
        return ""
    quoted = [f"“{name}”" for name in names[:shown]]
    rest = count - len(quoted)
    if rest > 0:
        listed = f"{', '.join(quoted)} and {rest} more"
    elif len(quoted) > 1:
        listed = f"{', '.join(quoted[:-1])} and {quoted[-1]}"
    else:
        listed = quoted[0] if quoted else ""
    return f"its {count} alert rule{'' if count == 1 else 's'} {listed}".strip()


class AlertRule(models.Model):
    """A condition the worker checks every minute (inbox/alerts/), and where to say so when it
    starts and stops holding. Scoped to an endpoint, a destination (of that endpoint), or
    every endpoint when neither is set."""

    name = models.CharField(max_length=100, unique=True, validators=[validate_visible_name])
    kind = models.CharField("When", max_length=20, choices=AlertKind.choices, default=AlertKind.FAILED)
    endpoint = models.ForeignKey(
        Endpoint,
        null=True,
        blank=True,
        on_delete=models.DB_CASCADE,
        related_name="alert_rules",
        help_text="Empty: every endpoint.",
    )
    destination = models.ForeignKey(
        Destination,
        null=True,
        blank=True,
        on_delete=models.DB_CASCADE,
        related_name="alert_rules",
        help_text="Only for “a message failed” and “failure rate”: that destination's forwards only.",
    )
    threshold = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(1_000_000)],
        help_text="Failed messages (default 1); failure rate in % (opens over it; default 50); refused "
        "deliveries (default 10). None for silence.",
    )
    window_seconds = models.PositiveIntegerField(
        "Window",
        default=DEFAULT_WINDOW_SECONDS,
        validators=[MinValueValidator(MIN_WINDOW_SECONDS), MaxValueValidator(MAX_WINDOW_SECONDS)],
    )
    min_attempts = models.PositiveIntegerField(
        "Minimum attempts",
        default=DEFAULT_MIN_ATTEMPTS,
        validators=[MinValueValidator(1), MaxValueValidator(1_000_000)],
        help_text="Failure rate only: fewer forward attempts than this in the window never open an alert.",
    )
    notify = models.CharField(
        max_length=2000,
        validators=[validate_notify],
        help_text="A URL that receives a JSON POST (a Slack or Teams incoming webhook works as it is), or "
        "email:ADDRESS.",
    )
    muted = models.BooleanField(
        default=False, help_text="Muted: still evaluated and listed on the alerts page, but nobody is notified."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DB_SET_NULL, editable=False
    )

    objects = AlertRuleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def window(self) -> str:
        return format_window(self.window_seconds)

    @property
    def is_email(self) -> bool:
        return self.notify.startswith(EMAIL_PREFIX)

    @property
    def notify_display(self) -> str:
        """Where notifications go, as pages show it: a webhook URL without the token its path
        or query usually carries (Slack's and Teams' do)."""
        if self.is_email:
            return self.notify
        return Destination(url=self.notify).display_url

    @property
    def scope(self) -> str:
        """What the rule watches, in words."""
        if self.destination_id is not None and self.destination is not None:
            return f"destination {self.destination.display_url} of {self.endpoint or self.destination.endpoint}"
        if self.endpoint_id is not None and self.endpoint is not None:
            return f"endpoint {self.endpoint.name}"
        return "every endpoint"

    @property
    def condition(self) -> str:
        """The rule in words: "3 or more messages failed within 5 minutes"."""
        window = describe_window(self.window_seconds)
        threshold = self.threshold if self.threshold is not None else DEFAULT_THRESHOLDS.get(self.kind, 1)
        if self.kind == AlertKind.FAILED:
            if threshold == 1:
                return f"a message failed (retries spent) within {window}"
            return f"{threshold} or more messages failed (retries spent) within {window}"
        if self.kind == AlertKind.FAILURE_RATE:
            return f"over {threshold}% of forward attempts failed within {window} (at least {self.min_attempts})"
        if self.kind == AlertKind.SILENCE:
            return f"nothing received for {window}"
        return f"{threshold} or more deliveries refused within {window}"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.destination_id is not None:
            destination = Destination.objects.filter(pk=self.destination_id).first()
            if destination is None:
                errors["destination"] = ["No such destination."]
            elif self.endpoint_id is None:
                self.endpoint_id = destination.endpoint_id
            elif self.endpoint_id != destination.endpoint_id:
                errors["destination"] = ["This destination belongs to another endpoint: pick one of its own."]
            if self.kind in (AlertKind.SILENCE, AlertKind.REJECTIONS):
                errors.setdefault("destination", []).append(
                    "Silence and refused deliveries are about what an endpoint receives: scope them by endpoint."
                )
        if self.kind == AlertKind.SILENCE:
            if self.threshold is not None:
                errors["threshold"] = ["Silence takes no threshold: the window is how long is too quiet."]
        elif self.threshold is None:
            self.threshold = DEFAULT_THRESHOLDS[self.kind]
        elif self.kind == AlertKind.FAILURE_RATE and not 1 <= self.threshold <= 99:
            errors["threshold"] = ["Enter a percentage from 1 to 99: the alert opens when the rate is over it."]
        elif self.threshold < 1:
            errors["threshold"] = ["Enter 1 or more."]
        if errors:
            raise ValidationError(errors)


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class Notice(models.TextChoices):
    """Where one notification of an alert (its opening, its resolution) stands."""

    NONE = "", "Not sent"
    PENDING = "pending", "Not sent yet: at the next check"
    SENT = "sent", "Sent"
    FAILED = "failed", "Sending failed"
    GAVE_UP = "gave_up", "Sending failed: gave up"
    MUTED = "muted", "Not sent: the rule is muted"
    DROPPED = "dropped", "Not sent"


UNRESOLVED = (AlertState.OPEN, AlertState.ACKNOWLEDGED)


class AlertQuerySet(models.QuerySet["Alert"]):
    def open(self) -> AlertQuerySet:
        """Alerts whose condition still holds, acknowledged or not (the `inbox_alerts_open`
        gauge counts these)."""
        return self.filter(state__in=UNRESOLVED)

    def unacknowledged(self) -> AlertQuerySet:
        """Open alerts nobody acknowledged yet (the count beside Alerts in the menu)."""
        return self.filter(state=AlertState.OPEN)


class Alert(models.Model):
    """One incident of a rule: opened when its condition started to hold, resolved by the
    evaluator when it stopped. At most one unresolved alert per rule (a constraint), so two
    evaluations of a condition that still holds never open, nor notify, twice."""

    rule = models.ForeignKey(AlertRule, on_delete=models.DB_CASCADE, related_name="alerts")
    state = models.CharField(max_length=12, choices=AlertState.choices, default=AlertState.OPEN)
    opened_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    # What was measured when it opened and, later, when it resolved: one line each.
    summary = models.CharField(max_length=500)
    resolved_summary = models.CharField(max_length=500, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    # The messages concerned: a path on the dashboard (the message list with its filters).
    link = models.CharField(max_length=500, blank=True)
    # The two notifications (inbox/alerts/evaluate.py sends them).
    open_notice = models.CharField(max_length=10, choices=Notice.choices, blank=True, default=Notice.NONE)
    resolve_notice = models.CharField(max_length=10, choices=Notice.choices, blank=True, default=Notice.NONE)
    notice_tries = models.PositiveSmallIntegerField(default=0)
    notice_error = models.TextField(blank=True)
    noticed_at = models.DateTimeField(null=True, blank=True)
    # A failed notification is not tried again before this (the evaluator's backoff).
    notice_next_at = models.DateTimeField(null=True, blank=True)
    # What was measured when it resolved (`counts` keeps the opening's): the resolution's
    # notification carries these, beside `resolved_summary`.
    resolved_counts = models.JSONField(default=dict, blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["state", "-opened_at"], name="alert_state_opened")]
        constraints = [
            models.UniqueConstraint(
                fields=["rule"], condition=models.Q(state__in=["open", "acknowledged"]), name="alert_one_open_per_rule"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.state} {self.opened_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.state in UNRESOLVED

    def notices(self) -> list[tuple[str, str, datetime | None]]:
        """Where each notification stands, in plain words for the alerts page: (which one,
        what happened, when the next try is planned, if one is)."""
        lines = [("Opening", self._notice_text(self.open_notice, opening=True))]
        if self.resolve_notice:
            lines.append(("Resolution", self._notice_text(self.resolve_notice, opening=False)))
        return [
            (label, text, self.notice_next_at if notice == Notice.FAILED else None)
            for (label, text), notice in zip(lines, (self.open_notice, self.resolve_notice), strict=False)
        ]

    def _notice_text(self, notice: str, *, opening: bool) -> str:
        if notice == Notice.FAILED:
            # Tries count the notification being sent now (the resolution's start from 0).
            tries = self.notice_tries
            return f"Sending failed {tries} time{'' if tries == 1 else 's'}"
        if notice == Notice.GAVE_UP:
            return f"Sending failed {MAX_NOTICE_TRIES} times: gave up"
        if notice == Notice.DROPPED:
            if opening:
                return "Not sent: resolved before the opening notification got through"
            if self.open_notice == Notice.MUTED:
                return "Not sent: nobody was told it opened (the rule was muted then)"
            return "Not sent: nobody was told it opened"
        return str(Notice(notice).label)

    def acknowledge(self, user: Any) -> bool:
        """Open -> acknowledged, in one conditional UPDATE; False when it was not open any more."""
        now = timezone.now()
        done = Alert.objects.filter(pk=self.pk, state=AlertState.OPEN).update(
            state=AlertState.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=user
        )
        if done:
            self.state, self.acknowledged_at, self.acknowledged_by = AlertState.ACKNOWLEDGED, now, user
        return bool(done)
