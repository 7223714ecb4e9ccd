"""What the user can do with rows of the connections table: copy them, describe their
port, end their process (the listeners table's patterns, from :class:`TableRowActions`)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMenu, QMessageBox, QTableView

from portwatch.core.types import Owner
from portwatch.engine.connection_track import ConnectionRow
from portwatch.probe.connection_control import (
    CloseResult,
    close_connection,
    close_refusal,
)
from portwatch.probe.connections import Connection
from portwatch.probe.process_control import DEFAULT_GRACE_S
from portwatch.services.background import JobRunner
from portwatch.services.plain_text import visible
from portwatch.ui.connection_model import CONN_HEADERS, endpoint_text
from portwatch.ui.row_actions import TableRowActions


def service_port(row: ConnectionRow) -> int:
    """The port a connection is "on": the watched end, else the lower port (the other
    end is then most likely an ephemeral port the OS picked)."""
    if row.watched_port is not None:
        return row.watched_port
    return min(row.connection.local_port, row.connection.remote_port)


def connection_label(row: ConnectionRow) -> str:
    """``tcp 127.0.0.1:5000 → 127.0.0.1:41234`` (the local end first)."""
    c = row.connection
    local = endpoint_text(c.local_address, c.local_port)
    remote = endpoint_text(c.remote_address, c.remote_port)
    return f"{c.proto.value} {local} \u2192 {remote}"


def owner_of(row: ConnectionRow) -> Owner | None:
    """The process holding the socket, as the end-process action needs it."""
    c = row.connection
    if c.pid is None:
        return None
    return Owner(pid=c.pid, create_time=c.create_time, name=c.process, user=c.user)


class ConnectionActions(TableRowActions):
    """The connections table's context menu and Ctrl+C."""

    describe_requested = Signal(int, object)
    """(port, proto): show that port in the side panel and select it everywhere."""
    connection_close_finished = Signal(object)
    """The :class:`CloseResult` of a "Close connection…"."""

    def __init__(
        self,
        table: QTableView,
        jobs: JobRunner | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        *,
        refusal: Callable[[Connection], str | None] = close_refusal,
        closer: Callable[[Connection], CloseResult] = close_connection,
    ) -> None:
        super().__init__(table, CONN_HEADERS, jobs, grace_s)
        # Seams: what the OS allows here, and the action itself (the probe's).
        self._refusal = refusal
        self._closer = closer

    def menu(self) -> QMenu:
        """The context menu for the current selection."""
        rows = [r for r in self.selected_views() if r is not None]
        menu = QMenu(self._table)
        menu.setObjectName("connectionMenu")
        menu.setToolTipsVisible(True)
        self.add_copy_entries(menu, len(rows))
        menu.addSeparator()
        describe = menu.addAction("&Describe the port")
        menu.addSeparator()
        close = menu.addAction("C&lose connection\u2026")
        end = menu.addAction("&End process\u2026")
        for action in (describe, close, end):
            action.setEnabled(bool(rows))
        if not rows:
            return menu
        first: ConnectionRow = rows[0]
        port, proto = service_port(first), first.connection.proto
        describe.setText(f"&Describe port {port}/{proto}")
        describe.triggered.connect(lambda: self.describe_requested.emit(port, proto))
        why_not = self._refusal(first.connection)
        if why_not is not None:
            # Disabled, with the reason in the menu itself (disabled entries show no tip
            # on some platforms) and in full in the tooltip.
            close.setEnabled(False)
            close.setText(f"Close connection ({_short_reason(why_not)})")
            close.setToolTip(why_not)
        else:
            close.triggered.connect(lambda: self.ask_close_connection(first))
        owner = owner_of(first)
        if owner is None:
            end.setEnabled(False)
            end.setToolTip("The OS does not say which process holds this socket.")
        else:
            name = visible(owner.name) or "(no name)"
            end.setText(f"&End process {name} (pid {owner.pid})\u2026")
            end.triggered.connect(lambda: self.ask_end_process(first))
        return menu

    def ask_close_connection(self, row: ConnectionRow) -> QMessageBox:
        """Ask before closing ``row``'s connection, naming it and its program."""
        c = row.connection
        program = (
            f"{visible(c.process) or '(no name)'} (pid {c.pid})"
            if c.pid is not None
            else "a program the OS does not name"
        )
        return self.confirm(
            "Close connection",
            f"Close the connection {connection_label(row)} held by {program}?",
            "The OS aborts it at once: the program sees the connection aborted and the other "
            f"end ({endpoint_text(c.remote_address, c.remote_port)}) sees it reset. Data not "
            "yet delivered is lost. The program keeps running and may connect again.",
            "closeConnectionBox",
            "Close connection",
            lambda: self.close_connection(row),
        )

    def close_connection(self, row: ConnectionRow) -> None:
        """Close ``row``'s connection off the GUI thread; the outcome is announced."""
        connection, closer = row.connection, self._closer
        label = connection_label(row)
        self.run_announced(
            f"Closing {label}\u2026",
            lambda: closer(connection),
            self._closed,
            f"Could not close {label}",
        )

    def _closed(self, result: CloseResult | None, failure: str = "") -> None:
        text = result.message if result is not None else failure
        self.message.emit(text)
        if result is None or not result.closed:
            self.warn("Connection not closed", text, "closeConnectionFailed")
        self.connection_close_finished.emit(result)

    def ask_end_process(self, row: ConnectionRow) -> QMessageBox | None:
        """Ask before ending the process holding ``row``'s socket (non-blocking)."""
        owner = owner_of(row)
        if owner is None:
            return None
        return self.ask_end_process_of(owner, connection_label(row))


def _short_reason(reason: str) -> str:
    """The menu's few words for a refusal (the tooltip has the whole sentence)."""
    lowered = reason.lower()
    if "administrator" in lowered:
        return "needs administrator rights"
    if "udp" in lowered:
        return "UDP has no connection"
    if "already closed" in lowered:
        return "already closed"
    return "not possible here"
