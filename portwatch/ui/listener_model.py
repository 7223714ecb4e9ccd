"""The listeners table's model: one row per current listener, updated in place each tick.

Rows are matched by identity (endpoint + owning process instance), so a poll inserts,
removes and changes only the rows that differ; selection and scroll position survive.
Everything that came from a process is shown as plain text with invisible characters
made visible, and escaped in tooltips.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRegularExpression,
    QSortFilterProxyModel,
    Qt,
)

from portwatch.core.types import Status
from portwatch.core.why import parents_text, reachable_from
from portwatch.services.plain_text import tooltip, visible
from portwatch.ui.change_highlight import HIGHLIGHT_S, ChangingRowsModel, Clock
from portwatch.ui.icons import PortState, state_icon

Index = QModelIndex | QPersistentModelIndex

REACH_WORDS = {
    "loopback": "this computer only",
    "all": "all interfaces",
    "interface": "one interface",
}

STATUS_WORDS = {
    Status.KNOWN: "trusted owner",
    Status.UNKNOWN: "unknown owner",
    Status.UNATTRIBUTED: "unattributed",
    Status.UNWATCHED: "unwatched",
}

# Unwatched listeners have no state icon: trust is not judged off the watch list.
STATUS_STATES = {
    Status.KNOWN: PortState.LISTENING,
    Status.UNKNOWN: PortState.UNKNOWN,
    Status.UNATTRIBUTED: PortState.UNATTRIBUTED,
}

# The view object itself, for the side panel and actions.
ViewRole = Qt.ItemDataRole.UserRole + 1
SortRole = Qt.ItemDataRole.UserRole + 2
# The cell as words (what copies and the filter use).
PlainTextRole = Qt.ItemDataRole.UserRole + 3


class Column(int, enum.Enum):
    """The table's columns, in order."""

    # What is being judged first (port, status, program), so the status is on screen
    # at the default width; the watched mark is a narrow column of its own.
    WATCHED = 0
    PORT = 1
    PROTO = 2
    STATUS = 3
    PROCESS = 4
    PID = 5
    USER = 6
    ADDRESS = 7
    SERVICE = 8
    EXE = 9
    # Why it is open and who can reach it; hidden by default (long text), shown from
    # the header's column chooser. The side panel says the same in a sentence.
    STARTED_BY = 10
    REACHABLE = 11


HEADERS = {
    Column.WATCHED: "Watched",
    Column.PROTO: "Protocol",
    Column.ADDRESS: "Address (reach)",
    Column.PORT: "Port",
    Column.SERVICE: "Service",
    Column.PROCESS: "Process",
    Column.PID: "PID",
    Column.USER: "User",
    Column.EXE: "Executable",
    Column.STATUS: "Status",
    Column.STARTED_BY: "Started by",
    Column.REACHABLE: "Reachable from",
}


# The watched column shows a mark, not the word repeated on every row; copies and the
# filter keep the word.
WATCHED_MARK = "\u25cf"
WATCHED_TIP = "\u25cf marks a listener on a watched port"


def row_key(view: Any) -> tuple[Any, ...]:
    """A listener's identity across polls: where it listens and which process owns it."""
    listener = view.listener
    owner = listener.owner
    return (listener.endpoint, owner.instance if owner is not None else None)


def status_words(view: Any) -> str:
    """The status in words; unwatched listeners are not judged as alarming."""
    return STATUS_WORDS.get(view.status, str(view.status))


def cell_text(view: Any, column: Column) -> str:
    """The plain text shown in one cell (control and bidi characters made visible)."""
    listener = view.listener
    endpoint = listener.endpoint
    owner = listener.owner
    if column is Column.WATCHED:
        return "watched" if view.watched else ""
    if column is Column.PROTO:
        return str(endpoint.proto).upper()
    if column is Column.ADDRESS:
        reach = REACH_WORDS.get(endpoint.reach, endpoint.reach)
        return f"{visible(endpoint.address) or '*'} ({reach})"
    if column is Column.PORT:
        return str(endpoint.port)
    if column is Column.SERVICE:
        return visible(getattr(view, "service", "") or "")
    if column is Column.PROCESS:
        if owner is None:
            return "(hidden by the OS)"
        return visible(owner.name) or "(no name)"
    if column is Column.PID:
        return str(owner.pid) if owner is not None else ""
    if column is Column.USER:
        return visible(owner.user) if owner is not None else ""
    if column is Column.EXE:
        return visible(owner.exe) if owner is not None else ""
    if column is Column.STARTED_BY:
        if owner is None:
            return ""
        if owner.started_by:
            return visible(owner.started_by)
        # No unit, container or session named: the nearest parent is what is known.
        return (
            f"{visible(owner.parents[0][0])} (pid {owner.parents[0][1]})" if owner.parents else ""
        )
    if column is Column.REACHABLE:
        text = reachable_from(listener.exposure, visible)
        if listener.exposure is not None and listener.exposure.bypasses_firewall:
            text += " (Docker: bypasses the host firewall)"
        return text
    return status_words(view)


def _tooltip_lines(view: Any, column: Column) -> tuple[str, ...]:
    listener = view.listener
    owner = listener.owner
    if column is Column.STATUS:
        reason = getattr(view, "reason", None)
        return (status_words(view) + (f": {reason}" if reason else ""),)
    if column is Column.EXE and owner is not None and owner.sha256:
        return (owner.exe or "", f"SHA-256 {owner.sha256}")
    if column is Column.PROCESS and owner is not None and owner.note:
        return (owner.name or "", owner.note)
    if column is Column.ADDRESS:
        return (listener.endpoint.label(),)
    if column is Column.STARTED_BY and owner is not None:
        chain = parents_text(owner)
        return (owner.started_by or "", f"parents: {chain}" if chain else "")
    if column is Column.REACHABLE and listener.exposure is not None:
        return (listener.exposure.summary(), listener.exposure.firewall_words())
    return (cell_text(view, column),)


class ListenerTableModel(ChangingRowsModel):
    """Current listeners; call :meth:`update` with each tick's views."""

    column_count = len(Column)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        clock: Clock = time.monotonic,
        linger_s: float = HIGHLIGHT_S,
    ) -> None:
        super().__init__(parent, clock=clock, linger_s=linger_s)

    def key_of(self, row: Any) -> tuple[Any, ...]:
        return row_key(row)

    def same_row(self, old: Any, new: Any) -> bool:
        # A listener's exposure takes no part in its equality (it follows the host's
        # addresses and firewall), but the Reachable from column shows it.
        return bool(old == new) and old.listener.exposure == new.listener.exposure

    # -- Qt model interface -------------------------------------------------------------
    def header(self, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return WATCHED_MARK if column == Column.WATCHED else HEADERS[Column(column)]
        if role == Qt.ItemDataRole.ToolTipRole and column == Column.WATCHED:
            return WATCHED_TIP
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self.is_cell(index):
            return None
        view = self._rows[index.row()]
        column = Column(index.column())
        marked = self.change_data(index.row(), role, lambda: _tooltip_lines(view, column))
        if marked is not None:
            return marked
        if role == Qt.ItemDataRole.DisplayRole:
            if column is Column.WATCHED:
                return WATCHED_MARK if view.watched else ""
            return cell_text(view, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column is Column.WATCHED:
            return Qt.AlignmentFlag.AlignCenter
        if role == PlainTextRole:
            return cell_text(view, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(*_tooltip_lines(view, column))
        if role == Qt.ItemDataRole.DecorationRole and column is Column.STATUS:
            state = STATUS_STATES.get(view.status)
            return state_icon(state) if state is not None else None
        if role == Qt.ItemDataRole.FontRole and view.watched:
            return self._bold
        if role == SortRole:
            if column is Column.PORT:
                return view.listener.port
            if column is Column.PID:
                owner = view.listener.owner
                return owner.pid if owner is not None else -1
            if column is Column.WATCHED:
                return 1 if view.watched else 0
            return cell_text(view, column).casefold()
        if role == ViewRole:
            return view
        return None

    def row_of(self, port: int, proto: Any = None) -> int:
        """The first row listening on ``port`` (and ``proto`` when given), or -1."""
        for row, view in enumerate(self._rows):
            if self.marks.is_closed(self._keys[row]):
                continue
            endpoint = view.listener.endpoint
            if endpoint.port == port and (proto is None or endpoint.proto == proto):
                return row
        return -1


class ListenerFilterModel(QSortFilterProxyModel):
    """Sorts by each column's natural order and filters on any visible text."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SortRole)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)  # match any column
        self.setFilterRole(PlainTextRole)

    def set_filter_text(self, text: str) -> None:
        """Show rows where any cell contains ``text`` (not a pattern: taken literally)."""
        self.setFilterRegularExpression(
            QRegularExpression(
                QRegularExpression.escape(text),
                QRegularExpression.PatternOption.CaseInsensitiveOption,
            )
        )


def views_for_port(views: Sequence[Any], port: int, proto: Any = None) -> list[Any]:
    """The views listening on ``port`` (and ``proto`` when given)."""
    return [
        v for v in views if v.listener.port == port and (proto is None or v.listener.proto == proto)
    ]
