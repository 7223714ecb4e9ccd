"""Text that came from a process: made safe to store, and visible when shown.

Process names and paths are written by whoever runs the process. They may hold bytes
that are not UTF-8, control characters or right-to-left overrides that make a name
read as another. We never drop or alter such characters silently: they are turned
into visible escapes.
"""

from __future__ import annotations

import unicodedata

# Characters that reorder or hide text: shown as escapes so "exe.txt" cannot pose as "txt.exe".
_BIDI_AND_INVISIBLE = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)


def clean(text: str | bytes | None) -> str | None:
    """Make text storable as UTF-8: undecodable bytes become ``\\xNN`` escapes.

    Python decodes OS names with ``surrogateescape``; lone surrogates would crash
    SQLite, CSV and Qt, so each becomes the escape of the byte it stood for. So that
    the escape cannot be forged, a backslash that would read as the start of one
    (before ``x``, ``u``, another backslash or an escaped byte) is doubled: the byte 0xff becomes
    ``\\xff``, the four characters ``\\xff`` become ``\\\\xff``. Apply once, where
    text comes from the OS.
    """
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="surrogateescape")
    if "\\" not in text and not _has_surrogate(text):
        return text
    out = []
    last = len(text) - 1
    for index, ch in enumerate(text):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        elif ch == "\\" and index < last and _starts_escape(text[index + 1]):
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


def _starts_escape(ch: str) -> bool:
    # What follows a backslash in an escape clean() writes (a byte it escapes writes one).
    return ch in "xu\\" or "\ud800" <= ch <= "\udfff"


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def visible(text: str | None) -> str:
    """Text for display: control, bidi and invisible characters shown as escapes."""
    if not text:
        return ""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # text that skipped clean(): show the byte anyway
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _BIDI_AND_INVISIBLE or unicodedata.category(ch) in ("Cc", "Cf", "Cs"):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        elif unicodedata.category(ch) in ("Zl", "Zp"):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
