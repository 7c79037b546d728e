from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models
from django.urls import reverse
from django.utils import timezone

RATE_RE = re.compile(r"^[1-9][0-9]{0,8}/[1-9]?[0-9]{0,4}[smhd]$")
HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,99}$")
RECEIVER_METHODS = ("POST", "PUT", "PATCH", "DELETE", "GET")
DEFAULT_RATE = "600/m"
DEFAULT_MAX_BODY = 1024 * 1024
# Headers that carry credentials in any scheme; their values never reach the database.
ALWAYS_REDACTED = frozenset({"authorization", "proxy-authorization", "cookie", "x-webhook-token"})
REDACTED = "[redacted]"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def validate_rate(value: str) -> None:
    if not RATE_RE.match(value):
        raise ValidationError("Enter a rate such as 120/m: a count, a slash, an optional number and one of s, m, h, d.")


def validate_header_name(value: str) -> None:
    if not HEADER_NAME_RE.match(value):
        raise ValidationError("Enter an HTTP header name: letters, digits and dashes.")


def validate_methods(value: str) -> None:
    methods = [m.strip().upper() for m in value.split(",") if m.strip()]
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


def new_token() -> str:
    return "whi_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Keyed digest of a generated token.

    Tokens are 256-bit random strings, so a fast keyed hash is as strong as a slow password
    hash here, and costs microseconds on every request instead of tens of milliseconds.
    """
    key = settings.INBOX_SECRET_KEY.encode()
    return hmac.new(key, token.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


class AuthScheme(models.TextChoices):
    TOKEN = "token", "Shared token in a header"
    NONE = "none", "None (the secret URL alone)"


class EndpointQuerySet(models.QuerySet["Endpoint"]):
    def enabled(self) -> EndpointQuerySet:
        return self.filter(enabled=True)


class Endpoint(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    slug = models.CharField(max_length=64, unique=True, default=new_slug, editable=False)
    enabled = models.BooleanField(default=True, help_text="A disabled endpoint answers 404.")

    auth = models.CharField(max_length=20, choices=AuthScheme.choices, default=AuthScheme.TOKEN)
    token_header = models.CharField(
        max_length=100,
        default="X-Webhook-Token",
        validators=[validate_header_name],
        help_text="The request header that carries the token.",
    )
    token_digest = models.CharField(max_length=64, blank=True, editable=False)
    token_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)

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

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        forget_endpoint(self.slug)

    def get_absolute_url(self) -> str:
        return reverse("inbox:endpoint-detail", args=[self.pk])

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        forget_endpoint(self.slug)
        return super().delete(*args, **kwargs)

    @property
    def path(self) -> str:
        return reverse("receiver", args=[self.slug])

    @property
    def url(self) -> str:
        return settings.PUBLIC_BASE_URL + self.path

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m.strip().upper() for m in self.allowed_methods.split(",") if m.strip())

    @property
    def uses_token(self) -> bool:
        return self.auth == AuthScheme.TOKEN

    def set_new_token(self) -> str:
        """Generate a token, keep only its digest, and return it to be shown once."""
        token = new_token()
        self.token_digest = token_digest(token)
        return token

    def rotate_token(self) -> str:
        token = self.set_new_token()
        self.token_rotated_at = timezone.now()
        self.save(update_fields=["token_digest", "token_rotated_at", "updated_at"])
        return token

    def check_token(self, presented: str | None) -> bool:
        if not presented or not self.token_digest:
            return False
        return hmac.compare_digest(token_digest(presented), self.token_digest)

    def purge(self, batch_size: int, now: datetime | None = None) -> int:
        """Delete messages past this endpoint's retention, then any beyond its cap."""
        deleted = Message.objects.expired(self, now).delete_in_batches(batch_size)
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
        return ALWAYS_REDACTED | {self.token_header.lower()}


# --- In-process endpoint cache ----------------------------------------------------------
# The receiver looks an endpoint up on every request. Keeping it in process memory for a
# few seconds removes that round trip from the hot path; the price is that an edit made
# in another process applies after at most INBOX_ENDPOINT_CACHE_SECONDS.
_endpoint_cache: dict[str, tuple[float, Endpoint | None]] = {}
_endpoint_cache_lock = threading.Lock()


def forget_endpoint(slug: str | None = None) -> None:
    with _endpoint_cache_lock:
        if slug is None:
            _endpoint_cache.clear()
        else:
            _endpoint_cache.pop(slug, None)


def endpoint_for_slug(slug: str) -> Endpoint | None:
    """The enabled endpoint with this slug, or None; from the cache when it is fresh."""
    now = time.monotonic()
    cached = _endpoint_cache.get(slug)
    if cached is not None and cached[0] > now:
        return cached[1]
    endpoint = Endpoint.objects.enabled().filter(slug=slug).first()
    with _endpoint_cache_lock:
        if len(_endpoint_cache) > 10_000:
            # Unknown slugs are cached too (as None), so a scan cannot grow this forever.
            _endpoint_cache.clear()
        _endpoint_cache[slug] = (now + settings.INBOX_ENDPOINT_CACHE_SECONDS, endpoint)
    return endpoint


# --- Messages ---------------------------------------------------------------------------
class Verification(models.TextChoices):
    VERIFIED = "verified", "Verified"
    UNVERIFIED = "unverified", "Not verified (no scheme)"


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
        return self.filter(body_text__icontains=text)

    def expired(self, endpoint: Endpoint, now: Any | None = None) -> MessageQuerySet:
        now = now or timezone.now()
        return self.filter(endpoint=endpoint, received_at__lt=now - timedelta(days=endpoint.retention_days))

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
    endpoint = models.ForeignKey(Endpoint, on_delete=models.DB_CASCADE, related_name="messages")
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

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-received_at"], name="message_endpoint_received"),
            models.Index(fields=["-received_at", "-id"], name="message_received"),
            models.Index(fields=["event_type"], name="message_event_type"),
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
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and "\x00" not in text:
            self.body_text, self.body_bytes = text, None
        else:
            self.body_text, self.body_bytes = None, raw

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

    def insert_unless_duplicate(self) -> bool:
        """INSERT this message in one statement; False when its idempotency key was seen.

        The unique constraint decides, inside the database, so two concurrent deliveries of
        the same key cannot both be stored, and the common case is one round trip.
        """
        fields = [f for f in self._meta.concrete_fields if not f.primary_key]
        columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
        values = [f.get_db_prep_save(f.pre_save(self, add=True), connection) for f in fields]
        placeholders = ", ".join(["%s"] * len(fields))
        table = connection.ops.quote_name(self._meta.db_table)
        # Table and column names come from the model's own metadata, values are parameters.
        sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING RETURNING id"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            row = cursor.fetchone()
        if row is None:
            return False
        self.pk = row[0]
        self._state.adding = False
        return True
