"""The listeners table model: incremental updates by identity, checked by Qt's model tester."""

from __future__ import annotations

from typing import Any

from childsockets import ChildSockets, free_port, wait_for
from platforms import wine_gives_pid_0
from PySide6.QtCore import QModelIndex, Qt

from portwatch.core.types import Endpoint, Family, ListenerView, Owner, Proto, Status
from portwatch.core.types import Listener as CoreListener
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.engine.monitor import Monitor
from portwatch.probe import create
from portwatch.ui.listener_model import Column, ListenerFilterModel, ListenerTableModel


def _view(port: int, pid: int, name: str = "server", status: Status = Status.UNKNOWN) -> Any:
    endpoint = Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", port)
    owner = Owner(pid=pid, create_time=1.0, name=name, exe=f"/usr/bin/{name}", sha256="ab" * 32)
    return ListenerView(CoreListener(endpoint, owner), watched=port == 3653, status=status)


@wine_gives_pid_0
def test_model_passes_the_model_tester_with_real_listeners(
    qtbot: Any, qtmodeltester: Any, child_sockets: list
) -> None:
    # qtbot: the model's highlight timer needs a running application (run alone, this
    # test was otherwise the first to make one, after the timer).
    port = free_port()
    child = ChildSockets.start(
        [("tcp", "127.0.0.1", port, "listen"), ("udp", "127.0.0.1", 0, "listen")],
        registry=child_sockets,
    )
    monitor = Monitor(create("psutil"), None, WatchList((parse_spec(str(port)),)))
    try:
        result = wait_for(
            lambda: (
                (r := monitor.tick())
                and any(v.listener.owner and v.listener.owner.pid == child.pid for v in r.views)
                and r
            )
        )
        model = ListenerTableModel()
        model.update(result.views)
        qtmodeltester.check(model, force_py=True)
        child.stop()
        after = wait_for(
            lambda: (
                (r := monitor.tick())
                and not any(v.listener.owner and v.listener.owner.pid == child.pid for v in r.views)
                and r
            )
        )
        model.update(after.views)
        qtmodeltester.check(model, force_py=True)
        # The sorted, filtered view over the same data passes too.
        proxy = ListenerFilterModel()
        proxy.setSourceModel(model)
        proxy.sort(Column.PORT, Qt.SortOrder.AscendingOrder)
        proxy.set_filter_text("tcp")
        qtmodeltester.check(proxy, force_py=True)
    finally:
        monitor.close()


def test_updates_touch_only_the_rows_that_changed(qtbot: Any) -> None:
    # Without the few seconds closed rows stay on screen (tested on their own).
    model = ListenerTableModel(linger_s=0)
    a, b, c = _view(1000, 1), _view(2000, 2), _view(3000, 3)
    model.update([a, b, c])
    assert model.rowCount() == 3
    events: list[tuple[str, int, int]] = []
    model.rowsRemoved.connect(lambda _p, first, last: events.append(("removed", first, last)))
    model.rowsInserted.connect(lambda _p, first, last: events.append(("inserted", first, last)))
    model.dataChanged.connect(
        lambda top, bottom, _roles=(): events.append(("changed", top.row(), bottom.row()))
    )
    model.modelReset.connect(lambda: events.append(("reset", -1, -1)))

    model.update([a, b, c])
    assert events == []

    b_known = _view(2000, 2, status=Status.KNOWN)
    d = _view(4000, 4)
    model.update([a, b_known, d])
    assert ("removed", 2, 2) in events
    assert ("changed", 1, 1) in events
    assert ("inserted", 2, 2) in events
    assert not any(kind == "reset" for kind, _f, _l in events)
    assert [v.listener.port for v in model.views()] == [1000, 2000, 4000]
    assert model.data(model.index(1, Column.STATUS)) == "trusted owner"


def test_a_new_process_on_the_same_port_is_a_new_row(qtbot: Any) -> None:
    model = ListenerTableModel(linger_s=0)
    model.update([_view(3653, 10)])
    removed: list[int] = []
    model.rowsRemoved.connect(lambda _p, first, _last: removed.append(first))
    model.update([_view(3653, 11)])
    assert removed == [0]
    assert model.data(model.index(0, Column.PID)) == "11"


def test_filter_matches_text_literally_and_sorting_is_numeric(qtbot: Any) -> None:
    model = ListenerTableModel()
    model.update([_view(900, 1, "a.b"), _view(10000, 2, "axb"), _view(80, 3, "web")])
    proxy = ListenerFilterModel()
    proxy.setSourceModel(model)
    proxy.set_filter_text("a.b")
    assert proxy.rowCount() == 1  # "." is not a wildcard
    proxy.set_filter_text("")
    proxy.sort(Column.PORT, Qt.SortOrder.AscendingOrder)
    ports = [proxy.data(proxy.index(r, Column.PORT)) for r in range(proxy.rowCount())]
    assert ports == ["80", "900", "10000"]


def test_hostile_text_is_plain_and_invisible_characters_show(qtbot: Any) -> None:
    model = ListenerTableModel()
    model.update([_view(3653, 1, name="<img src=x>\u202eevil\x07")])
    shown = model.data(model.index(0, Column.PROCESS))
    assert shown == "<img src=x>\\u202eevil\\x07"
    tip = model.data(model.index(0, Column.PROCESS), Qt.ItemDataRole.ToolTipRole)
    assert "<img" not in tip
    assert "&lt;img src=x&gt;" in tip
    assert model.data(QModelIndex()) is None


@wine_gives_pid_0
def test_unwatched_listeners_are_neutral_in_the_table(qtbot: Any, child_sockets: list) -> None:
    """Off the watch list there is no warning icon and no "unknown owner": the engine's
    view of a real, untrusted listener on an unwatched port reads "unwatched"."""
    watched_port, other_port = free_port(), free_port()
    child = ChildSockets.start(
        [("tcp", "127.0.0.1", watched_port, "listen"), ("tcp", "127.0.0.1", other_port, "listen")],
        registry=child_sockets,
    )
    monitor = Monitor(create("psutil"), None, WatchList((parse_spec(str(watched_port)),)))
    try:
        result = wait_for(
            lambda: (
                (r := monitor.tick())
                and sum(
                    bool(v.listener.owner and v.listener.owner.pid == child.pid) for v in r.views
                )
                == 2
                and r
            )
        )
    finally:
        monitor.close()
    model = ListenerTableModel()
    model.update(result.views)
    rows = {model.data(model.index(row, Column.PORT)): row for row in range(model.rowCount())}
    watched = model.index(rows[str(watched_port)], Column.STATUS)
    other = model.index(rows[str(other_port)], Column.STATUS)
    assert model.data(watched) == "unknown owner"
    assert model.data(watched, Qt.ItemDataRole.DecorationRole) is not None
    assert model.data(other) == "unwatched"
    assert model.data(other, Qt.ItemDataRole.DecorationRole) is None
    assert "unknown" not in model.data(other, Qt.ItemDataRole.ToolTipRole)


def test_started_by_and_reachable_from_columns(qtbot: Any) -> None:
    from portwatch.core.exposure import Exposure

    endpoint = Endpoint(Proto.TCP, Family.IPV4, "0.0.0.0", 8080)
    proxy = Owner(
        pid=901,
        create_time=1.0,
        name="docker-proxy",
        started_by="docker-proxy for docker container <b>web</b> (3f4e8a1b2c3d), its port 80/tcp",
        parents=(("dockerd", 700), ("systemd", 1)),
    )
    exposure = Exposure(
        "public", addresses=("203.0.113.7",), everywhere=True, bypasses_firewall=True
    )
    child = Owner(pid=902, create_time=1.0, name="app", parents=(("bash", 77),))
    model = ListenerTableModel()
    model.update(
        [
            ListenerView(CoreListener(endpoint, proxy, exposure=exposure), True, Status.UNKNOWN),
            ListenerView(
                CoreListener(Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", 9), child),
                False,
                Status.UNWATCHED,
            ),
        ]
    )
    assert model.data(model.index(0, Column.STARTED_BY)).startswith(
        "docker-proxy for docker container <b>web</b>"
    )
    assert model.data(model.index(0, Column.REACHABLE)) == (
        "all interfaces, including a public address: 203.0.113.7"
        " (Docker: bypasses the host firewall)"
    )
    tip = model.data(model.index(0, Column.STARTED_BY), Qt.ItemDataRole.ToolTipRole)
    assert "&lt;b&gt;web" in tip and "parents: dockerd (700) &lt; systemd (1)" in tip
    # Nothing named it: the nearest parent is what is known; reach not worked out is "".
    assert model.data(model.index(1, Column.STARTED_BY)) == "bash (pid 77)"
    assert model.data(model.index(1, Column.REACHABLE)) == ""
    model.stop_timers()


def test_a_changed_exposure_redraws_the_row(qtbot: Any) -> None:
    """Exposure takes no part in a listener's equality, yet the table shows it: a new
    firewall reading or address must reach the Reachable from column."""
    from portwatch.core.exposure import Exposure

    endpoint = Endpoint(Proto.TCP, Family.IPV4, "0.0.0.0", 8080)
    owner = Owner(pid=5, create_time=1.0, name="app")
    before = Exposure("network", addresses=("192.168.1.5",), everywhere=True)
    after = Exposure("network", addresses=("192.168.1.5",), everywhere=True, firewall="x")
    model = ListenerTableModel(linger_s=0.0)
    model.update(
        [ListenerView(CoreListener(endpoint, owner, exposure=before), True, Status.UNKNOWN)]
    )
    with qtbot.waitSignal(model.dataChanged, timeout=1000):
        model.update(
            [ListenerView(CoreListener(endpoint, owner, exposure=after), True, Status.UNKNOWN)]
        )
    tip = model.data(model.index(0, Column.REACHABLE), Qt.ItemDataRole.ToolTipRole)
    assert "x" in tip.split("<br>")[-1]
    model.stop_timers()
