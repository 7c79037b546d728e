"""Template context for every dashboard page (settings' TEMPLATES context processors)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

from inbox.models import Alert


def open_alerts(request: HttpRequest) -> dict[str, Callable[[], int]]:
    """`open_alerts`: how many alerts are open and not acknowledged, for the menu. A callable
    (templates call it when they read it): one small COUNT (the alert_state_opened index), only
    on pages that show the menu to staff, once per page."""

    @functools.cache
    def count(*args: Any) -> int:
        return Alert.objects.unacknowledged().count()

    return {"open_alerts": count}
