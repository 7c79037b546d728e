"""How the payload viewer shows a message's body.

Everything a payload holds reaches the page as text: Pygments escapes what it highlights,
and everything else goes through the template's autoescaping. Nothing here marks
payload content safe except Pygments' own escaped output.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import JsonLexer, XmlLexer

from inbox.models import Message

# Above this size highlighting costs more than it helps; the document is shown plain
# and collapsed.
HIGHLIGHT_LIMIT = 200 * 1024
HEXDUMP_LIMIT = 4096
# Bodies longer than this are compared on their first lines only.
MAX_DIFF_LINES = 5000


@dataclass
class BodyView:
    kind: str  # json, form, xml, text, binary, empty
    highlighted: SafeString | None = None
    text: str = ""
    large: bool = False
    form_fields: list[tuple[str, str]] = field(default_factory=list)


def _highlight(text: str, lexer: JsonLexer | XmlLexer) -> SafeString:
    formatter = HtmlFormatter(cssclass="highlight", wrapcode=True)
    html: str = highlight(text, lexer, formatter)
    return mark_safe(html)  # noqa: S308 - Pygments escapes its input


def hexdump(data: bytes, limit: int = HEXDUMP_LIMIT) -> str:
    lines = []
    for offset in range(0, min(len(data), limit), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        printable = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  {printable}")
    if len(data) > limit:
        lines.append(f"… {len(data) - limit} more bytes (download the raw body)")
    return "\n".join(lines)


def body_view(message: Message) -> BodyView:
    if message.body_size == 0:
        return BodyView(kind="empty")
    if message.json is not None:
        pretty = json.dumps(message.json, indent=2, ensure_ascii=False)
        if len(pretty) > HIGHLIGHT_LIMIT:
            return BodyView(kind="json", text=pretty, large=True)
        return BodyView(kind="json", highlighted=_highlight(pretty, JsonLexer()), text=pretty)
    if message.body_text is None:
        return BodyView(kind="binary", text=hexdump(message.body))
    text = message.body_text
    content_type = message.content_type.split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        return BodyView(kind="form", text=text, form_fields=parse_qsl(text, keep_blank_values=True))
    if content_type.endswith("/xml") or content_type.endswith("+xml"):
        if len(text) > HIGHLIGHT_LIMIT:
            return BodyView(kind="xml", text=text, large=True)
        return BodyView(kind="xml", highlighted=_highlight(text, XmlLexer()), text=text)
    return BodyView(kind="text", text=text, large=len(text) > HIGHLIGHT_LIMIT)


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
    elif message.body_text is not None:
        lines += message.body_text.splitlines()
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
