"""The list and the viewer in a real browser (issue 13, items 11-13): whole rows open the
message, the Filters control opens and counts, a phone never scrolls sideways, a big body's
curl comes with its file, and times show in the reader's zone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from inbox.dashboard.viewer import curl_command
from inbox.models import Message, Status
from inbox.permissions import MANAGERS
from tests.conftest import make_endpoint, make_message
from tests.test_browser import Problems, browser, live_url, log_in, make_user, screenshot  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_NAME = "x" * 100
UNBROKEN = "B" * 5000


def new_page(browser: Browser, width: int, **options: object) -> Page:  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": 900}, **options)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def wide(browser: Browser) -> Iterator[Page]:  # noqa: F811
    page = new_page(browser, 1366, accept_downloads=True)
    yield page
    page.context.close()


def test_it_opens_a_message_from_anywhere_on_its_row(wide: Page, live_url: str) -> None:  # noqa: F811
    problems = Problems(wide)
    make_user("staff", MANAGERS)
    shop, _ = make_endpoint("shop")
    billing, _ = make_endpoint("billing")
    make_message(shop, b'{"type": "order.created", "id": 1}')
    paid = make_message(billing, b'{"type": "invoice.paid", "note": "click me"}')
    log_in(wide, live_url, "staff")

    row = wide.locator("#rows tr").filter(has_text="invoice.paid")
    # The checkbox stays a checkbox: ticking it does not open the message.
    row.locator("input[type=checkbox]").click()
    expect(row.locator("input[type=checkbox]")).to_be_checked()
    expect(wide).to_have_url(f"{live_url}/")
    # The endpoint's own link still filters by endpoint.
    row.get_by_role("link", name="billing").click()
    expect(wide).to_have_url(f"{live_url}/?endpoint={billing.pk}")
    expect(wide.locator("#rows tr")).to_have_count(1)
    # A click on the preview, far from the time's link, opens the message. The mouse clicks
    # where the preview is drawn, as a person would: whatever lies on top gets the click.
    box = wide.locator("#rows tr td.preview").first.bounding_box()
    assert box is not None
    wide.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(wide).to_have_url(re.compile(rf"/messages/{paid.pk}/\?endpoint={billing.pk}$"))
    expect(wide.get_by_role("heading", level=1)).to_contain_text(f"Message #{paid.pk}")
    problems.assert_none()


def test_it_opens_the_filters_from_one_control_that_counts_them(wide: Page, live_url: str) -> None:  # noqa: F811
    problems = Problems(wide)
    make_user("staff", MANAGERS)
    shop, _ = make_endpoint("shop")
    make_message(shop, b'{"type": "order.created"}', status=Status.SKIPPED)
    make_message(shop, b'{"type": "order.failed"}', status=Status.FAILED)
    log_in(wide, live_url, "staff")

    summary = wide.locator("form.filters summary")
    expect(summary).to_have_text("Filters (0)")
    expect(wide.locator("#id_status")).to_be_hidden()  # folded away: the rows come first
    expect(wide.locator("#id_q")).to_be_visible()
    summary.click()
    expect(wide.locator("#id_status")).to_be_visible()
    wide.select_option("#id_status", label="Failed")  # htmx swaps the results
    expect(wide.locator("#rows tr")).to_have_count(1)
    expect(wide.locator("#rows tr")).to_contain_text("order.failed")
    expect(summary).to_have_text("Filters (1): processing")
    wide.select_option("#id_status", label="Stored (nothing to do)")
    expect(wide.locator("#rows tr")).to_contain_text("order.created")
    expect(wide.locator("#rows tr td.status")).to_have_text("stored")
    screenshot(wide, "list-filters-open")
    wide.reload()
    expect(summary).to_have_text("Filters (1): processing")
    problems.assert_none()


def test_it_never_scrolls_sideways_on_a_phone(browser: Browser, live_url: str) -> None:  # noqa: F811
    # A superuser: the menu's longest form (Admin too, and an open alert's count).
    staff = make_user("staff", MANAGERS)
    User.objects.filter(pk=staff.pk).update(is_superuser=True)
    endpoint, _ = make_endpoint(LONG_NAME)
    message = make_message(endpoint, ('{"type": "' + "t" * 150 + '", "blob": "' + UNBROKEN + '"}').encode())
    make_message(endpoint, UNBROKEN.encode(), content_type="text/plain")
    for scheme in ["light", "dark"]:
        page = new_page(browser, 390, color_scheme=scheme)
        problems = Problems(page)
        log_in(page, live_url, "staff")
        for name, path in [
            ("list", "/"),
            ("endpoint", f"/endpoints/{endpoint.pk}/"),
            ("message", message.get_absolute_url()),
            ("endpoints", "/endpoints/"),
            ("alerts", "/alerts/"),
        ]:
            page.goto(f"{live_url}{path}")
            screenshot(page, f"phone-{name}-{scheme}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width} px wide on a 390 px phone ({scheme})"
        problems.assert_none()
        page.context.close()


def test_it_offers_the_file_that_a_big_bodys_curl_reads(browser: Browser, live_url: str, tmp_path: Path) -> None:  # noqa: F811
    page = new_page(browser, 1366, accept_downloads=True)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    problems = Problems(page)
    make_user("staff", MANAGERS)
    endpoint, _ = make_endpoint("shop")
    body = b'{"type": "big.body", "blob": "' + b"A" * (476 * 1024) + b'"}'
    message = make_message(endpoint, body)
    log_in(page, live_url, "staff")
    page.goto(f"{live_url}{message.get_absolute_url()}")

    expect(page.locator("#curl-body-file")).to_contain_text("476.0\xa0KB) is too long for a command line")
    page.get_by_role("button", name="Copy as curl").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == curl_command(message)
    assert copied.endswith(f"--data-binary @message-{message.pk}.bin")
    with page.expect_download() as download:
        page.get_by_role("link", name=f"Download message-{message.pk}.bin").click()
    assert download.value.suggested_filename == f"message-{message.pk}.bin"
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.read_bytes() == body
    problems.assert_none()
    page.context.close()


def test_it_shows_times_in_the_readers_zone_and_names_it(browser: Browser, live_url: str) -> None:  # noqa: F811
    page = new_page(browser, 1366, timezone_id="Asia/Kolkata")
    problems = Problems(page)
    make_user("staff", MANAGERS)
    endpoint, _ = make_endpoint("shop")
    received = datetime(2026, 3, 1, 23, 45, 10, tzinfo=UTC)
    message = make_message(endpoint, received_at=received)
    log_in(page, live_url, "staff")
    local = received.astimezone(ZoneInfo("Asia/Kolkata")).strftime("%Y-%m-%d %H:%M:%S")  # the next day, 05:15:10

    expect(page.locator("#rows tr time[data-local]")).to_have_text(local)
    expect(page.locator("th [data-tz-name]")).to_have_text("(GMT+5:30)")
    page.goto(f"{live_url}{message.get_absolute_url()}")
    received_at = page.locator("dl.meta time[data-local]")
    expect(received_at).to_have_text(f"{local} GMT+5:30")
    # The IANA name as the browser knows it (ICU still says Calcutta).
    expect(received_at).to_have_attribute("title", re.compile(rf"^{local} GMT\+5:30 \(Asia/(Kolkata|Calcutta)\)$"))
    problems.assert_none()
    page.context.close()


def test_it_keeps_the_page_readable_without_javascript(browser: Browser, live_url: str) -> None:  # noqa: F811
    page = new_page(browser, 1366, java_script_enabled=False)
    make_user("staff", MANAGERS)
    endpoint, _ = make_endpoint("shop")
    make_message(endpoint, received_at=datetime(2026, 3, 1, 23, 45, 10, tzinfo=UTC))
    log_in(page, live_url, "staff")
    # The server's own zone, named; the Filters control opens without any script.
    expect(page.locator("th [data-tz-name]")).to_have_text("(UTC)")
    expect(page.locator("#rows tr time[data-local]")).to_have_text("2026-03-01 23:45:10")
    page.locator("form.filters summary").click()
    expect(page.locator("#id_status")).to_be_visible()
    page.select_option("#id_status", label="Failed")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"status=failed"))
    expect(page.locator("form.filters summary")).to_have_text("Filters (1): processing")
    assert Message.objects.count() == 1
    page.context.close()
