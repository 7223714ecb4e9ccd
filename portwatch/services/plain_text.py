"""Untrusted text (process names, paths, users) made safe to show.

Nothing here renders markup: control characters and bidirectional overrides are made
visible as ``\\u202e``-style escapes so a name cannot hide or reorder itself, and HTML
escaping is applied only where a medium would otherwise render markup (tooltips, D-Bus
notification bodies).
"""

from __future__ import annotations

import html

from portwatch.core import text as core_text


def visible(text: str | None) -> str:
    """``text`` with undecodable bytes, control, format and bidi characters shown as
    ``\\xNN``/``\\uXXXX`` escapes (shared with the CLI through ``core.text``)."""
    # Not clean() again: stored text is already cleaned (once, by the probe), and
    # cleaning twice would double its backslashes; visible() shows stray bytes itself.
    return core_text.visible(text)


def escaped(text: str | None) -> str:
    """:func:`visible` text with ``<``, ``>`` and ``&`` escaped for media that render markup."""
    return html.escape(visible(text), quote=False)


def tooltip(*lines: str | None) -> str:
    """Tooltip markup that shows each line literally (Qt guesses tooltips may be rich text).

    Each line is made visible and escaped on its own, so a newline inside a process name
    still shows as ``\x0a`` while the lines we put together break where we meant them to.
    """
    shown = [html.escape(visible(line)) for line in lines if line]
    if not shown:
        return ""
    # Wrapping in <p> makes Qt treat the tooltip as rich text, so the entities decode to
    # the literal characters instead of being shown as "&lt;".
    return "<p style='white-space:pre-wrap'>" + "<br>".join(shown) + "</p>"


def shorten_utf16(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-16 units (what Windows counts), ending with an
    ellipsis when cut; a character outside the BMP (an emoji) counts two, never split."""
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    kept: list[str] = []
    used = 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > limit - 1:
            break
        kept.append(ch)
        used += width
    return "".join(kept) + "\u2026"


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "\u2026"
