"""The staff dashboard. `inbox.views.rate_limited` is RATELIMIT_VIEW (config/settings.py)."""

from __future__ import annotations

from inbox.views.common import healthz, rate_limited, staff_required
from inbox.views.endpoints import (
    endpoint_create,
    endpoint_delete,
    endpoint_detail,
    endpoint_edit,
    endpoint_list,
    endpoint_rotate,
    endpoint_send_test,
)
from inbox.views.export import export_csv, export_ndjson
from inbox.views.messages import message_delete, message_detail, message_list, message_raw
from inbox.views.processing import (
    destination_create,
    destination_delete,
    destination_edit,
    job_detail,
    message_replay,
    messages_replay,
)

__all__ = [
    "destination_create",
    "destination_delete",
    "destination_edit",
    "endpoint_create",
    "endpoint_delete",
    "endpoint_detail",
    "endpoint_edit",
    "endpoint_list",
    "endpoint_rotate",
    "endpoint_send_test",
    "export_csv",
    "export_ndjson",
    "healthz",
    "job_detail",
    "message_delete",
    "message_detail",
    "message_list",
    "message_raw",
    "message_replay",
    "messages_replay",
    "rate_limited",
    "staff_required",
]
