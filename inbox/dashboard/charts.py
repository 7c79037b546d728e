"""Server-rendered charts: inline SVG, no script, no chart library, no CDN."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, LEFT, BOTTOM = 720, 160, 36, 20


def hour_starts(hours: int, now: datetime | None = None) -> list[datetime]:
    """The starts of the last `hours` hours, oldest first, as hours of the current time zone:
    the hours TruncHour groups by. In a zone that is not a whole number of hours from UTC
    (India, Nepal, parts of Australia) they are not UTC hours, and keys in UTC hours would
    match none of the counts."""
    local = timezone.localtime(now or timezone.now())
    # Stepped in UTC: wall-clock arithmetic would fall into the hour a DST change skips.
    end = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    return [end - timedelta(hours=n) for n in range(hours - 1, -1, -1)]


def hourly_series(counts: dict[datetime, int], hours: int, now: datetime | None = None) -> list[tuple[datetime, int]]:
    """One (hour, count) per hour of the last `hours`, oldest first, zero-filled; `counts`
    is keyed by hour starts as TruncHour makes them (aware datetimes compare as instants)."""
    return [(start, counts.get(start, 0)) for start in hour_starts(hours, now)]


def bar_chart(series: list[tuple[datetime, int]], label: str) -> SafeString:
    """A bar per hour; each bar's tooltip says its hour and count. Every text goes through
    format_html, so nothing in it is markup."""
    peak = max((count for _, count in series), default=0) or 1
    step = (WIDTH - LEFT) / max(len(series), 1)
    plot = HEIGHT - BOTTOM
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}"><title>{} · {} message{}</title></rect>',
        (
            (
                f"{LEFT + i * step:.1f}",
                f"{plot - plot * count / peak:.1f}",
                f"{max(step - 1, 0.5):.1f}",
                f"{plot * count / peak:.1f}",
                timezone.localtime(hour).strftime("%a %d %b %H:00"),
                count,
                "" if count == 1 else "s",
            )
            for i, (hour, count) in enumerate(series)
        ),
    )
    first = timezone.localtime(series[0][0]).strftime("%a %d %b %H:00") if series else ""
    last = timezone.localtime(series[-1][0]).strftime("%a %d %b %H:00") if series else ""
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/>'
        '<text x="{}" y="12" class="tick" text-anchor="end">{}</text>'
        '<text x="{}" y="{}" class="tick" text-anchor="end">0</text>'
        '<g class="bars">{}</g>'
        '<text x="{}" y="{}" class="tick">{}</text>'
        '<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>'
        "</svg>",
        WIDTH,
        HEIGHT,
        label,
        LEFT,
        plot,
        WIDTH,
        plot,
        LEFT - 4,
        peak,
        LEFT - 4,
        plot,
        bars,
        LEFT,
        HEIGHT - 4,
        first,
        WIDTH,
        HEIGHT - 4,
        last,
    )
