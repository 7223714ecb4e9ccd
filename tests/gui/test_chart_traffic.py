"""Real loopback traffic on a watched port: the history and the chart agree with it.

A child process moves 10 MB each way through one loopback connection on a watched
port while the app polls. The store's byte buckets, the chart's 5-minute data (every
poll) and its 1-hour data (history buckets joined to live ones) must all say 10 MB in
and 10 MB out within 5 %, and the connection must count once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from guikit import wait_ticks

sys.path.insert(0, str(Path(__file__).parents[1]))

from loopback_traffic import TEN_MB, LoopbackTraffic

from portwatch.core.types import Proto
from portwatch.core.watchlist import parse_spec
from portwatch.store.history import HistoryStore

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="per-socket byte counters are read on Linux only (tcp_info over netlink)",
)


def _chart_bytes(chart: Any, spec: Any) -> tuple[float, float]:
    traffic = chart.traffic_points(spec)
    return float(traffic[:, 2].sum()), float(traffic[:, 3].sum())


def _history_bytes(data_dir: Path, port: int, resolution: int) -> tuple[int, int, int]:
    reader = HistoryStore.open_readonly(data_dir / "history.sqlite3")
    try:
        rows = reader.activity(port, Proto.TCP, 0, 4e9, resolution)
    finally:
        reader.close()
    return (
        sum(r.bytes_in or 0 for r in rows),
        sum(r.bytes_out or 0 for r in rows),
        sum(r.bytes or 0 for r in rows),
    )


@linux_only
def test_ten_megabytes_each_way_agree_in_history_and_chart(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    with LoopbackTraffic() as traffic:
        spec = parse_spec(f"{traffic.port}/tcp")
        desktop = make_desktop([str(spec)])
        window = desktop.window
        chart = window.chart
        wait_ticks(qtbot, desktop, 3)
        if chart.probe_name != "netlink":
            pytest.skip("the netlink probe is not available here")
        traffic.send(TEN_MB)

        def counted() -> bool:
            got_in, got_out = _chart_bytes(chart, spec)
            return got_in >= TEN_MB * 0.95 and got_out >= TEN_MB * 0.95

        qtbot.waitUntil(counted, timeout=15_000)
        wait_ticks(qtbot, desktop, 2)
        got_in, got_out = _chart_bytes(chart, spec)
        assert got_in == pytest.approx(TEN_MB, rel=0.05)
        assert got_out == pytest.approx(TEN_MB, rel=0.05)
        # Drawn as bytes per second, in the traffic plot, not as nothing.
        assert chart.curves["in"].yData is not None and np.nanmax(chart.curves["in"].yData) > 0
        assert chart.unmeasured.toPlainText() == ""

        # One loopback connection (both ends on this machine) counts once.
        points = chart.series_points(spec)
        assert points[-1, 2] == 1

        # The store's buckets hold the same bytes, by direction and in total.
        history_in, history_out, total = _history_bytes(data_dir, traffic.port, 10)
        assert history_in == pytest.approx(TEN_MB, rel=0.05)
        assert history_out == pytest.approx(TEN_MB, rel=0.05)
        assert total == pytest.approx(2 * TEN_MB, rel=0.05)

        # The 1-hour window (history buckets, then live points folded the same way).
        live_steps = np.diff(chart.series_points(spec)[:, 0])
        chart.set_window(3600.0)
        qtbot.waitUntil(lambda: chart.history_loaded(spec), timeout=10_000)
        hour_in, hour_out = _chart_bytes(chart, spec)
        assert hour_in == pytest.approx(TEN_MB, rel=0.05)
        assert hour_out == pytest.approx(TEN_MB, rel=0.05)
        hour_steps = np.diff(chart.series_points(spec)[:, 0])
        assert (hour_steps >= 9.99).all()  # 10 s buckets, not polls

        # Back on 5 minutes: the live polls are still there, not replaced by buckets.
        chart.set_window(300.0)
        back = np.diff(chart.series_points(spec)[:, 0])
        assert len(back) >= len(live_steps)
        assert np.median(back) == pytest.approx(np.median(live_steps), rel=0.5)
        assert np.median(back) < 5
        assert _chart_bytes(chart, spec)[0] == pytest.approx(TEN_MB, rel=0.05)


@linux_only
def test_the_hour_after_a_restart_shows_the_traffic_history_holds(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    with LoopbackTraffic() as traffic:
        spec = parse_spec(f"{traffic.port}/tcp")
        first = make_desktop([str(spec)])
        wait_ticks(qtbot, first, 3)
        if first.window.chart.probe_name != "netlink":
            pytest.skip("the netlink probe is not available here")
        traffic.send(TEN_MB, TEN_MB // 2)
        qtbot.waitUntil(
            lambda: _history_bytes(data_dir, traffic.port, 10)[0] >= TEN_MB * 0.95,
            timeout=15_000,
        )
        first.shutdown()

        # A new window on the same data folder: the hour comes from the history.
        second = make_desktop([str(spec)])
        chart = second.window.chart
        chart.set_window(3600.0)
        qtbot.waitUntil(lambda: chart.history_loaded(spec), timeout=10_000)
        got_in, got_out = _chart_bytes(chart, spec)
        assert got_in == pytest.approx(TEN_MB, rel=0.05)
        assert got_out == pytest.approx(TEN_MB // 2, rel=0.05)
        points = chart.series_points(spec)
        assert (points[:, 2] == 1).any()  # the connection, once
        assert not (chart.traffic_points(spec)[:, 1] - chart.traffic_points(spec)[:, 0] > 60).any()


def test_the_port_selected_in_the_watched_list_is_the_one_charted_large(
    qtbot: Any, make_desktop: Any
) -> None:
    desktop = make_desktop(["3321/tcp", "40000-40029/tcp"])
    window = desktop.window
    wait_ticks(qtbot, desktop)
    assert window.watch_panel.select_port(40005, Proto.TCP)
    qtbot.waitUntil(lambda: window.chart.chosen == parse_spec("40000-40029/tcp"), timeout=5000)
    assert "40000-40029/tcp" in window.chart.title.text()
    # And the strip row chooses it the other way.
    window.chart.strip.setCurrentRow(0)
    assert window.chart.chosen == parse_spec("3321/tcp")
