"""What the user can do with rows of the listeners table: copy them, look at their port,
trust their program, see their history, end their process.

Copies hold the rows as shown (visible columns, in the header's order); the CSV copy
neutralises cells a spreadsheet would run as formulas. Ending a process asks first, naming
the program, pid and user, and goes through the probe (the only code that touches
processes) on a worker thread, so the window stays live during the grace period.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QObject,
    QPoint,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QMenu, QMessageBox, QTableView, QTreeWidget, QWidget

from portwatch.core.csvrows import neutralise
from portwatch.core.types import Proto
from portwatch.probe.process_control import DEFAULT_GRACE_S, EndResult, end_process
from portwatch.services.background import JobRunner
from portwatch.services.plain_text import visible
from portwatch.ui.actions import ActionRegistry
from portwatch.ui.listener_model import HEADERS, PlainTextRole, ViewRole


class TableRowActions(QObject):
    """What every table of the window does with its rows: Ctrl+C and copy menus for the
    selection, a context menu on right-click (the subclass's :meth:`menu`), and
    "End process…" with its confirmation. Rows come through ``ViewRole`` and their cells
    as words through ``PlainTextRole``."""

    message = Signal(str)
    """A short outcome for the status bar."""
    process_end_finished = Signal(object)
    """The :class:`EndResult` of an "End process…"."""

    def __init__(
        self,
        table: QTableView,
        headers: Mapping[Any, str],
        jobs: JobRunner | None = None,
        grace_s: float = DEFAULT_GRACE_S,
    ) -> None:
        super().__init__(table)
        self._table = table
        self._headers = dict(headers)
        self._jobs = jobs or JobRunner(parent=self)
        self.grace_s = grace_s
        table.setSelectionMode(QTableView.SelectionMode.ExtendedSelection)
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        table.customContextMenuRequested.connect(self._popup)
        table.installEventFilter(self)

    # -- the selection ------------------------------------------------------------------
    def _visible_columns(self) -> list[int]:
        header = self._table.horizontalHeader()
        logical = [header.logicalIndex(v) for v in range(header.count())]
        return [c for c in logical if not self._table.isColumnHidden(c)]

    def selected_rows(self) -> list[int]:
        """Selected proxy rows, top to bottom."""
        selection = self._table.selectionModel()
        return sorted(index.row() for index in selection.selectedRows())

    def selected_views(self) -> list[Any]:
        model = self._table.model()
        return [model.data(model.index(row, 0), ViewRole) for row in self.selected_rows()]

    def _cells(self, row: int, columns: Sequence[int]) -> list[str]:
        model = self._table.model()
        return [str(model.data(model.index(row, c), PlainTextRole) or "") for c in columns]

    def selection_as_text(self) -> str:
        """Selected rows, tab-separated, one line each (what Ctrl+C copies)."""
        columns = self._visible_columns()
        # Tabs and newlines inside a cell would shift the columns of the paste.
        lines = [
            "\t".join(
                cell.replace("\t", " ").replace("\n", " ") for cell in self._cells(r, columns)
            )
            for r in self.selected_rows()
        ]
        return "\n".join(lines)

    def selection_as_csv(self) -> str:
        """Selected rows as CSV with a header line, every cell neutralised."""
        columns = self._visible_columns()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([self._headers[c] for c in columns])
        for row in self.selected_rows():
            writer.writerow([neutralise(cell) for cell in self._cells(row, columns)])
        return out.getvalue()

    @Slot()
    def copy_rows(self) -> None:
        text = self.selection_as_text()
        if text:
            QGuiApplication.clipboard().setText(text)
            count = len(self.selected_rows())
            self.message.emit(f"Copied {count} row{'s' if count != 1 else ''}.")

    @Slot()
    def copy_csv(self) -> None:
        if self.selected_rows():
            QGuiApplication.clipboard().setText(self.selection_as_csv())
            self.message.emit("Copied the selected rows as CSV.")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # The table's own Ctrl+C copies one cell; the whole selected rows are wanted.
        if (
            watched is self._table
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.matches(QKeySequence.StandardKey.Copy)
        ):
            self.copy_rows()
            return True
        return False

    # -- the menu -----------------------------------------------------------------------
    def menu(self) -> QMenu:
        """The context menu for the current selection."""
        raise NotImplementedError

    def add_copy_entries(self, menu: QMenu, count: int) -> QAction:
        """Copy row(s) and copy as CSV, the first entries of every row menu."""
        copy_row = menu.addAction("&Copy rows" if count > 1 else "&Copy row", self.copy_rows)
        copy_row.setShortcut(QKeySequence(QKeySequence.StandardKey.Copy))
        copy_row.setEnabled(count > 0)
        menu.addAction("Copy selection as CS&V", self.copy_csv)
        return copy_row

    @Slot(QPoint)
    def _popup(self, pos: QPoint) -> None:
        index = self._table.indexAt(pos)
        selection = self._table.selectionModel()
        # A right-click outside the selection acts on the row under the pointer.
        if index.isValid() and not selection.isRowSelected(index.row(), index.parent()):
            self._table.selectRow(index.row())
        menu = self.menu()
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self._table.viewport().mapToGlobal(pos))

    # -- ending a process ---------------------------------------------------------------
    def ask_end_process_of(self, owner: Any, socket_label: str) -> QMessageBox:
        """Ask before ending ``owner``'s process (non-blocking); ``socket_label`` names
        the socket the user acted on."""
        name = visible(owner.name) or "(no name)"
        user = visible(owner.user) or "an unknown user"
        return self.confirm(
            "End process",
            f"End {name} (pid {owner.pid}, run by {user})?",
            f"It is asked to stop and given {self.grace_s:g} s to close its files, then "
            f"forced to stop. Every socket it holds closes with it "
            f"(this one: {visible(socket_label)}).",
            "endProcessBox",
            "End process",
            lambda: self.end_process(owner),
        )

    def end_process(self, owner: Any) -> None:
        """End ``owner``'s process off the GUI thread; the outcome is announced."""
        pid, started, grace = owner.pid, owner.create_time, self.grace_s
        name = visible(owner.name) or "(no name)"
        self.run_announced(
            f"Ending {name} (pid {pid})\u2026",
            lambda: end_process(pid, started, grace),
            self._ended,
            f"Could not end process {pid}",
        )

    def _ended(self, result: EndResult | None, failure: str = "") -> None:
        text = result.message if result is not None else failure
        self.message.emit(text)
        if result is None or not result.ended:
            self.warn("Process not ended", text, "endProcessFailed")
        self.process_end_finished.emit(result)

    # -- the shared shape of a destructive action ---------------------------------------
    def confirm(
        self,
        title: str,
        question: str,
        details: str,
        object_name: str,
        button_text: str,
        on_confirm: Callable[[], None],
    ) -> QMessageBox:
        """Open a non-blocking warning box asking ``question``; Cancel is the default and
        only ``button_text`` (a destructive button) runs ``on_confirm``. All text is plain."""
        box = self._warning_box(title, question, QMessageBox.StandardButton.Cancel, object_name)
        box.setInformativeText(details)
        button = box.addButton(button_text, QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda clicked: on_confirm() if clicked is button else None)
        box.open()
        return box

    def run_announced(
        self,
        start: str,
        work: Callable[[], Any],
        done: Callable[..., None],
        failure_prefix: str,
    ) -> None:
        """Announce ``start``, run ``work`` off the GUI thread and hand its result to
        ``done``; an exception becomes ``done(None, "<failure_prefix>: <exc>")``."""
        self.message.emit(start)
        self._jobs.submit(work, done, lambda exc: done(None, f"{failure_prefix}: {exc}"))

    def warn(self, title: str, text: str, object_name: str) -> None:
        """Show a non-blocking plain-text warning that an action did not happen."""
        box = self._warning_box(title, text, QMessageBox.StandardButton.Ok, object_name)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _warning_box(
        self, title: str, text: str, button: QMessageBox.StandardButton, object_name: str
    ) -> QMessageBox:
        """A warning box over the table's window showing ``text`` as plain text."""
        parent = self._table.window()
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            title,
            text,
            button,
            parent if isinstance(parent, QWidget) else None,
        )
        box.setObjectName(object_name)
        box.setTextFormat(Qt.TextFormat.PlainText)
        return box


class RowActions(TableRowActions):
    """The listeners table's context menu, Ctrl+C and "End process…"."""

    describe_requested = Signal(object)
    """A row's view: show its port in the side panel (and select it everywhere)."""
    trust_requested = Signal(object)
    history_requested = Signal(int, object)

    def __init__(
        self,
        table: QTableView,
        jobs: JobRunner | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        trust_enabled: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__(table, HEADERS, jobs, grace_s)
        self._trust_enabled = trust_enabled

    # -- the menu -----------------------------------------------------------------------
    def menu(self) -> QMenu:
        """The context menu for the current selection."""
        views = [v for v in self.selected_views() if v is not None]
        menu = QMenu(self._table)
        menu.setObjectName("rowMenu")
        menu.setToolTipsVisible(True)
        copy_row = self.add_copy_entries(menu, len(views))
        menu.addSeparator()
        first = views[0] if views else None
        describe = menu.addAction("&Describe the port")
        trust = menu.addAction("&Trust this program\u2026")
        history = menu.addAction("Show &history\u2026")
        menu.addSeparator()
        end = menu.addAction("&End process\u2026")
        for action in (copy_row, describe, trust, history, end):
            action.setEnabled(first is not None)
        if first is None:
            return menu
        port, proto = first.listener.port, first.listener.proto
        describe.setText(f"&Describe port {port}/{proto}")
        describe.triggered.connect(lambda: self.describe_requested.emit(first))
        history.setText(f"Show &history of {port}/{proto}\u2026")
        history.triggered.connect(lambda: self.history_requested.emit(port, proto))
        owner = first.listener.owner
        trust.setEnabled(self._trust_enabled() and owner is not None and owner.identified)
        if owner is None or not owner.identified:
            trust.setToolTip("The program is not known well enough to trust (no file or hash).")
        trust.triggered.connect(lambda: self.trust_requested.emit(first))
        if owner is None:
            end.setEnabled(False)
            end.setToolTip("The OS does not say which process holds this socket.")
        else:
            name = visible(owner.name) or "(no name)"
            end.setText(f"&End process {name} (pid {owner.pid})\u2026")
            end.triggered.connect(lambda: self.ask_end_process(first))
        return menu

    def ask_end_process(self, view: Any) -> QMessageBox | None:
        """Ask before ending the process holding ``view``'s socket (non-blocking)."""
        owner = view.listener.owner
        if owner is None:
            return None
        return self.ask_end_process_of(owner, view.listener.endpoint.label())


def select_port_rows(table: QTableView, port: int, proto: Proto | None) -> None:
    """Select every row of ``table`` listening on ``port`` (and ``proto`` when given)."""
    model = table.model()
    selection = QItemSelection()
    first = None
    for row in range(model.rowCount()):
        view = model.data(model.index(row, 0), ViewRole)
        if view is None or view.listener.port != port:
            continue
        if proto is not None and view.listener.proto != proto:
            continue
        selection.select(model.index(row, 0), model.index(row, model.columnCount() - 1))
        first = first if first is not None else model.index(row, 0)
    flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | (
        QItemSelectionModel.SelectionFlag.Rows
    )
    table.selectionModel().select(selection, flags)
    if first is not None:
        table.scrollTo(first)


class WatchListMenu(QObject):
    """The watched-ports list's context menu: the window's commands for the selected port."""

    ENTRIES = (
        "history",
        "copy_check",
        None,
        "snooze_hour",
        "snooze_tomorrow",
        "unsnooze",
        None,
        "unwatch",
        "watch",
    )

    def __init__(self, tree: QTreeWidget, commands: ActionRegistry) -> None:
        super().__init__(tree)
        self._tree = tree
        self._commands = commands
        tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        tree.customContextMenuRequested.connect(self._popup)

    def menu(self) -> QMenu:
        menu = QMenu(self._tree)
        menu.setObjectName("watchListMenu")
        self._commands.fill(menu, self.ENTRIES)
        return menu

    @Slot(QPoint)
    def _popup(self, pos: QPoint) -> None:
        item = self._tree.itemAt(pos)
        if item is not None:
            self._tree.setCurrentItem(item)
        menu = self.menu()
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self._tree.viewport().mapToGlobal(pos))
