"""Reading the list and the viewer (issue 13, items 11-13): the folded filters, rows that
open as a whole, isolated user text, bodies in their declared charset, curl from a file
for big bodies, one way of showing sizes, and times that name their zone."""

from __future__ import annotations

import os
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from inbox.dashboard.viewer import CURL_INLINE_LIMIT, body_view, curl_command
from inbox.models import AuditAction, AuditEntry, BulkJob, Message, Status
from tests.conftest import make_endpoint, make_message

pytestmark = pytest.mark.django_db

RLO = "\u202e"


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []  # elements and text, in document order

    def ancestors(self) -> list[Node]:
        node, found = self.parent, []
        while node is not None:
            found.append(node)
            node = node.parent
        return found

    def find_all(self, predicate: Any) -> list[Node]:
        found = [self] if predicate(self) else []
        for child in self.children:
            if isinstance(child, Node):
                found += child.find_all(predicate)
        return found

    def all_text(self) -> str:
        return "".join(child if isinstance(child, str) else child.all_text() for child in self.children)


VOID = {"input", "br", "img", "meta", "link", "hr", "col", "source", "wbr"}


class Tree(HTMLParser):
    """A small DOM: enough to ask what an element sits in."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.current = self.root
        self.texts: list[tuple[str, Node]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)
        self.texts.append((data, self.current))


def page(client: Client, url: str) -> Tree:
    response = client.get(url)
    assert response.status_code == 200, url
    return Tree(response.content.decode())


def classes(node: Node) -> list[str]:
    return (node.attrs.get("class") or "").split()


# --- 11. The list: one search box, "Filters (n)", whole rows, type and verified columns -----
def test_it_folds_every_filter_but_the_search_behind_a_counted_control(staff_client: Client) -> None:
    endpoint, _ = make_endpoint("billing")
    make_message(endpoint, status=Status.FAILED)
    tree = page(staff_client, f"/?endpoint={endpoint.pk}&status=failed&q=order")
    form = tree.root.find_all(lambda n: n.tag == "form" and "filters" in classes(n))[0]
    details = form.find_all(lambda n: n.tag == "details")
    assert len(details) == 1
    summary = details[0].find_all(lambda n: n.tag == "summary")[0].all_text()
    # Two filters in use; the search box is outside the fold and is not counted.
    assert summary.startswith("Filters (2)")
    assert summary.endswith(": endpoint, processing")
    search = form.find_all(lambda n: n.attrs.get("name") == "q")[0]
    assert details[0] not in search.ancestors()
    folded = {n.attrs.get("name") for n in details[0].find_all(lambda n: n.tag in ("input", "select"))}
    assert folded == {
        "json",
        "endpoint",
        "event_type",
        "method",
        "content_type",
        "verification",
        "status",
        "read",
        "received_after",
        "received_before",
    }


def test_it_updates_the_filter_count_when_htmx_swaps_the_results(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint, status=Status.FAILED)
    content = staff_client.get("/?status=failed", headers={"HX-Request": "true"}).content.decode()
    assert '<span id="filter-count" hx-swap-oob="true">Filters (1)' in content
    full = staff_client.get("/?status=failed").content.decode()
    assert "hx-swap-oob" not in full


def test_it_makes_each_row_one_link_with_nothing_interactive_inside_another(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    messages = [make_message(endpoint) for _ in range(3)]
    tree = page(staff_client, "/")
    rows = tree.root.find_all(lambda n: n.tag == "tr" and "row" in classes(n))
    assert len(rows) == 3
    for row, message in zip(rows, reversed(messages), strict=True):
        links = row.find_all(lambda n: n.tag == "a" and "row-link" in classes(n))
        assert [link.attrs["href"] for link in links] == [f"/messages/{message.pk}/"]
        assert f"Message #{message.pk}" in links[0].all_text()  # a name for screen readers
    interactive = tree.root.find_all(lambda n: n.tag in ("a", "button", "input", "select", "textarea"))
    for node in interactive:
        assert not any(a.tag in ("a", "button") for a in node.ancestors()), f"<{node.tag}> nested in a link"


def test_it_shows_the_content_type_and_a_labelled_verified_mark(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint, body=b"a=1", content_type="application/x-www-form-urlencoded", verification="verified")
    make_message(endpoint, verification="unverified")
    tree = page(staff_client, "/")
    headings = [th.all_text().split()[0] for th in tree.root.find_all(lambda n: n.tag == "th") if th.all_text()]
    assert "Type" in headings
    json_row, form_row = tree.root.find_all(lambda n: n.tag == "tr" and "row" in classes(n))
    assert json_row.find_all(lambda n: "ctype" in classes(n))[0].all_text().strip() == "application/json"
    assert "application/x-www-form-urlencoded" in form_row.all_text()
    # The mark is words, not a bare glyph: its text reads "verified", the tick is hidden from readers.
    marks = form_row.find_all(lambda n: "verified" in classes(n))
    assert [m.all_text().strip() for m in marks] == ["✓ verified"]
    assert marks[0].find_all(lambda n: n.attrs.get("aria-hidden") == "true")[0].all_text() == "✓"
    assert json_row.find_all(lambda n: "verified" in classes(n)) == []


def test_it_says_stored_when_nothing_was_asked_of_the_worker_and_keeps_the_skipped_filter(
    staff_client: Client,
) -> None:
    endpoint, _ = make_endpoint()
    stored = make_message(endpoint, status=Status.SKIPPED)
    make_message(endpoint, status=Status.FAILED)
    tree = page(staff_client, "/")
    statuses = [n.all_text().strip() for n in tree.root.find_all(lambda n: n.tag == "td" and "status" in classes(n))]
    assert statuses == ["failed", "stored"]
    # The stored value and its filter stay "skipped" (URLs, exports and the API rely on it).
    filtered = staff_client.get("/?status=skipped").content.decode()
    assert re.findall(r'class="row-link" href="/messages/(\d+)/', filtered) == [str(stored.pk)]
    assert '<option value="skipped">Stored (nothing to do)</option>' in staff_client.get("/").content.decode()
    detail = staff_client.get(stored.get_absolute_url()).content.decode()
    assert "<dt>Processing</dt><dd>Stored: nothing to forward or run" in detail


@pytest.mark.parametrize("count", [10, 100])
def test_it_renders_a_filtered_list_in_a_fixed_number_of_queries(
    staff_client: Client,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
    count: int,
) -> None:
    endpoints = [make_endpoint(f"endpoint-{n}")[0] for n in range(5)]
    for n in range(count):
        make_message(endpoints[n % 5], status=Status.SKIPPED)
    # As unfiltered (tests/test_dashboard.py), plus the chosen endpoint's lookup by the filter form.
    with django_assert_num_queries(8):
        response = staff_client.get(f"/?status=skipped&endpoint={endpoints[0].pk}&q=order")
    assert len(re.findall(r'class="row-link"', response.content.decode())) == min(count // 5, 50)


# --- 12. User text is isolated wherever it is shown ----------------------------------------------
# Where an isolate cannot go: the tab title, a <select>'s options and the hidden copy buffer
# hold text only, and each is a paragraph of its own.
TEXT_ONLY = {"title", "option", "textarea"}


def assert_isolated(tree: Tree, needle: str, url: str) -> int:
    found = 0
    for text, parent in tree.texts:
        if needle not in text or parent.tag in TEXT_ONLY:
            continue
        found += 1
        chain = [parent, *parent.ancestors()]
        assert any(n.tag == "bdi" or "dir" in n.attrs for n in chain), f"{url}: {text!r} is not isolated"
    return found


def test_it_isolates_user_supplied_text_on_every_page_that_shows_it(staff_client: Client, staff: User) -> None:
    name = "n" * 90 + RLO + "gnp.exe"
    endpoint, _ = make_endpoint(name, description=f"desc {RLO}flipped")
    first = make_message(endpoint, f'{{"type": "ev{RLO}ent", "note": "a{RLO}b"}}'.encode())
    second = make_message(endpoint, f"plain {RLO}text".encode(), content_type="text/plain", event_type=f"x{RLO}y")
    AuditEntry.record(staff, AuditAction.ENDPOINT_CHANGED, f"target {RLO}name", endpoint, note=f"v{RLO}w")
    job = BulkJob.objects.create(query=f"q={RLO}abc", created_by=staff)
    pages = [
        "/",
        first.get_absolute_url(),
        second.get_absolute_url(),
        "/endpoints/",
        f"/endpoints/{endpoint.pk}/",
        f"/messages/compare/?ids={first.pk}&ids={second.pk}",
        "/audit/",
        f"/jobs/{job.pk}/",
    ]
    for url in pages:
        tree = page(staff_client, url)
        # The override is shown as a marker (tests/test_polish.py), and the marker is isolated too.
        assert assert_isolated(tree, "⟨U+202E⟩", url) > 0, url
        assert assert_isolated(tree, RLO, url) == 0, f"{url}: an override left unmarked"


def test_it_wraps_endpoint_names_in_bdi_in_the_list_and_on_the_endpoint_pages(staff_client: Client) -> None:
    endpoint, _ = make_endpoint("x" * 100)
    make_message(endpoint)
    for url in ["/", "/endpoints/", f"/endpoints/{endpoint.pk}/"]:
        assert f"<bdi>{'x' * 100}</bdi>" in staff_client.get(url).content.decode(), url


# --- 13. Charsets, curl from a file, sizes, times ---------------------------------------------------
def test_it_shows_a_latin1_text_body_as_text_not_hex(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint, "Grüße aus Köln".encode("latin-1"), content_type="text/plain; charset=latin-1")
    assert message.body_text is None  # stored byte for byte, as it came
    content = staff_client.get(message.get_absolute_url()).content.decode()
    assert "Grüße aus Köln</pre>" in content
    assert "decoded as latin-1" in content
    assert "Hex dump" not in content
    assert "Grüße aus Köln" in staff_client.get("/").content.decode()  # the list's preview
    # Real binary stays a hex dump whatever its label says, and an unknown label is no 500.
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 4
    for label in ["image/png", "text/plain; charset=latin-1", "text/plain; charset=zlib", "text/plain; charset=nope"]:
        binary = make_message(endpoint, png, content_type=label)
        response = staff_client.get(binary.get_absolute_url())
        assert response.status_code == 200
        assert "89 50 4e 47" in response.content.decode(), label


def test_it_reads_form_fields_in_the_declared_charset(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    ctype = "application/x-www-form-urlencoded; charset=iso-8859-1"
    escaped = make_message(endpoint, b"name=J%F6rg&city=K%F6ln", content_type=ctype)
    raw = make_message(endpoint, "name=Jörg".encode("latin-1"), content_type=ctype)
    assert body_view(escaped).form_fields == [("name", "Jörg"), ("city", "Köln")]
    assert body_view(raw).form_fields == [("name", "Jörg")]
    assert '<code dir="auto">Jörg</code>' in staff_client.get(raw.get_absolute_url()).content.decode()


def test_it_puts_a_big_body_in_a_file_the_page_offers(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    big = make_message(endpoint, b'{"blob": "' + b"A" * (476 * 1024) + b'"}')
    small = make_message(endpoint, b'{"blob": "small"}')
    command = curl_command(big)
    assert command.endswith(f"--data-binary @message-{big.pk}.bin")
    assert len(command) < 1000
    assert '--data-binary \'{"blob": "small"}\'' in curl_command(small)
    content = staff_client.get(big.get_absolute_url()).content.decode()
    assert "476.0\xa0KB) is too long for a command line" in content
    assert f'href="/messages/{big.pk}/raw/" download="message-{big.pk}.bin">Download message-{big.pk}.bin' in content
    assert "too long for a command line" not in staff_client.get(small.get_absolute_url()).content.decode()
    raw = staff_client.get(f"/messages/{big.pk}/raw/")
    assert raw["Content-Disposition"] == f'attachment; filename="message-{big.pk}.bin"'


@pytest.mark.django_db(transaction=True)
def test_it_sends_a_big_body_again_with_the_curl_and_the_file(live_server: Any, settings: Any, tmp_path: Path) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    endpoint, token = make_endpoint()
    body = b'{"type": "big", "blob": "' + b"\xc3\xa9" * (CURL_INLINE_LIMIT) + b'"}'
    original = make_message(
        endpoint, body, headers={"Content-Type": "application/json", "X-Webhook-Token": "[redacted]"}
    )
    (tmp_path / f"message-{original.pk}.bin").write_bytes(original.body)  # what the page's download saves
    env = {**os.environ, "X_WEBHOOK_TOKEN": token or "", "RECEIVER_URL": endpoint.url}
    command = ["/bin/sh", "-c", curl_command(original) + " -s"]
    result = subprocess.run(command, check=True, env=env, capture_output=True, timeout=30, cwd=tmp_path)  # noqa: S603
    assert result.stdout == b"Message received."
    assert Message.objects.exclude(pk=original.pk).get().body == body


def test_it_shows_sizes_one_way(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint, b'{"k": "' + b"v" * 1224 + b'"}')  # 1,234 bytes
    binary = make_message(endpoint, bytes(range(256)) * 20, content_type="application/octet-stream")
    detail = staff_client.get(message.get_absolute_url()).content.decode()
    assert "<dt>Size</dt><dd>1.2\xa0KB</dd>" in detail
    assert "JSON · 1.2\xa0KB" in detail
    assert "1.2\xa0KB</td>" in staff_client.get("/").content.decode()
    binary_page = staff_client.get(binary.get_absolute_url()).content.decode()
    assert "Binary data, 5.0\xa0KB." in binary_page
    assert "… 1.0\xa0KB more (download the raw body)" in binary_page
    assert "5.0\xa0KB of binary data" in binary.preview


def test_it_names_the_zone_of_every_time_and_carries_the_instant(staff_client: Client, settings: Any) -> None:
    settings.TIME_ZONE = "Asia/Kolkata"
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    detail = page(staff_client, message.get_absolute_url())
    times = detail.root.find_all(lambda n: n.tag == "time" and "data-local" in n.attrs)
    assert times, "the received time is marked for the browser to show in the reader's zone"
    assert str(times[0].attrs["datetime"]).endswith("+05:30")
    assert times[0].all_text().endswith(" IST")
    listing = page(staff_client, "/")
    heading = listing.root.find_all(lambda n: n.attrs.get("data-tz-name") is not None or "data-tz-name" in n.attrs)
    assert [h.all_text() for h in heading] == ["(IST)"]
    row_times = listing.root.find_all(lambda n: n.tag == "time" and n.attrs.get("data-local") == "no-zone")
    assert len(row_times) == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row_times[0].all_text())
