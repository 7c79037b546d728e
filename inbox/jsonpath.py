"""The list's JSON path filter: `data.object.status = paid`.

    PATH                 the key exists (its value may be null)
    PATH = VALUE         equal        PATH != VALUE   present and different
    PATH > VALUE  (>=, <, <=)         numbers, or strings compared as JSON
    PATH ~ TEXT          the value contains TEXT, case-insensitively

PATH is dot-separated keys; a key of digits indexes an array (`items.0.sku`). VALUE is
read as JSON when it parses (`42`, `true`, `null`, `"42"`), else as a string (`paid`).

Values no stored document can hold are refused here, with the reason, so that every path
that filters (the list, the viewer's newer/older, the live poll, exports, bulk jobs) says
the same thing instead of failing in the database: NaN and infinities (`1e999`), whole
numbers beyond 64 bits, text with U+0000 or a lone surrogate (`"\\u0000"`, `"\\ud800"`),
and documents nested deeper than MAX_DEPTH. The receiver stores neither non-finite
numbers nor such text in a parsed copy (inbox.receiver.parse_json), so those filters could
never match anything anyway.

On PostgreSQL an `=` on plain keys is written as jsonb containment (`json @> {...}`),
which the GIN index of migration 0005 answers; every other form is a key lookup, which
works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import F, Q
from django.db.models.fields.json import KeyTransform

if TYPE_CHECKING:
    from inbox.models import MessageQuerySet

EXPRESSION = re.compile(
    r"^\s*(?P<path>[^\s=!<>~]+)\s*(?:(?P<op>!=|>=|<=|=|>|<|~)\s*(?P<value>.*?))?\s*$",
    re.DOTALL,
)
KEY = re.compile(r"^[^.\s]{1,100}$")
MAX_DEPTH = 20
MAX_INDEX_DIGITS = 9
# SQLite binds integers as 64-bit; PostgreSQL could take more, but a filter means the same
# on both databases.
INT64 = (-(2**63), 2**63 - 1)
LOOKUPS = {"=": "exact", "!=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "~": "icontains"}


@dataclass(frozen=True)
class JsonPathQuery:
    keys: tuple[str, ...]
    op: str | None
    value: Any

    def apply(self, messages: MessageQuerySet) -> MessageQuerySet:
        if self.op is None:
            return messages.alias(_json_path=self._transform()).filter(_json_path__isnull=False)
        if self.op == "=" and connection.vendor == "postgresql" and not any(k.isdigit() for k in self.keys):
            nested: Any = self.value
            for key in reversed(self.keys):
                nested = {key: nested}
            return messages.filter(json__contains=nested)
        value = self.value
        if self.op == "~":
            value = value if isinstance(value, str) else json.dumps(value)
        condition = Q(**{f"_json_path__{LOOKUPS[self.op]}": value})
        if self.op == "!=":
            return messages.alias(_json_path=self._transform()).filter(_json_path__isnull=False).exclude(condition)
        return messages.alias(_json_path=self._transform()).filter(condition)

    def _transform(self) -> Any:
        expression: Any = F("json")
        for key in self.keys:
            expression = KeyTransform(key, expression)
        return expression


def parse(text: str) -> JsonPathQuery:
    match = EXPRESSION.match(text)
    if not match:
        raise ValidationError("Write a JSON path filter as path = value, e.g. data.object.status = paid.")
    keys = tuple(match["path"].split("."))
    if not all(KEY.match(k) for k in keys) or len(keys) > 20:
        raise ValidationError("A JSON path is keys separated by dots, e.g. data.object.status.")
    for key in keys:
        _check_text(key, "A key")
        _check_index(key)
    op = match["op"]
    if op is None:
        return JsonPathQuery(keys, None, None)
    raw = match["value"]
    if raw == "":
        raise ValidationError(f"Give a value after {op}, e.g. {match['path']} {op} paid.")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except _NotFinite:
        raise ValidationError(NOT_FINITE) from None
    except (ValueError, RecursionError):
        value = raw
    _check_value(value)
    if op in (">", ">=", "<", "<=") and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
        raise ValidationError(f"{op} compares numbers or strings.")
    return JsonPathQuery(keys, op, value)


NOT_FINITE = (
    "A number must be finite: NaN, Infinity and numbers beyond about 1.8e308 match nothing "
    '(to match the text, quote it: "NaN").'
)


class _NotFinite(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotFinite(name)


def _check_value(value: Any, depth: int = 0) -> None:
    """Raise ValidationError, with the reason, for a value no stored document can hold."""
    if depth > MAX_DEPTH:
        raise ValidationError(f"A value may nest at most {MAX_DEPTH} levels deep.")
    if isinstance(value, str):
        _check_text(value, "Text")
    elif isinstance(value, bool):
        pass
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(NOT_FINITE)
    elif isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        raise ValidationError(f"A whole number must lie between {INT64[0]} and {INT64[1]}; quote a longer one as text.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, "A key")
            _check_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_value(item, depth + 1)


def _check_index(key: str) -> None:
    """Django reads any key int() takes as an array position (KeyTransform), so `-1`, `+1`,
    `1_0` and Arabic-Indic digits would be positions too, and on PostgreSQL a position past 32 bits is an
    operator that does not exist: positions are plain digits, at most MAX_INDEX_DIGITS."""
    try:
        int(key)
    except ValueError:
        return
    if not (key.isascii() and key.isdigit()) or len(key) > MAX_INDEX_DIGITS:
        raise ValidationError(
            f"A key that reads as a number is an array position: write it with the digits 0-9 only, "
            f"at most {MAX_INDEX_DIGITS} of them (not {key[:20]})."
        )


def _check_text(text: str, what: str) -> None:
    # Stored documents hold neither (the receiver replaces them), PostgreSQL's jsonb and
    # text refuse them, and SQLite's JSON functions call such text malformed.
    if "\x00" in text:
        raise ValidationError(f"{what} in a JSON path filter cannot contain U+0000 (NUL).")
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        raise ValidationError(f"{what} in a JSON path filter cannot contain a lone surrogate (U+D800 to U+DFFF).")
