from __future__ import annotations

import django_filters
from django import forms

from inbox import jsonpath
from inbox.models import RECEIVER_METHODS, Endpoint, Message, MessageQuerySet, Status, Verification

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
# "skipped" stays the stored value (and `status=skipped` keeps working); people read
# "stored": nothing was asked of the worker, the message is simply kept.
STATUS_CHOICES = [
    (value, "Stored (nothing to do)" if value == Status.SKIPPED else label) for value, label in Status.choices
]


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
    received_after = django_filters.DateTimeFilter(
        field_name="received_at", lookup_expr="gte", label="Received after", widget=DATETIME_INPUT
    )
    received_before = django_filters.DateTimeFilter(
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

    def active_filters(self) -> list[str]:
        """Labels of the filters in use besides the search box (the list's "Filters (n)")."""
        data = self.data or {}
        return [str(self.form[name].label) for name in self.filters if name != "q" and data.get(name, "").strip()]

    def search(self, queryset: MessageQuerySet, name: str, value: str) -> MessageQuerySet:
        return queryset.search(value) if value else queryset

    def json_path(self, queryset: MessageQuerySet, name: str, value: str) -> MessageQuerySet:
        return queryset.json_path(jsonpath.parse(value)) if value else queryset
