"""The Connections tab: real connections from the sampler thread, the model tester, the
switch, change marks, the row menu and untrusted text."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from connpeers import Peers
from guikit import wait_ticks
from platforms import wine_gives_pid_0
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox

from portwatch.core.types import Proto
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.engine.connection_track import ConnectionsSnapshot, ConnectionTracker
from portwatch.paths import rooted
from portwatch.probe.connection_control import has_net_admin
from portwatch.probe.connections import Connection
from portwatch.services import settings as settings_file
from portwatch.services.settings_service import SettingsService
from portwatch.ui.change_highlight import Change
from portwatch.ui.connection_model import ConnColumn, ConnectionTableModel
from portwatch.ui.connections_tab import ConnectionsTab
from portwatch.ui.listener_model import ListenerFilterModel, ViewRole


@pytest.fixture
def peers() -> Iterator[Peers]:
    pair = Peers.start()
    yield pair
    pair.stop()


def _conn(lport: int, rport: int, pid: int = 10, name: str = "srv", **kw: Any) -> Connection:
    return Connection(
        proto=Proto.TCP,
        family="IPv4",
        local_address="127.0.0.1",
        local_port=lport,
        remote_address="10.0.0.9",
        remote_port=rport,
        state="ESTABLISHED",
        pid=pid,
        process=name,
        **kw,
    )


class FakeLister:
    """Returns what the test put in ``now``; records which thread asked."""

    def __init__(self) -> None:
        self.now: list[Connection] = []
        self.threads: list[int] = []
        self.scopes: list[WatchList | None] = []

    def __call__(self, watched: WatchList | None) -> list[Connection]:
        self.threads.append(threading.get_ident())
        self.scopes.append(watched)
        return list(self.now)


def test_ages_count_from_the_first_sight_and_rates_from_counter_changes() -> None:
    clock = [100.0]
    lister = FakeLister()
    watch = WatchList((parse_spec("5000"),))
    tracker = ConnectionTracker(lambda: watch, lister, clock=lambda: clock[0])
    lister.now = [_conn(5000, 40000, bytes_in=1000, bytes_out=0)]
    first = tracker.poll(False).rows[0]
    # Already open when portwatch started looking: at least this old.
    assert first.age_is_lower_bound and first.age_s == 0.0 and first.rate_in is None
    assert first.watched_port == 5000
    clock[0] = 102.0
    lister.now = [
        _conn(5000, 40000, bytes_in=5000, bytes_out=2000),
        _conn(6000, 5000, pid=11),  # a new connection to a watched remote port
    ]
    old, new = tracker.poll(False).rows
    assert old.age_s == 2.0 and old.rate_in == 2000.0 and old.rate_out == 1000.0
    assert not new.age_is_lower_bound and new.age_s == 0.0 and new.watched_port == 5000
    assert new.rate_in is None  # bytes not measured: no rate, not zero
    # Polls stopped (tab hidden): whatever the next poll finds may be older than it.
    tracker.stop_following()
    clock[0] = 200.0
    lister.now = [_conn(7000, 5000, pid=12)]
    (later,) = tracker.poll(False).rows
    assert later.age_is_lower_bound


@wine_gives_pid_0
def test_a_loopback_connection_counts_once_though_both_ends_are_rows(peers: Peers) -> None:
    watch = WatchList((parse_spec(str(peers.server_port)),))
    snapshot = ConnectionTracker(lambda: watch).poll(False)
    ours = [
        r
        for r in snapshot.rows
        if {r.connection.local_port, r.connection.remote_port}
        == {peers.server_port, peers.client_port}
    ]
    assert {r.connection.pid for r in ours} == {peers.server.pid, peers.client.pid}
    assert ConnectionsSnapshot(tuple(ours), False, 0.0).connection_count == 1


@wine_gives_pid_0
def test_the_model_passes_the_model_tester_with_real_connections(
    qtbot: Any, qtmodeltester: Any
) -> None:
    first = Peers.start()
    second = Peers.start()
    try:
        ports = f"{first.server_port},{second.server_port}"
        watch = WatchList(tuple(parse_spec(p) for p in ports.split(",")))
        tracker = ConnectionTracker(lambda: watch)
        model = ConnectionTableModel(linger_s=0)
        model.update(tracker.poll(False).rows)
        assert model.rowCount() >= 4
        qtmodeltester.check(model, force_py=True)
        second.stop()
        model.update(tracker.poll(False).rows)
        pids = {
            model.data(model.index(r, 0), ViewRole).connection.pid for r in range(model.rowCount())
        }
        assert second.client.pid not in pids and first.client.pid in pids
        qtmodeltester.check(model, force_py=True)
        proxy = ListenerFilterModel()
        proxy.setSourceModel(model)
        proxy.sort(ConnColumn.RATE_IN, Qt.SortOrder.DescendingOrder)
        proxy.set_filter_text(str(first.server_port))
        qtmodeltester.check(proxy, force_py=True)
    finally:
        first.stop()
        second.stop()


def test_new_and_closed_rows_are_marked_like_every_table(qtbot: Any) -> None:
    clock = [0.0]
    model = ConnectionTableModel(clock=lambda: clock[0], linger_s=5)
    lister = FakeLister()
    tracker = ConnectionTracker(lambda: WatchList(()), lister, clock=lambda: clock[0])
    lister.now = [_conn(1, 2, pid=1), _conn(3, 4, pid=2)]
    model.update(tracker.poll(True).rows)
    assert model.change_of_row(0) is None  # the first fill is not news
    lister.now = [_conn(1, 2, pid=1), _conn(5, 6, pid=3)]
    model.update(tracker.poll(True).rows)
    changes = {
        model.data(model.index(r, 0), ViewRole).connection.pid: model.change_of_row(r)
        for r in range(model.rowCount())
    }
    assert changes == {1: None, 2: Change.CLOSED, 3: Change.NEW}
    closed_row = next(r for r in range(model.rowCount()) if model.change_of_row(r) is Change.CLOSED)
    font = model.data(model.index(closed_row, 0), Qt.ItemDataRole.FontRole)
    assert font.strikeOut()
    assert model.data(model.index(closed_row, 0), Qt.ItemDataRole.BackgroundRole) is not None
    clock[0] = 6.0
    model.expire()
    assert model.rowCount() == 2 and all(model.change_of_row(r) is None for r in range(2))


def test_process_names_are_plain_text_and_neutralised_in_csv(qtbot: Any) -> None:
    from PySide6.QtWidgets import QTableView

    from portwatch.ui.connection_actions import ConnectionActions

    model = ConnectionTableModel()
    lister = FakeLister()
    tracker = ConnectionTracker(lambda: WatchList(()), lister)
    lister.now = [_conn(5000, 40000, name="=1+2<b>x\u202e")]
    model.update(tracker.poll(True).rows)
    index = model.index(0, ConnColumn.PROCESS)
    shown = model.data(index)
    assert "\u202e" not in shown and "\\u202e" in shown and "<b>" in shown
    tip = model.data(index, Qt.ItemDataRole.ToolTipRole)
    assert "&lt;b&gt;" in tip and "<b>x" not in tip
    table = QTableView()
    qtbot.addWidget(table)
    table.setModel(model)
    actions = ConnectionActions(table)
    table.selectRow(0)
    rows = list(csv.reader(io.StringIO(actions.selection_as_csv())))
    process_cell = rows[1][rows[0].index("Process")]
    assert process_cell.startswith("'=1+2")


def _select_pid(tab: Any, pid: int) -> bool:
    proxy = tab.proxy
    table = tab.table
    table.clearSelection()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    found = False
    for row in range(proxy.rowCount()):
        view = proxy.data(proxy.index(row, 0), ViewRole)
        if view is not None and view.connection.pid == pid:
            table.selectionModel().select(proxy.index(row, 0), flags)
            found = True
            break
    return found


@wine_gives_pid_0
def test_the_tab_lists_real_connections_from_the_sampler_thread(
    qtbot: Any, make_desktop: Any, peers: Peers, data_dir: Path
) -> None:
    desktop = make_desktop([str(peers.server_port)])
    window = desktop.window
    tab = window.connections_tab
    assert tab.model.rowCount() == 0  # not listed while the tab is not on screen
    asked: list[int] = []
    real = desktop.sampler.sampler._connections
    original = real._lister

    def recording(watched: WatchList | None) -> list[Connection]:
        asked.append(threading.get_ident())
        return original(watched)

    real._lister = recording
    window.show_connections_tab()
    qtbot.waitUntil(lambda: _select_pid(tab, peers.client.pid), timeout=15_000)
    assert asked and threading.get_ident() not in asked  # listed off the GUI thread
    assert _select_pid(tab, peers.server.pid)
    texts = [a.text().replace("&", "") for a in tab.row_actions.menu().actions() if a.text()]
    assert texts[:2] == ["Copy row", "Copy selection as CSV"]
    assert f"Describe port {peers.server_port}/tcp" in texts
    assert any(t.startswith("End process python") and str(peers.server.pid) in t for t in texts)
    tab.row_actions.copy_rows()
    copied = QGuiApplication.clipboard().text()
    assert f"{peers.server_port}" in copied and f"{peers.client_port}" in copied
    assert "on watched ports" in tab.summary.text()
    # Back on the listeners tab the polls stop.
    window.tabs.setCurrentIndex(0)
    wait_ticks(qtbot, desktop, 1)  # a poll under way when the tab changed may still list
    count = len(asked)
    wait_ticks(qtbot, desktop, 2)
    assert len(asked) == count


@wine_gives_pid_0
def test_the_every_port_switch_is_one_click_and_remembered(
    qtbot: Any, make_desktop: Any, peers: Peers, data_dir: Path, tmp_path: Path
) -> None:
    desktop = make_desktop(["1"])  # nothing connected on the watched port
    window = desktop.window
    tab = window.connections_tab
    window.show_connections_tab()
    qtbot.waitUntil(lambda: tab.snapshot is not None, timeout=15_000)
    assert not _select_pid(tab, peers.client.pid)
    tab.all_ports.setChecked(True)
    qtbot.waitUntil(lambda: _select_pid(tab, peers.client.pid), timeout=15_000)
    assert "on every port" in tab.summary.text()
    paths = rooted(data_dir)
    assert json.loads(paths.settings_file.read_text())["connections_all_ports"] is True
    # The next start reads it back: the switch is on again.
    service = SettingsService(paths.settings_file, settings_file.load(paths.settings_file).settings)
    again = ConnectionsTab(service)
    qtbot.addWidget(again)
    assert again.every_port


def _menu_entry(menu: Any, start: str) -> Any:
    return next(a for a in menu.actions() if a.text().replace("&", "").startswith(start))


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not has_net_admin(), reason="needs Linux and root"
)
def test_close_connection_asks_naming_the_connection_and_program_then_closes_it(
    qtbot: Any, make_desktop: Any, peers: Peers
) -> None:
    desktop = make_desktop([str(peers.server_port)])
    window = desktop.window
    tab = window.connections_tab
    window.show_connections_tab()
    qtbot.waitUntil(lambda: _select_pid(tab, peers.client.pid), timeout=15_000)
    (row,) = tab.row_actions.selected_views()
    entry = _menu_entry(tab.row_actions.menu(), "Close connection")
    assert entry.isEnabled()
    box = tab.row_actions.ask_close_connection(row)
    qtbot.waitUntil(box.isVisible)
    text = box.text()
    assert f"127.0.0.1:{peers.client_port} \u2192 127.0.0.1:{peers.server_port}" in text
    assert f"(pid {peers.client.pid})" in text and "python" in text
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    close_button = next(b for b in box.buttons() if b.text() == "Close connection")
    with qtbot.waitSignal(tab.row_actions.connection_close_finished, timeout=10_000) as done:
        close_button.click()
    assert done.args[0].closed, done.args[0].message
    assert peers.server_outcome()["ended"] == "reset"
    # The next poll shows the row closed (red, struck) before it goes.
    qtbot.waitUntil(
        lambda: any(
            tab.model.change_of_row(r) is Change.CLOSED
            and tab.model.views()[r].connection.pid == peers.client.pid
            for r in range(tab.model.rowCount())
        ),
        timeout=10_000,
    )


def _select_only(table: Any, row: int) -> None:
    # Not selectRow: it reads the keyboard modifiers, and a Ctrl left held by an
    # earlier test's key events would add the row to the selection instead.
    flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
    flags |= QItemSelectionModel.SelectionFlag.Rows
    table.selectionModel().select(table.model().index(row, 0), flags)


def test_where_closing_is_not_possible_the_entry_is_disabled_and_says_why(qtbot: Any) -> None:
    from PySide6.QtWidgets import QTableView

    from portwatch.probe.connection_control import close_refusal
    from portwatch.ui.connection_actions import ConnectionActions

    lister = FakeLister()
    tracker = ConnectionTracker(lambda: WatchList(()), lister)
    udp = dataclasses.replace(_conn(5353, 5353), proto=Proto.UDP, state="NONE")
    lister.now = [_conn(5000, 40000), udp]
    model = ConnectionTableModel()
    model.update(tracker.poll(True).rows)
    table = QTableView()
    qtbot.addWidget(table)
    table.setModel(model)
    not_root = ConnectionActions(
        table, refusal=lambda c: close_refusal(c, "linux", privileged=lambda: False)
    )
    _select_only(table, 0)
    entry = _menu_entry(not_root.menu(), "Close connection")
    assert not entry.isEnabled()
    assert entry.text() == "Close connection (needs administrator rights)"
    assert "CAP_NET_ADMIN" in entry.toolTip() and "sudo" in entry.toolTip()
    _select_only(table, 1)
    entry = _menu_entry(not_root.menu(), "Close connection")
    assert not entry.isEnabled() and "UDP" in entry.text()


def test_rows_that_come_into_view_with_the_switch_are_not_marked_new(
    qtbot: Any, tmp_path: Path
) -> None:
    paths = rooted(tmp_path)
    paths.ensure()
    tab = ConnectionsTab(SettingsService(paths.settings_file, settings_file.Settings()))
    qtbot.addWidget(tab)
    lister = FakeLister()
    tracker = ConnectionTracker(lambda: WatchList((parse_spec("5000"),)), lister)
    lister.now = [_conn(5000, 40000)]
    tab.show_snapshot(tracker.poll(False))
    tab.all_ports.setChecked(True)
    lister.now = [_conn(5000, 40000), _conn(6000, 40001, pid=11)]
    tab.show_snapshot(tracker.poll(True))
    model = tab.model
    assert model.rowCount() == 2
    assert all(model.change_of_row(r) is None for r in range(2))
    # A connection that really opens afterwards is new.
    lister.now = [*lister.now, _conn(7000, 40002, pid=12)]
    tab.show_snapshot(tracker.poll(True))
    assert [model.change_of_row(r) for r in range(3)] == [None, None, Change.NEW]


def test_the_connections_columns_are_chosen_on_the_header_and_remembered(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    desktop = make_desktop()
    tab = desktop.window.connections_tab
    menu = tab.column_chooser.menu()
    entries = {a.text(): a for a in menu.actions()}
    # The remote address tells rows apart; the host column waits for reverse DNS.
    assert not entries["Remote address"].isEnabled()
    host = entries["Remote host"]
    assert not host.isEnabled() and "Settings" in host.toolTip()
    assert tab.table.isColumnHidden(ConnColumn.REMOTE_HOST)
    entries["Age"].setChecked(False)
    assert tab.table.isColumnHidden(ConnColumn.AGE)
    saved = json.loads((data_dir / "settings.json").read_text())
    assert saved["connection_hidden_columns"] == ["age"]
    # Host names turned on: the host column comes back, the hidden age stays hidden.
    service = desktop.settings_service
    service.apply(dataclasses.replace(service.current, reverse_dns=True))
    assert not tab.table.isColumnHidden(ConnColumn.REMOTE_HOST)
    assert tab.table.isColumnHidden(ConnColumn.AGE)
    desktop.shutdown()

    kept = settings_file.load(data_dir / "settings.json")
    assert not kept.problems
    again = make_desktop(folder=data_dir, settings=kept.settings).window.connections_tab
    assert again.table.isColumnHidden(ConnColumn.AGE)
    assert not again.table.isColumnHidden(ConnColumn.PID)
    again.column_chooser.show_all()
    assert not again.table.isColumnHidden(ConnColumn.AGE)
