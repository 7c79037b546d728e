"""The destination form in a real browser (issue 16): the list's filter carried to a new
destination, its dry run, the transform's preview, at desktop and phone widths."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Browser, expect

from inbox.models import Destination
from inbox.permissions import MANAGERS
from tests.conftest import make_endpoint, make_message
from tests.test_browser import ARTIFACTS, Problems, browser, live_url, log_in, make_user, screenshot  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1366, 390])
def test_it_builds_a_destination_from_the_lists_filter_with_a_dry_run_and_a_preview(
    browser: Browser,  # noqa: F811
    live_url: str,  # noqa: F811
    width: int,
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems = Problems(page)
    make_user("staff", MANAGERS)
    stripe, _ = make_endpoint("stripe")
    for n, kind in enumerate(["invoice.paid", "customer.created", "invoice.finalized", "charge.refunded"] * 3):
        body = {"type": kind, "id": f"evt_{n}", "data": {"object": {"id": f"obj_{n}", "amount": n * 100}}}
        make_message(stripe, json.dumps(body).encode())
    log_in(page, live_url, "staff")

    # Filter the list on screen, then carry that filter to a new destination.
    page.goto(f"{live_url}/?endpoint={stripe.pk}&event_type=invoice.*")
    expect(page.locator("#rows tr")).to_have_count(6)
    page.get_by_role("link", name="Forward messages like these…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Forward “stripe” to a URL")
    expect(page.get_by_label("Filter")).to_have_value("event_type=invoice.*")

    # The dry run needs no URL yet, and names what would have been sent.
    page.get_by_role("button", name="Dry run: which recent messages match?").click()
    result = page.locator("#dry-run-result")
    expect(result).to_contain_text("Of the last 12 messages (all this endpoint has), these 6 would have been sent.")
    expect(result.get_by_role("listitem")).to_have_count(6)
    expect(page.locator(".field.has-error")).to_have_count(0)

    # A transform that does not compile is refused; a good one is previewed on a stored message.
    page.get_by_label("Transform").fill("{id: id, amount: data.object.amount")
    page.get_by_role("button", name="Preview the transform").click()
    expect(page.locator(".field.has-error")).to_contain_text("Not a JMESPath expression")
    page.get_by_label("Transform").fill("{id: id, amount: data.object.amount}")
    page.get_by_label("Preview on message").select_option(index=2)
    page.get_by_role("button", name="Preview the transform").click()
    preview = page.locator("#preview-result")
    expect(preview).to_contain_text('"amount": 1000')
    expect(preview).to_contain_text('"id": "evt_10"')
    screenshot(page, f"destination-form-{width}")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "no sideways scrolling"

    page.get_by_label("URL").fill("https://billing.example.com/stripe")
    page.get_by_label("Signature").select_option("standard")
    page.get_by_label("Maximum rate").fill("5/s")
    page.get_by_role("button", name="Add destination").click()
    secret = page.locator("#shown-signing-secret")
    expect(secret).to_have_value(re.compile(r"^whsec_"))
    saved = Destination.objects.get(endpoint=stripe)
    assert (saved.filter, saved.transform, saved.sign, saved.max_rate) == (
        "event_type=invoice.*",
        "{id: id, amount: data.object.amount}",
        "standard",
        "5/s",
    )
    screenshot(page, f"destination-secret-{width}")

    # Paused by hand, the endpoint page shows the banner and a Resume button.
    page.get_by_role("button", name="Pause").click()
    expect(page.locator(f"#paused-{saved.pk}")).to_contain_text("is paused")
    screenshot(page, f"endpoint-paused-{width}")
    page.locator("#processing").screenshot(path=ARTIFACTS / f"browser-endpoint-processing-{width}.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.locator(f"#paused-{saved.pk}").get_by_role("button").click()
    expect(page.locator(f"#paused-{saved.pk}")).to_have_count(0)
    problems.assert_none()
    context.close()
