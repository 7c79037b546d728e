"""The staff dashboard. `inbox.dashboard.views.rate_limited` is RATELIMIT_VIEW (config/settings.py)."""

from __future__ import annotations

from inbox.dashboard.views.actions import (
    destination_create,
    destination_delete,
    destination_edit,
    destination_pause,
    destination_resume,
    destination_rotate,
    job_detail,
    message_replay,
    messages_bulk,
)
from inbox.dashboard.views.alerts import (
    alert_acknowledge,
    alert_list,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_edit,
    alert_rule_mute,
)
from inbox.dashboard.views.common import audit_list, healthz, login, rate_limited, staff_required
from inbox.dashboard.views.endpoints import (
    endpoint_create,
    endpoint_delete,
    endpoint_detail,
    endpoint_edit,
    endpoint_first_delivery,
    endpoint_list,
    endpoint_new_url,
    endpoint_quick,
    endpoint_rotate,
    endpoint_send_test,
)
from inbox.dashboard.views.export import export_csv, export_ndjson
from inbox.dashboard.views.messages import (
    message_compare,
    message_delete,
    message_detail,
    message_list,
    message_list_new,
    message_raw,
)
from inbox.dashboard.views.tokens import token_list, token_revoke

__all__ = [
    "alert_acknowledge",
    "alert_list",
    "alert_rule_create",
    "alert_rule_delete",
    "alert_rule_edit",
    "alert_rule_mute",
    "audit_list",
    "destination_create",
    "destination_delete",
    "destination_edit",
    "destination_pause",
    "destination_resume",
    "destination_rotate",
    "endpoint_create",
    "endpoint_delete",
    "endpoint_detail",
    "endpoint_edit",
    "endpoint_first_delivery",
    "endpoint_list",
    "endpoint_new_url",
    "endpoint_quick",
    "endpoint_rotate",
    "endpoint_send_test",
    "export_csv",
    "export_ndjson",
    "healthz",
    "job_detail",
    "login",
    "message_compare",
    "message_delete",
    "message_detail",
    "message_list",
    "message_list_new",
    "message_raw",
    "message_replay",
    "messages_bulk",
    "rate_limited",
    "staff_required",
    "token_list",
    "token_revoke",
]
