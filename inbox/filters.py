from __future__ import annotations

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


class BoundedDateTimeField(forms.DateTimeField):
    """A date and time that exists in UTC too: the database compares in UTC, and the first
    hours of year 1 in a zone ahead of UTC (or the last of 9999 behind it) do not."""

    def to_python(self, value: Any) -> datetime | None:
        result: datetime | None = super().to_python(value)
        if result is not None:
            try:
                result.astimezone(UTC)
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
    event_type = django_filters.CharFilter(label="Event type", max_length=200)
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
    read = django_filters.BooleanFilter(
        label="Read",
        widget=forms.Select(choices=[("", "Any"), ("false", "Unread"), ("true", "Read")]),
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
                parts.append("read" if value else "unread")
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
