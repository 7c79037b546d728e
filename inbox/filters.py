from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError

from inbox import jsonpath
from inbox.models import RECEIVER_METHODS, Endpoint, Message, MessageQuerySet, Status, Verification

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


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

    q = django_filters.CharFilter(method="search", label="Search body and headers", max_length=200)
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
    status = django_filters.ChoiceFilter(choices=Status.choices, empty_label="Any", label="Processing")

    class Meta:
        model = Message
        fields = ["q", "json", "endpoint", "event_type", "method", "content_type", "verification", "status", "read"]

    def search(self, queryset: MessageQuerySet, name: str, value: str) -> MessageQuerySet:
        return queryset.search(value) if value else queryset

    def json_path(self, queryset: MessageQuerySet, name: str, value: str) -> MessageQuerySet:
        return queryset.json_path(jsonpath.parse(value)) if value else queryset
