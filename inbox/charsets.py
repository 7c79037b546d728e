"""Reading a body in the character set its Content-Type declares.

A body is stored as text only when it is UTF-8; a `text/plain; charset=latin-1` body is
stored as bytes. This turns such bytes back into text for people to read (the viewer, the
list's preview), and leaves real binary alone. Standard library only: the receiver uses it.
"""

from __future__ import annotations

import unicodedata

from django.utils.http import parse_header_parameters

# Control characters that text legitimately holds.
TEXT_CONTROLS = frozenset("\t\n\r\f\v\x1b")
# Decoded "text" with more control characters than this (a PNG labelled latin-1, where
# every byte decodes to something) is shown as binary after all.
MAX_CONTROL_SHARE = 0.05


def declared_charset(content_type: str) -> str | None:
    """The charset parameter of a Content-Type, or None."""
    try:
        _, params = parse_header_parameters(content_type)
    except (ValueError, IndexError):
        return None
    charset = params.get("charset", "").strip().strip("\"'")
    return charset or None


def decode_declared(raw: bytes, content_type: str) -> tuple[str, str] | None:
    """(text, charset) when `raw` reads as text in the declared charset, else None.

    None when no charset is declared, the name is no text codec Python knows (bytes.decode
    refuses bytes-to-bytes codecs such as "zlib" or "hex" with LookupError), the bytes are
    not valid in it, or the result looks like binary (NUL, many control characters).
    """
    charset = declared_charset(content_type)
    if charset is None or len(charset) > 40:
        return None
    try:
        text = raw.decode(charset)
    except (LookupError, UnicodeDecodeError, ValueError):
        return None
    if "\x00" in text:
        return None
    sample = text[:65536]  # enough to tell, and a 1 MiB body stays cheap to open
    controls = sum(1 for char in sample if char not in TEXT_CONTROLS and unicodedata.category(char) == "Cc")
    if controls > len(sample) * MAX_CONTROL_SHARE:
        return None
    return text, charset
