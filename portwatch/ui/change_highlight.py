"""What changed in a table: rows that just appeared and rows that just went.

As in TCPView, a new row is shown green and a closed row red and struck through for a
few seconds, then the mark (or the closed row) goes. The clock is injected so tests can
step through the seconds. Colours are picked for the palette in use: pale tints under
dark text on a light palette, deep tints under light text on a dark one.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Container, Hashable, Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Slot,
)
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette

from portwatch.services.plain_text import tooltip

Index = QModelIndex | QPersistentModelIndex

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


class ChangingRowsModel(QAbstractTableModel):
    """A table of rows matched by key from update to update, with new and closed rows
    marked for a few seconds (every table of the window shows changes this one way).

    Subclasses say how many columns there are (:attr:`column_count`), their headers
    (:meth:`header`), what a row's key is
    (:meth:`key_of`) and what its cells hold (``data``, asking :meth:`change_data` first).
    An update inserts, removes and changes only the rows that differ, so selection and
    scroll position survive.
    """

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        clock: Clock = time.monotonic,
        linger_s: float = HIGHLIGHT_S,
    ) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []
        self._keys: list[Hashable] = []
        self._struck = QFont()
        self._struck.setStrikeOut(True)
        self._bold = QFont()
        self._bold.setBold(True)
        self.marks = ChangeMarks(clock, linger_s)
        self._updated = False
        self._stopped = False
        # The last update's rows as given: the engine hands over the very same tuple while
        # nothing changed, and then there is nothing to compare or repaint.
        self._last_input: object = None
        # Ends marks between updates (a slow poll interval would keep them for too long).
        self._expiry = QTimer(self)
        self._expiry.setInterval(250)
        self._expiry.timeout.connect(self.expire)

    def key_of(self, row: Any) -> Hashable:
        """A row's identity across updates."""
        raise NotImplementedError

    def same_row(self, old: Any, new: Any) -> bool:
        """Whether a row shows the same either way (a row that differs is redrawn)."""
        return bool(old == new)

    column_count = 0
    """How many columns the table has (each subclass says)."""

    def header(self, column: int, role: int) -> Any:
        """The horizontal header's say in ``role`` for ``column`` (already in range)."""
        return None

    def is_cell(self, index: Index) -> bool:
        """Whether ``index`` names a row and column this table has."""
        return (
            index.isValid()
            and 0 <= index.row() < len(self._rows)
            and 0 <= index.column() < self.column_count
        )

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self.column_count

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < self.column_count:
            return self.header(section, role)
        return None

    def change_data(self, row: int, role: int, tip_lines: Callable[[], Iterable[str]]) -> Any:
        """The change mark's say in ``role`` for ``row`` (None: the cell decides)."""
        change = self.marks.change_of(self._keys[row])
        if change is None:
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            return change_colour(change)
        if role == Qt.ItemDataRole.FontRole and change is Change.CLOSED:
            return self._struck
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(change_words(change), *tip_lines())
        return None

    def views(self) -> list[Any]:
        """The rows, in model order."""
        return list(self._rows)

    def update(self, views: Iterable[Any]) -> None:
        """Make the rows equal ``views`` with the fewest row operations.

        Rows that went stay for a few seconds marked closed; rows that came are marked
        new (not on the first update: everything is new then)."""
        if views is self._last_input and isinstance(views, tuple):
            return  # marks end on the expiry timer, not here
        self._last_input = views
        now = self.marks.now()
        incoming: dict[Hashable, Any] = {}
        for view in views:
            incoming.setdefault(self.key_of(view), view)
        for key in self._keys:
            if key not in incoming and not self.marks.is_closed(key):
                self.marks.mark(key, Change.CLOSED, now)
        self._drop_expired(now)
        keep = set(incoming) | {k for k in self._keys if self.marks.is_closed(k)}
        self._remove_missing(keep)
        last_column = self.columnCount() - 1
        for row, key in enumerate(self._keys):
            fresh = incoming.get(key)
            if fresh is None:
                # Closed: keeps its last view; the mark changes how it is drawn.
                self.dataChanged.emit(self.index(row, 0), self.index(row, last_column))
                continue
            if self.marks.is_closed(key):
                self.marks.mark(key, Change.NEW, now)  # back again
            old = self._rows[row]
            if (fresh is not old and not self.same_row(old, fresh)) or self.marks.change_of(
                key
            ) is not None:
                self._rows[row] = fresh
                self.dataChanged.emit(self.index(row, 0), self.index(row, last_column))
        known = set(self._keys)
        added = [(key, view) for key, view in incoming.items() if key not in known]
        if added:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            for key, view in added:
                self._keys.append(key)
                self._rows.append(view)
                if self._updated:
                    self.marks.mark(key, Change.NEW, now)
            self.endInsertRows()
        self._updated = True
        self._follow_marks()

    def refill(self, views: Iterable[Any]) -> None:
        """Show ``views`` as a new set of rows, without marks: what came into or went out
        of view because the table's scope changed did not open or close."""
        self.beginResetModel()
        self.marks.forget(list(self._keys))
        self._rows, self._keys = [], []
        for view in views:
            key = self.key_of(view)
            if key not in self._keys:
                self._keys.append(key)
                self._rows.append(view)
        self._updated = True
        self.endResetModel()
        self._follow_marks()

    def live_views(self) -> list[Any]:
        """The rows still there (closed rows being shown as gone left out)."""
        return [
            v for k, v in zip(self._keys, self._rows, strict=True) if not self.marks.is_closed(k)
        ]

    def change_of_row(self, row: int) -> Change | None:
        return self.marks.change_of(self._keys[row]) if 0 <= row < len(self._keys) else None

    @Slot()
    def expire(self) -> None:
        """End the marks older than the linger time: closed rows go, new rows turn plain."""
        self._drop_expired(self.marks.now())
        self._follow_marks()

    def _drop_expired(self, now: float) -> None:
        ended = self.marks.expired(now)
        if not ended:
            return
        gone = {key for key, change in ended if change is Change.CLOSED}
        if gone:
            self._remove_missing(set(self._keys) - gone)
        last_column = self.columnCount() - 1
        plain = {key for key, change in ended if change is Change.NEW}
        for row, key in enumerate(self._keys):
            if key in plain:
                self.dataChanged.emit(self.index(row, 0), self.index(row, last_column))

    def stop_timers(self) -> None:
        """No more timed updates (the window closed for good): a timer still running when
        the model is destroyed would be stopped from whichever thread collects it."""
        self._stopped = True
        self._expiry.stop()

    def _follow_marks(self) -> None:
        if self._stopped:
            return
        if self.marks and not self._expiry.isActive():
            self._expiry.start()
        elif not self.marks and self._expiry.isActive():
            self._expiry.stop()

    def _remove_missing(self, incoming: Container[Hashable]) -> None:
        # Bottom-up, one call per contiguous run, so row numbers above stay valid.
        row = len(self._keys) - 1
        while row >= 0:
            if self._keys[row] in incoming:
                row -= 1
                continue
            first = row
            while first > 0 and self._keys[first - 1] not in incoming:
                first -= 1
            self.beginRemoveRows(QModelIndex(), first, row)
            del self._keys[first : row + 1]
            del self._rows[first : row + 1]
            self.endRemoveRows()
            row = first - 1
