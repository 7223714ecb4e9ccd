"""The connections table's model: one row per connection socket, updated in place each poll.

Rows are matched by the socket's 4-tuple and process, so a poll inserts, removes and
changes only the rows that differ, and new and closed rows are marked the way every
table of the window marks them (:mod:`portwatch.ui.change_highlight`). Process names
are shown as plain text with invisible characters made visible, escaped in tooltips.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Hashable
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont

from portwatch.core.types import Proto
from portwatch.engine.connection_track import ConnectionRow, row_key
from portwatch.services.plain_text import tooltip, visible
from portwatch.ui.change_highlight import HIGHLIGHT_S, ChangingRowsModel, Clock
from portwatch.ui.listener_model import PlainTextRole, SortRole, ViewRole

Index = QModelIndex | QPersistentModelIndex

# A remote address's host name, or None while unknown (looked up elsewhere, off the poll).
HostNamer = Callable[[str], "str | None"]


class ConnColumn(int, enum.Enum):
    """The connections table's columns, in order."""

    PROTO = 0
    LOCAL_ADDRESS = 1
    LOCAL_PORT = 2
    REMOTE_ADDRESS = 3
    REMOTE_PORT = 4
    REMOTE_HOST = 5
    STATE = 6
    PROCESS = 7
    PID = 8
    AGE = 9
    BYTES_IN = 10
    BYTES_OUT = 11
    RATE_IN = 12
    RATE_OUT = 13


CONN_HEADERS = {
    ConnColumn.PROTO: "Proto",
    ConnColumn.LOCAL_ADDRESS: "Local address",
    ConnColumn.LOCAL_PORT: "Local port",
    ConnColumn.REMOTE_ADDRESS: "Remote address",
    ConnColumn.REMOTE_PORT: "Remote port",
    ConnColumn.REMOTE_HOST: "Remote host",
    ConnColumn.STATE: "State",
    ConnColumn.PROCESS: "Process",
    ConnColumn.PID: "PID",
    ConnColumn.AGE: "Age",
    ConnColumn.BYTES_IN: "Received",
    ConnColumn.BYTES_OUT: "Sent",
    ConnColumn.RATE_IN: "In/s",
    ConnColumn.RATE_OUT: "Out/s",
}

HEADER_TIPS = {
    ConnColumn.REMOTE_HOST: "The remote address's name by reverse DNS, when switched on in "
    "Settings (looked up in the background, never while polling)",
    ConnColumn.BYTES_IN: "Bytes received on this socket (Linux: the kernel's tcp_info)",
    ConnColumn.BYTES_OUT: "Bytes sent on this socket and acknowledged by the peer (Linux)",
    ConnColumn.RATE_IN: "Bytes received per second since the previous check",
    ConnColumn.RATE_OUT: "Bytes sent per second since the previous check",
    ConnColumn.AGE: "How long portwatch has seen the connection: the OS does not record when "
    "a connection opened. \u2265 marks connections already open when portwatch started "
    "looking.",
}

NUMERIC = frozenset(
    {
        ConnColumn.LOCAL_PORT,
        ConnColumn.REMOTE_PORT,
        ConnColumn.PID,
        ConnColumn.BYTES_IN,
        ConnColumn.BYTES_OUT,
        ConnColumn.RATE_IN,
        ConnColumn.RATE_OUT,
        ConnColumn.AGE,
    }
)

NOT_MEASURED = "not measured"


def not_measured_reason(row: ConnectionRow) -> str:
    """Why a row has no byte counts, in words."""
    c = row.connection
    if c.proto is Proto.UDP:
        return "The OS keeps no byte counts per UDP socket."
    if c.state == "TIME_WAIT":
        return "A connection in TIME_WAIT has no counters left."
    return (
        "Byte counts per connection are read from the Linux kernel (tcp_info); this OS does "
        "not give them to portwatch."
    )


def amount(count: int | None) -> str:
    """Bytes in readable units (1000-based, as the CLI prints them)."""
    if count is None:
        return NOT_MEASURED
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{count} B"  # pragma: no cover - the loop always returns


def rate(per_s: float | None) -> str:
    """Bytes per second in readable units; empty until two polls have been compared."""
    return "" if per_s is None else amount(round(per_s)) + "/s"


def duration(seconds: float) -> str:
    """``42 s``, ``5 min``, ``2 h 10 min``, ``3 d 4 h``."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def endpoint_text(address: str, port: int) -> str:
    """``1.2.3.4:80`` or ``[::1]:80``."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def state_words(row: ConnectionRow) -> str:
    c = row.connection
    if c.proto is Proto.UDP:
        return "connected (UDP)"
    return c.state.replace("_", " ").lower()


class ConnectionTableModel(ChangingRowsModel):
    """Current connections; call :meth:`update` with each poll's rows."""

    column_count = len(ConnColumn)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        clock: Clock = time.monotonic,
        linger_s: float = HIGHLIGHT_S,
        host_name: HostNamer | None = None,
    ) -> None:
        super().__init__(parent, clock=clock, linger_s=linger_s)
        self._host_name: HostNamer = host_name or (lambda _address: None)
        self._bold = QFont()
        self._bold.setBold(True)
        # Watched rows stand out only when the table also shows the others.
        self.emphasise_watched = False

    def key_of(self, row: Any) -> Hashable:
        return row_key(row.connection)

    def set_host_namer(self, namer: HostNamer | None) -> None:
        """Where remote host names come from (None: nowhere); every row is redrawn."""
        self._host_name = namer or (lambda _address: None)
        self.host_names_changed()

    def host_names_changed(self, address: str | None = None) -> None:
        """Names came in (for ``address``, or for any): redraw the host cells."""
        column = ConnColumn.REMOTE_HOST
        for row, view in enumerate(self._rows):
            if address is None or view.connection.remote_address == address:
                index = self.index(row, column)
                self.dataChanged.emit(index, index)

    def cell_text(self, row: ConnectionRow, column: ConnColumn) -> str:
        """The plain text shown in one cell (control and bidi characters made visible)."""
        c = row.connection
        if column is ConnColumn.PROTO:
            return c.proto.value.upper()
        if column is ConnColumn.LOCAL_ADDRESS:
            return visible(c.local_address)
        if column is ConnColumn.LOCAL_PORT:
            return str(c.local_port)
        if column is ConnColumn.REMOTE_ADDRESS:
            return visible(c.remote_address)
        if column is ConnColumn.REMOTE_PORT:
            return str(c.remote_port)
        if column is ConnColumn.REMOTE_HOST:
            return visible(self._host_name(c.remote_address) or "")
        if column is ConnColumn.STATE:
            return state_words(row)
        if column is ConnColumn.PROCESS:
            if c.pid is None:
                return "(no process shown)"
            return visible(c.process) or "(no name)"
        if column is ConnColumn.PID:
            return str(c.pid) if c.pid is not None else ""
        if column is ConnColumn.BYTES_IN:
            return amount(c.bytes_in)
        if column is ConnColumn.BYTES_OUT:
            return amount(c.bytes_out)
        if column is ConnColumn.RATE_IN:
            return rate(row.rate_in) if c.bytes_in is not None else ""
        if column is ConnColumn.RATE_OUT:
            return rate(row.rate_out) if c.bytes_out is not None else ""
        prefix = "\u2265 " if row.age_is_lower_bound else ""
        return prefix + duration(row.age_s)

    def _tooltip_lines(self, row: ConnectionRow, column: ConnColumn) -> tuple[str, ...]:
        c = row.connection
        if column in (ConnColumn.LOCAL_ADDRESS, ConnColumn.LOCAL_PORT):
            return (endpoint_text(c.local_address, c.local_port),)
        if column in (ConnColumn.REMOTE_ADDRESS, ConnColumn.REMOTE_PORT, ConnColumn.REMOTE_HOST):
            name = self._host_name(c.remote_address)
            where = endpoint_text(c.remote_address, c.remote_port)
            return (where, name) if name else (where,)
        if column in (ConnColumn.PROCESS, ConnColumn.PID):
            if c.pid is None:
                return (
                    "The OS does not say which process holds this socket: its program has "
                    "not accepted it yet, or it belongs to another user.",
                )
            return (f"{c.process or '(no name)'} (pid {c.pid}, user {c.user or 'unknown'})",)
        if column in (
            ConnColumn.BYTES_IN,
            ConnColumn.BYTES_OUT,
            ConnColumn.RATE_IN,
            ConnColumn.RATE_OUT,
        ):
            if c.bytes_in is None:
                return (not_measured_reason(row),)
            if row.rate_in is None and column in (ConnColumn.RATE_IN, ConnColumn.RATE_OUT):
                return ("A rate needs two checks; it shows from the next one.",)
        if column is ConnColumn.AGE:
            return (HEADER_TIPS[ConnColumn.AGE],)
        return (self.cell_text(row, column),)

    def _sort_value(self, row: ConnectionRow, column: ConnColumn) -> Any:
        c = row.connection
        numbers: dict[ConnColumn, float | None] = {
            ConnColumn.LOCAL_PORT: c.local_port,
            ConnColumn.REMOTE_PORT: c.remote_port,
            ConnColumn.PID: c.pid,
            ConnColumn.BYTES_IN: c.bytes_in,
            ConnColumn.BYTES_OUT: c.bytes_out,
            ConnColumn.RATE_IN: row.rate_in,
            ConnColumn.RATE_OUT: row.rate_out,
            ConnColumn.AGE: row.age_s,
        }
        if column in numbers:
            value = numbers[column]
            return -1.0 if value is None else float(value)
        return self.cell_text(row, column).casefold()

    # -- Qt model interface -------------------------------------------------------------
    def header(self, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return CONN_HEADERS[ConnColumn(column)]
        if role == Qt.ItemDataRole.ToolTipRole and column in HEADER_TIPS:
            return HEADER_TIPS[ConnColumn(column)]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self.is_cell(index):
            return None
        row: ConnectionRow = self._rows[index.row()]
        column = ConnColumn(index.column())
        marked = self.change_data(index.row(), role, lambda: self._tooltip_lines(row, column))
        if marked is not None:
            return marked
        if role in (Qt.ItemDataRole.DisplayRole, PlainTextRole):
            return self.cell_text(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(*self._tooltip_lines(row, column))
        if role == Qt.ItemDataRole.TextAlignmentRole and column in NUMERIC:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if role == Qt.ItemDataRole.FontRole and row.watched and self.emphasise_watched:
            return self._bold
        if role == SortRole:
            return self._sort_value(row, column)
        if role == ViewRole:
            return row
        return None
