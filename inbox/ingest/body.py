"""What is kept of a delivery besides its raw bytes: the parsed JSON, the list's preview, and
the headers with every credential redacted.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from inbox.charsets import decode_declared
from inbox.models import REDACTED, Endpoint, Message

# Documents nested deeper than this are kept as raw bytes only: PostgreSQL's jsonb and
# Python's own encoder both have recursion limits, and no real webhook comes close.
MAX_JSON_DEPTH = 128


def _clean_str(value: str) -> str:
    # PostgreSQL's jsonb cannot hold U+0000 or unpaired surrogates; the raw body keeps
    # the exact bytes, the parsed copy gets U+FFFD in their place.
    if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
        return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in value)
    return value


def _storable(value: Any, depth: int = 0) -> Any:
    if depth > MAX_JSON_DEPTH:
        raise ValueError("nested too deeply")
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("non-finite number")
    if isinstance(value, dict):
        return {_clean_str(k): _storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v, depth + 1) for v in value]
    return value


def parse_json(raw: bytes) -> Any | None:
    """The body as a JSON value safe for every database, or None when it is not JSON."""
    if not raw or raw.lstrip()[:1] not in (b"{", b"["):
        # Only documents are worth parsing: a bare string or number is stored as text.
        return None
    try:
        parsed = json.loads(raw, parse_constant=_refuse_constant)
        return _storable(parsed)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def stored_headers(request: HttpRequest, endpoint: Endpoint) -> dict[str, str]:
    redacted = endpoint.redacted_header_names()
    return {name: (REDACTED if name.lower() in redacted else value) for name, value in request.headers.items()}


def preview_of(message: Message) -> str:
    if not message.body_size:
        text = message.query_string
    elif message.body_text is not None:
        text = message.body_text
    elif decoded := decode_declared(message.body, message.content_type):
        text = decoded[0]  # a latin-1 (or other declared charset) text body
    else:
        return f"[{filesizeformat(message.body_size)} of binary data]"
    return " ".join(text[:400].split())[:200]
