"""How the payload viewer shows a message's body.

Everything a payload holds reaches the page as text: Pygments escapes what it highlights,
and everything else goes through the template's autoescaping. Nothing here marks
payload content safe except Pygments' own escaped output.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import JsonLexer, XmlLexer

from inbox.charsets import declared_charset, decode_declared
from inbox.dashboard.textfilters import bidi, bidi_text, mark_bidi_html
from inbox.models import REDACTED, Endpoint, Message

# Above this size highlighting costs more than it helps; the document is shown plain
# and collapsed.
HIGHLIGHT_LIMIT = 200 * 1024
HEXDUMP_LIMIT = 4096
# Bodies longer than this are compared on their first lines only.
MAX_DIFF_LINES = 5000
# A command line holds about 128 KiB per argument on Linux (MAX_ARG_STRLEN), less
# elsewhere: above this, "copy as curl" reads the body from the downloaded file.
CURL_INLINE_LIMIT = 100 * 1024


@dataclass
class BodyView:
    kind: str  # json, form, xml, text, binary, empty
    highlighted: SafeString | None = None
    text: str = ""
    large: bool = False
    form_fields: list[tuple[str, str]] = field(default_factory=list)
    # Set when the bytes were not UTF-8 and were read in the Content-Type's charset.
    charset: str = ""


def _highlight(text: str, lexer: JsonLexer | XmlLexer, label: str) -> SafeString:
    formatter = HtmlFormatter(cssclass="highlight", wrapcode=True)
    html: str = highlight(text, lexer, formatter)
    # The <pre> scrolls (max-height, long lines): a keyboard reaches it only if it takes
    # focus, and a focusable region needs a name. Pygments has no option for attributes.
    html = html.replace(
        '<div class="highlight"><pre>',
        f'<div class="highlight"><pre tabindex="0" role="region" aria-label="{label}">',
        1,
    )
    # Pygments' output is escaped text in spans: the bidi controls it holds become markers.
    return mark_bidi_html(html)


def hexdump(data: bytes, limit: int = HEXDUMP_LIMIT) -> str:
    lines = []
    for offset in range(0, min(len(data), limit), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        printable = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  {printable}")
    if len(data) > limit:
        lines.append(f"… {filesizeformat(len(data) - limit)} more (download the raw body)")
    return "\n".join(lines)


def body_view(message: Message) -> BodyView:
    if message.body_size == 0:
        return BodyView(kind="empty")
    if message.json is not None:
        pretty = json.dumps(message.json, indent=2, ensure_ascii=False)
        if len(pretty) > HIGHLIGHT_LIMIT:
            return BodyView(kind="json", text=pretty, large=True)
        return BodyView(kind="json", highlighted=_highlight(pretty, JsonLexer(), "JSON body"), text=pretty)
    charset = ""
    if message.body_text is not None:
        text = message.body_text
    else:
        decoded = decode_declared(message.body, message.content_type)
        if decoded is None:
            return BodyView(kind="binary", text=hexdump(message.body))
        text, charset = decoded
    content_type = message.content_type.split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        return BodyView(kind="form", text=text, form_fields=form_fields(text, message.content_type), charset=charset)
    if content_type.endswith("/xml") or content_type.endswith("+xml"):
        if len(text) > HIGHLIGHT_LIMIT:
            return BodyView(kind="xml", text=text, large=True, charset=charset)
        return BodyView(kind="xml", highlighted=_highlight(text, XmlLexer(), "XML body"), text=text, charset=charset)
    return BodyView(kind="text", text=text, large=len(text) > HIGHLIGHT_LIMIT, charset=charset)


def form_fields(text: str, content_type: str) -> list[tuple[str, str]]:
    """A form body's fields. Percent-escapes stand for bytes in the declared charset
    (`J%F6rg` is "Jörg" in ISO-8859-1), UTF-8 when none is declared."""
    charset = declared_charset(content_type) or "utf-8"
    try:
        return parse_qsl(text, keep_blank_values=True, encoding=charset, errors="replace")
    except LookupError:
        return parse_qsl(text, keep_blank_values=True, errors="replace")


def readable_text(message: Message) -> str | None:
    """The body as text: UTF-8 as stored, or decoded in its declared charset; None for binary."""
    if message.body_text is not None:
        return message.body_text
    decoded = decode_declared(message.body, message.content_type)
    return decoded[0] if decoded else None


@dataclass
class DiffLine:
    kind: str  # same, added, removed, skipped
    text: str


def comparable_text(message: Message) -> list[str]:
    """The lines of a message that a comparison reads: metadata, headers, then the body
    (JSON pretty-printed with sorted keys, so key order never shows as a change)."""
    lines = [
        f"endpoint: {message.endpoint.name}",
        f"method: {message.method}",
        f"event type: {message.event_type}",
        f"content type: {message.content_type}",
        f"query: {message.query_string}",
        "",
    ]
    lines += [f"{name}: {value}" for name, value in sorted(message.headers.items())]
    lines.append("")
    if message.json is not None:
        lines += json.dumps(message.json, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
    elif (text := readable_text(message)) is not None:
        lines += text.splitlines()
    else:
        lines += hexdump(message.body).splitlines()
    return lines[:MAX_DIFF_LINES]


def compare(older: Message, newer: Message) -> list[DiffLine]:
    """A unified diff with three lines of context; identical runs in between are skipped."""
    before, after = comparable_text(older), comparable_text(newer)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    result: list[DiffLine] = []
    for group in matcher.get_grouped_opcodes(n=3):
        if result:
            result.append(DiffLine("skipped", "…"))
        for op, i1, i2, j1, j2 in group:
            if op == "equal":
                result += [DiffLine("same", line) for line in before[i1:i2]]
                continue
            result += [DiffLine("removed", line) for line in before[i1:i2]]
            result += [DiffLine("added", line) for line in after[j1:j2]]
    return result


# --- JSON tree -----------------------------------------------------------------------------
TREE_NODE_LIMIT = 5000
CURL_SKIPPED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "accept-encoding",
        "transfer-encoding",
        "expect",
        "x-webhook-inbox-message-id",  # set by this inbox when it forwarded the message here
    }
)


def json_tree(value: Any) -> SafeString | None:
    """The parsed JSON as nested, collapsible lists. Each key carries its path in the
    syntax of the list's JSON path filter (`data.items.0.sku`), for the copy buttons.
    Every key and value is escaped by format_html; None when the document is too big."""
    budget = [TREE_NODE_LIMIT]

    def node(item: Any, path: str) -> SafeString:
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooBig
        if isinstance(item, dict):
            return _container("{", "}", [(str(k), f"{path}.{k}" if path else str(k), v) for k, v in item.items()])
        if isinstance(item, list):
            return _container("[", "]", [(str(i), f"{path}.{i}" if path else str(i), v) for i, v in enumerate(item)])
        kind = "null" if item is None else "bool" if isinstance(item, bool) else type(item).__name__
        # dir="auto" isolates each value: a right-to-left override in one cannot reorder its line.
        return format_html(
            '<span class="jv jv-{}" dir="auto">{}</span>', kind, bidi(json.dumps(item, ensure_ascii=False))
        )

    def _container(open_: str, close: str, children: list[tuple[str, str, Any]]) -> SafeString:
        if not children:
            return format_html('<span class="jv">{}{}</span>', open_, close)
        items = format_html_join(
            "",
            '<li><button type="button" class="jk" data-path="{}" title="Copy the path {}">{}</button>: {}</li>',
            # data-path stays exact (it is copied into the filter); what is read shows the bidi controls.
            ((path, bidi_text(path), bidi(key), node(child, path)) for key, path, child in children),
        )
        return format_html(
            '<details open><summary>{} <span class="muted small">{} item{}</span></summary><ul>{}</ul>{}</details>',
            open_,
            len(children),
            "" if len(children) == 1 else "s",
            items,
            close,
        )

    try:
        return format_html('<div class="json-tree" dir="ltr">{}</div>', node(value, ""))
    except (_TooBig, RecursionError):
        return None


class _TooBig(Exception):
    pass


# --- Copy as curl --------------------------------------------------------------------------
def curl_body_file(message: Message) -> str | None:
    """The file name "copy as curl" reads the body from, or None when the body fits on the
    command line. It is the raw download's name (message_raw): the page offers that file.
    Bodies that are not UTF-8 go through the file too, so curl sends them byte for byte."""
    if message.body_size and (message.body_text is None or message.body_size > CURL_INLINE_LIMIT):
        return f"message-{message.pk}.bin"
    return None


RECEIVER_URL_VARIABLE = "RECEIVER_URL"


def double_quoted(text: str, variable: str = "") -> str:
    """`text` in shell double quotes, escaped so it stays literal, followed (inside the same
    quotes) by `${variable}`, which the shell expands: what a pasted command needs so that
    `export X_WEBHOOK_TOKEN=...` then paste works (single quotes would send "$X_..." as is)."""
    escaped = re.sub(r'([\\"$`])', r"\\\1", text)
    return f'"{escaped}' + (f"${variable}" if variable else "") + '"'


def single_quoted(text: str) -> str:
    """`text` in shell single quotes, always (shlex.quote leaves a plain URL bare)."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def header_variable(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def curl_command(message: Message) -> str:
    """A curl command that sends this request again to its endpoint. The receiver URL (a
    credential, shown once) is "$RECEIVER_URL", and redacted credentials are shell variables
    ($X_WEBHOOK_TOKEN), all to set first; a binary or large body is read from the
    downloaded raw file (curl_body_file)."""
    query = f"?{message.query_string}" if message.query_string else ""
    # The query in single quotes: a "!" in double quotes is history expansion in bash.
    url = double_quoted("", RECEIVER_URL_VARIABLE) + (shlex.quote(query) if query else "")
    lines = [f"curl -X {message.method} {url}"]
    for name, value in message.headers.items():
        if name.lower() in CURL_SKIPPED_HEADERS:
            continue
        if value == REDACTED:
            lines.append("-H " + double_quoted(f"{name}: ", header_variable(name)))
        else:
            lines.append(f"-H {shlex.quote(f'{name}: {value}')}")
    body_file = curl_body_file(message)
    if body_file:
        lines.append(f"--data-binary @{body_file}")
    elif message.body_size and message.body_text is not None:
        lines.append(f"--data-binary {shlex.quote(message.body_text)}")
    return " \\\n  ".join(lines)


def endpoint_curl_variables(endpoint: Endpoint) -> list[str]:
    """The shell variables endpoint_curl uses once the URL and credential are no longer shown."""
    names = [RECEIVER_URL_VARIABLE]
    if endpoint.secret_kind == "token":
        names.append(header_variable(endpoint.credential_header))
    elif endpoint.secret_kind == "basic":
        names.append("WEBHOOK_PASSWORD")
    return names


TEST_BODY = '{"type": "test.event", "data": {"hello": "world"}}'


def endpoint_curl(endpoint: Endpoint, shown: dict[str, str], url: str = "") -> str:
    """The endpoint page's test curl: with the URL and the credential while they are shown
    (once), and shell variables to set ("$RECEIVER_URL", "$X_WEBHOOK_TOKEN") afterwards."""
    lines = [f"curl -X POST {single_quoted(url) if url else double_quoted('', RECEIVER_URL_VARIABLE)}"]
    lines.append(f"-H {shlex.quote('Content-Type: application/json')}")
    if endpoint.secret_kind == "token":
        header = endpoint.credential_header
        token = shown.get("token")
        lines.append(
            "-H "
            + (shlex.quote(f"{header}: {token}") if token else double_quoted(f"{header}: ", header_variable(header)))
        )
    elif endpoint.secret_kind == "basic":
        password = shown.get("password")
        user = f"{endpoint.basic_username}:"
        lines.append("-u " + (shlex.quote(user + password) if password else double_quoted(user, "WEBHOOK_PASSWORD")))
    lines.append(f"-d {shlex.quote(TEST_BODY)}")
    return " \\\n  ".join(lines)
