"""The listeners table's column chooser: the header's context menu, remembered in the settings."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject, QPoint, Qt, Slot
from PySide6.QtWidgets import QMenu, QTableView

from portwatch.services.settings_service import SettingsService
from portwatch.ui.listener_model import HEADERS, Column

# Without these the rows cannot be told apart or judged, so they cannot be hidden.
ALWAYS_SHOWN = frozenset({Column.PORT, Column.STATUS})
# Long columns that start hidden, also for a choice saved before they existed.
HIDDEN_UNTIL_CHOSEN = frozenset({Column.STARTED_BY, Column.REACHABLE})


class ColumnChooser(QObject):
    """Right-click on the header: one check per column; the choice is saved at once."""

    def __init__(self, table: QTableView, settings: SettingsService) -> None:
        super().__init__(table)
        self._table = table
        self._settings = settings
        header = table.horizontalHeader()
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._popup)
        self.apply(settings.current.hidden_columns, settings.current.columns_known)

    def hidden(self) -> set[Column]:
        return {c for c in Column if self._table.isColumnHidden(c)}

    def apply(self, names: tuple[str, ...], known: tuple[str, ...] = ()) -> None:
        """Hide the named columns (unknown names, from an older or edited file, are
        ignored), and the hidden-until-chosen ones the choice did not know of."""
        wanted = {c for c in Column if c.name.lower() in {n.lower() for n in names}}
        seen = {n.lower() for n in known}
        wanted |= {c for c in HIDDEN_UNTIL_CHOSEN if c.name.lower() not in seen}
        for column in Column:
            self._table.setColumnHidden(column, column in wanted - ALWAYS_SHOWN)

    def menu(self) -> QMenu:
        """The chooser's menu (built fresh so it shows the current state)."""
        menu = QMenu(self._table)
        menu.setObjectName("columnChooser")
        menu.setToolTipsVisible(True)
        title = menu.addAction("Columns shown")
        title.setEnabled(False)
        for column in Column:
            action = menu.addAction(HEADERS[column])
            action.setCheckable(True)
            action.setChecked(not self._table.isColumnHidden(column))
            action.setData(column.name)
            if column in ALWAYS_SHOWN:
                action.setEnabled(False)
                action.setToolTip("Always shown")
            action.toggled.connect(lambda shown, c=column: self.set_shown(c, shown))
        menu.addSeparator()
        menu.addAction("Show all columns", self.show_all)
        return menu

    def set_shown(self, column: Column, shown: bool) -> None:
        if column in ALWAYS_SHOWN and not shown:
            return
        self._table.setColumnHidden(column, not shown)
        self._save()

    @Slot()
    def show_all(self) -> None:
        for column in Column:
            self._table.setColumnHidden(column, False)
        self._save()

    def _save(self) -> None:
        names = tuple(c.name.lower() for c in Column if self._table.isColumnHidden(c))
        known = tuple(c.name.lower() for c in Column)
        current = self._settings.current
        if names != current.hidden_columns or known != current.columns_known:
            self._settings.apply(
                dataclasses.replace(current, hidden_columns=names, columns_known=known)
            )

    @Slot(QPoint)
    def _popup(self, pos: QPoint) -> None:
        menu = self.menu()
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self._table.horizontalHeader().mapToGlobal(pos))
