"""A first run in a real browser (issue 13, items 8-10): the form follows the preset, a bad
submit puts the cursor in the first bad field, the created endpoint's page survives a
reload without creating again and without the token, and it shows the first delivery when
it arrives, with no reload. Same Chromium and fixtures as tests/test_browser.py."""

from __future__ import annotations

import re

import httpx
import pytest

from inbox.models import Endpoint, Message
from inbox.permissions import MANAGERS
from tests.test_browser import (  # noqa: F401  (fixtures are found by name)
    Problems,
    browser,
    live_url,
    log_in,
    make_user,
    page,
    screenshot,
)

from playwright.sync_api import Page, expect  # isort: skip  (after the chromium check in tests.test_browser)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_runs_a_first_endpoint_like_webhook_site(page: Page, live_url: str) -> None:  # noqa: F811
    problems = Problems(page)
    make_user("staff", MANAGERS)
    log_in(page, live_url, "staff")

    # 1. The form shows what the preset uses, and switches when the preset changes.
    page.goto(f"{live_url}/endpoints/new/")
    token_header = page.locator("#id_token_header")
    expect(token_header).to_be_visible()
    expect(page.locator("#id_rate_limit")).to_be_hidden()  # under Advanced, closed
    page.select_option("#id_auth", "stripe")
    expect(token_header).to_be_hidden()
    expect(page.locator("label[for=id_secret]")).to_have_text("Signing secret from Stripe")
    page.select_option("#id_auth", "hmac")
    expect(page.locator("#id_hmac_header")).to_be_visible()
    page.select_option("#id_auth", "token")
    expect(token_header).to_be_visible()
    expect(page.locator("#id_hmac_header")).to_be_hidden()
    expect(page.locator("label[for=id_secret]")).to_have_text("Your own token (optional)")

    # 2. A bad submit: a summary on top, the cursor in the first bad field (under Advanced).
    page.fill("#id_name", "shop")
    page.locator("details.advanced > summary").click()
    page.fill("#id_rate_limit", "lots")
    page.fill("#id_response_status", "500")
    page.get_by_role("button", name="Create endpoint").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary.get_by_role("link")).to_have_count(2)
    assert page.evaluate("document.activeElement.id") == "id_rate_limit"
    expect(page.locator("#id_rate_limit")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_rate_limit")).to_have_accessible_description(re.compile("Enter a rate such as 120/m"))
    screenshot(page, "firstrun-errors")
    summary.get_by_role("link", name=re.compile("^Max retries|^Response status")).click()
    assert page.evaluate("document.activeElement.id") == "id_response_status"

    # 3. Fixed and created: redirected to the endpoint's page, which shows the token once.
    page.fill("#id_rate_limit", "120/m")
    page.fill("#id_response_status", "200")
    page.get_by_role("button", name="Create endpoint").click()
    endpoint = Endpoint.objects.get()
    expect(page).to_have_url(f"{live_url}/endpoints/{endpoint.pk}/")
    token = page.input_value("#shown-token")
    assert endpoint.check_token(token) == "current"
    expect(page.locator("#first-delivery")).to_contain_text("Waiting for the first delivery")
    expect(page.locator("#curl-example")).to_contain_text(f"X-Webhook-Token: {token}")
    screenshot(page, "firstrun-waiting")

    # 4. A reload neither creates again nor shows the token again.
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_contain_text("shop")
    expect(page.locator("#shown-token")).to_have_count(0)
    assert token not in page.content()
    assert Endpoint.objects.count() == 1

    # 5. A delivery arrives: the page shows it, with no reload, and stops waiting.
    page.evaluate("window.stillTheSamePage = true")
    answer = httpx.post(endpoint.url, json={"type": "order.created"}, headers={"X-Webhook-Token": token}, timeout=10)
    assert answer.status_code == 200
    arrived = page.locator("#first-delivery")
    expect(arrived).to_contain_text("First delivery received", timeout=15_000)
    expect(page.locator("#recent")).to_contain_text("order.created")
    assert page.evaluate("window.stillTheSamePage") is True
    screenshot(page, "firstrun-arrived")
    arrived.get_by_role("link", name=re.compile("Open message")).click()
    message = Message.objects.get()
    expect(page).to_have_url(re.compile(rf"/messages/{message.pk}/"))

    # 6. Quick endpoint: one click to a token endpoint's page, token shown once, waiting.
    page.goto(f"{live_url}/endpoints/")
    page.get_by_role("button", name="Quick endpoint").click()
    quick = Endpoint.objects.exclude(pk=endpoint.pk).get()
    expect(page).to_have_url(f"{live_url}/endpoints/{quick.pk}/")
    assert quick.check_token(page.input_value("#shown-token")) == "current"
    expect(page.locator("#first-delivery")).to_contain_text("Waiting for the first delivery")
    problems.assert_none()
