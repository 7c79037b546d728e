"""In a real browser: every destructive action asks first, and a dismissed question changes
nothing. Window dialogs are expected here, one by one, by their text; any other dialog
still fails the test (see Problems in test_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django_tasks_db.models import DBTaskResult
from playwright.sync_api import Browser, Dialog, Page, expect

from inbox.models import AlertRule, AuditEntry, BulkJob, Destination, Endpoint, Message
from inbox.permissions import MANAGERS
from tests.conftest import make_endpoint, make_message, run_worker
from tests.test_browser import ARTIFACTS, Problems, browser, live_url, log_in, make_user  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class Questions(Problems):
    """Problems, but the dialogs this test expects are answered: each `expect()` names the
    question the next dialog must ask and whether to accept it."""

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.expected: list[tuple[str, bool]] = []
        self.asked: list[str] = []

    def expect(self, question: str, accept: bool = False) -> None:
        self.expected.append((question, accept))

    def _on_dialog(self, dialog: Dialog) -> None:
        if dialog.type == "confirm" and self.expected and dialog.message == self.expected[0][0]:
            _, accept = self.expected.pop(0)
            self.asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()
            return
        super()._on_dialog(dialog)

    def assert_all_asked(self) -> None:
        assert self.expected == [], "a question that should have been asked was not"
        self.assert_none()


@pytest.fixture(params=[1366, 390], ids=["wide", "phone"])
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:  # noqa: F811 - this module's own
    context = browser.new_context(viewport={"width": request.param, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def snapshot() -> tuple[object, ...]:
    """What a destructive action would change."""
    endpoint = Endpoint.objects.get(name="shop")
    return (
        sorted(Message.objects.values_list("pk", "replays")),
        sorted(Endpoint.objects.values_list("name", flat=True)),
        list(Destination.objects.values_list("url", flat=True)),
        (endpoint.token_digest, endpoint.previous_token_digest),
        BulkJob.objects.count(),
        AuditEntry.objects.count(),
        DBTaskResult.objects.count(),
        sorted(AlertRule.objects.values_list("name", flat=True)),
    )


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=ARTIFACTS / f"confirm-{name}-{width}.png", full_page=True)


def test_it_asks_before_every_destructive_action_and_dismissed_changes_nothing(page: Page, live_url: str) -> None:  # noqa: F811
    questions = Questions(page)
    make_user("staff", MANAGERS)
    shop, _ = make_endpoint("shop")
    other, _ = make_endpoint("other")
    destination = Destination.objects.create(endpoint=shop, url="https://example.com/hook")
    # Scoped to the destination: deleting the destination deletes it too, and says so.
    AlertRule.objects.create(
        name="Dest rate", kind="failure_rate", endpoint=shop, destination=destination, notify="email:ops@example.com"
    )
    make_message(other)
    messages = [make_message(shop) for _ in range(3)]  # the newest: the list's first rows
    log_in(page, live_url, "staff")
    before = snapshot()

    # 1. Delete selected: a dialog counts the ticked rows.
    boxes = page.locator("#rows input[name=ids]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    questions.expect("Delete 2 selected messages? This cannot be undone.")
    page.locator(".bulk-group[aria-label='Selected messages']").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{live_url}/")
    assert snapshot() == before

    # 2. Delete all matching, no filter: a page of its own, with the count.
    all_matching = page.locator(".bulk-group[aria-label='Every message matching the filter']")
    all_matching.get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete all 4 messages in the inbox?")
    expect(page.get_by_text("No filter is applied: this is every message of every endpoint.")).to_be_visible()
    shot(page, "delete-all")
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(f"{live_url}/")
    assert snapshot() == before

    # 3. Replay all matching, filtered: the same page names the filter.
    page.goto(f"{live_url}/?endpoint={shop.pk}")
    page.locator(".bulk-group[aria-label='Every message matching the filter']").get_by_role(
        "button", name="Replay…"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Replay all 3 messages matching this filter?")
    expect(page.get_by_text("The filter: endpoint “shop”.")).to_be_visible()
    shot(page, "replay-filter")
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(f"{live_url}/?endpoint={shop.pk}")
    assert snapshot() == before

    # 4. Delete an endpoint: its page says how many messages go with it.
    page.goto(f"{live_url}/endpoints/{shop.pk}/")
    page.locator(".page-head").get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete endpoint “shop” and its 3 messages?")
    shot(page, "endpoint")
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("shop")
    assert snapshot() == before

    # 5. Delete a destination.
    page.goto(f"{live_url}/destinations/{destination.pk}/edit/")
    questions.expect(
        "Delete the destination https://example.com/hook of “shop” and its 1 alert rule “Dest rate”? "
        "Messages are no longer forwarded there."
    )
    page.get_by_role("button", name="Delete destination").click()
    expect(page).to_have_url(f"{live_url}/destinations/{destination.pk}/edit/")
    assert snapshot() == before

    # 6. Rotate the secret.
    page.goto(f"{live_url}/endpoints/{shop.pk}/rotate/")
    questions.expect("Rotate the token of “shop”? Senders must switch to the new one before the grace period ends.")
    page.get_by_role("button", name="Rotate").click()
    expect(page).to_have_url(f"{live_url}/endpoints/{shop.pk}/rotate/")
    assert snapshot() == before

    # 7. Delete a message from its own page.
    target = messages[0]
    page.goto(f"{live_url}/messages/{target.pk}/")
    questions.expect(f"Delete message #{target.pk}? This cannot be undone.")
    page.locator(".actions").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{live_url}/messages/{target.pk}/")
    assert snapshot() == before
    assert len(questions.asked) == 4, questions.asked

    # Accepted, each does what it said, asked once (the dialog's yes travels with the form).
    questions.expect(f"Delete message #{target.pk}? This cannot be undone.", accept=True)
    page.locator(".actions").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{live_url}/")
    assert not Message.objects.filter(pk=target.pk).exists()

    page.locator("#rows input[name=ids]").first.check()
    questions.expect("Delete 1 selected message? This cannot be undone.", accept=True)
    page.locator(".bulk-group[aria-label='Selected messages']").get_by_role("button", name="Delete").click()
    expect(page.locator(".flash")).to_contain_text("1 message deleted.")
    assert Message.objects.count() == 2

    page.goto(f"{live_url}/?endpoint={other.pk}")
    page.locator(".bulk-group[aria-label='Every message matching the filter']").get_by_role(
        "button", name="Delete…"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete the 1 message matching this filter?")
    page.get_by_role("button", name="Delete 1 message").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Delete messages · job #\d+$"))
    run_worker()
    page.reload()
    expect(page.locator("#job-progress")).to_contain_text("1 of 1 message deleted (100%).")
    expect(page.locator("#job-progress")).to_contain_text("Every message matching: endpoint “other”")
    shot(page, "job")
    assert not Message.objects.filter(endpoint=other).exists()
    assert Message.objects.filter(endpoint=shop).count() == 1

    page.goto(f"{live_url}/audit/")
    expect(page.locator("table.audit")).to_contain_text("every message matching endpoint “other”")
    shot(page, "audit")
    questions.assert_all_asked()


def test_it_asks_without_javascript_too(browser: Browser, live_url: str) -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": 1366, "height": 900}, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    make_user("staff", MANAGERS)
    shop, _ = make_endpoint("shop")
    for _ in range(2):
        make_message(shop)
    log_in(page, live_url, "staff")

    page.locator("#rows input[name=ids]").first.check()
    page.locator(".bulk-group[aria-label='Selected messages']").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete 1 selected message?")
    assert Message.objects.count() == 2
    page.get_by_role("button", name="Delete 1 selected message").click()
    expect(page.locator(".flash")).to_contain_text("1 message deleted.")
    assert Message.objects.count() == 1
    context.close()
