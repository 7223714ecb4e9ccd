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
    the escape cannot be forged, a backslash that would read as the start of one is
    doubled: before ``x`` and two hex digits, ``u`` and four, an escaped byte, or a
    backslash that is itself doubled. The byte 0xff becomes ``\\xff``, the four
    characters ``\\xff`` become ``\\\\xff``. Any other backslash stays single, so
    Windows paths read as they are (``C:\\Users``, ``C:\\xampp``, ``\\\\server``).
    Apply once, where text comes from the OS.
    """
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="surrogateescape")
    if "\\" not in text and not _has_surrogate(text):
        return text
    # Right to left: whether a backslash is doubled depends on what is written after it.
    pieces: list[str] = []
    doubled_next = False
    for index in range(len(text) - 1, -1, -1):
        ch = text[index]
        code = ord(ch)
        doubled = False
        if 0xDC80 <= code <= 0xDCFF:
            piece = f"\\x{code - 0xDC00:02x}"
        elif 0xD800 <= code <= 0xDFFF:
            piece = f"\\u{code:04x}"
        elif ch == "\\" and index < len(text) - 1:
            following = text[index + 1]
            doubled = (
                doubled_next
                or "\ud800" <= following <= "\udfff"
                or _reads_as_escape_body(text, index + 1)
            )
            piece = "\\\\" if doubled else ch
        else:
            piece = ch
        pieces.append(piece)
        doubled_next = doubled
    return "".join(reversed(pieces))


_HEX = frozenset("0123456789abcdefABCDEF")


def _reads_as_escape_body(text: str, start: int) -> bool:
    # What follows the backslash of an escape clean() writes: x and two hex digits, or u
    # and four.
    for letter, digits in (("x", 2), ("u", 4)):
        body = text[start + 1 : start + 1 + digits]
        if text.startswith(letter, start) and len(body) == digits and set(body) <= _HEX:
            return True
    return False


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def visible(text: str | None, keep: str = "") -> str:
    """Text for display: control, bidi and invisible characters shown as escapes
    (except those in ``keep``, such as the line breaks a CSV cell may hold)."""
    if not text:
        return ""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in keep:
            out.append(ch)
        elif 0xDC80 <= code <= 0xDCFF:  # text that skipped clean(): show the byte anyway
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _BIDI_AND_INVISIBLE or unicodedata.category(ch) in ("Cc", "Cf", "Cs"):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        elif unicodedata.category(ch) in ("Zl", "Zp"):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
