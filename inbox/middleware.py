"""Request checks that apply to every page but the receiver."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

logger = logging.getLogger("inbox.views")


def refuse_nul_bytes(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """A NUL in a query parameter is a 400 on staff pages: PostgreSQL cannot compare text
    with it, and a lookup the admin builds from the query string would otherwise be a 500.
    The receiver keeps what providers send (it stores the query string as received)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/hooks/") and any(
            "\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values
        ):
            logger.warning("refused a query string holding NUL path=%s", request.path[:100])
            reason = "NUL bytes are not accepted in query parameters.\n"
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": reason.strip()}, status=400)  # the API answers JSON
            return HttpResponseBadRequest(reason, content_type="text/plain")
        return get_response(request)

    return middleware
