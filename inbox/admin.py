from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from inbox.models import (
    Attempt,
    AuditAction,
    AuditEntry,
    BulkJob,
    Destination,
    Endpoint,
    Message,
    RejectedAttempt,
)

# Endpoints and destinations changed here reach the audit log through inbox.audit's signals;
# messages have no signals (they would make bulk deletes row by row), so MessageAdmin
# writes its own entries.


class DestinationInline(admin.TabularInline[Destination, Endpoint]):
    model = Destination
    extra = 0
    # Routing is edited on the dashboard's destination form, which validates a filter with the
    # list's FilterSet and shows a signing secret once; here it is only shown.
    readonly_fields = ["filter", "transform", "sign", "max_rate", "paused"]
    fields = ["url", "enabled", "timeout_seconds", "forward_headers", *readonly_fields]


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

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Every field is read-only: viewing, and deleting, are all the admin does here.
        return False

    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        pk, endpoint = obj.pk, obj.endpoint
        super().delete_model(request, obj)
        AuditEntry.record(request.user, AuditAction.MESSAGES_DELETED, f"message #{pk}", endpoint, via="admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        # One entry for the whole selection, as for a bulk job in the dashboard; its ids
        # listed up to 50 ("select all" in the admin may mean every message).
        ids: list[Any] = list(queryset.order_by("pk").values_list("pk", flat=True)[:51])
        endpoints = list(queryset.order_by().values_list("endpoint_id", flat=True).distinct()[:2])
        count = queryset.count()
        super().delete_queryset(request, queryset)
        endpoint = Endpoint.objects.filter(pk=endpoints[0]).first() if len(endpoints) == 1 else None
        details: dict[str, Any] = {"ids": ids[:50] + (["…"] if len(ids) > 50 else []), "via": "admin"}
        target = f"{count} selected message{'s' if count != 1 else ''}"
        AuditEntry.record(request.user, AuditAction.MESSAGES_DELETED, target, endpoint, **details)


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
