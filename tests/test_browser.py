"""End to end in a real browser: log in, create an endpoint, receive a webhook, read it.

Drives Debian's headless Chromium (not a Playwright-downloaded one) against pytest-django's
live server, and fails on any JS dialog, console error or uncaught page error, so an XSS
that runs or a Content-Security-Policy violation breaks the test.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User

from inbox.models import Endpoint

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}", allow_module_level=True)

from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect, sync_playwright  # noqa: E402

# Sync Playwright runs an event loop in this thread; Django's ORM calls made by the test
# (and by live_server's setup) would otherwise raise SynchronousOnlyOperation.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "correct horse battery"
XSS = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


class Problems:
    """Everything the page complained about: dialogs (an XSS firing), console errors, uncaught errors."""

    def __init__(self, page: Page) -> None:
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        page.on("dialog", self._on_dialog)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def assert_none(self) -> None:
        assert self.dialogs == [], "a JS dialog fired (script injection?)"
        assert self.console_errors == [], "console errors (CSP violations show up here)"
        assert self.page_errors == [], "uncaught page errors"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # A fresh context per test: no cookies or session carried over.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def live_url(live_server: Any, settings: Any) -> str:
    # Endpoint pages print PUBLIC_BASE_URL + path; it must be the live server, not :8000.
    settings.PUBLIC_BASE_URL = live_server.url
    return live_server.url


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"browser-{name}.png", full_page=True)


def test_it_receives_a_webhook_end_to_end(page: Page, live_url: str) -> None:
    problems = Problems(page)
    User.objects.create_user("staff", password=PASSWORD, is_staff=True)

    # 1. Log in the way a person does, and land on the inbox.
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=username]", "staff")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Messages")

    # 2. Create an endpoint; the answer is the only page that ever shows its token.
    page.get_by_role("navigation").get_by_role("link", name="Endpoints").click()
    page.get_by_role("link", name="New endpoint").click()
    page.fill("input[name=name]", "shop")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator("#shown-token")).to_be_visible()
    token = page.input_value("#shown-token")
    endpoint_url = page.input_value("#endpoint-url")
    assert token
    assert endpoint_url.startswith(f"{live_url}/hooks/")
    curl = page.text_content("#curl-example") or ""
    assert endpoint_url in curl
    assert f"X-Webhook-Token: {token}" in curl
    screenshot(page, "endpoint")

    # 3. The provider's side: a plain HTTP POST with the token, carrying an XSS attempt.
    payload = {"type": "order.created", "note": XSS}
    response = httpx.post(endpoint_url, json=payload, headers={"X-Webhook-Token": token}, timeout=10)
    assert response.status_code == 200
    assert response.text.strip() == "Message received."

    # 4. The message is listed, and its page shows the payload but never the token.
    page.goto(f"{live_url}/")
    row = page.locator("table.messages tbody tr").filter(has_text="order.created")
    expect(row).to_have_count(1)
    screenshot(page, "list")
    row.locator("a:has(time)").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Message #")
    highlighted = page.locator(".highlight").first
    expect(highlighted).to_be_visible()
    expect(highlighted).to_contain_text('"order.created"')
    # The XSS arrives as text, escaped: visible to the reader, inert in the DOM.
    expect(highlighted).to_contain_text(XSS)
    assert page.locator("img[src=x]").count() == 0
    header_row = page.locator("table.kv tr").filter(has=page.locator("th", has_text=re.compile("^X-Webhook-Token$")))
    expect(header_row.locator("td")).to_have_text("[redacted]")
    assert token not in page.content()
    screenshot(page, "message")

    # 5. Nothing ran that should not have, and the CSP let everything we ship through.
    problems.assert_none()

    # 6. The token was shown once: the endpoint's own page no longer has it.
    endpoint = Endpoint.objects.get(name="shop")
    page.goto(f"{live_url}/endpoints/{endpoint.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("shop")
    expect(page.locator("#shown-token")).to_have_count(0)
    assert token not in page.content()
    problems.assert_none()
