from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils import timezone

from inbox import jsonpath
from inbox.models import RECEIVER_METHODS, Endpoint, Message, MessageQuerySet, Status, Verification

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
# "skipped" stays the stored value (and `status=skipped` keeps working); people read
# "stored": nothing was asked of the worker, the message is simply kept.
STATUS_CHOICES = [
    (value, "Stored (nothing to do)" if value == Status.SKIPPED else label) for value, label in Status.choices
]


# A `*`, `?` or `[` in the event type filter makes it a shell pattern (`invoice.*`); any
# other value matches exactly, as it always did.
GLOB_CHARS = frozenset("*?[")


def event_type_regex(pattern: str) -> str:
    """A shell pattern (`*`, `?`, `[seq]`, `[!seq]`, as fnmatch reads them) as a regular
    expression that SQLite (Python's re, through Django's REGEXP) and PostgreSQL (`~`) read
    the same way: `(?s)` lets `.` match a newline in both, `\\A`/`\\Z` anchor the whole value
    in both, and every other ASCII punctuation mark is escaped (both read `\\.` as `.`)."""
    out = ["(?s)\\A"]
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            j = i + 1 if i < n and pattern[i] == "!" else i
            j = j + 1 if j < n and pattern[j] == "]" else j  # a leading ] is a member
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")  # no closing bracket: a plain [
                continue
            members, i = pattern[i:j], j + 1
            negate = members.startswith("!")
            members = members.removeprefix("!")
            escaped = "".join("\\" + c if c in "\\^[]" else c for c in members)
            out.append("[" + ("^" if negate else "") + escaped + "]")
        else:
            out.append("\\" + char if char.isascii() and not char.isalnum() else char)
    out.append("\\Z")
    return "".join(out)


def validate_event_type(value: str) -> None:
    if GLOB_CHARS.intersection(value):
        try:
            re.compile(event_type_regex(value))
        except re.error as exc:
            raise ValidationError(f"Not a valid event type pattern: {exc.msg}.", code="pattern") from None


class BoundedDateTimeField(forms.DateTimeField):
    """A date and time that exists in UTC too: the database compares in UTC, and the first
    hours of year 1 in a zone ahead of UTC (or the last of 9999 behind it) do not."""

    def to_python(self, value: Any) -> datetime | None:
        result: datetime | None = super().to_python(value)
        if result is not None:
            try:
                # In UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts (-17:32).
                result = result.astimezone(UTC)
            except OverflowError:
                raise ValidationError("Pick a date between the years 1 and 9999.", code="out_of_range") from None
        return result


class BoundedDateTimeFilter(django_filters.DateTimeFilter):  # type: ignore[misc]
    field_class = BoundedDateTimeField


class MessageFilter(django_filters.FilterSet):  # type: ignore[misc]
    """The message list's filters. Every value lives in the query string, so a filtered
    view is a URL that can be bookmarked, shared, exported and paged through."""

    q = django_filters.CharFilter(
        method="search",
        label="Search body and headers",
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Search body and headers"}),
    )
    json = django_filters.CharFilter(
        method="json_path",
        label="JSON path",
        max_length=300,
        validators=[jsonpath.parse],
        widget=forms.TextInput(attrs={"placeholder": "data.object.status = paid"}),
    )
    endpoint = django_filters.ModelChoiceFilter(queryset=Endpoint.objects.only("id", "name"), empty_label="Any")
    event_type = django_filters.CharFilter(
        method="event_type_match", label="Event type", max_length=200, validators=[validate_event_type]
    )
    method = django_filters.ChoiceFilter(choices=[(m, m) for m in RECEIVER_METHODS], empty_label="Any")
    content_type = django_filters.CharFilter(
        lookup_expr="istartswith",
        label="Content type",
        max_length=255,
    )
    received_after = BoundedDateTimeFilter(
        field_name="received_at", lookup_expr="gte", label="Received after", widget=DATETIME_INPUT
    )
    received_before = BoundedDateTimeFilter(
        field_name="received_at", lookup_expr="lt", label="Received before", widget=DATETIME_INPUT
    )
    verification = django_filters.ChoiceFilter(choices=Verification.choices, empty_label="Any")
    # Exactly what the list's select sends: "true" or "false" (empty for any). A boolean
    # field would take "1" as true and quietly treat "maybe" as "any", listing every row.
    read = django_filters.ChoiceFilter(
        choices=[("false", "Unread"), ("true", "Read")], empty_label="Any", label="Read", method="read_state"
    )
    status = django_filters.ChoiceFilter(choices=STATUS_CHOICES, empty_label="Any", label="Processing")

    class Meta:
        model = Message
        fields = ["q", "json", "endpoint", "event_type", "method", "content_type", "verification", "status", "read"]

    def __init__(self, data: QueryDict | None = None, *args: Any, **kwargs: Any) -> None:
        # HTTP methods are upper case, but `method=get` means GET to anyone typing a URL:
        # normalised here, so the form, the query string it renders and every caller agree.
        method = str(data.get("method") or "") if data is not None else ""
        if data is not None and method != method.upper():
            data = data.copy()
            data["method"] = method.upper()
        super().__init__(data, *args, **kwargs)

    def error_list(self) -> list[tuple[str, str, str]]:
        """The errors as (field name, its label, the messages): people read the label,
        `method` is a query-string key. The name is "__all__" (label "") for the form's own."""
        form = self.form
        return [
            (name, "" if name == "__all__" else str(form[name].label), " ".join(errors))
            for name, errors in form.errors.items()
        ]

    def describe(self) -> str:
        """The filter in words, for a confirmation, a job and the audit log: e.g.
        'endpoint “shop”, status failed, search “foo”'; "" when nothing narrows the list.
        Call after is_valid(). User-supplied text is quoted, never interpreted."""
        data: dict[str, Any] = self.form.cleaned_data
        parts = []
        for name, words in DESCRIBED.items():
            value = data.get(name)
            if value is None or value == "":
                continue
            if name == "endpoint":
                parts.append(f"endpoint “{value.name}”")
            elif name == "status":
                parts.append(f"status {value}")
            elif name == "verification":
                parts.append(f"verification {Verification(value).label.lower()}")
            elif name == "read":
                parts.append("read" if value == "true" else "unread")
            elif isinstance(value, datetime):
                when = timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z")
                parts.append(f"{words} {when}")
            elif name == "method":
                parts.append(f"method {value}")
            else:
                parts.append(f"{words} “{value}”")
        return ", ".join(parts)

    def active_filters(self) -> list[str]:
        """Labels of the filters in use besides the search box (the list's "Filters (n)")."""
        data = self.data or {}
        return [str(self.form[name].label) for name in self.filters if name != "q" and data.get(name, "").strip()]

    def search(self, queryset: MessageQuerySet, name: str, value: str) -> MessageQuerySet:
        return queryset.search(value) if value else queryset

    def json_path(self, queryset: MessageQuerySet, name: str, value: str) -> MessageQuerySet:
        return queryset.json_path(jsonpath.parse(value)) if value else queryset

    def event_type_match(self, queryset: MessageQuerySet, name: str, value: str) -> MessageQuerySet:
        if not value:
            return queryset
        if GLOB_CHARS.intersection(value):
            return queryset.filter(event_type__regex=event_type_regex(value))
        return queryset.filter(event_type=value)

    def read_state(self, queryset: MessageQuerySet, name: str, value: str) -> MessageQuerySet:
        return queryset.filter(read=value == "true") if value else queryset


# Filters in the order a sentence names them, with the words for each.
DESCRIBED = {
    "endpoint": "endpoint",
    "status": "status",
    "q": "search",
    "json": "JSON path",
    "event_type": "event type",
    "method": "method",
    "content_type": "content type starting",
    "verification": "verification",
    "read": "read",
    "received_after": "received from",
    "received_before": "received before",
}


def describe_query(query: str) -> str | None:
    """A list query string in words ("" for no filter); None when it is no longer valid
    (an endpoint it names was deleted since)."""
    filterset = MessageFilter(QueryDict(query), queryset=Message.objects.none())
    return filterset.describe() if filterset.is_valid() else None


# --- Destination filters (docs/architecture.md, "Routing") -----------------------------------
# A destination's filter is the list's own query string: what staff filter on screen is
# what the destination receives, evaluated by this same FilterSet (`matches`).
PAGE_KEYS = ("before", "after")  # the list's page cursors: not part of a filter
# These describe the inbox's handling of a message, not the message; while a destination
# decides, the message is always pending and unread by then or not at random.
NOT_FOR_ROUTING = {
    "status": "status is the inbox's own processing state, not part of the message",
    "read": "read is whether staff opened the message, not part of the message",
}


def clean_destination_filter(query: str, endpoint_id: int | None = None) -> str:
    """The destination filter `query` in its stored form (empty values and page cursors
    dropped), or ValidationError with every reason. Shared by the destination form, the
    add_destination command and the API."""
    data = QueryDict(query.strip().lstrip("?"), mutable=True)
    for key in PAGE_KEYS:
        data.pop(key, None)
    for key in list(data):
        if not any(v.strip() for v in data.getlist(key)):
            del data[key]
    problems = [f"unknown filter “{key}”" for key in data if key not in MessageFilter.base_filters]
    problems += [reason for key, reason in NOT_FOR_ROUTING.items() if key in data]
    if not problems:
        filterset = MessageFilter(data, queryset=Message.objects.none())
        if not filterset.is_valid():
            problems += [f"{name}: {' '.join(errors)}" for name, errors in filterset.errors.items()]
        else:
            endpoint = filterset.form.cleaned_data.get("endpoint")
            if endpoint is not None and endpoint_id is not None and endpoint.pk != endpoint_id:
                problems.append(f"it names another endpoint (“{endpoint.name}”); it would never match")
    if problems:
        raise ValidationError("Not a usable filter: " + "; ".join(problems) + ".", code="filter")
    # Kept readable (`event_type=invoice.*`): only what would break the query string is escaped.
    return str(data.urlencode(safe="*?[]!~:/,<>()@$;'"))


def matching(query: str, messages: MessageQuerySet) -> MessageQuerySet:
    """The messages of `messages` that the filter `query` keeps, by the list's FilterSet;
    ValueError when the filter is no longer valid (e.g. the rules tightened since)."""
    if not query:
        return messages
    filterset = MessageFilter(QueryDict(query), queryset=messages)
    if not filterset.is_valid():
        raise ValueError("; ".join(f"{name}: {' '.join(errors)}" for name, errors in filterset.errors.items()))
    result: MessageQuerySet = filterset.qs
    return result


def matches(query: str, message: Message) -> bool:
    """Whether the filter keeps this message: one indexed query (the message by its key),
    so the answer is the list's own, on SQLite and PostgreSQL alike."""
    return not query or matching(query, Message.objects.filter(pk=message.pk)).exists()
