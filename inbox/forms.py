from __future__ import annotations

import re
from typing import Any

from django import forms

from inbox.models import Destination, Endpoint, validate_header_name, validate_methods
from inbox.verification import DIGESTS, HMAC_OPTION_DEFAULTS, PRESETS

HMAC_FIELDS = ("header", "digest", "encoding", "prefix", "template", "timestamp_header", "tolerance")


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


class EndpointForm(forms.ModelForm[Endpoint]):
    # The provider's secret belongs right under the preset it goes with.
    field_order = ["name", "description", "enabled", "auth", "secret", "token_header"]

    secret = secret_field(
        "Secret from the provider",
        "For providers that issue the secret (Stripe, Shopify, Slack, Paddle, Square, Twilio, Discord's public "
        "key, …). Leave empty to keep the current one, or to have one generated where the preset allows it.",
    )
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
        fields = [
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
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "response_body": forms.Textarea(attrs={"rows": 2}),
        }
        labels = {
            "auth": "Verification",
            "token_header": "Token header",
            "max_body_bytes": "Max body size (bytes)",
            "retention_days": "Retention (days)",
            "dedupe_on_payload_id": "Deduplicate on payload id",
            "rate_limit_fail_open": "Fail open",
        }
        help_texts = {"token_header": "For the shared-token scheme: the header that carries the token."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.instance.scheme_options or {}
        for name in HMAC_FIELDS:
            if name in options:
                self.fields[f"hmac_{name}"].initial = options[name]

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

    def main_fields(self) -> list[forms.BoundField]:
        return [field for field in self if not field.name.startswith("hmac_")]

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
        secret: str = cleaned.get("secret") or ""
        if secret:
            if preset.secret_kind in ("none", "basic"):
                self.add_error("secret", f"{preset.label} takes no secret.")
            elif problem := preset.validate_secret(secret):
                self.add_error("secret", problem)
        elif self.auth_changed and not preset.generates_secret and preset.secret_kind != "none":
            self.add_error("secret", f"Paste the {preset.secret_label.lower()} that {preset.label} gives you.")
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


class RotateForm(forms.Form):
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

    def clean_secret(self) -> str:
        value: str = self.cleaned_data["secret"]
        preset = self.endpoint.preset
        if value:
            if self.endpoint.secret_kind == "basic":
                raise forms.ValidationError("HTTP Basic passwords are always generated.")
            if problem := preset.validate_secret(value):
                raise forms.ValidationError(problem)
        elif not preset.generates_secret and self.endpoint.secret_kind not in ("token", "basic"):
            raise forms.ValidationError(f"Paste the new {preset.secret_label.lower()} from {preset.label}.")
        return value


class DestinationForm(forms.ModelForm[Destination]):
    class Meta:
        model = Destination
        fields = ["url", "enabled", "timeout_seconds", "forward_headers"]
        widgets = {"url": forms.URLInput(attrs={"placeholder": "https://staging.example.com/webhooks/stripe"})}

    def clean_forward_headers(self) -> str:
        value: str = self.cleaned_data["forward_headers"]
        names = [n.strip() for n in value.split(",") if n.strip()]
        for name in names:
            if name != "*":
                validate_header_name(name)
        return ", ".join(names)
