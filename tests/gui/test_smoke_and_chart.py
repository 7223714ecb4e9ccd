"""The ``--smoke`` check used on frozen builds, and the chart's buffers."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtGui import QImage

from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.ui.chart import ActivityChart
from portwatch.ui.chart_data import SeriesBuffer, compose, sum_port_rows

REPO = Path(__file__).resolve().parents[2]


def test_smoke_option_saves_a_screenshot_and_exits_zero(tmp_path: Path) -> None:
    png = tmp_path / "shots" / "smoke.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "portwatch", "--data-dir", str(tmp_path / "d"), "--smoke", str(png)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    image = QImage(str(png))
    assert not image.isNull()
    assert image.width() > 400
    assert image.height() > 300


def _smoke(data: Path, target: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "portwatch", "--data-dir", str(data), "--smoke", str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(os.name != "posix", reason="POSIX files (links need privileges on Windows)")
def test_smoke_never_writes_through_a_link(tmp_path: Path) -> None:
    """Qt's own save truncated the file behind a link; the screenshot follows the
    export's rules, refused before the window."""
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    link = tmp_path / "shot.png"
    link.symlink_to(victim)
    data = tmp_path / "d"
    data.mkdir(mode=0o700)
    result = _smoke(data, link)
    assert result.returncode == 1
    assert "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert victim.read_text() == "keep\n"


def test_smoke_never_writes_over_portwatchs_files(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir(mode=0o700)
    (data / "trust.json").write_text("{}")
    result = _smoke(data, data / "trust.json")
    assert result.returncode == 1
    assert "portwatch's own" in result.stderr and "Traceback" not in result.stderr
    assert (data / "trust.json").read_text() == "{}"


def test_ring_buffer_keeps_the_newest_points_in_order() -> None:
    buffer = SeriesBuffer(capacity=4)
    for i in range(6):
        buffer.append(float(i), i, 0)
    assert buffer.ordered()[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0]


def test_a_long_gap_becomes_a_break_in_the_line() -> None:
    buffer = SeriesBuffer(capacity=10)
    buffer.append_sample(100.0, 1, 0, interval_s=2.0)
    buffer.append_sample(102.0, 1, 0, interval_s=2.0)
    buffer.append_sample(1000.0, 1, 0, interval_s=2.0)  # the laptop slept
    points = buffer.ordered()
    assert len(points) == 4
    assert math.isnan(points[2, 1])
    assert points[2, 0] == 104.0


def test_history_rows_are_summed_per_bucket_and_unmeasured_bytes_stay_unknown() -> None:
    a = [(10.0, 1, 2, 100, 5), (20.0, 1, 0, None, None)]
    b = [(10.0, 1, 1, None, None), (500.0, 0, 0, 7, 8)]
    points = sum_port_rows([a, b])
    assert points[0].tolist() == [10.0, 2.0, 3.0, 100.0, 5.0]
    assert points[1, :3].tolist() == [20.0, 1.0, 0.0]
    assert math.isnan(points[1, 3]) and math.isnan(points[1, 4])
    assert points[-1].tolist() == [500.0, 0.0, 0.0, 7.0, 8.0]


def test_history_goes_before_live_points_and_never_replaces_them() -> None:
    buffer = SeriesBuffer(capacity=10)
    buffer.append(55.0, 3, 0)
    buffer.append(57.0, 4, 0)
    history = np.array([[10.0, 1, 0, 0, 0], [20.0, 2, 0, 0, 0], [50.0, 9, 9, 0, 0]])
    drawn = compose(buffer.ordered(), history, 10.0, 2.0, since=0.0, bucket_s=None)
    # History up to the first live point (the bucket of 50-60 overlaps the live ones).
    assert drawn.count_points()[:, 0].tolist() == [20.0, 30.0, 55.0, 57.0]
    assert buffer.ordered()[:, 0].tolist() == [55.0, 57.0]


def test_chart_redraws_on_its_own_timer_not_per_sample(qtbot: Any) -> None:
    now = [1000.0]
    chart = ActivityChart(capacity=100, clock=lambda: now[0])
    qtbot.addWidget(chart)
    chart.set_watchlist(WatchList((parse_spec("3653"),)))
    chart.show()
    qtbot.waitExposed(chart)
    drawn = chart.redraw_count

    class Sample:
        wall = 1000.0
        listeners = ()
        activity = ()

    for i in range(20):
        Sample.wall = 1000.0 + i
        chart.add_sample(Sample)
    assert chart.redraw_count == drawn  # samples only mark the chart dirty
    qtbot.waitUntil(lambda: chart.redraw_count == drawn + 1, timeout=3000)
    assert len(chart.series_points(parse_spec("3653"))) == 20


def test_a_hidden_chart_does_not_redraw_until_it_is_shown(qtbot: Any) -> None:
    # The window hidden in the tray costs no redraws; shown again, it is up to date.
    chart = ActivityChart(capacity=100, clock=lambda: 1000.0)
    qtbot.addWidget(chart)
    spec = parse_spec("3653")
    chart.set_watchlist(WatchList((spec,)))
    chart.show()
    qtbot.waitExposed(chart)
    assert chart.redraw_timer_running
    chart.hide()
    drawn = chart.redraw_count

    class Sample:
        wall = 1000.0
        listeners = ()
        activity = ()

    for i in range(3):
        Sample.wall = 1000.0 + i
        chart.add_sample(Sample)
    assert not chart.redraw_timer_running
    assert chart.redraw_count == drawn
    chart.show()
    assert chart.redraw_timer_running
    assert chart.redraw_count == drawn + 1
    assert len(chart.series_points(spec)) == 3


def test_hover_reads_out_the_values_under_the_pointer(qtbot: Any) -> None:
    import time

    from PySide6.QtCore import QPoint

    chart = ActivityChart(capacity=100)
    qtbot.addWidget(chart)
    chart.resize(800, 400)
    chart.show()
    qtbot.waitExposed(chart)
    chart.set_watchlist(WatchList((parse_spec("3653"),)))
    now = time.time()

    class Sample:
        wall = now
        listeners = ()
        activity = ()

    for i in range(30):
        Sample.wall = now - 30 + i
        chart.add_sample(Sample)
    chart.redraw()
    view = chart.plot.viewport()
    # The data covers the right half of the one-minute axis.
    qtbot.mouseMove(view, QPoint(view.width() * 3 // 4, view.height() // 2))
    qtbot.mouseMove(view, QPoint(view.width() * 3 // 4 + 5, view.height() // 2))
    qtbot.waitUntil(lambda: "3653:" in chart.readout.text(), timeout=3000)
    assert "listening" in chart.readout.text()
    # Once the pointer leaves, the read-out no longer claims a value.
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    QApplication.sendEvent(chart.plot, QEvent(QEvent.Type.Leave))
    assert chart.readout.text() == "Point at the chart to read values."


def test_count_axis_ticks_are_whole_numbers(qtbot: Any) -> None:
    from portwatch.ui.chart import count_step

    assert [count_step(t) for t in (1, 3, 6, 7, 12, 30, 100, 1000)] == [1, 1, 1, 2, 2, 5, 20, 200]
    chart = ActivityChart(capacity=100, clock=lambda: 1010.0)
    qtbot.addWidget(chart)
    chart.resize(600, 300)
    spec = parse_spec("3653")
    chart.set_watchlist(WatchList((spec,)))
    nan = math.nan
    buckets = [[970.0, 1, 1, nan, nan], [980.0, 1, 3, nan, nan], [990.0, 1, 2, nan, nan]]
    chart.load_history(spec, np.array(buckets), 10.0)
    chart.redraw()
    axis = chart.plot.getPlotItem().getAxis("left")
    low, high = chart.plot.getPlotItem().getViewBox().viewRange()[1]
    values = [v for _, level in axis.tickValues(low, high, 200) for v in level]
    assert values and all(float(v).is_integer() for v in values)


def test_traffic_is_shown_in_readable_units_and_unmeasured_is_not_zero(qtbot: Any) -> None:
    from types import SimpleNamespace

    from portwatch.core.types import PortActivity, Proto
    from portwatch.ui.chart import readable_rate

    assert [readable_rate(v) for v in (0, 512, 1500, 12_345, 2_500_000, 3.2e9)] == [
        "0 B/s",
        "512 B/s",
        "1.5 KB/s",
        "12.3 KB/s",
        "2.5 MB/s",
        "3.2 GB/s",
    ]
    tcp, udp = parse_spec("3653"), parse_spec("53/udp")
    chart = ActivityChart(capacity=100, clock=lambda: 1010.0)
    qtbot.addWidget(chart)
    chart.set_watchlist(WatchList((tcp, udp)))

    def sample(wall: float, moved: int | None) -> Any:
        return SimpleNamespace(
            wall=wall,
            listeners=(),
            activity=(
                PortActivity(
                    3653, Proto.TCP, 1, 1, None if moved is None else 2 * moved, moved, moved
                ),
                PortActivity(53, Proto.UDP, 1, 0),
            ),
        )

    chart.add_sample(sample(1000.0, None))
    assert f"{tcp}: not measured" in chart.traffic.text()
    chart.add_sample(sample(1002.0, 10_000_000))
    assert "in 5.0 MB/s, out 5.0 MB/s" in chart.traffic.text()
    assert f"{udp}: not measured" in chart.traffic.text()
    # A poll that re-used the last byte count keeps the last rate, not "0" or a blank.
    chart.add_sample(sample(1004.0, None))
    assert "in 5.0 MB/s" in chart.traffic.text()
    # The bytes of a later count cover the time since the last count.
    chart.add_sample(sample(1006.0, 4_000_000))
    assert "in 1.0 MB/s" in chart.traffic.text()


def test_steady_counts_redraw_when_time_has_moved_on_not_every_poll(qtbot: Any) -> None:
    # An idle desktop: the counts stay the same poll after poll, and redrawing the time
    # axis every poll was most of the window's CPU. It redraws once time has moved a
    # small part of the window; a count that changes is drawn at the next timer tick.
    from types import SimpleNamespace

    from portwatch.core.types import Proto
    from portwatch.ui.chart import STEADY_STEP

    now = [1000.0]
    chart = ActivityChart(capacity=100, clock=lambda: now[0])
    qtbot.addWidget(chart)
    chart.set_watchlist(WatchList((parse_spec("3653"),)))
    chart.redraw()
    step_s = chart.window_s * STEADY_STEP

    # Idle connections on the watched port; the probe counts their bytes (none moved)
    # only every other poll, as it does on a busy machine: no news is not a change.
    counted = SimpleNamespace(
        port=3653, proto=Proto.TCP, listeners=1, established=2, bytes_in_delta=0,
        bytes_out_delta=0,
    )  # fmt: skip
    uncounted = SimpleNamespace(port=3653, proto=Proto.TCP, listeners=1, established=2)

    class Sample:
        wall = 1000.0
        listeners = ()
        activity: tuple[Any, ...] = (uncounted,)

    def poll() -> None:
        now[0] += 2.0
        Sample.wall = now[0]
        Sample.activity = (counted,) if Sample.activity[0] is uncounted else (uncounted,)
        chart.add_sample(Sample)
        chart.redraw_when_due()

    poll()  # the first point is a change
    drawn = chart.redraw_count
    polls = 0
    while chart.redraw_count == drawn:
        poll()
        polls += 1
    assert polls == math.ceil(step_s / 2.0)
    drawn = chart.redraw_count
    counted.established = uncounted.established = 3  # a count changed
    poll()
    assert chart.redraw_count == drawn + 1
