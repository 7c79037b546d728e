"""Template filters for text that senders and staff supply (`{% load inbox_text %}`).

`bidi`: bidirectional control characters made visible. `<bdi>` and `dir="auto"` keep a
right-to-left override from reordering the text around it, but not the text it holds:
`"\\u202eetadpu.redro"` still reads "order.update". Each control is replaced with a marker
such as `⟨U+202E⟩`, so what is shown is what was sent. `bidi_text` does the same without
markup, for attributes and the page title. `sentence` ends a reason with exactly one stop.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# The embeddings, overrides and isolates (U+202A to U+202E, U+2066 to U+2069) and the three marks
# (LRM, RLM, ALM): the characters that change how the text around them is ordered.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def _code(char: str) -> str:
    return f"⟨U+{ord(char):04X}⟩"


def _marker(match: re.Match[str]) -> str:
    char = match.group()
    return str(
        format_html(
            '<span class="bidi-mark" title="Invisible direction control: {}">{}</span>',
            unicodedata.name(char, "").lower(),
            _code(char),
        )
    )


def mark_bidi_html(html: str) -> SafeString:
    """Escaped HTML with each bidi control replaced by a visible marker. `html` must already
    be escaped (the controls are text, never part of a tag)."""
    return mark_safe(BIDI_CONTROLS.sub(_marker, html))  # noqa: S308 - escaped input; the marker is ours


@register.filter(needs_autoescape=True)
def bidi(value: Any, autoescape: bool = True) -> SafeString:
    text = conditional_escape(value) if autoescape else str(value)
    return mark_bidi_html(text)


@register.filter
def bidi_text(value: Any) -> str:
    """The same markers as plain text, for `title="…"` and `<title>` (autoescaped as usual)."""
    return BIDI_CONTROLS.sub(lambda m: _code(m.group()), str(value))


@register.filter
def sentence(value: Any) -> str:
    """The text without its closing full stop, for a template that adds its own."""
    return str(value).strip().removesuffix(".")
