"""Accessibility in a real browser (issue 13, item 15): axe-core finds no serious or critical
violation on any main page, at 1366 px and 390 px, in the light and the dark colour scheme
(colour contrast counts), and a skip link is the first thing a keyboard reaches.

axe-core (the copy bundled with axe-playwright-python) is injected with page.evaluate, which
goes through the DevTools protocol: the page's Content-Security-Policy does not apply to it,
so the pages are checked with the CSP they really have (no bypass_csp)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from inbox.models import (
    Alert,
    AlertKind,
    AlertRule,
    AlertState,
    Attempt,
    AttemptStatus,
    AuditAction,
    AuditEntry,
    BulkAction,
    BulkJob,
    Destination,
    Endpoint,
    JobStatus,
    Message,
    Notice,
    RejectedAttempt,
    Status,
)
from inbox.permissions import MANAGERS
from tests.conftest import make_endpoint, make_message
from tests.test_browser import (  # noqa: F401 - fixtures
    ARTIFACTS,
    Problems,
    browser,
    live_url,
    log_in,
    make_user,
    themed_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the issue asks to keep at zero. Moderate and minor ones are printed, not failed.
BLOCKING = {"serious", "critical"}
UNMEASURABLE = {"color-contrast"}
AXE = Axe()

TRACEBACK = """Traceback (most recent call last):
  File "inbox/delivery/forward.py", line 88, in send
    response = client.post(url, content=body, headers=headers, timeout=timeout)
  File "httpx/_client.py", line 1144, in post
    raise ConnectError(message) from exc
httpx.ConnectError: [Errno 111] Connection refused"""


class World:
    """The data a manager works with on a normal day, one of each kind of thing a page shows."""

    def __init__(self) -> None:
        self.manager: User = make_user("manager", MANAGERS)
        self.shop, _ = make_endpoint("shop", description="Orders from the web shop")
        self.billing, _ = make_endpoint("billing", auth="github")
        self.fresh, _ = make_endpoint("fresh")  # nothing received yet: the page waits
        self.destination = Destination.objects.create(endpoint=self.shop, url="https://example.com/hooks/orders")
        now = timezone.now()
        self.form = make_message(
            self.billing,
            b"name=Ada+Lovelace&amount=12.50&currency=EUR&note=caf%C3%A9",
            content_type="application/x-www-form-urlencoded",
            received_at=now - timedelta(minutes=50),
            read=True,
        )
        self.binary = make_message(
            self.billing,
            bytes(range(256)) * 4,
            content_type="application/octet-stream",
            verification="unverified",
            received_at=now - timedelta(minutes=40),
        )
        self.long = make_message(
            self.shop,
            json.dumps(
                {"type": "catalog.synced", "items": [{"sku": f"SKU-{i:05d}", "qty": i} for i in range(9000)]}
            ).encode(),
            received_at=now - timedelta(minutes=30),
        )
        # Highlighted, yet taller than the screen: its block scrolls.
        self.tall = make_message(
            self.shop,
            json.dumps(
                {"type": "inventory.counted", "rows": [{"sku": f"T-{i}", "qty": i} for i in range(400)]}
            ).encode(),
            received_at=now - timedelta(minutes=25),
        )
        self.failed = make_message(
            self.shop,
            json.dumps(
                {"type": "order.paid", "id": 1041, "amount": 12.5, "paid": True, "customer": {"tags": None}}
            ).encode(),
            status=Status.FAILED,
            received_at=now - timedelta(minutes=20),
        )
        for number, code, error in [(1, 502, "Bad gateway"), (2, None, TRACEBACK)]:
            Attempt.objects.create(
                message=self.failed,
                endpoint=self.shop,
                number=number,
                target=self.destination.target,
                label=f"Forward to {self.destination.display_url}",
                status=AttemptStatus.FAILED,
                duration_ms=120,
                status_code=code,
                response_excerpt="<html><body>upstream unavailable</body></html>" if code else "",
                error=error,
            )
        self.json = make_message(
            self.shop,
            b'{"type": "order.created", "id": 1042, "items": [{"sku": "A-1", "qty": 2}], "total": 25.0, "gift": false}',
            received_at=now - timedelta(minutes=5),
            headers={"Content-Type": "application/json", "User-Agent": "Shop/1.0", "X-Webhook-Token": "[redacted]"},
            remote_addr="203.0.113.7",
            idempotency_key="evt_1042",
        )
        for status, reason in [(401, "Wrong or missing token"), (413, "Body larger than 1 MiB")]:
            RejectedAttempt.record(self.billing, remote_addr="198.51.100.4", status=status, reason=reason)
        self.job = BulkJob.objects.create(
            action=BulkAction.REPLAY,
            query=f"endpoint={self.shop.pk}&status=failed",
            status=JobStatus.DONE,
            total=1,
            done=1,
            finished_at=now,
            created_by=self.manager,
        )
        AuditEntry.record(self.manager, AuditAction.ENDPOINT_CREATED, "shop", self.shop, auth="token")
        AuditEntry.record(self.manager, AuditAction.DESTINATION_ADDED, self.destination.display_url, self.shop)
        AuditEntry.record(
            self.manager,
            AuditAction.MESSAGES_REPLAYED,
            "every message matching endpoint shop, processing failed",
            bulk_job=self.job.pk,
        )
        AuditEntry.record(self.manager, AuditAction.SECRET_ROTATED, "billing", self.billing, grace_hours=24)
        # Alerts: one open (its notification failing), one acknowledged, one resolved, of a muted rule.
        failing = AlertRule.objects.create(
            name="Shop forwards failing", kind=AlertKind.FAILURE_RATE, endpoint=self.shop, threshold=20,
            notify="https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        )  # fmt: skip
        quiet = AlertRule.objects.create(
            name="Billing quiet", kind=AlertKind.SILENCE, endpoint=self.billing, window_seconds=7200,
            notify="email:ops@example.com",
        )  # fmt: skip
        refused = AlertRule.objects.create(
            name="Refusals", kind=AlertKind.REJECTIONS, threshold=10, notify="email:ops@example.com", muted=True
        )
        Alert.objects.create(
            rule=failing, summary="62% of 21 forward attempts failed in the last 5 minutes (over 20% alerts) on shop",
            link=f"/?endpoint={self.shop.pk}", open_notice=Notice.FAILED, notice_tries=2,
            notice_error="answered 404, expected 2xx",
        )  # fmt: skip
        Alert.objects.create(
            rule=quiet, state=AlertState.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=self.manager,
            summary="Nothing received on billing for 2 hours", link=f"/?endpoint={self.billing.pk}",
            open_notice=Notice.SENT,
        )  # fmt: skip
        Alert.objects.create(
            rule=refused, state=AlertState.RESOLVED, resolved_at=now, summary="31 deliveries refused",
            resolved_summary="0 deliveries refused", link="/endpoints/", open_notice=Notice.MUTED,
            resolve_notice=Notice.MUTED,
        )  # fmt: skip
        self.alert_rule = failing


class Checker:
    """Runs axe-core on pages as they are shown and keeps every violation it reports."""

    def __init__(self, page: Page, base_url: str, label: str) -> None:
        self.page = page
        self.base_url = base_url
        self.label = label
        self.blocking: list[str] = []
        self.other: list[str] = []
        self.pages: list[str] = []

    def check(self, name: str, *, open_details: bool = False) -> None:
        page = self.page
        page.wait_for_load_state("load")
        if open_details:
            # Folded content (attempt errors, the raw body, the tree) is checked unfolded too.
            page.evaluate("document.querySelectorAll('main details').forEach((d) => { d.open = true; })")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"a11y-{name}-{self.label}.png", full_page=True)
        self.pages.append(name)
        results = AXE.run(page, options={"resultTypes": ["violations", "incomplete"]})
        found = [(v, "") for v in results.response["violations"]]
        # "Needs review" results count too, except colour contrast, which axe cannot measure
        # over an SVG chart or on a lone symbol: an aria-label that a span's role ignores, or an
        # aria-describedby pointing at nothing, is as real as any violation.
        found += [(v, " (needs review)") for v in results.response["incomplete"] if v["id"] not in UNMEASURABLE]
        for violation, kind in found:
            nodes = "; ".join(" ".join(node["target"]) for node in violation["nodes"][:8])
            more = f" (+{len(violation['nodes']) - 8} more)" if len(violation["nodes"]) > 8 else ""
            line = (
                f"{name} [{self.label}] {violation['id']} ({violation['impact']}){kind}: {violation['help']}\n"
                f"    nodes: {nodes}{more}\n    {violation['helpUrl']}"
            )
            (self.blocking if violation["impact"] in BLOCKING else self.other).append(line)

    def go(self, path: str, name: str, **options: Any) -> None:
        response = self.page.goto(f"{self.base_url}{path}")
        assert response is not None
        assert response.status == 200, f"{path} answered {response.status}"
        self.check(name, **options)


def visit_every_page(checker: Checker, world: World) -> None:
    page = checker.page

    # Anonymous: the login page, then with its error.
    checker.go("/accounts/login/", "login")
    page.fill("input[name=username]", "manager")
    page.fill("input[name=password]", "not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("main .error")).to_contain_text("didn't match")
    checker.check("login-error")
    log_in(page, checker.base_url, "manager")

    # The list, its filters open, a filter error.
    checker.go("/", "list")
    page.locator("form.filters summary").click()
    expect(page.locator("#id_status")).to_be_visible()
    checker.check("list-filters-open")
    checker.go("/?event_type=order.paid&received_after=yesterday", "list-filter-error")
    expect(page.locator("#results [role=alert]")).to_be_visible()

    # Message pages, every kind of body.
    for name, message in [
        ("message-json", world.json),
        ("message-form", world.form),
        ("message-binary", world.binary),
        ("message-tall", world.tall),
        ("message-long", world.long),
        ("message-failed", world.failed),
    ]:
        checker.go(message.get_absolute_url(), name, open_details=True)
    checker.go(f"/messages/compare/?ids={world.failed.pk}&ids={world.json.pk}", "compare")

    # Endpoints: the list, the new form and its errors, a new endpoint's page (its token shown
    # once, waiting for the first delivery), pages with messages and with refusals, the forms.
    checker.go("/endpoints/", "endpoint-list")
    checker.go("/endpoints/new/", "endpoint-new")
    page.fill("input[name=name]", "shop")  # taken
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator(".error-summary")).to_be_visible()
    checker.check("endpoint-new-errors")
    page.fill("input[name=name]", "payments")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator("#shown-token")).to_be_visible()
    checker.check("endpoint-created")
    checker.go(world.fresh.get_absolute_url(), "endpoint-waiting")
    checker.go(world.shop.get_absolute_url(), "endpoint-messages")
    checker.go(world.billing.get_absolute_url(), "endpoint-rejected")
    checker.go(f"/endpoints/{world.shop.pk}/edit/", "endpoint-edit", open_details=True)
    checker.go(f"/endpoints/{world.shop.pk}/rotate/", "endpoint-rotate")
    checker.go(f"/endpoints/{world.shop.pk}/delete/", "endpoint-delete")
    checker.go(f"/endpoints/{world.shop.pk}/destinations/new/", "destination-new")
    page.fill("input[name=url]", "ftp://example.com/")
    page.locator("main form button[type=submit]").last.click()
    expect(page.locator(".error-summary, .errorlist").first).to_be_visible()
    checker.check("destination-errors")
    checker.go(f"/destinations/{world.destination.pk}/edit/", "destination-edit")

    # "Delete…" under "All matching" asks on a page of its own.
    checker.go("/", "list-again")
    page.locator(".bulk-group[aria-label^='Every message']").get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Delete all")
    checker.check("confirm-delete-all")

    checker.go(world.job.get_absolute_url(), "job")
    checker.go("/audit/", "audit")

    # Alerts: open, acknowledged and resolved ones; a filter error; the rule form and its errors.
    checker.go("/alerts/", "alerts")
    checker.go("/alerts/?state=burning", "alerts-filter-error")
    expect(page.locator("main [role=alert]")).to_be_visible()
    checker.go("/alerts/rules/new/", "alert-rule-new")
    page.fill("input[name=window]", "soon")
    page.get_by_role("button", name="Add alert rule").click()
    expect(page.locator(".error-summary")).to_be_visible()
    checker.check("alert-rule-errors")
    checker.go(f"/alerts/rules/{world.alert_rule.pk}/edit/", "alert-rule-edit")


def test_it_has_no_serious_accessibility_violation_on_any_page(
    themed_page: Page,  # noqa: F811 - the fixture
    live_url: str,  # noqa: F811
    request: Any,
) -> None:
    page = themed_page
    problems = Problems(page)
    world = World()
    label = request.node.callspec.id
    checker = Checker(page, live_url, label)
    visit_every_page(checker, world)
    for line in checker.other:
        print("not blocking:", line)
    assert not checker.blocking, (
        f"{len(checker.blocking)} serious or critical axe-core violation(s) [{label}]:\n" + "\n".join(checker.blocking)
    )
    assert len(checker.pages) == 34
    assert Message.objects.count() == 6
    assert Endpoint.objects.count() == 4
    problems.assert_none()


def test_it_skips_to_the_content_with_the_first_tab(browser: Browser, live_url: str) -> None:  # noqa: F811
    for width in [1366, 390]:
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        problems = Problems(page)
        if width == 1366:
            make_user("manager", MANAGERS)
            make_message(make_endpoint("shop")[0])
        log_in(page, live_url, "manager")

        skip = page.get_by_role("link", name="Skip to content")
        page.keyboard.press("Tab")
        expect(skip).to_be_focused()
        # Off screen until then; focused, a sighted keyboard user sees it.
        expect(skip).to_be_in_viewport()
        box = skip.bounding_box()
        assert box is not None
        assert box["height"] > 10
        assert box["y"] >= 0
        page.screenshot(path=ARTIFACTS / f"a11y-skip-link-{width}.png")
        page.keyboard.press("Enter")
        expect(page.locator("main#content")).to_be_focused()
        # The next Tab goes on from the page: the search box, not the header's links.
        page.keyboard.press("Tab")
        expect(page.locator("#id_q")).to_be_focused()
        # Unfocused again, it is out of sight.
        expect(skip).not_to_be_in_viewport()
        problems.assert_none()
        context.close()
