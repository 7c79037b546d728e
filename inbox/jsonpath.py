"""The list's JSON path filter: `data.object.status = paid`.

    PATH                 the key exists (its value may be null)
    PATH = VALUE         equal        PATH != VALUE   present and different
    PATH > VALUE  (>=, <, <=)         numbers, or strings compared as JSON
    PATH ~ TEXT          the value contains TEXT, case-insensitively

PATH is dot-separated keys; a key of digits indexes an array (`items.0.sku`). VALUE is
read as JSON when it parses (`42`, `true`, `null`, `"42"`), else as a string (`paid`).

On PostgreSQL an `=` on plain keys is written as jsonb containment (`json @> {...}`),
which the GIN index of migration 0005 answers; every other form is a key lookup, which
works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
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
    op = match["op"]
    if op is None:
        return JsonPathQuery(keys, None, None)
    raw = match["value"]
    if raw == "":
        raise ValidationError(f"Give a value after {op}, e.g. {match['path']} {op} paid.")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if op in (">", ">=", "<", "<=") and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
        raise ValidationError(f"{op} compares numbers or strings.")
    return JsonPathQuery(keys, op, value)
