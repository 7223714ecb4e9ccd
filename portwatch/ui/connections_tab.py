"""The Connections tab: TCP connections in every state and UDP sockets with a remote.

Watched ports by default, every port with one switch (remembered in the settings). The
rows come from the sampler thread (``ConnectionsSnapshot``) only while the tab is on
screen; this widget never lists sockets itself.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from portwatch.engine.connection_track import ConnectionsSnapshot
from portwatch.services.background import JobRunner
from portwatch.services.settings import Settings
from portwatch.services.settings_service import SettingsService
from portwatch.ui.column_chooser import CONNECTION_COLUMNS, ColumnChooser
from portwatch.ui.connection_actions import ConnectionActions
from portwatch.ui.connection_model import ConnColumn, ConnectionTableModel, HostNamer
from portwatch.ui.listener_model import ListenerFilterModel
from portwatch.ui.row_table import row_table


def _columns_needing_a_setting(settings: Settings) -> dict[Any, str]:
    """The host column shows names only while reverse DNS is on in the settings."""
    if settings.reverse_dns:
        return {}
    return {ConnColumn.REMOTE_HOST: "Turn on remote host names in Settings to show this column"}


def bytes_source_note(platform: str = sys.platform) -> str:
    """Where byte counts come from on this OS, or why there are none."""
    if platform.startswith("linux"):
        return "Bytes: the kernel's tcp_info per TCP connection; UDP is not measured."
    return "Bytes per connection are not measured on this OS."


class ConnectionsTab(QWidget):
    """The connections table with its switch, filter and summary line."""

    wanted_changed = Signal(bool)
    """The switch changed: True for every port, False for watched ports only."""

    def __init__(
        self,
        settings: SettingsService,
        jobs: JobRunner | None = None,
        host_name: HostNamer | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self.model = ConnectionTableModel(self, host_name=host_name)
        self.proxy = ListenerFilterModel(self)
        self.proxy.setSourceModel(self.model)
        self.table = row_table(
            self.proxy, "Connections", ConnColumn.LOCAL_PORT, Qt.SortOrder.AscendingOrder
        )
        self.table.setObjectName("connectionsTable")
        self.row_actions = ConnectionActions(self.table, jobs)

        self.all_ports = QCheckBox("Show connections on &every port")
        self.all_ports.setObjectName("connectionsAllPorts")
        self.all_ports.setToolTip("Off: only connections to or from a watched port.")
        self.all_ports.setChecked(settings.current.connections_all_ports)
        self.all_ports.toggled.connect(self._switched)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter connections (port, address, program\u2026)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.set_filter_text)
        self.summary = QLabel("Connections are listed while this tab is open.")
        self.summary.setObjectName("connectionsSummary")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.all_ports)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        self._sized_polls = 0
        self.snapshot: ConnectionsSnapshot | None = None
        # Columns the user hides are remembered; the host column is there only while
        # names are looked up (the table needs the width).
        self.column_chooser = ColumnChooser(
            self.table, settings, CONNECTION_COLUMNS, _columns_needing_a_setting
        )
        settings.changed.connect(lambda new: self._show_host_names(new.reverse_dns))

    def _show_host_names(self, shown: bool) -> None:
        if self.snapshot is not None:
            self.summary.setText(self.summary_text(self.snapshot, shown))

    @property
    def every_port(self) -> bool:
        return self.all_ports.isChecked()

    @Slot(bool)
    def _switched(self, every: bool) -> None:
        current = self._settings.current
        if current.connections_all_ports != every:
            self._settings.apply(dataclasses.replace(current, connections_all_ports=every))
        # Other rows (and watched ones in bold then): fit the columns to them again.
        self._sized_polls = 0
        self.wanted_changed.emit(every)

    @Slot(object)
    def show_snapshot(self, snapshot: ConnectionsSnapshot) -> None:
        """Show one poll of the connections (runs on the GUI thread)."""
        if snapshot.all_ports != self.every_port:
            return  # listed before the switch moved; the next poll follows it
        previous, self.snapshot = self.snapshot, snapshot
        self.model.emphasise_watched = snapshot.all_ports
        if snapshot.error is not None:
            self.summary.setText(f"Connections could not be listed: {snapshot.error}")
            return
        if previous is not None and previous.all_ports != snapshot.all_ports:
            # Rows that came into view with the switch are not new connections.
            self.model.refill(snapshot.rows)
        else:
            self.model.update(snapshot.rows)
        # Rates show from the second poll on: fit the columns to the first two with rows.
        if self._sized_polls < 2 and snapshot.rows:
            self._sized_polls += 1
            self.table.resizeColumnsToContents()
        self.summary.setText(self.summary_text(snapshot, self._settings.current.reverse_dns))

    @staticmethod
    def summary_text(snapshot: ConnectionsSnapshot, host_names: bool = False) -> str:
        where = "every port" if snapshot.all_ports else "watched ports"
        count = snapshot.connection_count
        sockets = len(snapshot.rows)
        words = f"{count} connection{'s' if count != 1 else ''} on {where}"
        if sockets != count:
            # Both ends of a connection inside this computer are rows of their own.
            words += f" ({sockets} sockets: both ends of local connections are listed)"
        names = "" if host_names else " Host names: off (Settings)."
        return f"{words}. {bytes_source_note()}{names}"

    def stop_timers(self) -> None:
        self.model.stop_timers()

    def selected_rows(self) -> list[Any]:
        return self.row_actions.selected_views()
