"""The live activity chart: listeners and established connections per watched port.

Samples go into fixed-size numpy ring buffers as they arrive; the plot is redrawn on
its own GUI timer (decoupled from the poll rate) and only when something changed. A
gap much longer than the poll interval (the computer slept) is stored as a NaN point,
drawn as a break in the line rather than a misleading slope.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QHideEvent, QPainter, QPalette, QPen, QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from portwatch.core.watchlist import WatchList, WatchSpec

WINDOWS: tuple[tuple[str, float], ...] = (
    ("5 minutes", 5 * 60.0),
    ("1 hour", 3600.0),
    ("24 hours", 24 * 3600.0),
)
# Enough for 24 hours at a 2-second interval; older points fall off the ring.
DEFAULT_CAPACITY = 50_000
REDRAW_MS = 1000
# A gap longer than this many poll intervals is drawn as a gap.
GAP_FACTOR = 3.0
# Until the data covers the chosen window, the axis spans at least this much.
MIN_SPAN_S = 60.0
# While the counts stay the same, only time moves on: the timer then redraws (a costly
# repaint of the time axis) once time has moved this part of the window, not every poll.
STEADY_STEP = 0.02
# How many intervals a traffic rate stands when polls between byte counts carry none.
TRAFFIC_HOLD_INTERVALS = 12
# Okabe-Ito colours: told apart with common colour-vision deficiencies, on light and dark.
SERIES_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")


def readable_rate(bytes_per_s: float) -> str:
    """Bytes per second in decimal units a person reads at a glance (KB/s, MB/s, GB/s)."""
    value = max(0.0, bytes_per_s)
    for unit in ("B/s", "KB/s", "MB/s"):
        if value < 999.5:
            return (
                f"{value:.0f} {unit}" if unit == "B/s" or value >= 99.5 else f"{value:.1f} {unit}"
            )
        value /= 1000
    return f"{value:.1f} GB/s"


def spec_traffic(spec: WatchSpec, sample: Any) -> tuple[int, int] | None:
    """(bytes in, bytes out) inside ``spec`` since the previous sample; None if unmeasured."""
    got_in = got_out = 0
    measured = False
    for item in getattr(sample, "activity", ()) or ():
        if not spec.contains(item.port, item.proto):
            continue
        bytes_in = getattr(item, "bytes_in_delta", None)
        bytes_out = getattr(item, "bytes_out_delta", None)
        if bytes_in is None or bytes_out is None:
            continue
        measured = True
        got_in += bytes_in
        got_out += bytes_out
    return (got_in, got_out) if measured else None


def rate_text(traffic: tuple[int, int], elapsed_s: float) -> str:
    """``in X/s, out Y/s`` for bytes moved over ``elapsed_s`` seconds."""
    rate_in, rate_out = (count / elapsed_s for count in traffic)
    return f"in {readable_rate(rate_in)}, out {readable_rate(rate_out)}"


def count_step(top: float, most: int = 6) -> int:
    """The tick step for a count axis up to ``top``: 1, 2 or 5 times a power of ten,
    at least 1, giving at most ``most`` ticks."""
    scale = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * scale
            if top / step <= most:
                return step
        scale *= 10


class SeriesBuffer:
    """A fixed-size ring of (wall time, listeners, established) points."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._data = np.full((capacity, 3), np.nan)
        self._head = 0  # next write position
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def last_time(self) -> float | None:
        if self._size == 0:
            return None
        return float(self._data[(self._head - 1) % self.capacity, 0])

    def last_values(self) -> tuple[float, float] | None:
        """(listeners, established) of the newest point, or None when empty."""
        if self._size == 0:
            return None
        row = self._data[(self._head - 1) % self.capacity]
        return float(row[1]), float(row[2])

    def append(self, wall: float, listeners: float, established: float) -> None:
        self._data[self._head] = (wall, listeners, established)
        self._head = (self._head + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def append_sample(
        self, wall: float, listeners: float, established: float, interval_s: float
    ) -> None:
        """Append a point, first inserting a NaN break if the gap since the last is long."""
        last = self.last_time()
        if last is not None and is_gap(wall - last, interval_s):
            self.append(last + interval_s, math.nan, math.nan)
        self.append(wall, listeners, established)

    def ordered(self) -> np.ndarray:
        """All points, oldest first, as an (n, 3) array."""
        if self._size < self.capacity:
            return self._data[: self._size]
        return np.concatenate((self._data[self._head :], self._data[: self._head]))

    def replace_before(self, points: np.ndarray) -> None:
        """Put history ``points`` (n, 3) in front of the live points newer than them."""
        live = self.ordered()
        if len(points):
            live = live[live[:, 0] > points[-1, 0]]
        merged = np.concatenate((points, live)) if len(points) else live
        merged = merged[-self.capacity :]
        self._data[:] = np.nan
        self._data[: len(merged)] = merged
        self._size = len(merged)
        self._head = self._size % self.capacity


def is_gap(delta_s: float, step_s: float) -> bool:
    """Whether two points ``delta_s`` apart, expected ``step_s`` apart, have a gap between
    them (the machine slept, or portwatch was not running). A clock set backwards
    (negative delta) is a gap too, so no line is drawn back in time."""
    return delta_s < 0 or delta_s > max(GAP_FACTOR * step_s, step_s + 5.0)


def rows_to_points(
    rows_per_port: Iterable[Sequence[tuple[float, int, int]]], interval_s: float
) -> np.ndarray:
    """Sum history rows of several ports by time into (n, 3) points with gap breaks.

    ``interval_s`` is the spacing the rows should have: the history's bucket width."""
    totals: dict[float, list[float]] = {}
    for rows in rows_per_port:
        for wall, listeners, established in rows:
            slot = totals.setdefault(round(float(wall), 1), [0.0, 0.0])
            slot[0] += listeners
            slot[1] += established
    points: list[tuple[float, float, float]] = []
    last: float | None = None
    for wall in sorted(totals):
        if last is not None and is_gap(wall - last, interval_s):
            points.append((last + interval_s, math.nan, math.nan))
        listening, connected = totals[wall]
        points.append((wall, listening, connected))
        last = wall
    return np.array(points, dtype=float).reshape(-1, 3)


def spec_activity(spec: WatchSpec, sample: Any) -> tuple[int, int]:
    """(listeners, established) inside ``spec`` for one sample."""
    activity = getattr(sample, "activity", ()) or ()
    listeners = established = 0
    seen = False
    for item in activity:
        if spec.contains(item.port, item.proto):
            seen = True
            listeners += item.listeners
            established += item.established
    if not seen:
        # No activity rows for this spec: count the listeners the sample holds.
        listeners = sum(1 for li in sample.listeners if spec.contains(li.port, li.proto))
    return listeners, established


@dataclass
class _Series:
    spec: WatchSpec
    buffer: SeriesBuffer
    listeners: pg.PlotDataItem
    established: pg.PlotDataItem
    legend: QWidget


def _swatch(colour: QColor, dashed: bool, height: int) -> QPixmap:
    """A short line sample for the legend, drawn like the curve it names."""
    ratio = 2.0
    pixmap = QPixmap(int(height * 2 * ratio), int(height * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(colour, 2)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    painter.setPen(pen)
    painter.drawLine(QPointF(1, height / 2), QPointF(height * 2 - 1, height / 2))
    painter.end()
    return pixmap


def _legend_entry(spec: WatchSpec, colour: QColor, height: int) -> QWidget:
    entry = QWidget()
    row = QHBoxLayout(entry)
    row.setContentsMargins(0, 0, 0, 0)
    for dashed, words in ((False, "listening"), (True, "connected")):
        swatch = QLabel()
        swatch.setPixmap(_swatch(colour, dashed, height))
        text = QLabel(f"{spec} {words}")
        text.setTextFormat(Qt.TextFormat.PlainText)
        row.addWidget(swatch)
        row.addWidget(text)
        row.addSpacing(height)
    row.addStretch(1)
    return entry


class ActivityChart(QWidget):
    """Listeners (solid) and established connections (dashed) per watched spec."""

    window_changed = Signal(float)
    """The user picked another time window (seconds); history should fill it."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.time,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._capacity = capacity
        self._clock = clock
        self._series: dict[WatchSpec, _Series] = {}
        self._window_s = WINDOWS[0][1]
        self._interval_s = 2.0
        self._dirty = False
        # Whether a count changed since the last redraw (not only the time), and when
        # (on the chart's clock) it last redrew.
        self._counts_changed = False
        self._drawn_at = -math.inf
        self._left_step = 0.0
        self._latest_wall: float | None = None
        # Per spec: when bytes were last counted, and the rate they gave.
        self._measured: dict[WatchSpec, tuple[float, str]] = {}
        self.redraw_count = 0

        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("left", "listeners / connections")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setMinimumHeight(160)
        item = self.plot.getPlotItem()
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        view_box = item.getViewBox()
        view_box.setLimits(yMin=-0.5)

        self.readout = QLabel("Point at the chart to read values.")
        self.readout.setTextFormat(Qt.TextFormat.PlainText)
        self.readout.setAccessibleName("Chart read-out")
        self.readout.setWordWrap(True)
        self._mouse_proxy = pg.SignalProxy(
            self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse_moved
        )

        self.window_buttons = QButtonGroup(self)
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Show the last:"))
        for index, (label, seconds) in enumerate(WINDOWS):
            button = QRadioButton(label)
            button.setProperty("seconds", seconds)
            button.setChecked(index == 0)
            self.window_buttons.addButton(button, index)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.window_buttons.idClicked.connect(self._window_clicked)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # The legend sits under the plot (not over the lines), wrapping into columns.
        self.legend = QWidget()
        self.legend_layout = QGridLayout(self.legend)
        self.legend_layout.setContentsMargins(0, 0, 0, 0)
        self.legend_layout.setHorizontalSpacing(self.fontMetrics().height() * 2)
        self.legend_layout.setColumnStretch(2, 1)  # entries stay left, spare room on the right
        self.legend.setAccessibleName("Chart legend")

        layout.addLayout(buttons)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend)
        layout.addWidget(self.readout)
        self.traffic = QLabel("Traffic: waiting for two checks\u2026")
        self.traffic.setTextFormat(Qt.TextFormat.PlainText)
        self.traffic.setAccessibleName("Traffic now")
        self.traffic.setWordWrap(True)
        layout.addWidget(self.traffic)

        # Runs only while the chart is shown: hidden (in the tray, another tab) it only
        # collects samples, and draws them when it is shown again.
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw_when_due)
        self.apply_palette()

    # -- configuration ------------------------------------------------------------------
    @property
    def window_s(self) -> float:
        return self._window_s

    def set_window(self, seconds: float) -> None:
        """Show the last ``seconds``; emits ``window_changed`` so history can fill it."""
        for index, (_label, value) in enumerate(WINDOWS):
            if value == seconds:
                self.window_buttons.button(index).setChecked(True)
        self._window_s = seconds
        self._dirty = True
        self._counts_changed = True
        self.window_changed.emit(seconds)
        self.redraw()

    @Slot(int)
    def _window_clicked(self, index: int) -> None:
        self.set_window(WINDOWS[index][1])

    def set_interval(self, interval_s: float) -> None:
        """The poll interval, which decides what counts as a gap."""
        self._interval_s = interval_s

    def set_watchlist(self, watchlist: WatchList) -> None:
        """One pair of curves per watched spec; curves of removed specs go away."""
        wanted = list(watchlist.specs)
        for spec in list(self._series):
            if spec not in wanted:
                series = self._series.pop(spec)
                self.plot.removeItem(series.listeners)
                self.plot.removeItem(series.established)
                self.legend_layout.removeWidget(series.legend)
                series.legend.deleteLater()
        height = self.fontMetrics().height()
        for index, spec in enumerate(wanted):
            if spec in self._series:
                continue
            colour = QColor(SERIES_COLOURS[index % len(SERIES_COLOURS)])
            solid = pg.mkPen(colour, width=2)
            dashed = pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine)
            listeners = self.plot.plot(pen=solid, connect="finite")
            established = self.plot.plot(pen=dashed, connect="finite")
            entry = _legend_entry(spec, colour, height)
            self._series[spec] = _Series(
                spec, SeriesBuffer(self._capacity), listeners, established, entry
            )
        # Re-flow the legend: two specs a row keeps it short and readable.
        for position, series in enumerate(self._series.values()):
            self.legend_layout.addWidget(series.legend, position // 2, position % 2)
        self._dirty = True
        self._counts_changed = True

    def specs(self) -> list[WatchSpec]:
        return list(self._series)

    # -- data ---------------------------------------------------------------------------
    def add_sample(self, sample: Any) -> None:
        """Append one tick's activity to every series (drawn at the next redraw)."""
        wall = float(sample.wall)
        previous = self._latest_wall
        self._latest_wall = wall
        for spec, series in self._series.items():
            listeners, established = spec_activity(spec, sample)
            if series.buffer.last_values() != (listeners, established):
                self._counts_changed = True
            series.buffer.append_sample(wall, listeners, established, self._interval_s)
        if previous is not None and is_gap(wall - previous, self._interval_s):
            self._counts_changed = True  # a gap is drawn at once
        self._dirty = True
        self.traffic.setText(self._traffic_line(sample, wall, previous))

    def _traffic_line(self, sample: Any, wall: float, previous: float | None) -> str:
        """One entry per watched spec; "not measured" where no counters exist (UDP, an OS
        without per-socket counters), never a made-up zero. A probe may count bytes only
        every few polls on a busy machine: the last rate stands until the next count."""
        parts = []
        for spec in self._series:
            traffic = spec_traffic(spec, sample)
            last = self._measured.get(spec)
            if traffic is not None:
                since = last[0] if last is not None else previous
                elapsed = wall - since if since is not None else self._interval_s
                if elapsed > 0:
                    last = self._measured[spec] = (wall, rate_text(traffic, elapsed))
            if last is not None and wall - last[0] <= TRAFFIC_HOLD_INTERVALS * self._interval_s:
                parts.append(f"{spec}: {last[1]}")
            else:
                parts.append(f"{spec}: not measured")
        return "Traffic now \u2014 " + ("  \u2022  ".join(parts) if parts else "no watched ports")

    def add_gap(self, wall: float) -> None:
        """Mark a failed poll: no data at ``wall`` (a break in every line, never a zero)."""
        self._latest_wall = wall
        for series in self._series.values():
            series.buffer.append(wall, math.nan, math.nan)
        self._dirty = True
        self._counts_changed = True

    def load_history(self, spec: WatchSpec, points: np.ndarray) -> None:
        """Fill ``spec``'s series from history (points older than the live ones)."""
        series = self._series.get(spec)
        if series is not None:
            series.buffer.replace_before(points)
            self._dirty = True
            self._counts_changed = True

    def series_points(self, spec: WatchSpec) -> np.ndarray:
        """The buffered points of one spec (for tests and the read-out)."""
        return self._series[spec].buffer.ordered()

    # -- drawing ------------------------------------------------------------------------
    @Slot()
    def redraw_when_due(self) -> None:
        """The timer's redraw: at once when a count changed, else when time has moved
        :data:`STEADY_STEP` of the window since the last one (the idle desktop's cost)."""
        if self._dirty and (
            self._counts_changed or self._clock() - self._drawn_at >= self._window_s * STEADY_STEP
        ):
            self.redraw()

    @Slot()
    def redraw(self) -> None:
        """Push the visible part of each buffer to its curves, if anything changed."""
        if not self._dirty:
            return
        self._dirty = False
        self._counts_changed = False
        self._drawn_at = self._clock()
        self.redraw_count += 1
        now = max(self._clock(), self._latest_wall or 0.0)
        start = now - self._window_s
        # Until the buffers cover the window, zoom to the data instead of a mostly blank axis.
        earliest = min(
            (float(s.buffer.ordered()[0, 0]) for s in self._series.values() if len(s.buffer)),
            default=start,
        )
        shown_from = max(start, min(earliest, now - MIN_SPAN_S))
        top = 1.0
        for series in self._series.values():
            points = series.buffer.ordered()
            if len(points):
                first = int(np.searchsorted(points[:, 0], start, side="left"))
                points = points[max(0, first - 1) :]
            times = points[:, 0]
            series.listeners.setData(times, points[:, 1], connect="finite")
            series.established.setData(times, points[:, 2], connect="finite")
            if len(points) and np.isfinite(points[:, 1:]).any():
                top = max(top, float(np.nanmax(points[:, 1:])))
        self.plot.setXRange(shown_from, now, padding=0.02)
        self.plot.setYRange(0, top * 1.15 + 0.5, padding=0)
        # Counts are whole numbers: ticks at whole steps, never 0.5 of a connection.
        # Set only when it changes: setting it repaints the axis.
        step = count_step(top)
        if step != self._left_step:
            self._left_step = step
            self.plot.getPlotItem().getAxis("left").setTickSpacing(major=step, minor=step)

    def _on_mouse_moved(self, event: tuple[QPointF]) -> None:
        position = event[0]
        item = self.plot.getPlotItem()
        if not item.sceneBoundingRect().contains(position):
            return
        x = item.getViewBox().mapSceneToView(position).x()
        parts = [time.strftime("%H:%M:%S", time.localtime(x))]
        for spec, series in self._series.items():
            points = series.buffer.ordered()
            if not len(points):
                continue
            index = int(np.clip(np.searchsorted(points[:, 0], x), 0, len(points) - 1))
            listeners, established = points[index, 1], points[index, 2]
            if math.isnan(listeners):
                parts.append(f"{spec}: no data (gap)")
            else:
                parts.append(f"{spec}: {int(listeners)} listening, {int(established)} connected")
        self.readout.setText("  \u2022  ".join(parts))

    # -- appearance ---------------------------------------------------------------------
    def apply_palette(self) -> None:
        """Follow the window's palette (light or dark) for background, axes and text."""
        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Base)
        foreground = palette.color(QPalette.ColorRole.Text)
        self.plot.setBackground(background)
        item = self.plot.getPlotItem()
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(foreground))
            axis.setTextPen(pg.mkPen(foreground))
        self._dirty = True
        self._counts_changed = True

    @property
    def redraw_timer_running(self) -> bool:
        """Whether the redraw timer runs (only while the chart is shown)."""
        return self._timer.isActive()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.redraw()
        self._timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._timer.stop()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
        super().changeEvent(event)
