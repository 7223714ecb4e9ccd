"""The main window against real listeners opened by child processes."""

from __future__ import annotations

import csv
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from childsockets import ChildSockets, free_port
from guikit import wait_ticks
from platforms import needs_posix, wine_gives_pid_0
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox

from portwatch.config import watchfile
from portwatch.core.types import Status
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.ui.icons import PortState
from portwatch.ui.listener_model import Column

PYTHON = os.path.realpath(sys.executable)


def _row_for_pid(desktop: Any, pid: int) -> int:
    for row, view in enumerate(desktop.window.model.views()):
        owner = view.listener.owner
        if owner is not None and owner.pid == pid:
            return row
    return -1


def _chart_last(desktop: Any, spec_text: str) -> tuple[float, float]:
    points = desktop.window.chart.series_points(parse_spec(spec_text))
    return (float(points[-1, 1]), float(points[-1, 2])) if len(points) else (-1.0, -1.0)


def test_window_opens_and_shows_the_first_tick(qtbot: Any, make_desktop: Any) -> None:
    desktop = make_desktop()
    wait_ticks(qtbot, desktop)
    window = desktop.window
    assert window.isVisible()
    assert window.windowTitle() == "portwatch"
    assert "Last check" in window.status_text.text()
    # The default watch list is shown with a state for each port.
    shown = [window.watch_panel.tree.topLevelItem(i).text(0) for i in range(3)]
    assert shown == ["3321", "3353", "3653"]


@wine_gives_pid_0
def test_a_child_listener_appears_everywhere_then_goes_away(
    qtbot: Any, make_desktop: Any, child_sockets: list
) -> None:
    port = free_port()
    desktop = make_desktop([str(port)])
    window = desktop.window
    spec = parse_spec(str(port))
    child = ChildSockets.start([("tcp", "127.0.0.1", port, "listen")], registry=child_sockets)

    qtbot.waitUntil(lambda: _row_for_pid(desktop, child.pid) >= 0, timeout=15_000)
    row = _row_for_pid(desktop, child.pid)
    view = window.model.views()[row]
    assert view.watched
    model = window.model
    assert model.data(model.index(row, Column.PORT)) == str(port)
    assert model.data(model.index(row, Column.WATCHED)) == "\u25cf"
    assert "this computer only" in model.data(model.index(row, Column.ADDRESS))
    # Nothing is trusted yet: an identified owner is unknown.
    assert view.status is Status.UNKNOWN
    qtbot.waitUntil(lambda: window.watch_panel.state_of(spec) is PortState.UNKNOWN)
    state_text = window.watch_panel.tree.topLevelItem(0).text(1)
    assert state_text == "unknown owner"
    qtbot.waitUntil(lambda: _chart_last(desktop, str(port))[0] >= 1, timeout=10_000)

    # Selecting the port fills the side panel with the owner, as plain text.
    window.watch_panel.select_port(port)
    panel = window.port_panel
    qtbot.waitUntil(lambda: len(panel.owner_cards()) == 1)
    card = panel.owner_cards()[0]
    assert f"pid {child.pid}" in card.who_label.text()
    assert card.who_label.textFormat() == Qt.TextFormat.PlainText
    assert panel.title.text() == f"Port {port}"

    # The alert for the unknown owner reached the notifier and the in-app log.
    qtbot.waitUntil(lambda: window.alert_log.count() >= 1, timeout=10_000)

    child.process.kill()  # killed, not asked to stop: the socket vanishes with it
    child.process.wait()
    if child.process.stdin:
        child.process.stdin.close()
    qtbot.waitUntil(lambda: _row_for_pid(desktop, child.pid) < 0, timeout=15_000)
    qtbot.waitUntil(lambda: window.watch_panel.state_of(spec) is PortState.QUIET)
    qtbot.waitUntil(lambda: _chart_last(desktop, str(port))[0] == 0, timeout=10_000)
    qtbot.waitUntil(lambda: not panel.owner_cards())
    assert panel.no_owner.isVisibleTo(panel)


def test_a_bad_spec_is_refused_with_the_reason(qtbot: Any, make_desktop: Any) -> None:
    desktop = make_desktop()
    panel = desktop.window.watch_panel
    before = desktop.watch_file.watchlist
    qtbot.keyClicks(panel.spec_edit, "70000/tcp")
    qtbot.keyClick(panel.spec_edit, Qt.Key.Key_Return)
    assert panel.message.isVisibleTo(panel)
    assert "port 70000 is outside 1-65535" in panel.message.text()
    assert "'70000/tcp'" in panel.message.text()
    assert desktop.watch_file.watchlist == before


def test_adding_and_removing_goes_through_the_shared_file(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    desktop = make_desktop(["3653"])
    panel = desktop.window.watch_panel
    panel.spec_edit.setText("4000-4010/udp")
    panel.add_button.click()
    text = (data_dir / "watchlist.txt").read_text()
    assert "4000-4010/udp" in text
    assert panel.tree.topLevelItemCount() == 2

    panel.select_port(3653)
    panel.remove_button.click()
    assert "3653" not in watchfile.load(data_dir / "watchlist.txt").watchlist.port_numbers()

    # Someone edits the file with the CLI: the window follows.
    watchfile.save(data_dir / "watchlist.txt", WatchList((parse_spec("5001/tcp"),)))
    qtbot.waitUntil(
        lambda: (
            panel.tree.topLevelItemCount() == 1 and panel.tree.topLevelItem(0).text(0) == "5001/tcp"
        ),
        timeout=5000,
    )
    assert desktop.window.chart.specs() == [parse_spec("5001/tcp")]


def test_problems_in_the_watch_list_file_are_shown(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    (data_dir / "watchlist.txt").write_text("3653\ntrue\n99999\n")
    desktop = make_desktop()
    banner = desktop.window.notice_banner
    assert banner.isVisibleTo(desktop.window)
    text = banner.text.text()
    assert "'true'" in text
    assert "99999" in text
    banner.close_button.click()
    assert not banner.isVisibleTo(desktop.window)


def test_a_damaged_history_is_reported_in_the_banner(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    (data_dir / "history.sqlite3").write_bytes(b"this is not a database" * 100)
    desktop = make_desktop()
    banner = desktop.window.notice_banner
    qtbot.waitUntil(lambda: "moved to" in banner.text.text(), timeout=10_000)
    assert banner.isVisibleTo(desktop.window)


@wine_gives_pid_0
def test_export_from_the_window_writes_the_csv(
    qtbot: Any, make_desktop: Any, tmp_path: Path, child_sockets: list
) -> None:
    port = free_port()
    child = ChildSockets.start([("tcp", "127.0.0.1", port, "listen")], registry=child_sockets)
    desktop = make_desktop([str(port)])
    qtbot.waitUntil(lambda: _row_for_pid(desktop, child.pid) >= 0, timeout=15_000)
    wait_ticks(qtbot, desktop, 2)
    target = tmp_path / "out" / "listeners.csv"
    target.parent.mkdir()
    with qtbot.waitSignal(desktop.window.export_finished, timeout=15_000) as blocker:
        desktop.window.export_to(target)
    assert blocker.args[1] is None
    with target.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) >= 2
    assert any(str(port) in row for row in rows[1:])


def test_a_failed_export_shows_the_reason(qtbot: Any, make_desktop: Any, tmp_path: Path) -> None:
    desktop = make_desktop()
    wait_ticks(qtbot, desktop, 2)
    folder = tmp_path / "a-folder.csv"
    folder.mkdir()
    with qtbot.waitSignal(desktop.window.export_finished, timeout=15_000) as blocker:
        desktop.window.export_to(folder)
    assert blocker.args[1] is not None
    boxes = [w for w in desktop.window.findChildren(QMessageBox) if w.isVisible()]
    assert boxes
    assert "folder" in boxes[0].text()


@needs_posix  # <, > and & cannot be in a Windows file name
def test_hostile_process_names_are_shown_literally(
    qtbot: Any, make_desktop: Any, tmp_path: Path, child_sockets: list
) -> None:
    hostile = "<b>evil&x\u202eexe"
    copy = tmp_path / hostile
    shutil.copy2(PYTHON, copy)
    port = free_port()
    desktop = make_desktop([str(port)])
    child = ChildSockets.start(
        [("tcp", "127.0.0.1", port, "listen")], executable=str(copy), registry=child_sockets
    )
    qtbot.waitUntil(lambda: _row_for_pid(desktop, child.pid) >= 0, timeout=15_000)
    window = desktop.window
    row = _row_for_pid(desktop, child.pid)
    model = window.model
    shown_exe = model.data(model.index(row, Column.EXE))
    assert shown_exe.endswith("<b>evil&x\\u202eexe")
    tooltip = model.data(model.index(row, Column.EXE), Qt.ItemDataRole.ToolTipRole)
    assert "&lt;b&gt;evil&amp;x" in tooltip
    assert "<b>evil" not in tooltip
    assert "\u202e" not in tooltip

    window.watch_panel.select_port(port)
    qtbot.waitUntil(lambda: len(window.port_panel.owner_cards()) == 1)
    card = window.port_panel.owner_cards()[0]
    labels = card.findChildren(QLabel)
    assert all(label.textFormat() == Qt.TextFormat.PlainText for label in labels if label.text())
    assert any("<b>evil&x\\u202eexe" in label.text() for label in labels)


def test_a_partial_sample_shows_what_is_missing(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    import dataclasses

    from portwatch.engine.monitor import Monitor
    from portwatch.probe import create
    from portwatch.store.history import HistoryStore

    class PartialProbe:
        """The real probe, with the sample marked as an unprivileged macOS one would be."""

        name = "partial"

        def __init__(self) -> None:
            self._real = create("psutil")

        def poll(self, watched: WatchList) -> Any:
            sample = self._real.poll(watched)
            return dataclasses.replace(
                sample, partial=True, partial_reason="other users' sockets are hidden"
            )

        def close(self) -> None:
            self._real.close()

    def factory() -> Any:
        store = HistoryStore.open(data_dir / "history.sqlite3")
        return Monitor(PartialProbe(), store, WatchList.default()), store.notices

    desktop = make_desktop(factory=factory)
    banner = desktop.window.partial_banner
    qtbot.waitUntil(lambda: banner.isVisibleTo(desktop.window), timeout=10_000)
    assert "other users' sockets are hidden" in banner.text.text()
    assert "administrator" in banner.text.text()


def test_closing_hides_to_the_tray_when_there_is_one(qtbot: Any, make_desktop: Any) -> None:
    desktop = make_desktop()
    window = desktop.window
    window.hide_to_tray = True
    window.close()
    assert not window.isVisible()
    window.bring_to_front()
    assert window.isVisible()
    window.hide_to_tray = False
    with qtbot.waitSignal(window.quit_requested, timeout=2000):
        window.close()


def test_pause_and_resume(qtbot: Any, make_desktop: Any) -> None:
    desktop = make_desktop()
    window = desktop.window
    wait_ticks(qtbot, desktop)
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: window.pause_action.text() == "&Resume monitoring", timeout=5000)
    assert desktop.sampler.paused
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: window.pause_action.text() == "&Pause monitoring", timeout=5000)
    wait_ticks(qtbot, desktop)


@wine_gives_pid_0
@pytest.mark.parametrize("seconds", [3600.0, 86400.0])
def test_longer_windows_are_filled_from_history_after_a_restart(
    qtbot: Any, make_desktop: Any, data_dir: Path, child_sockets: list, seconds: float
) -> None:
    port = free_port()
    child = ChildSockets.start([("tcp", "127.0.0.1", port, "listen")], registry=child_sockets)
    first = make_desktop([str(port)])
    qtbot.waitUntil(lambda: _row_for_pid(first, child.pid) >= 0, timeout=15_000)
    wait_ticks(qtbot, first, 3)
    first.shutdown()

    second = make_desktop([str(port)], start=False)
    second.window.chart.set_window(seconds)
    spec = parse_spec(str(port))
    # The history is read on the thread pool; the chart fills when the answer arrives.
    qtbot.waitUntil(lambda: len(second.window.chart.series_points(spec)) >= 1, timeout=10_000)
    points = second.window.chart.series_points(spec)
    assert (points[:, 1] >= 1).any()


@wine_gives_pid_0
def test_panel_actions_copy_the_check_command_and_open_the_history(
    qtbot: Any, make_desktop: Any, child_sockets: list
) -> None:
    from PySide6.QtGui import QGuiApplication

    from portwatch.ui.history_dialog import HistoryDialog
    from portwatch.ui.port_panel import check_command

    port = free_port()
    desktop = make_desktop([str(port)])
    window = desktop.window
    child = ChildSockets.start([("tcp", "127.0.0.1", port, "listen")], registry=child_sockets)
    qtbot.waitUntil(lambda: _row_for_pid(desktop, child.pid) >= 0, timeout=15_000)
    child.stop()
    qtbot.waitUntil(lambda: _row_for_pid(desktop, child.pid) < 0, timeout=15_000)
    wait_ticks(qtbot, desktop, 2)

    window.watch_panel.select_port(port)
    window.port_panel.copy_button.click()
    assert QGuiApplication.clipboard().text() == check_command(port)
    assert f":{port}" in QGuiApplication.clipboard().text()

    # The history lists the opening and the closing of the child's listener.
    window.port_panel.history_button.click()
    dialogs = [d for d in window.findChildren(HistoryDialog) if d.isVisible()]
    assert dialogs
    tree = dialogs[0].tree
    kinds = {tree.topLevelItem(i).text(1) for i in range(tree.topLevelItemCount())}
    assert "listener opened" in kinds
    assert "listener closed" in kinds
    dialogs[0].close()


def test_trust_action_is_a_disabled_hook_until_the_trust_model_arrives(
    qtbot: Any, make_desktop: Any
) -> None:
    panel = make_desktop().window.port_panel
    assert not panel.trust_button.isEnabled()
    assert panel.trust_button.toolTip()
    panel.enable_trust(True, "Trust this program for this port")
    # Still disabled while nobody holds the shown port: there is nothing to trust.
    assert not panel.trust_button.isEnabled()


def test_settings_dialog_saves_and_applies(qtbot: Any, make_desktop: Any, data_dir: Path) -> None:
    from portwatch.services import settings as settings_file

    desktop = make_desktop()
    window = desktop.window
    dialog = window.open_settings()
    dialog.interval.setValue(3.0)
    dialog.notifications.setChecked(False)
    with qtbot.waitSignal(desktop.settings_service.interval_changed) as changed:
        dialog.accept()
    assert changed.args == [3.0]
    saved = settings_file.load(data_dir / "settings.json").settings
    assert saved.poll_interval_s == 3.0
    assert saved.notifications is False


@needs_posix  # checks the XDG autostart entry, Linux's
def test_start_at_login_writes_and_removes_the_autostart_entry(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    from portwatch.config.autostart import XdgAutostart

    autostart = XdgAutostart(data_dir / "xdg")
    window = make_desktop(autostart=autostart).window
    dialog = window.open_settings()
    assert not dialog.login.isChecked()
    dialog.login.setChecked(True)
    dialog.accept()
    entry = Path(autostart.location)
    text = entry.read_text(encoding="utf-8")
    assert "--minimized" in text
    assert str(data_dir) in text  # starts on the same data folder
    assert autostart.is_enabled()
    dialog = window.open_settings()
    assert dialog.login.isChecked()
    dialog.login.setChecked(False)
    dialog.accept()
    assert not entry.exists()
    assert not autostart.is_enabled()


def test_export_suggests_a_dated_file_name() -> None:
    from portwatch.ui.main_window import default_export_name

    name = default_export_name(0.0)
    assert name.startswith("portwatch-listeners-19")
    assert name.endswith(".csv")


def test_an_unusable_history_still_lets_the_app_watch(
    qtbot: Any, make_desktop: Any, tmp_path: Path
) -> None:
    from portwatch.services.monitoring import monitor_factory

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the history folder should be")
    factory = monitor_factory(blocker / "history.sqlite3", "psutil", WatchList.default)
    desktop = make_desktop(factory=factory)
    wait_ticks(qtbot, desktop, 2)
    banner = desktop.window.notice_banner
    qtbot.waitUntil(lambda: "nothing is recorded" in banner.text.text(), timeout=5000)
    assert str(blocker) in banner.text.text()
