"""The polish round in a real browser: what a bidi override shows, how much of the preview
the list leaves room for, and how a bad field looks when the page focuses it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from inbox.permissions import MANAGERS
from tests.conftest import make_endpoint, make_message
from tests.test_browser import Problems, browser, live_url, log_in, make_user, screenshot  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RLO = "\u202e"
BAD = {"light": "rgb(180, 35, 24)", "dark": "rgb(255, 138, 122)"}


@pytest.fixture(params=["light", "dark"])
def wide(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1366, "height": 900}, color_scheme=request.param)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_it_shows_a_right_to_left_override_instead_of_obeying_it(wide: Page, live_url: str) -> None:  # noqa: F811
    problems = Problems(wide)
    make_user("staff", MANAGERS)
    shop, _ = make_endpoint("shop")
    message = make_message(shop, ('{"type": "' + RLO + 'etadpu.redro", "id": 1}').encode())
    log_in(wide, live_url, "staff")

    event = wide.locator("#rows tr td.event").first
    expect(event).to_have_text("⟨U+202E⟩etadpu.redro")
    mark = event.locator(".bidi-mark")
    expect(mark).to_have_attribute("title", "Invisible direction control: right-to-left override")
    wide.goto(f"{live_url}{message.get_absolute_url()}")
    expect(wide).to_have_title(f"Message #{message.pk} · ⟨U+202E⟩etadpu.redro · Webhook Inbox")
    expect(wide.get_by_role("heading", level=1)).to_have_text(f"Message #{message.pk} ⟨U+202E⟩etadpu.redro")
    expect(wide.locator(".highlight")).to_contain_text('"⟨U+202E⟩etadpu.redro"')
    screenshot(wide, "bidi-message")
    problems.assert_none()


def test_it_gives_the_preview_the_room_the_other_columns_leave(wide: Page, live_url: str) -> None:  # noqa: F811
    make_user("staff", MANAGERS)
    shop, _ = make_endpoint("a-fairly-long-endpoint-name")
    note = "what the message is about " * 10
    make_message(shop, ('{"type": "customer.subscription.trial_will_end", "note": "' + note + '"}').encode())
    log_in(wide, live_url, "staff")

    widths = wide.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('#rows tr:first-child td')]"
        ".map(td => [td.className.split(' ').pop(), td.getBoundingClientRect().width]))"
    )
    others = {name: width for name, width in widths.items() if name != "preview"}
    assert widths["preview"] >= 300, widths
    assert widths["preview"] > 1.5 * max(others.values()), "the widest column by far"
    assert wide.evaluate("document.documentElement.scrollWidth") <= 1366
    screenshot(wide, "list-columns")


def test_it_marks_every_bad_field_red_even_the_focused_one(wide: Page, live_url: str) -> None:  # noqa: F811
    make_user("staff", MANAGERS)
    log_in(wide, live_url, "staff")
    wide.goto(f"{live_url}/endpoints/new/")
    wide.fill("#id_name", "pay")
    wide.select_option("#id_auth", "stripe")
    wide.fill("#id_secret", "not-a-stripe-secret")
    wide.locator("details.advanced summary").click()
    wide.fill("#id_rate_limit", "lots")
    wide.get_by_role("button", name="Create endpoint").click()

    scheme = wide.evaluate("matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'")
    for field in ("#id_secret", "#id_rate_limit"):
        expect(wide.locator(field)).to_have_attribute("aria-invalid", "true")
        expect(wide.locator(field)).to_have_css("border-top-color", BAD[scheme])
    # The page focuses the first bad field; its focus ring is red too, not the default one
    # that hides the red border.
    expect(wide.locator("#id_secret")).to_be_focused()
    expect(wide.locator("#id_secret")).to_have_css("outline-color", BAD[scheme])
    screenshot(wide, f"form-errors-{scheme}")


def test_it_runs_the_refusal_count_into_its_sentence(wide: Page, live_url: str) -> None:  # noqa: F811
    make_user("staff", MANAGERS)
    endpoint, _ = make_endpoint("shop")
    log_in(wide, live_url, "staff")
    wide.request.post(f"{live_url}{endpoint.path}", data="{}", headers={"X-Webhook-Token": "wrong"})
    wide.goto(f"{live_url}{endpoint.get_absolute_url()}")
    refused = wide.locator("#first-delivery .refused")
    expect(refused).to_contain_text(
        re.compile(r"^1 refused, the last one .+: 403 “Invalid X-Webhook-Token”\. Rejected")
    )
    # No gap drawn between the count and its comma (it read "1 refused , the last one").
    gap = wide.evaluate(
        """() => { const s = document.querySelector('#first-delivery .refused strong');
                   const r = document.createRange(); r.setStart(s.nextSibling, 0); r.setEnd(s.nextSibling, 1);
                   return r.getBoundingClientRect().left - s.getBoundingClientRect().right; }"""
    )
    assert abs(gap) < 1, gap
