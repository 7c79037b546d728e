from __future__ import annotations

from django import forms

from inbox.models import Endpoint, validate_methods


class EndpointForm(forms.ModelForm[Endpoint]):
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
            "max_body_bytes": "Max body size (bytes)",
            "retention_days": "Retention (days)",
            "dedupe_on_payload_id": "Deduplicate on payload id",
            "rate_limit_fail_open": "Fail open",
        }

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
