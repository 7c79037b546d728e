"""The audit log's plain entries: model signals on endpoints and destinations write one for
each save and delete made while a request is served (inbox.audit holds the request's scope
and says how the view's own entries and these are merged)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from inbox.audit import current
from inbox.models import AlertRule, AuditAction, AuditEntry

# --- Plain entries from model signals ------------------------------------------------------
# Never compared nor shown by value: a change to any of them is "secret".
SECRET_FIELDS = frozenset(
    {
        "token_digest",
        "secret_encrypted",
        "previous_token_digest",
        "previous_secret_encrypted",
        "previous_expires_at",
        "token_rotated_at",
        "basic_username",
    }
)
# Kept by Django itself, not changes anyone made.
IGNORED_FIELDS = frozenset({"updated_at", "created_at"})
# Changes worth their before and after in the entry (they decide who may post).
SHOWN_FIELDS = ("auth", "enabled")


def _values(instance: Any) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def _snapshot(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """pre_save: remember the row as stored, to name what the save changes."""
    if raw or current() is None or instance.pk is None:
        return
    stored = sender._default_manager.filter(pk=instance.pk).values(*_values(instance)).first()
    instance._audit_before = stored


def _changes(instance: Any) -> tuple[list[str], dict[str, str]]:
    before: dict[str, Any] | None = getattr(instance, "_audit_before", None)
    instance._audit_before = None
    if before is None:
        return [], {}
    after = _values(instance)
    changed: list[str] = []
    for name, value in after.items():
        if name in IGNORED_FIELDS or before.get(name) == value:
            continue
        label = "secret" if name in SECRET_FIELDS else name.removesuffix("_id")
        if label not in changed:
            changed.append(label)
    shown = {name: f"{before[name]} → {after[name]}" for name in SHOWN_FIELDS if name in changed and name in before}
    return changed, shown


def _describe(instance: Any) -> tuple[str, int | None]:
    """(target, endpoint id) of an endpoint or a destination."""
    if instance._meta.model_name == "endpoint":
        return instance.name, instance.pk
    return instance.display_url, instance.endpoint_id


def _saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    scope = current()
    if raw or scope is None:
        return
    endpoint_model = instance._meta.model_name == "endpoint"
    details: dict[str, Any] = {}
    if created:
        action = AuditAction.ENDPOINT_CREATED if endpoint_model else AuditAction.DESTINATION_ADDED
    else:
        changed, shown = _changes(instance)
        if not changed:
            return  # saved as it was: nothing to audit
        action = AuditAction.ENDPOINT_CHANGED if endpoint_model else AuditAction.DESTINATION_CHANGED
        details = {"changed": changed, **shown}
    target, endpoint_id = _describe(instance)
    AuditEntry.record_plain(scope, instance, action, target, endpoint_id, exists=True, **details)


def _deleting(sender: Any, instance: Any, **kwargs: Any) -> None:
    """pre_delete: name the alert rules the database deletes with it (their foreign keys
    cascade in the database, so they send no signal and are gone by post_delete)."""
    if current() is None:
        return
    instance._audit_alert_rules = AlertRule.objects.going_with(instance).described()[1]


def _deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    scope = current()
    if scope is None:
        return
    target, endpoint_id = _describe(instance)
    rules: dict[str, Any] = getattr(instance, "_audit_alert_rules", None) or {}
    if instance._meta.model_name == "endpoint":
        # The row is gone: the entry keeps its name and id, not a link to it.
        AuditEntry.record_plain(
            scope, instance, AuditAction.ENDPOINT_DELETED, target, endpoint_id, exists=False, id=instance.pk, **rules
        )
    else:
        AuditEntry.record_plain(
            scope, instance, AuditAction.DESTINATION_DELETED, target, endpoint_id, exists=True, **rules
        )


def connect() -> None:
    """Connect the receivers (InboxConfig.ready imports this module once the models are)."""
    for model in ("inbox.Endpoint", "inbox.Destination"):
        pre_save.connect(_snapshot, sender=model, dispatch_uid=f"audit-snapshot-{model}")
        post_save.connect(_saved, sender=model, dispatch_uid=f"audit-saved-{model}")
        pre_delete.connect(_deleting, sender=model, dispatch_uid=f"audit-deleting-{model}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"audit-deleted-{model}")
