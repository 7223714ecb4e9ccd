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
    SQLite, CSV and Qt, so each becomes the escape of the byte it stood for.
    """
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="surrogateescape")
    if not any("\udc80" <= ch <= "\udcff" or "\ud800" <= ch <= "\udfff" for ch in text):
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def visible(text: str | None) -> str:
    """Text for display: control, bidi and invisible characters shown as escapes."""
    if not text:
        return ""
    out = []
    for ch in text:
        if ch in _BIDI_AND_INVISIBLE or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
