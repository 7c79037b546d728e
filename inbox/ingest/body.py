"""What is kept of a delivery besides its raw bytes: the parsed JSON, the list's preview, and
the headers with every credential redacted.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from inbox.charsets import decode_declared
from inbox.models import REDACTED, Endpoint, Message

# Documents nested deeper than this are kept as raw bytes only: PostgreSQL's jsonb and
# Python's own encoder both have recursion limits, and no real webhook comes close. A level
# is an object or an array: 128 arrays inside each other are kept, 129 are not, and objects
# alike, whatever the innermost holds (`[]`, `{}` or `{"a": 1}`).
MAX_JSON_DEPTH = 128


def _clean_str(value: str) -> str:
    # PostgreSQL's jsonb cannot hold U+0000 or unpaired surrogates; the raw body keeps
    # the exact bytes, the parsed copy gets U+FFFD in their place.
    if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
        return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in value)
    return value


def _storable(value: Any, depth: int = 0) -> Any:
    """`value` with what jsonb refuses replaced; ValueError when it cannot be stored.
    `depth`: how many objects and arrays hold `value`."""
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("non-finite number")
    if isinstance(value, dict | list) and depth >= MAX_JSON_DEPTH:
        # This container is level depth + 1. Only containers count: a scalar adds no level,
        # and an empty one is a level though nothing sits inside it.
        raise ValueError("nested too deeply")
    if isinstance(value, dict):
        return {_clean_str(k): _storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v, depth + 1) for v in value]
    return value


def parse_json(raw: bytes) -> Any | None:
    """The body as a JSON value safe for every database, or None when it is not JSON."""
    parsed = parse_json_as_is(raw)
    return _parse_slowly(raw) if parsed is SLOW else parsed


# parse_json_as_is's answer when only the careful parse can say.
SLOW: Any = object()
# Integers orjson would turn into floats (it keeps 64 bits) need the careful parse.
_LONG_NUMBER = re.compile(rb"\d{19}")


def parse_json_as_is(raw: bytes) -> Any | None:
    """The body parsed by orjson when the body's own text is storable as it is (jsonb, SQLite
    JSON): no escaped NUL, no lone surrogate, no non-finite or over-long number, not nested
    too deeply. None when it is not a JSON document, SLOW when parse_json must decide.

    The receiver then hands the body's text to the database as the JSON column too: one
    parse, no encoding (docs/architecture.md, "The ingest pipeline").
    """
    if not raw or raw.lstrip()[:1] not in (b"{", b"["):
        # Only documents are worth parsing: a bare string or number is stored as text.
        return None
    # At most MAX_JSON_DEPTH brackets in all (in strings too) cannot nest deeper than that.
    if b"\\u0000" in raw or _LONG_NUMBER.search(raw) or raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH:
        return SLOW
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Not JSON, or JSON orjson refuses and json accepts (a lone surrogate, 1e999,
        # UTF-16): the careful parse decides.
        return SLOW


def _parse_slowly(raw: bytes) -> Any | None:
    try:
        parsed = json.loads(raw, parse_constant=_refuse_constant)
        return _storable(parsed)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None


def json_text(value: Any) -> str:
    """A JSON column's value as the text the database parses (jsonb) or keeps (SQLite).
    A NUL anywhere in it (a header name or value, a key) becomes U+FFFD, as in the parsed
    body: PostgreSQL's jsonb refuses \u0000."""
    text = _dumps(value)
    if "\\u0000" in text:
        text = _dumps(_storable(value))
    return text


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits
        return json.dumps(value)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def stored_headers(request: HttpRequest, endpoint: Endpoint) -> dict[str, str]:
    redacted = endpoint.redacted_header_names()
    return {name: (REDACTED if name.lower() in redacted else value) for name, value in request.headers.items()}


def preview_of(message: Message) -> str:
    return preview(message.body, message.body_text, message.query_string, message.content_type)


def preview(raw: bytes, body_text: str | None, query_string: str, content_type: str) -> str:
    if not raw:
        text = query_string
    elif body_text is not None:
        text = body_text
    elif decoded := decode_declared(raw, content_type):
        text = decoded[0]  # a latin-1 (or other declared charset) text body
    else:
        return f"[{filesizeformat(len(raw))} of binary data]"
    return " ".join(text[:400].split())[:200]
