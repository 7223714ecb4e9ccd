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


def _field(event: Any, *names: str) -> Any:
    for name in names:
        if isinstance(event, dict) and name in event:
            return event[name]
        if hasattr(event, name):
            return getattr(event, name)
    return None


def event_cells(event: Any) -> list[str]:
    """(time, what, where, who, detail) for one history event, whatever its row shape."""
    wall = _field(event, "wall", "time", "at")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall)) if wall else ""
    kind = str(_field(event, "kind", "event") or "")
    listener = _field(event, "listener")
    if listener is not None:
        where = listener.endpoint.label()
        owner = listener.owner
        who = f"{owner.name or '?'} (pid {owner.pid})" if owner is not None else "hidden"
    else:
        where = str(_field(event, "endpoint", "label") or "")
        who = str(_field(event, "owner", "process", "name") or "")
    detail = str(_field(event, "detail") or "")
    return [when, kind, visible(where), visible(who), visible(detail)]


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
