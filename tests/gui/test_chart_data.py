"""The chart's rules, on numbers: gaps are gaps, traffic spans what it measured, history
and live points meet without a seam, and each watched port gets its own axis."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
from PySide6.QtCore import Qt

from portwatch.core.types import PortActivity, Proto
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.ui.chart import ActivityChart, unmeasured_reason
from portwatch.ui.chart_data import (
    SeriesBuffer,
    bucket_traffic,
    bucketize,
    compose,
    live_traffic,
    step_xy,
)

NAN = math.nan


def _sample(wall: float, *activity: PortActivity, probe: str = "netlink") -> Any:
    return SimpleNamespace(wall=wall, listeners=(), activity=activity, probe_name=probe)


def test_traffic_covers_the_polls_since_the_last_count_and_never_crosses_a_failed_poll() -> None:
    buffer = SeriesBuffer(20)
    buffer.append_sample(100.0, 1, 1, 2.0)  # first poll: the baseline, nothing counted
    buffer.append_sample(102.0, 1, 1, 2.0, 2000, 4000)
    buffer.append_sample(104.0, 1, 1, 2.0)  # re-used the last count
    buffer.append_sample(106.0, 1, 1, 2.0, 4000, 0)
    buffer.append(108.0, NAN, NAN)  # failed poll
    buffer.append_sample(110.0, 1, 1, 2.0, 9_000_000, 0)  # includes the failed stretch
    buffer.append_sample(112.0, 1, 1, 2.0, 2000, 2000)
    spans = live_traffic(buffer.ordered(), 2.0)
    assert spans.tolist() == [
        [100.0, 102.0, 2000.0, 4000.0],
        [102.0, 106.0, 4000.0, 0.0],
        # After the failed poll the first count only starts the next span.
        [110.0, 112.0, 2000.0, 2000.0],
    ]


def test_a_failed_poll_is_a_break_in_every_drawn_line_never_a_zero() -> None:
    buffer = SeriesBuffer(20)
    for wall in (100.0, 102.0, 104.0):
        buffer.append_sample(wall, 2, 1, 2.0, 10, 10)
    buffer.append(106.0, NAN, NAN)
    for wall in (108.0, 110.0):
        buffer.append_sample(wall, 2, 1, 2.0, 10, 10)
    drawn = compose(buffer.ordered(), None, 10.0, 2.0, since=0.0, bucket_s=None)
    points = drawn.count_points()
    assert math.isnan(points[3, 1]) and math.isnan(points[3, 2])
    assert not (points[:, 1:] == 0).any()
    xs, ys = step_xy(drawn.counts[:, 0], drawn.counts[:, 1], drawn.counts[:, 2])
    assert np.isnan(ys).sum() == 1  # one break, where the poll failed
    assert not (ys[np.isfinite(ys)] == 0).any()
    # No step is drawn over the failed poll's time.
    finite = np.isfinite(ys)
    assert not ((xs[finite] > 104.0) & (xs[finite] < 106.0)).any()


def test_a_sleep_is_a_gap_with_no_ramp_across_it() -> None:
    buffer = SeriesBuffer(20)
    buffer.append_sample(100.0, 1, 1, 2.0, 0, 0)
    buffer.append_sample(102.0, 1, 1, 2.0, 5, 5)
    buffer.append_sample(4000.0, 3, 3, 2.0, 999, 999)  # after the laptop slept
    drawn = compose(buffer.ordered(), None, 10.0, 2.0, since=0.0, bucket_s=None)
    xs, ys = step_xy(drawn.counts[:, 0], drawn.counts[:, 1], drawn.counts[:, 2])
    finite = np.isfinite(ys)
    assert not ((xs[finite] > 200.0) & (xs[finite] < 3990.0)).any()
    assert all(span[1] - span[0] <= 4.0 for span in drawn.traffic)


def test_long_windows_fold_live_polls_into_the_stores_buckets_without_a_seam() -> None:
    # History read at 1035 holds buckets 1000-1030 (this run's polls in the last ones);
    # live polls started at 1022 and went on after the read.
    history = np.array(
        [
            [1000.0, 1, 0, 100, 100],
            [1010.0, 1, 1, 200, 200],
            [1020.0, 1, 2, 300, 300],
            [1030.0, 1, 2, 50, 50],  # read mid-bucket: partial
        ]
    )
    buffer = SeriesBuffer(100)
    for wall in np.arange(1022.0, 1060.0, 2.0):
        buffer.append_sample(wall, 1, 2, 2.0, 10, 10)
    drawn = compose(buffer.ordered(), history, 10.0, 2.0, since=0.0, bucket_s=10.0)
    starts = drawn.counts[:, 0].tolist()
    assert starts == [1000.0, 1010.0, 1020.0, 1030.0, 1040.0, 1050.0]
    # Each bucket once: history's up to the partial one, then the live ones (the
    # partial bucket is taken whole from the live polls).
    assert drawn.traffic[:, 2].tolist() == [100.0, 200.0, 300.0, 50.0, 50.0, 50.0]
    _xs, ys = step_xy(drawn.counts[:, 0], drawn.counts[:, 1], drawn.counts[:, 3])
    assert not np.isnan(ys).any()  # one line, no glitch where history meets live


def test_history_buckets_without_a_count_are_covered_by_the_next_count() -> None:
    buckets = np.array(
        [
            [0.0, 1, 1, 10, 10],
            [10.0, 1, 1, NAN, NAN],  # only polls that re-used the last count
            [20.0, 1, 1, 40, 40],
            [60.0, 1, 1, 5, 5],  # after missing buckets: its own width only
        ]
    )
    spans = bucket_traffic(buckets, 10.0)
    assert spans[:, :2].tolist() == [[0.0, 10.0], [10.0, 30.0], [60.0, 70.0]]


def test_bucketize_keeps_the_most_seen_and_sums_bytes_and_drops_failed_buckets() -> None:
    points = np.array(
        [
            [1.0, 1, 3, 10, NAN],
            [3.0, 2, 1, 5, NAN],
            [12.0, NAN, NAN, NAN, NAN],
            [21.0, 1, 0, NAN, NAN],
        ]
    )
    out = bucketize(points, 10.0)
    assert out[:, 0].tolist() == [0.0, 20.0]
    assert out[0, 1:4].tolist() == [2.0, 3.0, 15.0]
    assert math.isnan(out[0, 4]) and math.isnan(out[1, 3])


def test_unmeasured_traffic_is_said_on_the_chart_not_drawn_as_zero(qtbot: Any) -> None:
    udp, tcp = parse_spec("5353/udp"), parse_spec("8080/tcp")
    chart = ActivityChart(capacity=100, clock=lambda: 1010.0)
    qtbot.addWidget(chart)
    chart.set_watchlist(WatchList((udp, tcp)))
    for wall in (1000.0, 1002.0, 1004.0):
        chart.add_sample(
            _sample(
                wall,
                PortActivity(5353, Proto.UDP, 1, 0),
                PortActivity(8080, Proto.TCP, 1, 0),
                probe="psutil",
            )
        )
    chart.choose(udp)
    chart.redraw()
    assert "UDP" in chart.unmeasured.toPlainText()
    assert len(chart.traffic_points(udp)) == 0
    assert chart.curves["in"].yData is None or len(chart.curves["in"].yData) == 0
    assert "traffic not measured" in chart.strip.row_of(udp).summary
    chart.choose(tcp)
    chart.redraw()
    assert "not measured" in chart.unmeasured.toPlainText()
    assert unmeasured_reason(tcp, "psutil", "darwin").count("nettop") == 1
    assert "administrators" in unmeasured_reason(tcp, "psutil", "win32")


def test_the_legend_hides_and_shows_lines(qtbot: Any) -> None:
    chart = ActivityChart(capacity=100, clock=lambda: 1010.0)
    qtbot.addWidget(chart)
    chart.show()
    spec = parse_spec("8080/tcp")
    chart.set_watchlist(WatchList((spec,)))
    toggle = chart.toggles["connected"]
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert not toggle.isChecked()
    assert not chart.curves["connected"].isVisible()
    assert chart.curves["listening"].isVisible()
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert chart.curves["connected"].isVisible()


def test_a_thirty_port_range_does_not_squash_a_quiet_port(qtbot: Any) -> None:
    quiet, busy = parse_spec("3321/tcp"), parse_spec("40000-40029/tcp")
    chart = ActivityChart(capacity=100, clock=lambda: 1010.0)
    qtbot.addWidget(chart)
    chart.set_watchlist(WatchList((quiet, busy)))
    for wall in (1000.0, 1002.0, 1004.0):
        rows = [PortActivity(3321, Proto.TCP, 1, 2, 0, 0, 0)]
        rows += [PortActivity(40000 + i, Proto.TCP, 1, 0, 0, 0, 0) for i in range(30)]
        chart.add_sample(_sample(wall, *rows))
    chart.choose(quiet)
    chart.redraw()
    _low, high = chart.plot.getPlotItem().getViewBox().viewRange()[1]
    assert high < 5  # the quiet port's own scale: 2 connections fill the plot
    assert chart.series_points(busy)[-1, 1] == 30
    chart.choose(busy)
    chart.redraw()
    assert chart.plot.getPlotItem().getViewBox().viewRange()[1][1] > 30
    assert "30 listening" in chart.strip.row_of(busy).summary


def test_the_ring_hands_out_the_window_with_the_point_before_it() -> None:
    buffer = SeriesBuffer(5)
    assert len(buffer.since(0.0)) == 0
    for wall in range(7):  # wraps: holds 2..6
        buffer.append(float(wall), 1, 1)
    for since, expected in ((0.0, [2, 3, 4, 5, 6]), (4.5, [4, 5, 6]), (5.0, [4, 5, 6])):
        assert buffer.since(since)[:, 0].tolist() == expected
    assert buffer.since(99.0)[:, 0].tolist() == [6]
    for wall in range(7, 9):  # head at 4: older run 6..? then newer 7, 8
        buffer.append(float(wall), 1, 1)
    assert buffer.since(6.5)[:, 0].tolist() == [6, 7, 8]
    assert buffer.since(3.0)[:, 0].tolist() == [4, 5, 6, 7, 8]


def test_a_tcp_and_udp_port_says_its_traffic_is_tcp_only(qtbot: Any) -> None:
    both = parse_spec("3653")
    chart = ActivityChart(capacity=100, clock=lambda: 1010.0)
    qtbot.addWidget(chart)
    chart.set_watchlist(WatchList((both,)))
    for wall in (1000.0, 1002.0):
        chart.add_sample(
            _sample(
                wall,
                PortActivity(3653, Proto.TCP, 1, 1, 20, 10, 10),
                PortActivity(3653, Proto.UDP, 1, 0),
            )
        )
    chart.redraw()
    assert "TCP only" in chart.title.text()
    assert chart.traffic_points(both)[:, 2].sum() == 10


def test_a_sparkline_is_unbroken_over_data_and_broken_over_a_gap() -> None:
    from portwatch.ui.chart import sketch_points

    ends = np.r_[np.arange(101.0, 131.0), np.arange(171.0, 201.0)]  # 1 s polls, a gap
    starts = ends - 1.0
    counts = np.column_stack((starts, ends, np.ones(60), np.where(ends == 120.0, 5.0, 1.0)))
    sketch = sketch_points(counts, 100.0, 200.0, columns=96)
    times, values = sketch[:, 0], sketch[:, 1]
    assert not np.isnan(values[(times > 101.0) & (times <= 130.0)]).any()
    assert np.isnan(values[(times > 132.0) & (times < 170.0)]).all()
    assert np.nanmax(values) == 5.0  # a one-poll peak still shows
