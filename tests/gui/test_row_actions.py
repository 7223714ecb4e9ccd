"""Acting on rows: context menus, copies, the column chooser, ending a process, selection."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from childsockets import ChildSockets, free_port
from guikit import wait_ticks
from platforms import wine_gives_pid_0
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox

from portwatch.core.watchlist import parse_spec
from portwatch.ui.listener_model import Column


def _rows_of(desktop: Any, pid: int) -> list[int]:
    """Proxy rows (as shown) owned by ``pid``."""
    proxy = desktop.window.proxy
    rows = []
    for row in range(proxy.rowCount()):
        view = proxy.data(proxy.index(row, 0), Qt.ItemDataRole.UserRole + 1)
        if view is not None and view.listener.owner and view.listener.owner.pid == pid:
            rows.append(row)
    return rows


def _select(table: Any, rows: list[int]) -> None:
    from PySide6.QtCore import QItemSelectionModel

    table.clearSelection()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for row in rows:
        table.selectionModel().select(table.model().index(row, 0), flags)


def _listening(
    qtbot: Any, make_desktop: Any, child_sockets: list, extra: tuple[Any, ...] = (), **start: Any
) -> tuple[Any, ChildSockets, int]:
    """The app watching a free port, a child listening on it (with ``extra`` sockets),
    once the child's rows are in the table: (desktop, child, port)."""
    port = free_port()
    desktop = make_desktop([str(port)])
    child = ChildSockets.start(
        [("tcp", "127.0.0.1", port, "listen"), *extra], registry=child_sockets, **start
    )
    rows = 1 + len(extra)
    qtbot.waitUntil(lambda: len(_rows_of(desktop, child.pid)) == rows, timeout=15_000)
    return desktop, child, port


def _select_rows_of(desktop: Any, pid: int) -> Any:
    """Select ``pid``'s rows in the table; returns the row menu they open."""
    _select(desktop.window.table, _rows_of(desktop, pid))
    return desktop.window.row_actions.menu()


def _texts(menu: Any) -> list[str]:
    return [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]


@wine_gives_pid_0
def test_the_row_menu_offers_copy_describe_trust_history_and_end(
    qtbot: Any, make_desktop: Any, child_sockets: list
) -> None:
    desktop, child, port = _listening(qtbot, make_desktop, child_sockets)
    window = desktop.window
    menu = _select_rows_of(desktop, child.pid)
    texts = _texts(menu)
    assert texts[:2] == ["Copy row", "Copy selection as CSV"]
    assert f"Describe port {port}/tcp" in texts
    assert "Trust this program\u2026" in texts
    assert f"Show history of {port}/tcp\u2026" in texts
    assert any(t.startswith("End process python") and f"(pid {child.pid})" in t for t in texts)
    # Describe selects the port everywhere: the watched list and the side panel.
    describe = next(a for a in menu.actions() if a.text().startswith("&Describe"))
    describe.trigger()
    assert window.port_panel.port == port
    assert window.watch_panel.selected_spec() == parse_spec(str(port))
    # The watched list has its own menu with the window's commands for its port.
    watch_texts = _texts(window.watch_menu.menu())
    assert any("history" in t for t in watch_texts)
    assert any("Stop watching" in t for t in watch_texts)
    assert any("Snooze" in t for t in watch_texts)


@wine_gives_pid_0
def test_several_rows_are_selected_and_copied_with_ctrl_c_and_as_csv(
    qtbot: Any, make_desktop: Any, child_sockets: list
) -> None:
    second = free_port()
    desktop, child, first = _listening(
        qtbot, make_desktop, child_sockets, (("udp", "127.0.0.1", second, "listen"),)
    )
    window = desktop.window
    table = window.table
    _select_rows_of(desktop, child.pid)
    assert len(window.row_actions.selected_rows()) == 2
    table.setFocus()
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    lines = QGuiApplication.clipboard().text().split("\n")
    assert len(lines) == 2
    assert {line.split("\t")[Column.PORT] for line in lines} == {str(first), str(second)}
    assert any("watched" in line.split("\t") for line in lines)

    window.row_actions.copy_csv()
    rows = list(csv.reader(io.StringIO(QGuiApplication.clipboard().text())))
    assert rows[0][: Column.STATUS + 1] == ["Watched", "Port", "Protocol", "Status"]
    assert sorted(r[Column.PORT] for r in rows[1:]) == sorted([str(first), str(second)])


@wine_gives_pid_0
def test_a_csv_copy_neutralises_formula_like_names(
    qtbot: Any, make_desktop: Any, child_sockets: list, tmp_path: Path
) -> None:
    import os
    import shutil
    import sys

    # Windows runs only a program whose name ends in .exe (and shows it in the name).
    hostile = tmp_path / ("=cmd.exe" if sys.platform == "win32" else "=cmd")
    shutil.copy(os.path.realpath(sys.executable), hostile)
    desktop, child, _port = _listening(qtbot, make_desktop, child_sockets, executable=str(hostile))
    _select_rows_of(desktop, child.pid)
    text = desktop.window.row_actions.selection_as_csv()
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[Column.PROCESS] == "'" + hostile.name


def test_columns_are_chosen_on_the_header_and_remembered_after_a_restart(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    desktop = make_desktop()
    window = desktop.window
    menu = window.column_chooser.menu()
    pid = next(a for a in menu.actions() if a.text() == "PID")
    status = next(a for a in menu.actions() if a.text() == "Status")
    assert pid.isChecked() and not status.isEnabled()  # the status cannot be hidden
    # The long why columns start hidden; the chooser offers them.
    started = next(a for a in menu.actions() if a.text() == "Started by")
    assert not started.isChecked() and window.table.isColumnHidden(Column.STARTED_BY)
    assert window.table.isColumnHidden(Column.REACHABLE)
    pid.setChecked(False)
    assert window.table.isColumnHidden(Column.PID)
    saved = json.loads((data_dir / "settings.json").read_text())
    assert saved["hidden_columns"] == ["pid", "started_by", "reachable"]
    desktop.shutdown()

    from portwatch.services import settings as settings_file

    # The test helper rewrites the settings file: give it back what the app saved.
    kept = settings_file.load(data_dir / "settings.json")
    assert not kept.problems
    again = make_desktop(folder=data_dir, settings=kept.settings)
    assert again.window.table.isColumnHidden(Column.PID)
    assert not again.window.table.isColumnHidden(Column.EXE)
    again.window.column_chooser.show_all()
    assert not again.window.table.isColumnHidden(Column.PID)


@wine_gives_pid_0
def test_end_process_asks_naming_program_pid_and_user_then_ends_it(
    qtbot: Any, make_desktop: Any, child_sockets: list
) -> None:
    desktop, child, _port = _listening(qtbot, make_desktop, child_sockets)
    window = desktop.window
    actions = window.row_actions
    actions.grace_s = 5.0
    row = _rows_of(desktop, child.pid)[0]
    view = window.proxy.data(window.proxy.index(row, 0), Qt.ItemDataRole.UserRole + 1)
    box = actions.ask_end_process(view)
    assert box is not None
    assert f"pid {child.pid}" in box.text()
    assert "python" in box.text()
    assert f"run by {view.listener.owner.user}" in box.text()
    # Cancel is the default: nothing happens by pressing Enter.
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    end_button = next(b for b in box.buttons() if b.text() == "End process")
    with qtbot.waitSignal(actions.process_end_finished, timeout=15_000) as ended:
        end_button.click()
    assert ended.args[0].ended
    qtbot.waitUntil(lambda: child.process.poll() is not None, timeout=5_000)
    if child.process.stdin:
        child.process.stdin.close()
    qtbot.waitUntil(lambda: not _rows_of(desktop, child.pid), timeout=15_000)


@wine_gives_pid_0
def test_selecting_a_row_selects_its_port_in_the_watched_list(
    qtbot: Any, make_desktop: Any, child_sockets: list
) -> None:
    watched, unwatched = free_port(), free_port()
    desktop = make_desktop(["1", str(watched)])
    window = desktop.window
    holder = ChildSockets.start([("tcp", "127.0.0.1", watched, "listen")], registry=child_sockets)
    other = ChildSockets.start([("tcp", "127.0.0.1", unwatched, "listen")], registry=child_sockets)
    qtbot.waitUntil(
        lambda: bool(_rows_of(desktop, holder.pid)) and bool(_rows_of(desktop, other.pid)),
        timeout=15_000,
    )
    window.watch_panel.select_port(1)
    window.table.selectRow(_rows_of(desktop, holder.pid)[0])
    assert window.watch_panel.selected_spec() == parse_spec(str(watched))
    assert window.port_panel.port == watched
    # An unwatched row: the list keeps no other port highlighted.
    window.table.selectRow(_rows_of(desktop, other.pid)[0])
    assert window.watch_panel.selected_spec() is None
    assert window.port_panel.port == unwatched
    # And the other way: choosing the watched port selects its rows in the table.
    window.watch_panel.select_port(watched)
    assert window.row_actions.selected_rows() == _rows_of(desktop, holder.pid)


@wine_gives_pid_0
def test_the_status_column_is_on_screen_at_the_default_size(
    qtbot: Any, make_desktop: Any, child_sockets: list
) -> None:
    desktop, _child, _port = _listening(qtbot, make_desktop, child_sockets)
    wait_ticks(qtbot, desktop)
    table = desktop.window.table
    right = table.columnViewportPosition(Column.STATUS) + table.columnWidth(Column.STATUS)
    assert table.columnViewportPosition(Column.STATUS) >= 0
    assert right <= table.viewport().width()
    # The watched mark is narrow: not a word repeated on every row.
    assert table.columnWidth(Column.WATCHED) < table.fontMetrics().horizontalAdvance("watched")


def test_a_choice_saved_before_the_why_columns_keeps_them_hidden(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    from portwatch.services import settings as settings_file
    from portwatch.services.settings import Settings

    # A settings file from before the columns existed: it hid the PID, nothing else.
    old = Settings(hidden_columns=("pid",), columns_known=())
    desktop = make_desktop(settings=old)
    table = desktop.window.table
    assert table.isColumnHidden(Column.PID)
    assert table.isColumnHidden(Column.STARTED_BY) and table.isColumnHidden(Column.REACHABLE)
    desktop.window.column_chooser.set_shown(Column.STARTED_BY, True)
    desktop.shutdown()
    kept = settings_file.load(data_dir / "settings.json")
    assert not kept.problems
    again = make_desktop(folder=data_dir, settings=kept.settings)
    table = again.window.table
    assert not table.isColumnHidden(Column.STARTED_BY)  # the user's choice now
    assert table.isColumnHidden(Column.REACHABLE) and table.isColumnHidden(Column.PID)
