"""CSV rows for exports, with cells a spreadsheet would run as formulas neutralised."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping

from portwatch.core.text import clean, visible
from portwatch.core.why import WHY_COLUMNS

COLUMNS = (
    "first_seen",
    "last_seen",
    "proto",
    "family",
    "address",
    "port",
    "watched",
    "service",
    "pid",
    "process",
    "exe",
    "sha256",
    "user",
    "status",
    "times_seen",
    # Why the port is open and who can reach it (after the older columns, so a reader
    # that takes columns by position keeps working).
    *WHY_COLUMNS,
)

# A cell starting with one of these (after any leading spaces) is run by spreadsheets.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(value: object) -> str:
    """The cell text; formula-like text gets a leading apostrophe so it stays text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    # A history row holding bytes (written by something other than portwatch) reads as
    # its text with the undecodable bytes escaped, not as Python's b'...'.
    text = clean(value) or "" if isinstance(value, bytes) else str(value)
    # Shown as escapes, like on screen: an escape sequence would drive the terminal of
    # `export -o -`, a right-to-left override make "exe.txt" read as "txt.exe" in the
    # spreadsheet. Tabs and line breaks stay: quoting keeps them inside the cell.
    text = visible(text, keep="\t\r\n")
    if text.lstrip(" ").startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def iso_time(epoch: float | None) -> str:
    """ISO 8601 with the local offset, as people read times; "" for no time or one
    outside what a calendar can show (a damaged or hostile history row)."""
    if epoch is None or isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
        return ""
    try:
        return _dt.datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return ""


def render_row(values: Mapping[str, object]) -> list[str]:
    """One CSV row in :data:`COLUMNS` order, every cell neutralised."""
    out = []
    for column in COLUMNS:
        value = values.get(column)
        if (
            column in ("first_seen", "last_seen")
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
        ):
            out.append(iso_time(value))
        else:
            out.append(neutralise(value))
    return out
