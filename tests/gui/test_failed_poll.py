"""A failed poll is a gap: the table keeps its last good rows and the chart draws no zero."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from childsockets import ChildSockets
from guikit import wait_ticks

from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.engine.monitor import Monitor
from portwatch.probe import create
from portwatch.probe.base import ProbeError
from portwatch.store.history import HistoryStore


class FlakyProbe:
    """The real probe, failing while ``failing`` is set (a seam we own)."""

    name = "flaky"

    def __init__(self) -> None:
        self._real = create("psutil")
        self.failing = False

    def poll(self, watched: WatchList) -> Any:
        if self.failing:
            raise ProbeError("the socket table could not be read")
        return self._real.poll(watched)

    def close(self) -> None:
        self._real.close()


def test_a_failed_poll_keeps_the_rows_and_is_a_gap_in_the_chart(
    qtbot: Any, make_desktop: Any, data_dir: Path, child_sockets: list[ChildSockets]
) -> None:
    server = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    port = server.ports[0]
    ChildSockets.start([("tcp", "127.0.0.1", port, "connect")], registry=child_sockets)
    spec = parse_spec(str(port))
    probe = FlakyProbe()

    def factory() -> Any:
        store = HistoryStore.open(data_dir / "history.sqlite3")
        return Monitor(probe, store, WatchList((spec,))), store.notices

    desktop = make_desktop([str(port)], factory=factory)
    window = desktop.window
    chart_spec = spec

    def good_point() -> bool:
        points = window.chart.series_points(chart_spec)
        return bool(len(points)) and points[-1, 1] == 1 and points[-1, 2] == 1

    qtbot.waitUntil(good_point, timeout=15_000)
    assert window.model.rowCount() >= 1
    probe.failing = True
    # Rows counted once a poll has failed: a good poll still in flight may show a listener
    # that some other program on this machine opened meanwhile.
    qtbot.waitUntil(lambda: "failed" in window.status_text.text(), timeout=15_000)
    rows = window.model.rowCount()
    wait_ticks(qtbot, desktop, 2)
    points = window.chart.series_points(chart_spec)
    assert math.isnan(points[-1, 1]) and math.isnan(points[-1, 2])
    assert not any(value == 0 for value in points[:, 1:].ravel())
    assert window.model.rowCount() == rows
    status = window.status_text.text()
    assert "failed" in status
    assert "0 listeners" not in status
    probe.failing = False
    qtbot.waitUntil(good_point, timeout=15_000)
    assert "failed" not in window.status_text.text()
