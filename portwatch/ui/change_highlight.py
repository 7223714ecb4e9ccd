"""What changed in a table: rows that just appeared and rows that just went.

As in TCPView, a new row is shown green and a closed row red and struck through for a
few seconds, then the mark (or the closed row) goes. The clock is injected so tests can
step through the seconds. Colours are picked for the palette in use: pale tints under
dark text on a light palette, deep tints under light text on a dark one.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Hashable, Iterable

from PySide6.QtGui import QColor, QGuiApplication, QPalette

# Long enough to notice between two glances, short enough not to pile up.
HIGHLIGHT_S = 5.0

Clock = Callable[[], float]


class Change(enum.Enum):
    NEW = "new"
    CLOSED = "closed"


_LIGHT = {Change.NEW: QColor("#c6efce"), Change.CLOSED: QColor("#f4c7c3")}
_DARK = {Change.NEW: QColor("#1e5631"), Change.CLOSED: QColor("#6e2424")}


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


def change_colour(change: Change, palette: QPalette | None = None) -> QColor:
    """The background for a changed row; the text keeps the palette's own colour."""
    palette = palette if palette is not None else QGuiApplication.palette()
    return (_DARK if is_dark(palette) else _LIGHT)[change]


def change_words(change: Change) -> str:
    """Said in the tooltip too: colour is not the only sign."""
    return "appeared just now" if change is Change.NEW else "closed just now"


class ChangeMarks:
    """Which row keys changed, and since when."""

    def __init__(self, clock: Clock = time.monotonic, linger_s: float = HIGHLIGHT_S) -> None:
        self._clock = clock
        self.linger_s = linger_s
        self._since: dict[Hashable, tuple[Change, float]] = {}

    def now(self) -> float:
        return self._clock()

    def mark(self, key: Hashable, change: Change, now: float) -> None:
        self._since[key] = (change, now)

    def unmark(self, key: Hashable) -> None:
        self._since.pop(key, None)

    def change_of(self, key: Hashable) -> Change | None:
        found = self._since.get(key)
        return found[0] if found is not None else None

    def is_closed(self, key: Hashable) -> bool:
        return self.change_of(key) is Change.CLOSED

    def expired(self, now: float) -> list[tuple[Hashable, Change]]:
        """Marks older than the linger time, removed from the record."""
        old = [
            (key, change)
            for key, (change, since) in self._since.items()
            if now - since >= self.linger_s
        ]
        for key, _change in old:
            del self._since[key]
        return old

    def forget(self, keys: Iterable[Hashable]) -> None:
        for key in keys:
            self._since.pop(key, None)

    def __bool__(self) -> bool:
        return bool(self._since)
