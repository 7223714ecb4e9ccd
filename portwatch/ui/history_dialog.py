"""A dialog listing the recent recorded events for one port."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from portwatch.services.plain_text import visible


def event_cells(event: Any) -> list[str]:
    """(time, event, where, who, detail) for one stored event; process text made visible."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.wall))
    host = f"[{event.address}]" if ":" in (event.address or "") else event.address
    where = f"{event.proto} {host}:{event.port}"
    if event.pid is None and not event.process:
        who = "owner hidden by the OS"
    else:
        who = f"{event.process or '?'} (pid {event.pid})"
        if event.exe:
            who += f" {event.exe}"
    return [
        when,
        str(event.kind).replace("-", " "),
        visible(where),
        visible(who),
        visible(event.detail or ""),
    ]


class HistoryDialog(QDialog):
    """Recent events on one port, newest first."""

    def __init__(self, title: str, events: Sequence[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Time", "Event", "Where", "Who", "Detail"])
        self.tree.setRootIsDecorated(False)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for event in events:
            self.tree.addTopLevelItem(QTreeWidgetItem(event_cells(event)))
        summary = QLabel(
            f"{len(events)} recorded event(s)." if events else "No events recorded for this port."
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)
        height = self.fontMetrics().height()
        self.resize(height * 50, height * 25)
