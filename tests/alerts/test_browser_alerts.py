"""/alerts/ in headless Chromium, at 1366 and 390 px, light and dark: an open, an acknowledged
and a resolved alert; acknowledging with the button; deleting a rule asks first, naming it and
how many alerts go with it, and a dismissed question deletes nothing; an invalid filter value,
however long, wraps in its error instead of widening the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from inbox.models import Alert, AlertKind, AlertRule, AlertState, Notice
from inbox.permissions import MANAGERS
from tests.alerts.conftest import make_rule
from tests.conftest import make_endpoint
from tests.test_browser import ARTIFACTS, browser, live_url, log_in, make_user, themed_page  # noqa: F401 - fixtures
from tests.test_browser_confirm import Questions

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def three_alerts() -> dict[str, AlertRule]:
    """A rule with an open alert, one acknowledged, one resolved (and a muted rule)."""
    manager = make_user("manager", MANAGERS)
    shop, _ = make_endpoint("shop")
    billing, _ = make_endpoint("billing")
    now = timezone.now()
    failing = make_rule("Shop forwards failing", kind=AlertKind.FAILURE_RATE, endpoint=shop, threshold=20)
    quiet = make_rule("Billing quiet", kind=AlertKind.SILENCE, endpoint=billing, window_seconds=7200)
    refused = make_rule(
        "Refusals anywhere", kind=AlertKind.REJECTIONS, notify="email:ops@example.com", muted=True, threshold=25
    )
    Alert.objects.create(
        rule=failing,
        opened_at=now - timedelta(minutes=12),
        summary="62% of 21 forward attempts failed in the last 5 minutes (over 20% alerts) on shop",
        counts={"failed_attempts": 13, "attempts": 21, "percent": 62, "threshold": 20},
        link=f"/?endpoint={shop.pk}&received_after=2026-11-30T18%3A00",
        open_notice=Notice.FAILED,
        notice_tries=3,
        notice_error="answered 404, expected 2xx",
        notice_next_at=now + timedelta(minutes=4),
    )
    Alert.objects.create(
        rule=quiet,
        state=AlertState.ACKNOWLEDGED,
        opened_at=now - timedelta(hours=3),
        acknowledged_at=now - timedelta(hours=2),
        acknowledged_by=manager,
        summary="Nothing received on billing for 2 hours (last message 5\xa0hours ago)",
        link=f"/?endpoint={billing.pk}",
        open_notice=Notice.SENT,
    )
    Alert.objects.create(
        rule=refused,
        state=AlertState.RESOLVED,
        opened_at=now - timedelta(days=1, hours=1),
        resolved_at=now - timedelta(days=1),
        summary="31 deliveries refused in the last 5 minutes on any endpoint",
        resolved_summary="0 deliveries refused in the last 5 minutes on any endpoint",
        link="/endpoints/",
        open_notice=Notice.MUTED,
        resolve_notice=Notice.MUTED,
    )
    return {"failing": failing, "quiet": quiet, "refused": refused}


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"alerts-{name}-{page.label}.png", full_page=True)  # type: ignore[attr-defined]


def test_it_shows_open_acknowledged_and_resolved_alerts_and_asks_before_deleting(
    themed_page: Page,  # noqa: F811 - the fixture
    live_url: str,  # noqa: F811
) -> None:
    page = themed_page
    questions = Questions(page)
    rules = three_alerts()
    log_in(page, live_url, "manager")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts 1 open")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts 1 open").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerts")
    alerts = page.locator("table.alerts")
    for state in ["open", "acknowledged", "resolved"]:
        expect(alerts.locator(f".badge.alert-{state}")).to_have_count(1)
    expect(page.get_by_text("Opening: Sending failed 3 times, next try at")).to_be_visible()
    expect(page.get_by_text("Opening: Not sent: the rule is muted")).to_be_visible()
    expect(page.get_by_text("answered 404, expected 2xx")).to_be_visible()
    expect(page.locator("table.alert-rules .badge", has_text="muted")).to_be_visible()
    # No sideways scrolling: nothing reaches past the window's right edge (named if it does).
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')]"
        ".filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)"
        ".map((e) => e.tagName + '.' + e.className).slice(0, 8)"
    )
    assert wide == []
    shot(page, "page")

    # Deleting a rule asks in a dialog, naming it and its alerts; dismissed, nothing goes.
    questions.expect(
        "Delete the alert rule “Shop forwards failing” and its 1 alert? Nobody is notified of this condition any more."
    )
    page.get_by_role("button", name="Delete “Shop forwards failing”").click()
    questions.assert_all_asked()
    assert AlertRule.objects.count() == 3
    assert Alert.objects.count() == 3

    # Acknowledge the open one: it stays listed, acknowledged, and the menu's count goes.
    page.get_by_role("button", name=f"Acknowledge alert #{Alert.objects.get(rule=rules['failing']).pk}").click()
    expect(page.locator(".flash")).to_contain_text("acknowledged: it still resolves by itself")
    expect(alerts.locator(".badge.alert-acknowledged")).to_have_count(2)
    expect(page.locator(".nav-count")).to_have_count(0)

    # The messages concerned: the message list, filtered.
    quiet = Alert.objects.get(rule=rules["quiet"])
    page.get_by_role("link", name=f"The messages concerned (alert #{quiet.pk})").click()
    expect(page).to_have_url(f"{live_url}/?endpoint={rules['quiet'].endpoint_id}")

    # The form, with errors, then a rule made.
    page.goto(f"{live_url}/alerts/rules/new/")
    page.fill("input[name=name]", "Shop forwards failing")  # taken
    page.fill("input[name=window]", "soon")
    page.get_by_role("button", name="Add alert rule").click()
    expect(page.locator(".error-summary")).to_be_visible()
    expect(page.locator("input[name=name]")).to_be_focused()
    shot(page, "form-errors")
    page.fill("input[name=name]", "Shop failed")
    page.fill("input[name=window]", "10m")
    page.fill("input[name=notify]", "email:ops@example.com")
    page.get_by_role("button", name="Add alert rule").click()
    expect(page.locator(".flash")).to_contain_text("Alert rule “Shop failed” saved")
    questions.assert_all_asked()


def test_it_wraps_a_long_invalid_filter_value(themed_page: Page, live_url: str) -> None:  # noqa: F811
    page = themed_page
    three_alerts()
    log_in(page, live_url, "manager")
    page.goto(f"{live_url}/alerts/?state=" + "\u202e" + "x" * 3000)
    expect(page.get_by_role("alert")).to_contain_text("This filter is not valid; nothing is shown.")
    expect(page.get_by_role("alert")).to_contain_text("⟨U+202E⟩" + "x" * 39 + "…")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width} px wide"  # type: ignore[index]
    shot(page, "long-filter")
