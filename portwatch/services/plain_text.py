"""Untrusted text (process names, paths, users) made safe to show.

Nothing here renders markup: control characters and bidirectional overrides are made
visible as ``\\u202e``-style escapes so a name cannot hide or reorder itself, and HTML
escaping is applied only where a medium would otherwise render markup (tooltips, D-Bus
notification bodies).
"""

from __future__ import annotations

import html
import unicodedata

# Characters that reorder or hide text: bidi embeddings/overrides/isolates, marks, and
# zero-width joiners; shown as escapes so "exe.txt\u202egpj" cannot pose as a .jpg.
_INVISIBLE = frozenset(
    [
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
        0x200E,
        0x200F,
        0x061C,
        0x200B,
        0x200C,
        0x200D,
        0x2060,
        0xFEFF,
    ]
)


def visible(text: str | None) -> str:
    """``text`` with control, format and bidi characters replaced by ``\\uXXXX`` escapes.

    Ordinary printable characters (any script) are kept as they are; a lone surrogate
    from a filename that was not valid UTF-8 is escaped too.
    """
    if not text:
        return ""
    out: list[str] = []
    for char in text:
        code = ord(char)
        category = unicodedata.category(char)
        if code in _INVISIBLE or category in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def escaped(text: str | None) -> str:
    """:func:`visible` text with ``<``, ``>`` and ``&`` escaped for media that render markup."""
    return html.escape(visible(text), quote=False)


def tooltip(text: str | None) -> str:
    """Tooltip markup that shows ``text`` literally (Qt guesses tooltips may be rich text)."""
    if not text:
        return ""
    # Wrapping in <p> makes Qt treat the tooltip as rich text, so the entities decode to
    # the literal characters instead of being shown as "&lt;".
    return "<p style='white-space:pre-wrap'>" + html.escape(visible(text)) + "</p>"


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "\u2026"
