from __future__ import annotations

from django.contrib import admin

from inbox.models import Attempt, BulkJob, Destination, Endpoint, Message, RejectedAttempt


class DestinationInline(admin.TabularInline[Destination, Endpoint]):
    model = Destination
    extra = 0


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin[Endpoint]):
    inlines = [DestinationInline]
    list_display = ["name", "enabled", "auth", "rate_limit", "retention_days", "created_at"]
    list_filter = ["enabled", "auth"]
    search_fields = ["name", "description"]
    # The slug is the secret URL and the digest a credential: neither is shown or editable here.
    exclude = ["slug", "token_digest", "secret_encrypted", "previous_token_digest", "previous_secret_encrypted"]
    readonly_fields = ["created_at", "updated_at", "token_rotated_at", "created_by"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin[Message]):
    list_display = [
        "id",
        "received_at",
        "endpoint",
        "method",
        "event_type",
        "content_type",
        "body_size",
        "verification",
        "status",
    ]
    list_filter = ["endpoint", "method", "verification", "status", "received_at"]
    search_fields = ["event_type", "idempotency_key"]
    list_select_related = ["endpoint"]
    # Bodies and headers are shown by the payload viewer, which escapes them; here they
    # stay read-only so the admin cannot rewrite history.
    readonly_fields = [f.name for f in Message._meta.fields]
    show_full_result_count = False

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).defer("body_text", "body_bytes", "json", "headers")

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(RejectedAttempt)
class RejectedAttemptAdmin(admin.ModelAdmin[RejectedAttempt]):
    list_display = ["at", "endpoint", "status", "reason", "remote_addr", "body_size"]
    list_filter = ["endpoint", "status", "preset"]
    list_select_related = ["endpoint"]
    readonly_fields = [f.name for f in RejectedAttempt._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin[Attempt]):
    list_display = ["started_at", "endpoint", "message_id", "label", "status", "status_code", "duration_ms"]
    list_filter = ["endpoint", "status"]
    list_select_related = ["endpoint"]
    readonly_fields = [f.name for f in Attempt._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(BulkJob)
class BulkJobAdmin(admin.ModelAdmin[BulkJob]):
    list_display = ["id", "action", "status", "done", "total", "created_by", "created_at", "finished_at"]
    readonly_fields = [f.name for f in BulkJob._meta.fields]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
