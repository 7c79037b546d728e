"""What the API reads and writes, and the same validation as the dashboard's forms and the
`create_endpoint` command: the models' validators, and the secret rules of the presets."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import QueryDict
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inbox.filters import MessageFilter, clean_destination_filter
from inbox.models import (
    ENDPOINT_SETTINGS,
    ApiScope,
    Attempt,
    BulkAction,
    BulkJob,
    Destination,
    Endpoint,
    Message,
    RejectedAttempt,
    parse_methods,
    validate_header_name,
    validate_methods,
)
from inbox.verification import DIGESTS, PRESETS

ENDPOINT_FIELDS = list(ENDPOINT_SETTINGS)


def _can_manage_endpoints(context: Mapping[str, Any]) -> bool:
    request = context.get("request")
    return bool(request is not None and request.user.has_perm("inbox.change_endpoint"))


class StrictFieldsMixin:
    """Refuse a field the client cannot write instead of ignoring it.

    DRF drops unknown and read-only keys silently, so `PATCH {"endpoint": 2}` or a typo
    such as `{"paussed": true}` would answer 200 having changed nothing: the client is told.
    """

    fields: Any
    instance: Any

    def to_internal_value(self, data: Any) -> Any:
        # Every serializer that mixes this in checks the names before its fields and its
        # own validate(): none can forget to.
        self.validate_field_names(data)
        return super().to_internal_value(data)  # type: ignore[misc]

    def validate_field_names(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            return
        writable = {name for name, field in self.fields.items() if not field.read_only}
        # A read-only field sent back unchanged (a PUT of what a GET answered) is fine.
        current = self.to_representation(self.instance) if self.instance is not None else {}  # type: ignore[attr-defined]
        errors = {}
        for name, value in data.items():
            if name in writable or (name in current and current[name] == value):
                continue
            field = self.fields.get(name)
            errors[str(name)] = ["This field is read-only."] if field is not None else ["Unknown field."]
        if errors:
            raise serializers.ValidationError(errors)


class HmacOptionsSerializer(StrictFieldsMixin, serializers.Serializer[dict[str, Any]]):
    """The generic HMAC preset's parameters (the endpoint form's "hmac_" fields); a key that is
    not one of them (a typo such as `digets`) is refused, not dropped."""

    header = serializers.CharField(max_length=100, validators=[validate_header_name])
    digest = serializers.ChoiceField(choices=list(DIGESTS), default="sha256")
    encoding = serializers.ChoiceField(choices=["hex", "base64"], default="hex")
    prefix = serializers.CharField(max_length=20, required=False, allow_blank=True)
    template = serializers.CharField(max_length=100, default="{body}")
    timestamp_header = serializers.CharField(
        max_length=100, required=False, allow_blank=True, validators=[validate_header_name]
    )
    tolerance = serializers.IntegerField(min_value=1, max_value=86400, default=300)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return dict(instance or {})  # as stored ({} for every preset but hmac)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # {} is what every other preset reads back: sent again (a PUT of a GET), it means
        # "no options", not an HMAC configuration missing its header.
        if data == {}:
            return {}
        options: dict[str, Any] = super().to_internal_value(data)
        return options

    def validate_template(self, value: str) -> str:
        rest = re.sub(r"\{(body|timestamp|url)\}", "", value)
        if "{" in rest or "}" in rest:
            raise serializers.ValidationError("Use only the placeholders {body}, {timestamp} and {url}.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "{timestamp}" in attrs.get("template", "") and not attrs.get("timestamp_header"):
            raise serializers.ValidationError({"timestamp_header": "The template signs a timestamp: name its header."})
        return {k: v for k, v in attrs.items() if v not in (None, "")}


class EndpointSerializer(StrictFieldsMixin, serializers.ModelSerializer[Endpoint]):
    url = serializers.SerializerMethodField(
        help_text="The receiver URL: in full only in the answer that created the endpoint (its slug is a "
        "credential, shown once); masked afterwards; null for staff who cannot manage endpoints."
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=500,
        help_text="A secret the provider issued or one you choose; empty: generated (where the preset allows).",
    )
    scheme_options = HmacOptionsSerializer(required=False, help_text="Only for auth=hmac: its parameters.")

    class Meta:
        model = Endpoint
        fields = ["id", "url", *ENDPOINT_FIELDS, "secret", "scheme_options", "created_at", "updated_at"]
        read_only_fields = ["id", "url", "created_at", "updated_at"]

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_url(self, endpoint: Endpoint) -> str | None:
        # The URL carries the slug, a credential: like the dashboard, shown in full once (the
        # create answer), masked afterwards, and only to managers.
        if not _can_manage_endpoints(self.context):
            return None
        return endpoint.url if self.context.get("show_url") else endpoint.masked_url

    def validate_allowed_methods(self, value: str) -> str:
        validate_methods(value)
        return ",".join(dict.fromkeys(parse_methods(value)))

    def validate_response_content_type(self, value: str) -> str:
        value = value.strip()
        if "\n" in value or "\r" in value:
            raise serializers.ValidationError("Enter a single-line content type.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance: Endpoint | None = self.instance
        auth = attrs.get("auth", instance.auth if instance else "token")
        preset = PRESETS[auth]
        auth_changed = instance is None or auth != instance.auth
        if attrs.get("scheme_options") == {}:
            del attrs["scheme_options"]  # unchanged (see HmacOptionsSerializer.to_internal_value)
        errors: dict[str, str] = {}
        if problem := preset.chosen_secret_problem(attrs.get("secret") or "", required=auth_changed):
            errors["secret"] = problem
        options = attrs.get("scheme_options")
        if preset.name == "hmac" and options is None and (auth_changed or not (instance and instance.scheme_options)):
            errors["scheme_options"] = "The generic HMAC scheme needs its parameters (at least `header`)."
        if preset.name != "hmac" and options:
            errors["scheme_options"] = "Only the generic HMAC scheme (auth=hmac) takes scheme options."
        if errors:
            raise serializers.ValidationError(errors)
        # Everything the model checks (unique name, rates, methods, sizes) as the form does.
        candidate = Endpoint(**{**self._stored(), **{k: v for k, v in attrs.items() if k in ENDPOINT_FIELDS}})
        candidate._state.adding = instance is None  # an edit is unique against the others, not itself
        try:
            candidate.full_clean(exclude=["slug", "token_digest", "secret_encrypted", "basic_username"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs

    def _stored(self) -> dict[str, Any]:
        instance: Endpoint | None = self.instance
        if instance is None:
            return {}
        return {"pk": instance.pk, **{name: getattr(instance, name) for name in ENDPOINT_FIELDS}}


class CredentialSerializer(serializers.Serializer[dict[str, str]]):
    """A new credential, shown this once (which keys depend on the preset)."""

    token = serializers.CharField(required=False)
    token_header = serializers.CharField(required=False)
    username = serializers.CharField(required=False)
    password = serializers.CharField(required=False)
    secret = serializers.CharField(required=False)
    verify_token = serializers.CharField(required=False)


class EndpointCreatedSerializer(EndpointSerializer):
    credential = CredentialSerializer(read_only=True, help_text="Shown only in this answer.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "credential"]


class RotateSerializer(serializers.Serializer[dict[str, Any]]):
    secret = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=500)
    grace_hours = serializers.IntegerField(min_value=0, max_value=24 * 30, default=24)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        endpoint: Endpoint = self.context["endpoint"]
        if problem := endpoint.rotation_problem(attrs.get("secret") or ""):
            raise serializers.ValidationError({"secret": problem})
        return attrs


class DestinationSerializer(StrictFieldsMixin, serializers.ModelSerializer[Destination]):
    display_url = serializers.CharField(read_only=True)

    class Meta:
        model = Destination
        fields = [
            "id",
            "endpoint",
            "url",
            "display_url",
            "enabled",
            "timeout_seconds",
            "forward_headers",
            "filter",
            "transform",
            "sign",
            "max_rate",
            "paused",
            "paused_reason",
            "breaker_threshold",
            "created_at",
        ]
        read_only_fields = ["id", "paused_reason", "created_at"]

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        if self.instance is not None:
            fields["endpoint"].read_only = True  # a destination stays with its endpoint
        return fields

    def to_representation(self, instance: Destination) -> dict[str, Any]:
        data = super().to_representation(instance)
        # A destination's URL may carry its own token: like the edit form, for managers only.
        if not _can_manage_endpoints(self.context):
            data["url"] = None
        return data

    def validate_forward_headers(self, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        for name in names:
            if name != "*":
                try:
                    validate_header_name(name)
                except DjangoValidationError as exc:
                    raise serializers.ValidationError(exc.messages) from None
        return ", ".join(names)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance: Destination | None = self.instance
        endpoint = attrs.get("endpoint") or (instance.endpoint if instance else None)
        candidate = Destination(endpoint=endpoint, pk=instance.pk if instance else None)
        candidate._state.adding = instance is None  # an edit is no duplicate of itself
        for name in ("url", "timeout_seconds", "forward_headers", "transform", "sign", "max_rate", "breaker_threshold"):
            default = getattr(instance, name) if instance else getattr(candidate, name)
            setattr(candidate, name, attrs.get(name, default))
        try:
            candidate.full_clean(exclude=["endpoint", "filter"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        if "filter" in attrs:
            # The list's own query language, checked as the form and add_destination check it.
            try:
                attrs["filter"] = clean_destination_filter(attrs["filter"], endpoint.pk if endpoint else None)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"filter": exc.messages}) from None
        return attrs


class MessageSerializer(serializers.ModelSerializer[Message]):
    endpoint_name = serializers.CharField(source="endpoint.name", read_only=True)
    json = serializers.JSONField(allow_null=True, read_only=True)
    headers = serializers.DictField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "endpoint",
            "endpoint_name",
            "received_at",
            "method",
            "query_string",
            "content_type",
            "headers",
            "event_type",
            "idempotency_key",
            "remote_addr",
            "verification",
            "secret_used",
            "status",
            "body_size",
            "json",
        ]
        read_only_fields = fields


class AttemptSerializer(serializers.ModelSerializer[Attempt]):
    class Meta:
        model = Attempt
        fields = ["id", "replay", "number", "target", "label", "status", "started_at", "duration_ms", "status_code"]
        read_only_fields = fields


class MessageDetailSerializer(MessageSerializer):
    body_base64 = serializers.SerializerMethodField()
    attempts = AttemptSerializer(many=True, read_only=True, source="processing_attempts")

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "body_base64", "attempts"]
        read_only_fields = fields

    def get_body_base64(self, message: Message) -> str:
        return base64.b64encode(message.body).decode()


class RejectedAttemptSerializer(serializers.ModelSerializer[RejectedAttempt]):
    class Meta:
        model = RejectedAttempt
        fields = ["id", "at", "remote_addr", "status", "reason", "preset", "headers", "body_size"]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer[BulkJob]):
    action = serializers.ChoiceField(choices=BulkAction.choices)
    query = serializers.CharField(
        max_length=4000,
        allow_blank=True,
        default="",
        help_text="The message list's query string (e.g. `endpoint=3&status=failed`); empty: every message, "
        "which a delete or a replay takes only with `everything: true`.",
    )
    everything = serializers.BooleanField(
        write_only=True,
        default=False,
        help_text="Say so to delete or replay every message (an empty `query`): a typo is never everything.",
    )
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = BulkJob
        fields = [
            "id",
            "action",
            "query",
            "everything",
            "status",
            "total",
            "done",
            "percent",
            "error",
            "created_at",
            "finished_at",
        ]
        read_only_fields = ["id", "status", "total", "done", "percent", "error", "created_at", "finished_at"]

    def validate_query(self, value: str) -> str:
        if "\x00" in value:
            raise serializers.ValidationError("Null characters are not allowed.")
        data = QueryDict(value.lstrip("?"))
        unknown = sorted(key for key in data if key not in MessageFilter.base_filters)
        if unknown:
            # A misspelt filter (statuss=failed) must not widen a job to every message.
            raise serializers.ValidationError(f"Unknown filter: {', '.join(unknown)}.")
        filterset = MessageFilter(data, queryset=Message.objects.none())
        if not filterset.is_valid():
            raise serializers.ValidationError({name: list(errors) for name, errors in filterset.errors.items()})
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        narrowed = any(v.strip() for values in QueryDict(attrs.get("query", "").lstrip("?")).lists() for v in values[1])
        everything = attrs.pop("everything", False)
        if attrs["action"] in (BulkAction.DELETE, BulkAction.REPLAY) and not narrowed and not everything:
            raise serializers.ValidationError(
                {"query": [f"No filter: to {attrs['action']} every message, send `everything: true`."]}
            )
        return attrs


class TokenCreateSerializer(serializers.Serializer[dict[str, Any]]):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=ApiScope.choices, default=ApiScope.READ)


class ListenMessageSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.IntegerField()
    received_at = serializers.DateTimeField()
    method = serializers.CharField()
    query_string = serializers.CharField()
    content_type = serializers.CharField()
    event_type = serializers.CharField()
    headers = serializers.DictField(child=serializers.CharField(), help_text="The provider's headers to pass on.")
    body_base64 = serializers.CharField()


class ListenPageSerializer(serializers.Serializer[dict[str, Any]]):
    messages = ListenMessageSerializer(many=True)
    cursor = serializers.IntegerField(help_text="The id of the last message this listener reported.")
    waited = serializers.BooleanField(help_text="False when no waiting slot was free: poll again in a second.")


class ListenQuerySerializer(serializers.Serializer[dict[str, Any]]):
    endpoint = serializers.CharField(max_length=100, help_text="The endpoint's name.")
    name = serializers.CharField(max_length=100, default="default", help_text="This listener's name.")
    wait = serializers.IntegerField(min_value=0, max_value=60, default=20, help_text="Seconds to wait for news.")


class ListenReportSerializer(serializers.Serializer[dict[str, Any]]):
    endpoint = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=100, default="default")
    message = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    status_code = serializers.IntegerField(min_value=100, max_value=599, allow_null=True, default=None)
    duration_ms = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    error = serializers.CharField(max_length=2000, allow_blank=True, default="")
