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
from django.contrib.auth.models import Group, User

from inbox.dashboard.viewer import curl_command
from inbox.models import Endpoint, Message
from inbox.permissions import MANAGERS, VIEWERS
from tests.conftest import make_endpoint

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


@pytest.fixture(params=[(1366, "light"), (1366, "dark"), (390, "light"), (390, "dark")], ids=lambda p: f"{p[0]}-{p[1]}")
def themed_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page at each width the house checks (1366, 390 px) in each colour scheme;
    `page.label` names the pass ("390-dark") for screenshots."""
    width, scheme = request.param
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.emulate_media(color_scheme=scheme)
    page.set_default_timeout(10_000)
    page.label = f"{width}-{scheme}"  # type: ignore[attr-defined]
    yield page
    context.close()


@pytest.fixture
def live_url(live_server: Any, settings: Any) -> str:
    # Endpoint pages print PUBLIC_BASE_URL + path; it must be the live server, not :8000.
    settings.PUBLIC_BASE_URL = live_server.url
    return live_server.url


def make_user(username: str, group: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def log_in(page: Page, live_url: str, username: str) -> None:
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_url}/")


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"browser-{name}.png", full_page=True)


def test_it_receives_a_webhook_end_to_end(page: Page, live_url: str) -> None:
    problems = Problems(page)
    make_user("staff", MANAGERS)

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


def post(endpoint: Endpoint, token: str | None, payload: dict[str, Any]) -> None:
    response = httpx.post(endpoint.url, json=payload, headers={"X-Webhook-Token": token or ""}, timeout=10)
    assert response.status_code == 200


def test_it_shows_new_deliveries_live_and_finds_them(browser: Browser, live_url: str, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems = Problems(page)
    make_user("staff", MANAGERS)
    shop, shop_token = make_endpoint("shop")
    billing, billing_token = make_endpoint("billing")
    post(shop, shop_token, {"type": "order.created", "id": 1})
    log_in(page, live_url, "staff")

    # 1. Deliveries that arrive while the list is open appear on top, marked new and unread.
    post(billing, billing_token, {"type": "invoice.paid", "data": {"object": {"status": "paid"}}, "note": XSS})
    post(shop, shop_token, {"type": "order.paid", "needle": "haystack-42"})
    expect(page.locator("#rows tr.new")).to_have_count(2, timeout=15_000)
    expect(page.locator("#rows tr").first).to_contain_text("order.paid")
    expect(page.locator("#rows tr.unread")).to_have_count(3)
    screenshot(page, "live")

    # 2. Filter by endpoint, search the bodies, filter by JSON path.
    page.locator("form.filters summary").click()  # every filter but the search is folded away
    page.select_option("#id_endpoint", label="billing")
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator("#rows tr")).to_contain_text("invoice.paid")
    page.goto(f"{live_url}/")
    page.fill("#id_q", "haystack-42")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator("#rows tr")).to_contain_text("order.paid")
    page.goto(f"{live_url}/?json=data.object.status%20%3D%20paid")
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator("#rows tr")).to_contain_text("invoice.paid")

    # 3. Export the filtered list: the download holds exactly what the list shows.
    with page.expect_download() as download:
        page.locator("#export-ndjson").click()
    exported = tmp_path / "export.ndjson"
    download.value.save_as(exported)
    lines = exported.read_text().splitlines()
    assert len(lines) == 1
    assert '"invoice.paid"' in lines[0]

    # 4. The viewer: open the message, copy it as curl; the clipboard holds the command.
    page.locator("#rows tr td.when a").first.click()
    message = Message.objects.get(event_type="invoice.paid")
    expect(page.locator("#curl")).to_have_text(curl_command(message))
    page.get_by_role("button", name="Copy as curl").click()
    assert page.evaluate("navigator.clipboard.readText()") == curl_command(message)
    page.locator("#tree > summary").click()
    page.locator('#tree button[data-path="data.object.status"]').click()
    assert page.evaluate("navigator.clipboard.readText()") == "data.object.status"
    assert page.locator("img[src=x]").count() == 0
    screenshot(page, "viewer")
    problems.assert_none()
    context.close()


def test_it_keeps_view_only_staff_from_changing_anything(page: Page, live_url: str) -> None:
    problems = Problems(page)
    make_user("viewer", VIEWERS)
    endpoint, token = make_endpoint("shop")
    post(endpoint, token, {"type": "order.created"})
    log_in(page, live_url, "viewer")

    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.get_by_role("button", name="Replay")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    page.goto(f"{live_url}/endpoints/{endpoint.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("shop")
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("^Rotate"))).to_have_count(0)
    problems.assert_none()
    # Typing the address of a form does not help either (the browser logs the 403 itself).
    response = page.goto(f"{live_url}/endpoints/{endpoint.pk}/edit/")
    assert response is not None
    assert response.status == 403


def test_nothing_an_endpoint_answers_runs_on_the_dashboard_origin(page: Page, live_url: str) -> None:
    # Two endpoints saved before the content-type allowlist (the form now refuses both): one
    # answers a script, the other a page that loads it. An admin who opens the second must
    # not run the first with the admin's session.
    problems = Problems(page)
    make_user("admin", MANAGERS)
    script, _ = make_endpoint("script", auth="none", allowed_methods="GET,POST")
    Endpoint.objects.filter(pk=script.pk).update(
        response_content_type="application/javascript", response_body="alert(document.domain)"
    )
    attack, _ = make_endpoint("attack", auth="none", allowed_methods="GET,POST")
    Endpoint.objects.filter(pk=attack.pk).update(
        response_content_type="text/html", response_body=f'<script src="{script.path}"></script><p id=shown>hi</p>'
    )
    log_in(page, live_url, "admin")
    response = page.goto(f"{live_url}{attack.path}")
    assert response is not None
    assert response.status == 200
    page.wait_for_load_state("load")
    assert problems.dialogs == [], "the endpoint's answer ran a script on the dashboard's origin"
    assert page.locator("#shown").count() == 0  # shown as text, not rendered as a page
