from __future__ import annotations

import re
from typing import Any

from django import forms

from inbox.filters import clean_destination_filter
from inbox.models import (
    DEFAULT_SILENCE_WINDOW_SECONDS,
    DEFAULT_WINDOW_SECONDS,
    ENDPOINT_SETTINGS,
    INERT_CONTENT_TYPES,
    AlertKind,
    AlertRule,
    AlertState,
    ApiScope,
    Destination,
    Endpoint,
    mark_invisible,
    parse_window,
    validate_header_name,
    validate_methods,
)
from inbox.verification import DIGESTS, HMAC_OPTION_DEFAULTS, PRESETS, Preset

HMAC_FIELDS = ("header", "digest", "encoding", "prefix", "template", "timestamp_header", "tolerance")


class FocusFirstError(forms.BaseForm):
    """A form that, when it comes back with errors, puts the cursor in the first bad field
    (`autofocus`: no script needed) and lists every error for a summary at the top.

    Django already marks a bad field `aria-invalid` and points its `aria-describedby` at
    `<id>_helptext` and `<id>_error`, which inbox/_field.html renders."""

    def display_order(self) -> list[str]:
        """Field names in the order the page shows them."""
        return list(self.fields)

    def full_clean(self) -> None:
        super().full_clean()
        if first := next(iter(self.fields_with_errors()), None):
            first.field.widget.attrs["autofocus"] = True

    def fields_with_errors(self) -> list[forms.BoundField]:
        if not self.is_bound:
            return []
        return [self[name] for name in self.display_order() if name in self.errors]


class PresetSelect(forms.Select):
    """The preset choice, each option carrying what the page needs to switch the fields
    without a round trip: which preset-dependent fields apply, and the secret's wording."""

    option_data: dict[str, dict[str, str]]

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.option_data = {}

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option: dict[str, Any] = super().create_option(*args, **kwargs)
        option["attrs"].update(self.option_data.get(str(option["value"]), {}))
        return option


def fields_for_preset(preset: Preset) -> tuple[str, ...]:
    """The preset-dependent parts of the endpoint form that `preset` uses; every other
    field applies to all presets. `hmac` stands for the generic HMAC settings."""
    used: list[str] = []
    if preset.secret_kind not in ("none", "basic"):
        used.append("secret")  # basic and none: nothing to paste or choose
    if preset.name == "token":
        used.append("token_header")  # other token-like presets have a fixed header
    if preset.name == "hmac":
        used.append("hmac")
    return tuple(used)


def secret_wording(preset: Preset, *, replacing: bool) -> tuple[str, str]:
    """The secret field's label and help for `preset`: a provider-issued secret is asked
    for; a generated one may be chosen instead. `replacing`: the endpoint already has one."""
    provider = preset.label.split(" (")[0]
    noun = preset.secret_label.lower()
    if preset.generates_secret:
        if replacing:
            return f"New {noun} (optional)", "Leave empty to keep the current one."
        return f"Your own {noun} (optional)", "Leave empty to have one generated: it is shown once, on the next page."
    if replacing:
        return (
            f"New {noun} from {provider} (optional)",
            "Leave empty to keep the current one. To change it without a gap, use Rotate on the endpoint page.",
        )
    return f"{preset.secret_label} from {provider}", f"Paste the {noun} that {provider} shows for this webhook."


def secret_field(label: str, help_text: str) -> forms.CharField:
    # Never re-rendered with its value, never stripped: a secret is taken exactly as pasted.
    return forms.CharField(
        required=False,
        strip=False,
        max_length=500,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        label=label,
        help_text=help_text,
    )


# The endpoint form shows what a first endpoint needs on top (name, preset and what the
# preset asks for); limits, storage and the answer keep their defaults under "Advanced".
ADVANCED_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Receiving", ("allowed_methods", "rate_limit", "rate_limit_fail_open", "max_body_bytes", "dedupe_on_payload_id")),
    ("Keeping messages", ("retention_days", "max_messages")),
    ("Processing", ("max_retries",)),
    ("The answer to the sender", ("response_status", "response_content_type", "response_body")),
)


class EndpointForm(FocusFirstError, forms.ModelForm[Endpoint]):
    # The provider's secret belongs right under the preset it goes with.
    field_order = ["name", "description", "enabled", "auth", "secret", "token_header"]

    # Label and help depend on the preset and on create or edit: see secret_wording().
    secret = secret_field("Secret", "")
    hmac_header = forms.CharField(
        required=False,
        initial=HMAC_OPTION_DEFAULTS["header"],
        label="Signature header",
        validators=[validate_header_name],
    )
    hmac_digest = forms.ChoiceField(choices=[(d, d) for d in DIGESTS], initial="sha256", label="Digest", required=False)
    hmac_encoding = forms.ChoiceField(
        choices=[("hex", "hex"), ("base64", "base64")], initial="hex", label="Encoding", required=False
    )
    hmac_prefix = forms.CharField(required=False, max_length=20, label="Signature prefix", help_text="e.g. sha256=")
    hmac_template = forms.CharField(
        required=False,
        initial="{body}",
        max_length=100,
        label="Signed content",
        help_text="Placeholders: {body}, {timestamp}, {url}; e.g. {timestamp}.{body}",
    )
    hmac_timestamp_header = forms.CharField(
        required=False, max_length=100, label="Timestamp header", validators=[validate_header_name]
    )
    hmac_tolerance = forms.IntegerField(
        required=False, min_value=1, max_value=86400, initial=300, label="Timestamp tolerance (seconds)"
    )

    class Meta:
        model = Endpoint
        fields = list(ENDPOINT_SETTINGS)
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "response_body": forms.Textarea(attrs={"rows": 2}),
            "auth": PresetSelect(attrs={"data-preset-select": ""}),
        }
        labels = {
            "auth": "Verification",
            "token_header": "Token header",
            "max_body_bytes": "Max body size (bytes)",
            "retention_days": "Retention (days)",
            "dedupe_on_payload_id": "Deduplicate on payload id",
            "rate_limit_fail_open": "Fail open",
        }
        help_texts = {
            "token_header": "The request header that carries the token.",
            "response_content_type": "One of " + ", ".join(INERT_CONTENT_TYPES) + " (never a page or a script).",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.instance.scheme_options or {}
        for name in HMAC_FIELDS:
            if name in options:
                self.fields[f"hmac_{name}"].initial = options[name]
        select = self.fields["auth"].widget
        assert isinstance(select, PresetSelect)
        for name, preset in PRESETS.items():
            label, help_text = secret_wording(preset, replacing=self._replacing(preset))
            select.option_data[name] = {
                "data-fields": " ".join(fields_for_preset(preset)),
                "data-secret-label": label,
                "data-secret-help": help_text,
            }
        current = self.preset
        self.fields["secret"].label, self.fields["secret"].help_text = secret_wording(
            current, replacing=self._replacing(current)
        )

    @property
    def creating(self) -> bool:
        return self.instance.pk is None

    def _replacing(self, preset: Preset) -> bool:
        # Editing an endpoint that keeps its preset: the secret it has may stay.
        return not self.creating and preset.name == self.instance.auth

    @property
    def preset(self) -> Preset:
        """The preset the page shows fields for: as submitted, else as stored."""
        if self.is_bound:
            name = self.data.get(self.add_prefix("auth"))
        else:
            name = self.initial.get("auth") or self.instance.auth
        return PRESETS.get(str(name or ""), PRESETS["token"])

    # --- Layout: what the page shows where -----------------------------------------------
    def essential_fields(self) -> list[forms.BoundField]:
        names = ["name", "description"] if self.creating else ["name", "description", "enabled"]
        return [self[name] for name in [*names, "auth"]]

    def preset_rows(self) -> list[dict[str, Any]]:
        """The preset-dependent fields, each hidden unless the chosen preset uses it (or it
        has an error: an error is never hidden). The page's script switches them live."""
        used = fields_for_preset(self.preset)
        return [
            {"field": self[name], "hidden": name not in used and not self[name].errors}
            for name in ("secret", "token_header")
        ]

    def hmac_hidden(self) -> bool:
        return "hmac" not in fields_for_preset(self.preset) and not any(f.errors for f in self.hmac_fields())

    def advanced_groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        groups = [(legend, [self[name] for name in names]) for legend, names in ADVANCED_GROUPS]
        if self.creating:
            groups[0][1].insert(0, self["enabled"])
        return groups

    def advanced_has_errors(self) -> bool:
        return any(field.errors for _, fields in self.advanced_groups() for field in fields)

    def display_order(self) -> list[str]:
        names = [f.name for f in self.essential_fields()] + ["secret", "token_header"]
        names += [f.name for f in self.hmac_fields()]
        return names + [f.name for _, fields in self.advanced_groups() for f in fields]

    def clean_allowed_methods(self) -> str:
        value: str = self.cleaned_data["allowed_methods"]
        validate_methods(value)
        methods = [m.strip().upper() for m in value.split(",") if m.strip()]
        return ",".join(dict.fromkeys(methods))

    def clean_response_content_type(self) -> str:
        value: str = self.cleaned_data["response_content_type"].strip()
        if "\n" in value or "\r" in value:
            raise forms.ValidationError("Enter a single-line content type.")
        return value

    def clean_hmac_template(self) -> str:
        value: str = self.cleaned_data["hmac_template"] or "{body}"
        # Exactly what the signer substitutes; any other brace would be signed literally by
        # some senders and not by others.
        rest = re.sub(r"\{(body|timestamp|url)\}", "", value)
        if "{" in rest or "}" in rest:
            raise forms.ValidationError("Use only the placeholders {body}, {timestamp} and {url}.")
        return value

    def hmac_fields(self) -> list[forms.BoundField]:
        return [field for field in self if field.name.startswith("hmac_")]

    @property
    def auth_changed(self) -> bool:
        return self.instance.pk is None or "auth" in self.changed_data

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        preset = PRESETS.get(cleaned.get("auth") or "", None)
        if preset is None:
            return cleaned
        if problem := preset.chosen_secret_problem(cleaned.get("secret") or "", required=self.auth_changed):
            self.add_error("secret", problem)
        if preset.name == "hmac":
            if not cleaned.get("hmac_header"):
                self.add_error("hmac_header", "The generic HMAC scheme needs a signature header.")
            if "{timestamp}" in (cleaned.get("hmac_template") or "") and not cleaned.get("hmac_timestamp_header"):
                self.add_error("hmac_timestamp_header", "The template signs a timestamp: name its header.")
        return cleaned

    def scheme_options(self) -> dict[str, Any]:
        if self.cleaned_data.get("auth") != "hmac":
            return {}
        options = {name: self.cleaned_data.get(f"hmac_{name}") for name in HMAC_FIELDS}
        options["tolerance"] = options["tolerance"] or 300
        return {k: v for k, v in options.items() if v not in (None, "")}


class RotateForm(FocusFirstError, forms.Form):
    secret = secret_field("New secret from the provider", "Leave empty to generate one (where the preset allows it).")
    grace_hours = forms.IntegerField(
        min_value=0,
        max_value=24 * 30,
        initial=24,
        label="Keep the old one valid for (hours)",
        help_text="0 stops it at once.",
    )

    def __init__(self, *args: Any, endpoint: Endpoint, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.endpoint = endpoint
        preset = endpoint.preset
        if endpoint.secret_kind in ("token", "basic"):
            # Tokens and passwords are always generated (stored as digests): nothing to paste.
            del self.fields["secret"]
        elif preset.generates_secret:
            self.fields["secret"].label = f"New {preset.secret_label.lower()} (optional)"
            self.fields["secret"].help_text = "Leave empty to generate one."
        else:
            self.fields["secret"].label = f"New {preset.secret_label.lower()} from {preset.label}"
            self.fields["secret"].help_text = f"Create it in {preset.label} first, then paste it here."

    def clean_secret(self) -> str:
        value: str = self.cleaned_data["secret"]
        if problem := self.endpoint.rotation_problem(value):
            raise forms.ValidationError(problem)
        return value

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        cleaned.setdefault("secret", "")  # no field for generated tokens and passwords: generate
        return cleaned


class DestinationForm(FocusFirstError, forms.ModelForm[Destination]):
    """A destination: where, which messages (the list's filter), in what shape (a JMESPath
    transform), signed or not, how fast. The same validation as the add_destination command
    and the API: the model's field validators and inbox.filters.clean_destination_filter."""

    preview_message = forms.TypedChoiceField(
        label="Preview on message",
        coerce=int,
        required=False,
        empty_value=None,
        help_text="A stored message of this endpoint to show the transform's result on.",
    )

    class Meta:
        model = Destination
        fields = [
            "url",
            "enabled",
            "paused",
            "filter",
            "transform",
            "preview_message",
            "sign",
            "max_rate",
            "breaker_threshold",
            "timeout_seconds",
            "forward_headers",
        ]
        widgets = {
            "url": forms.URLInput(attrs={"placeholder": "https://staging.example.com/webhooks/stripe"}),
            "filter": forms.TextInput(attrs={"placeholder": "event_type=invoice.*&json=data.object.amount>1000"}),
            "transform": forms.Textarea(attrs={"rows": 2, "placeholder": "{id: id, amount: data.object.amount}"}),
            "max_rate": forms.TextInput(attrs={"placeholder": "10/s"}),
        }
        labels = {"paused": "Paused (hold messages until resumed)"}

    def __init__(self, *args: Any, recent: list[tuple[int, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        preview = self.fields["preview_message"]
        assert isinstance(preview, forms.ChoiceField)  # declared above
        preview.choices = [("", "The newest JSON message"), *(recent or [])]
        # Left empty (or by a client that predates it): keep what it was, 20 for a new one.
        self.fields["breaker_threshold"].required = False
        if self.instance.pk:
            # Pausing and resuming have buttons of their own: resuming sends what was held.
            del self.fields["paused"]

    def clean_filter(self) -> str:
        return clean_destination_filter(self.cleaned_data["filter"], self.instance.endpoint_id)

    def clean_breaker_threshold(self) -> int:
        value: int | None = self.cleaned_data.get("breaker_threshold")
        return self.instance.breaker_threshold if value is None else value

    def clean_transform(self) -> str:
        value: str = self.cleaned_data["transform"]
        return value.strip()

    def clean_forward_headers(self) -> str:
        value: str = self.cleaned_data["forward_headers"]
        names = [n.strip() for n in value.split(",") if n.strip()]
        for name in names:
            if name != "*":
                validate_header_name(name)
        return ", ".join(names)


class DestinationRotateForm(forms.Form):
    grace = forms.TypedChoiceField(
        label="Keep signing with the current secret for",
        coerce=int,
        choices=[(0, "No time: stop at once"), (1, "1 hour"), (24, "24 hours"), (72, "3 days")],
        initial=24,
        help_text="Both signatures are sent meanwhile, so the destination can switch secrets without a gap.",
    )


class ApiTokenForm(FocusFirstError, forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “deploy script” or “laptop listen”.")
    scope = forms.ChoiceField(
        choices=ApiScope.choices,
        initial=ApiScope.READ,
        help_text="Read is enough for listen and for reading messages. Either way the token can do no more "
        "than your account may.",
    )


class DestinationChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.endpoint.name} → {obj.display_url}"


class AlertRuleForm(FocusFirstError, forms.ModelForm[AlertRule]):
    """An alert rule: the same validation as `add_alert` (the model's validators and clean)."""

    destination = DestinationChoice(
        queryset=Destination.objects.select_related("endpoint").order_by("endpoint__name", "pk"),
        required=False,
        empty_label="Any (every forward of the endpoint)",
        help_text=AlertRule._meta.get_field("destination").help_text,
    )
    window = forms.CharField(
        max_length=20,
        required=False,
        help_text="How far back to look: 5m, 2h or 1d (1m to 7d). Empty: 5m, or 1h for silence.",
        widget=forms.TextInput(attrs={"placeholder": "5m"}),
    )

    class Meta:
        model = AlertRule
        fields = ["name", "kind", "endpoint", "destination", "threshold", "window", "min_attempts", "notify", "muted"]
        widgets = {
            "name": forms.TextInput(attrs={"placeholder": "Shop forwards failing"}),
            "notify": forms.TextInput(
                attrs={"placeholder": "https://hooks.slack.com/services/… or email:ops@example.com"}
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        endpoint = self.fields["endpoint"]
        assert isinstance(endpoint, forms.ModelChoiceField)  # a foreign key
        endpoint.empty_label = "Every endpoint"
        endpoint.queryset = Endpoint.objects.only("id", "name")
        if self.instance.pk:
            self.initial["window"] = self.instance.window

    def clean_window(self) -> str:
        value: str = self.cleaned_data.get("window") or ""
        if not value.strip():
            silence = self.data.get("kind") == AlertKind.SILENCE
            self.instance.window_seconds = DEFAULT_SILENCE_WINDOW_SECONDS if silence else DEFAULT_WINDOW_SECONDS
            return ""
        self.instance.window_seconds = parse_window(value)
        return value.strip()


# How much of a refused query value an error repeats: enough to recognise it.
ECHOED_CHARS = 40


def echoed(value: str) -> str:
    """A refused value as an error repeats it: its first ECHOED_CHARS characters and "…",
    invisible and bidi characters as the dashboard's markers (`⟨U+202E⟩`)."""
    short = value[:ECHOED_CHARS] + ("…" if len(value) > ECHOED_CHARS else "")
    return mark_invisible(short)


class EchoingChoiceField(forms.ChoiceField):
    """A choice whose error names the refused value shortened and with its invisible
    characters shown (Django's repeats it whole and raw)."""

    def validate(self, value: Any) -> None:
        try:
            super().validate(value)
        except forms.ValidationError as exc:
            if exc.code != "invalid_choice":
                raise
            raise forms.ValidationError(
                "Select a valid choice. %(value)s is not one of the available choices.",
                code="invalid_choice",
                params={"value": echoed(str(value))},
            ) from None


class AlertFilterForm(forms.Form):
    """The alerts page's filters: which state, which rule (query parameters)."""

    state = EchoingChoiceField(choices=[("", "Any"), *AlertState.choices], required=False)
    rule = forms.ModelChoiceField(queryset=AlertRule.objects.only("id", "name"), required=False, empty_label="Any")
