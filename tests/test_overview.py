"""The endpoint overview: messages per hour as a server-rendered chart, and counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from inbox.dashboard import charts
from tests.conftest import make_endpoint, make_message

pytestmark = pytest.mark.django_db


def test_it_charts_messages_per_hour(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    now = timezone.now()
    for _ in range(3):
        make_message(endpoint, received_at=now - timedelta(minutes=1))
    make_message(endpoint, received_at=now - timedelta(hours=5), status="failed")
    make_message(endpoint, received_at=now - timedelta(days=3))

    page = staff_client.get(endpoint.get_absolute_url()).content.decode()
    assert page.count("<rect ") == 24
    assert "· 3 messages</title>" in page
    assert "· 1 message</title>" in page
    assert "Messages per hour, last day: 4 in all" in page
    assert ">1</a></dd>" in page, "one failed message, linked to the failed list"

    week = staff_client.get(endpoint.get_absolute_url() + "?period=week").content.decode()
    assert week.count("<rect ") == 24 * 7
    assert "last week: 5 in all" in week


def test_it_draws_bars_in_proportion_and_escapes_labels() -> None:
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    series = charts.hourly_series({hour: 10, hour - timedelta(hours=1): 5}, hours=3)
    assert [count for _, count in series] == [0, 5, 10]
    svg = charts.bar_chart(series, 'a "label" <b>')
    assert 'aria-label="a &quot;label&quot; &lt;b&gt;"' in svg
    heights = [float(part.split('"')[0]) for part in svg.split('height="')[1:]]
    assert heights == [0.0, 70.0, 140.0]
