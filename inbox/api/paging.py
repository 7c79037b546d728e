"""Keyset pages for the message list: `limit` and an opaque `next` URL, never a COUNT.

The cursor is the last row's (received_at, id), as the dashboard's list pages by
(Message.cursor), wrapped in base64 so that clients treat it as a token and follow `next`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from inbox.models import Message, MessageQuerySet

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(message: Message) -> str:
    return base64.urlsafe_b64encode(message.cursor.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raw = ""
    parsed = Message.parse_cursor(raw) if raw else None
    if parsed is None:
        raise serializers.ValidationError({"cursor": ["Not a cursor this API gave: follow the `next` URL as it is."]})
    return parsed


class KeysetPagination(BasePagination):
    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        limit = self._limit(request)
        messages: MessageQuerySet = queryset
        cursor = request.query_params.get("cursor")
        page = messages.older_than(*decode_cursor(cursor)) if cursor else messages.newest_first()
        rows = list(page[: limit + 1])
        self.next = None
        if len(rows) > limit:
            rows = rows[:limit]
            self.next = replace_query_param(request.build_absolute_uri(), "cursor", encode_cursor(rows[-1]))
        return rows

    def _limit(self, request: Request) -> int:
        value = request.query_params.get("limit", "")
        if not value:
            return DEFAULT_LIMIT
        if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
            raise serializers.ValidationError({"limit": [f"Enter a whole number from 1 to {MAX_LIMIT}."]})
        return int(value)

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "next": self.next})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "format": "uri", "nullable": True, "description": "The next page, or null."},
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Messages per page (1-{MAX_LIMIT}, default {DEFAULT_LIMIT}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            },
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "Opaque: part of a `next` URL.",
                "schema": {"type": "string"},
            },
        ]
