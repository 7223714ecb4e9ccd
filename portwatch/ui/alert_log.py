"""The in-app alert log: every alert of this session, whether or not a notification showed."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from portwatch.services.alert_service import SHOWN_AS_HELP
from portwatch.services.notify import LOG_LIMIT, LoggedAlert
from portwatch.services.plain_text import tooltip, visible

AlertRole = Qt.ItemDataRole.UserRole + 20


class AlertLog(QWidget):
    """Newest first; double-click (or Enter) an alert to open its port."""

    open_requested = Signal(object)
    """The :class:`~portwatch.core.alerts.Alert` the user activated."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Time", "Alert", "Details", "Shown as"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        self.tree.itemActivated.connect(self._activated)
        self.tree.setAccessibleName("Alert log")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)

    @Slot(object)
    def add(self, entry: LoggedAlert) -> None:
        """Put an alert at the top of the log (QTreeWidgetItem text is never rich text)."""
        alert = entry.alert
        item = QTreeWidgetItem(
            [
                time.strftime("%H:%M:%S", time.localtime(entry.wall)),
                visible(alert.title),
                visible(alert.text),
                entry.shown_by,
            ]
        )
        item.setToolTip(2, tooltip(alert.text))
        item.setToolTip(3, SHOWN_AS_HELP.get(entry.shown_by, f"Shown as a {entry.shown_by}."))
        item.setData(0, AlertRole, alert)
        self.tree.insertTopLevelItem(0, item)
        # As long as the alert service's own log, no longer: hours of a flapping port stay cheap.
        while self.tree.topLevelItemCount() > LOG_LIMIT:
            self.tree.takeTopLevelItem(self.tree.topLevelItemCount() - 1)

    def count(self) -> int:
        return self.tree.topLevelItemCount()

    @Slot(QTreeWidgetItem, int)
    def _activated(self, item: QTreeWidgetItem, _column: int) -> None:
        self.open_requested.emit(item.data(0, AlertRole))
