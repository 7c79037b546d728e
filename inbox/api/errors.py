"""The API's errors, all JSON: DRF's handler, plus a 404 and a 429 in the same shape, and
every 5xx logged with its traceback."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger("inbox.api")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with a 404's body in the same shape as every other error, and the
    throttle's answer naming the limit."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    if isinstance(exc, exceptions.Throttled):
        exc = exceptions.Throttled(
            wait=60, detail=f"Too many requests for this token (limit {settings.INBOX_API_RATE})."
        )
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code >= 500:
        logger.error("api error", exc_info=exc)
    return response
