"""A table's column chooser: the header's context menu, remembered in the settings.

The listeners and connections tables share it; each describes its columns once in a
``TableColumns`` (which can never be hidden, which start hidden, and the two settings
that remember the choice).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QPoint, Qt, Slot
from PySide6.QtWidgets import QMenu, QTableView

from portwatch.services.settings import Settings
from portwatch.services.settings_service import SettingsService
from portwatch.ui.connection_model import CONN_HEADERS, ConnColumn
from portwatch.ui.listener_model import HEADERS, Column


@dataclass(frozen=True)
class TableColumns:
    """What the chooser needs to know of one table's columns."""

    columns: tuple[enum.Enum, ...]  # an int-valued enum: the value is the column number
    headers: tuple[str, ...]  # in the order of ``columns``
    # Without these the rows cannot be told apart or judged, so they cannot be hidden.
    always_shown: frozenset[enum.Enum]
    # Long columns that start hidden, also for a choice saved before they existed.
    hidden_until_chosen: frozenset[enum.Enum]
    hidden_setting: str
    known_setting: str


LISTENER_COLUMNS = TableColumns(
    columns=tuple(Column),
    headers=tuple(HEADERS[c] for c in Column),
    always_shown=frozenset({Column.PORT, Column.STATUS}),
    hidden_until_chosen=frozenset({Column.STARTED_BY, Column.REACHABLE}),
    hidden_setting="hidden_columns",
    known_setting="columns_known",
)

CONNECTION_COLUMNS = TableColumns(
    columns=tuple(ConnColumn),
    headers=tuple(CONN_HEADERS[c] for c in ConnColumn),
    always_shown=frozenset({ConnColumn.LOCAL_PORT, ConnColumn.REMOTE_ADDRESS}),
    hidden_until_chosen=frozenset(),
    hidden_setting="connection_hidden_columns",
    known_setting="connection_columns_known",
)

# Kept for the listeners table's callers.
ALWAYS_SHOWN = LISTENER_COLUMNS.always_shown
HIDDEN_UNTIL_CHOSEN = LISTENER_COLUMNS.hidden_until_chosen

Unavailable = Callable[[Settings], Mapping[enum.Enum, str]]
"""Columns another setting keeps hidden, with the reason the menu shows."""


def _nothing_unavailable(_settings: Settings) -> Mapping[enum.Enum, str]:
    return {}


def _number(column: enum.Enum) -> int:
    return int(column.value)


class ColumnChooser(QObject):
    """Right-click on the header: one check per column; the choice is saved at once."""

    def __init__(
        self,
        table: QTableView,
        settings: SettingsService,
        spec: TableColumns = LISTENER_COLUMNS,
        unavailable: Unavailable = _nothing_unavailable,
    ) -> None:
        super().__init__(table)
        self._table = table
        self._settings = settings
        self._spec = spec
        self._unavailable = unavailable
        header = table.horizontalHeader()
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._popup)
        self._chosen_hidden: set[enum.Enum] = set()
        self._apply_settings(settings.current)
        settings.changed.connect(self._apply_settings)

    def _apply_settings(self, current: Settings) -> None:
        self.apply(
            getattr(current, self._spec.hidden_setting),
            getattr(current, self._spec.known_setting),
        )

    def hidden(self) -> set[enum.Enum]:
        return {c for c in self._spec.columns if self._table.isColumnHidden(_number(c))}

    def apply(self, names: tuple[str, ...], known: tuple[str, ...] = ()) -> None:
        """Hide the named columns (unknown names, from an older or edited file, are
        ignored), and the hidden-until-chosen ones the choice did not know of."""
        lowered = {n.lower() for n in names}
        wanted = {c for c in self._spec.columns if c.name.lower() in lowered}
        seen = {n.lower() for n in known}
        wanted |= {c for c in self._spec.hidden_until_chosen if c.name.lower() not in seen}
        self._chosen_hidden = wanted - self._spec.always_shown
        self._show()

    def _show(self) -> None:
        forced = self._unavailable(self._settings.current)
        for column in self._spec.columns:
            hide = column in self._chosen_hidden or column in forced
            self._table.setColumnHidden(_number(column), hide)

    def menu(self) -> QMenu:
        """The chooser's menu (built fresh so it shows the current state)."""
        menu = QMenu(self._table)
        menu.setObjectName("columnChooser")
        menu.setToolTipsVisible(True)
        title = menu.addAction("Columns shown")
        title.setEnabled(False)
        forced = self._unavailable(self._settings.current)
        for column, header in zip(self._spec.columns, self._spec.headers, strict=True):
            action = menu.addAction(header)
            action.setCheckable(True)
            action.setChecked(not self._table.isColumnHidden(_number(column)))
            action.setData(column.name)
            if column in self._spec.always_shown:
                action.setEnabled(False)
                action.setToolTip("Always shown")
            elif column in forced:
                action.setEnabled(False)
                action.setToolTip(forced[column])
            action.toggled.connect(lambda shown, c=column: self.set_shown(c, shown))
        menu.addSeparator()
        menu.addAction("Show all columns", self.show_all)
        return menu

    def set_shown(self, column: enum.Enum, shown: bool) -> None:
        if column in self._spec.always_shown and not shown:
            return
        if shown:
            self._chosen_hidden.discard(column)
        else:
            self._chosen_hidden.add(column)
        self._show()
        self._save()

    @Slot()
    def show_all(self) -> None:
        self._chosen_hidden.clear()
        self._show()
        self._save()

    def _save(self) -> None:
        names = tuple(c.name.lower() for c in self._spec.columns if c in self._chosen_hidden)
        known = tuple(c.name.lower() for c in self._spec.columns)
        current = self._settings.current
        saved = (
            getattr(current, self._spec.hidden_setting),
            getattr(current, self._spec.known_setting),
        )
        if saved != (names, known):
            changes: dict[str, Any] = {
                self._spec.hidden_setting: names,
                self._spec.known_setting: known,
            }
            self._settings.apply(dataclasses.replace(current, **changes))

    @Slot(QPoint)
    def _popup(self, pos: QPoint) -> None:
        menu = self.menu()
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self._table.horizontalHeader().mapToGlobal(pos))
