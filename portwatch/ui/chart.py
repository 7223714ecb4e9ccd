"""The live activity chart: listeners, connections and traffic per watched port.

One watched spec is drawn large: its listeners and connections above (whole-number
axis), its bytes per second in and out below (an axis in B/s, KB/s, MB/s). Every spec
has a row in a compact strip beside it with its own sparkline, so a busy range never
squashes a quiet port. Samples go into fixed-size ring buffers as they arrive; the
plot is redrawn on its own GUI timer (decoupled from the poll rate) and only when
something changed. What is drawn (steps, gaps, history joined to live points) is worked
out in :mod:`portwatch.ui.chart_data`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QColor,
    QHideEvent,
    QIcon,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
    QResizeEvent,
    QShowEvent,
    QTextOption,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from portwatch.core.types import Proto
from portwatch.core.watchlist import WatchList, WatchSpec
from portwatch.services.history_lookup import HistoryLookup
from portwatch.ui.chart_data import (
    POINT_COLUMNS,
    Drawn,
    SeriesBuffer,
    compose,
    is_gap,
    step_xy,
)
from portwatch.ui.elided_label import ElidedLabel
from portwatch.ui.port_strip import PortStrip, StripRow

WINDOWS: tuple[tuple[str, float], ...] = (
    ("5 minutes", 5 * 60.0),
    ("1 hour", 3600.0),
    ("24 hours", 24 * 3600.0),
)
# Enough for 24 hours at a 2-second interval; older points fall off the ring.
DEFAULT_CAPACITY = 50_000
REDRAW_MS = 1000
# Until the data covers the chosen window, the axis spans at least this much.
MIN_SPAN_S = 60.0
# While the counts and traffic stay the same, only time moves on: the timer then redraws
# (a costly repaint of the time axes) once time has moved this part of the window.
STEADY_STEP = 0.04
TOGGLE_TIPS = {
    "listening": "sockets listening on the port",
    "connected": "established connections (a loopback connection counts once)",
    "in": "bytes per second received by this computer's sockets on the port",
    "out": "bytes per second sent (and acknowledged) by this computer's sockets on the port",
}
# Bold lines 2 px, solid: Qt strokes a wide dashed line many times slower (a day of
# buckets took 0.3 s a redraw with 2 px dashes; see benchmarks/bench_chart.py).
LINE_WIDTH = 2
SHADED_LINE_WIDTH = 1
SHADE_ALPHA = 70
READOUT_HINT = "Point at the chart to read values."
# Points in a strip row's sparkline (about one per two pixels).
SKETCH_COLUMNS = 96
# The traffic axis reaches at least this (bytes/s): idle is a flat line at 0, not noise.
RATE_FLOOR = 1000.0
# How many intervals a traffic rate stands when polls between byte counts carry none.
TRAFFIC_HOLD_INTERVALS = 12
# The chosen spec's lines: key, legend text, colour, shaded. Okabe-Ito colours, told
# apart with common colour-vision deficiencies on light and dark; besides, the first of
# each plot is a shaded area under a thin line and the second a bold line drawn over it,
# so equal values never hide one another.
SERIES: tuple[tuple[str, str, str, bool], ...] = (
    ("listening", "listening", "#0072B2", True),
    ("connected", "connected", "#D55E00", False),
    ("in", "in", "#009E73", True),
    ("out", "out", "#CC79A7", False),
)


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


def spec_bytes(spec: WatchSpec, sample: Any) -> tuple[float, float]:
    """(bytes in, bytes out) inside ``spec`` in one sample, NaN where none were counted."""
    traffic = spec_traffic(spec, sample)
    return (math.nan, math.nan) if traffic is None else (float(traffic[0]), float(traffic[1]))


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


def unmeasured_reason(spec: WatchSpec, probe_name: str, platform: str = sys.platform) -> str:
    """Why no traffic is drawn for ``spec``, in words for the chart."""
    if Proto.TCP not in spec.protos:
        return "Traffic not measured: UDP sockets have no per-socket byte counters."
    if probe_name == "netlink":
        return "No traffic counted in this window (no TCP socket on this port)."
    if platform.startswith("linux"):
        return (
            "Traffic not measured: this probe has no per-socket byte counters"
            " (the netlink probe, Linux's default, has them)."
        )
    if platform == "darwin":
        return (
            "Traffic not measured: macOS gives per-connection byte counts only"
            " through nettop, which portwatch does not read yet."
        )
    if platform.startswith("win"):
        return (
            "Traffic not measured: Windows gives per-connection byte counts"
            " (GetPerTcpConnectionEStats) only to administrators; portwatch does not read"
            " them yet."
        )
    return "Traffic not measured: this OS gives portwatch no per-socket byte counters."


def rate_step(top: float, most: int = 4) -> float:
    """A tick step for a bytes/s axis up to ``top``: 1, 2 or 5 times a power of ten."""
    scale = 1.0
    while True:
        for factor in (1, 2, 5):
            step = factor * scale
            if top / step <= most:
                return step
        scale *= 10


def sketch_points(
    counts: np.ndarray, since: float, until: float, columns: int = SKETCH_COLUMNS
) -> np.ndarray:
    """(time, connections) for a sparkline from count rows (start, end, listeners,
    established): the value held at each of ``columns`` times, raised to the most seen
    in that slice so short peaks show; NaN only where there is no data (a gap)."""
    if not len(counts) or until <= since:
        return np.empty((0, 2))
    starts, ends, values = counts[:, 0], counts[:, 1], counts[:, 3]
    times = since + (np.arange(columns) + 1) * (until - since) / columns
    index = np.searchsorted(ends, times, side="left")
    inside = index < len(ends)
    held = np.full(columns, np.nan)
    rows = index[inside]
    held[inside] = np.where(starts[rows] < times[inside], values[rows], np.nan)
    keep = (ends > since) & np.isfinite(values)
    slot = ((ends[keep] - since) / (until - since) * columns).astype(int).clip(0, columns - 1)
    np.fmax.at(held, slot, values[keep])
    return np.column_stack((times, held))


class RateAxis(pg.AxisItem):  # type: ignore[misc]  # pyqtgraph has no type hints
    """A bytes-per-second axis labelled B/s, KB/s, MB/s rather than 1e6."""

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [readable_rate(value * scale) for value in values]


class SeriesToggle(QCheckBox):
    """A legend entry: the line's look and name; clicking hides or shows the line."""

    def __init__(self, key: str, label: str, colour: QColor, shaded: bool, height: int) -> None:
        super().__init__(label)
        self.key = key
        self.setChecked(True)
        self.setIcon(QIcon(_swatch(colour, shaded, height)))
        self.setIconSize(QSize(height * 2, height))
        self.setToolTip(f"Show or hide the line: {TOGGLE_TIPS.get(key, label)}")


@dataclass
class _Series:
    """One watched spec: its live points and the history loaded for it."""

    spec: WatchSpec
    buffer: SeriesBuffer
    history: np.ndarray | None = None
    history_step_s: float = 10.0
    history_window_s: float | None = None
    drawn: Drawn | None = None


def _swatch(colour: QColor, shaded: bool, height: int) -> QPixmap:
    """A short sample for the legend, drawn like the curve it names."""
    ratio = 2.0
    pixmap = QPixmap(int(height * 2 * ratio), int(height * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    if shaded:
        shade = QColor(colour)
        shade.setAlpha(SHADE_ALPHA)
        painter.fillRect(QRectF(1, height * 0.3, height * 2 - 2, height * 0.6), shade)
        painter.setPen(QPen(colour, SHADED_LINE_WIDTH))
        painter.drawLine(QPointF(1, height * 0.3), QPointF(height * 2 - 1, height * 0.3))
    else:
        painter.setPen(QPen(colour, LINE_WIDTH))
        painter.drawLine(QPointF(1, height / 2), QPointF(height * 2 - 1, height / 2))
    painter.end()
    return pixmap


def _plot(axis_items: dict[str, pg.AxisItem]) -> pg.PlotWidget:
    plot = pg.PlotWidget(axisItems=axis_items)
    plot.setMenuEnabled(False)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    item = plot.getPlotItem()
    item.setClipToView(True)
    item.setDownsampling(auto=True, mode="peak")
    return plot


class ActivityChart(QWidget):
    """One chosen watched spec drawn large (counts above, traffic below), every spec as a
    row of a compact strip beside it, a legend that hides and shows lines, and the
    5 minutes / 1 hour / 24 hours windows."""

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
        # Whether more than time moved on since the last redraw, and when (on the
        # chart's clock) that was; each spec's values at the last poll.
        self._changed = False
        self._drawn_at = -math.inf
        self._last_values: dict[WatchSpec, tuple[float | None, ...]] = {}
        self._tick_spacing: dict[int, float] = {}
        self._latest_wall: float | None = None
        self._probe_name = ""
        # Per spec: when bytes were last counted, and the rate they gave.
        self._measured: dict[WatchSpec, tuple[float, str]] = {}
        self.redraw_count = 0
        line = self.fontMetrics().height()

        # Elided at the chart's width (a long range spec must not widen the column).
        self.title = ElidedLabel("")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)

        bottom = {"bottom": pg.DateAxisItem(orientation="bottom")}
        self.plot = _plot(bottom)
        self.plot.setLabel("left", "count")
        self.plot.setMinimumHeight(line * 6)
        self.traffic_plot = _plot(
            {"bottom": pg.DateAxisItem(orientation="bottom"), "left": RateAxis("left")}
        )
        self.traffic_plot.setLabel("left", "traffic")
        self.traffic_plot.setMinimumHeight(line * 6)
        self.traffic_plot.setXLink(self.plot)
        # Both left axes the same width, so the two plots' times line up.
        for plot in (self.plot, self.traffic_plot):
            plot.getPlotItem().getAxis("left").setWidth(line * 6)
        # The upper plot's time labels would repeat the lower one's; its bottom axis keeps
        # half a line, so the lowest count label ("0") is not cut at the plot's edge.
        self.plot.getPlotItem().getAxis("bottom").setStyle(showValues=False)
        self.plot.getPlotItem().getAxis("bottom").setHeight(line // 2 + 2)
        self.unmeasured = pg.TextItem("", anchor=(0.5, 0.5))
        self.unmeasured.setZValue(10)
        centred = QTextOption(Qt.AlignmentFlag.AlignHCenter)
        centred.setWrapMode(QTextOption.WrapMode.WordWrap)
        self.unmeasured.textItem.document().setDefaultTextOption(centred)
        self.traffic_plot.addItem(self.unmeasured, ignoreBounds=True)
        # The reason is wrapped inside the plot's box, whatever the window's width.
        self.traffic_plot.getPlotItem().getViewBox().sigResized.connect(self._fit_unmeasured)

        self.curves: dict[str, pg.PlotDataItem] = {}
        self.toggles: dict[str, SeriesToggle] = {}
        legend = QHBoxLayout()
        legend.setContentsMargins(0, 0, 0, 0)
        for key, label, colour_name, shaded in SERIES:
            colour = QColor(colour_name)
            target = self.plot if key in ("listening", "connected") else self.traffic_plot
            if shaded:
                shade = QColor(colour)
                shade.setAlpha(SHADE_ALPHA)
                curve = target.plot(
                    pen=pg.mkPen(colour, width=SHADED_LINE_WIDTH),
                    brush=pg.mkBrush(shade),
                    fillLevel=0,
                    connect="finite",
                )
            else:
                curve = target.plot(pen=pg.mkPen(colour, width=LINE_WIDTH), connect="finite")
                curve.setZValue(5)  # over the shaded one
            self.curves[key] = curve
            toggle = SeriesToggle(key, label, colour, shaded, line)
            toggle.toggled.connect(curve.setVisible)
            toggle.toggled.connect(self._mark_dirty)
            self.toggles[key] = toggle
            legend.addWidget(toggle)
        legend.addStretch(1)
        self.legend = QWidget()
        self.legend.setLayout(legend)
        self.legend.setAccessibleName("Chart legend: click to hide or show a line")

        self.readout = QLabel(READOUT_HINT)
        self.readout.setTextFormat(Qt.TextFormat.PlainText)
        self.readout.setAccessibleName("Chart read-out")
        self.readout.setWordWrap(True)
        for plot in (self.plot, self.traffic_plot):
            plot.installEventFilter(self)  # the read-out is cleared when the pointer leaves
        self._mouse_proxies = [
            pg.SignalProxy(plot.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse_moved)
            for plot in (self.plot, self.traffic_plot)
        ]

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

        self.strip = PortStrip()
        self.strip.currentRowChanged.connect(self._strip_changed)
        # As wide as its lines need while the plots keep most of the chart's width; in a
        # narrow chart (a small or 200 % screen) it narrows, its lines elided (whole in
        # each row's tooltip). See resizeEvent.
        self.strip.setFixedWidth(self.strip.text_width_needed())

        plots = QVBoxLayout()
        plots.setSpacing(0)
        plots.addWidget(self.title)
        plots.addWidget(self.plot, 1)
        plots.addWidget(self.traffic_plot, 1)
        body = QHBoxLayout()
        body.addLayout(plots, 1)
        body.addWidget(self.strip)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addLayout(body, 1)
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

    # -- room -------------------------------------------------------------------------
    def strip_width_for(self, width: int) -> int:
        """The strip's width in a chart ``width`` wide: what its lines need, or two fifths
        of the chart when that would leave the plots less than half (never below the
        width of twelve digits, so its usual short lines still fit)."""
        needed = self.strip.text_width_needed()
        if width >= needed * 2:
            return needed
        narrowest = self.fontMetrics().horizontalAdvance("0") * 12
        return max(narrowest, min(needed, width * 2 // 5))

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.strip.setFixedWidth(self.strip_width_for(event.size().width()))
        super().resizeEvent(event)

    def set_short(self, short: bool) -> None:
        """In a short window each plot needs only three lines, so the tables below keep
        a few rows; otherwise six. The sideways "count" and "traffic" names are longer
        than a three-line plot is high (they would run into each other): hidden then."""
        line = self.fontMetrics().height()
        for plot in (self.plot, self.traffic_plot):
            plot.setMinimumHeight(line * (3 if short else 6))
            plot.getPlotItem().getAxis("left").showLabel(not short)

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
        self._dirty = self._changed = True
        self.window_changed.emit(seconds)
        self.redraw()

    @Slot(int)
    def _window_clicked(self, index: int) -> None:
        self.set_window(WINDOWS[index][1])

    def set_interval(self, interval_s: float) -> None:
        """The poll interval, which decides what counts as a gap."""
        self._interval_s = interval_s
        self._dirty = self._changed = True

    def set_watchlist(self, watchlist: WatchList) -> None:
        """One strip row per watched spec; the data of removed specs goes away."""
        wanted = list(watchlist.specs)
        for spec in list(self._series):
            if spec not in wanted:
                del self._series[spec]
                self._measured.pop(spec, None)
        for spec in wanted:
            if spec not in self._series:
                self._series[spec] = _Series(spec, SeriesBuffer(self._capacity))
        self.strip.set_specs(wanted)
        self._dirty = self._changed = True

    def specs(self) -> list[WatchSpec]:
        return list(self._series)

    @property
    def chosen(self) -> WatchSpec | None:
        """The spec drawn large."""
        return self.strip.current_spec()

    def choose(self, spec: WatchSpec) -> None:
        """Draw ``spec`` large (the others stay in the strip)."""
        self.strip.choose(spec)

    @Slot(int)
    def _strip_changed(self, _row: int) -> None:
        self._dirty = self._changed = True
        self.redraw()

    @Slot()
    def _mark_dirty(self) -> None:
        self._dirty = self._changed = True

    # -- data ---------------------------------------------------------------------------
    def add_sample(self, sample: Any) -> None:
        """Append one tick's activity to every series (drawn at the next redraw)."""
        wall = float(sample.wall)
        previous = self._latest_wall
        self._latest_wall = wall
        self._probe_name = str(getattr(sample, "probe_name", "") or "")
        steady = previous is not None and not is_gap(wall - previous, self._interval_s)
        for spec, series in self._series.items():
            listeners, established = spec_activity(spec, sample)
            got_in, got_out = spec_bytes(spec, sample)
            # A poll that did not count bytes (the probe counts them every few polls on a
            # busy machine) brings no news of them: compare the last counted values.
            last = self._last_values.get(spec)
            if math.isnan(got_in) or math.isnan(got_out):
                values = (listeners, established, *(last[2:] if last else (None, None)))
            else:
                values = (listeners, established, got_in, got_out)
            if last != values:
                steady = False
                self._last_values[spec] = values
            series.buffer.append_sample(
                wall, listeners, established, self._interval_s, got_in, got_out
            )
        # The long windows draw buckets: redrawn when a bucket is complete (every 10 s
        # or minute), not at every poll; a day of points costs too much to redraw often.
        bucket_s = self._bucket_s()
        if bucket_s is None or previous is None or wall // bucket_s != previous // bucket_s:
            self._dirty = True
            # In the poll-by-poll window, a poll that changed nothing only moves time on.
            self._changed = self._changed or not steady or bucket_s is not None
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
        self._dirty = self._changed = True

    def load_history(
        self,
        spec: WatchSpec,
        buckets: np.ndarray,
        step_s: float,
        window_s: float | None = None,
    ) -> None:
        """History buckets of ``spec`` ((n, 5) rows, see :mod:`chart_data`), ``step_s``
        wide, read for ``window_s`` (default: the current window). They are kept beside
        the live points, never in their place."""
        series = self._series.get(spec)
        if series is not None:
            series.history = np.asarray(buckets, dtype=float).reshape(-1, POINT_COLUMNS)
            series.history_step_s = step_s
            series.history_window_s = self._window_s if window_s is None else window_s
            self._dirty = self._changed = True

    def history_loaded(self, spec: WatchSpec) -> bool:
        """Whether the history read for the current window has arrived for ``spec``."""
        series = self._series.get(spec)
        return series is not None and series.history_window_s == self._window_s

    @property
    def probe_name(self) -> str:
        """The name of the probe of the last sample ("netlink", "psutil", ...)."""
        return self._probe_name

    def drawn(self, spec: WatchSpec) -> Drawn:
        """What the current window shows for ``spec`` (worked out now)."""
        return self._compose(self._series[spec], self._now())

    def series_points(self, spec: WatchSpec) -> np.ndarray:
        """(time, listeners, established) of one spec in the current window, NaN rows
        where there is no data: the chart's data as the read-out and tests see it."""
        return self.drawn(spec).count_points()

    def traffic_points(self, spec: WatchSpec) -> np.ndarray:
        """(start, end, bytes in, bytes out) of one spec in the current window."""
        return self.drawn(spec).traffic

    def _now(self) -> float:
        return max(self._clock(), self._latest_wall or 0.0)

    def _bucket_s(self) -> float | None:
        """The width the current window folds live points into (None: every poll)."""
        if self._window_s <= WINDOWS[0][1]:
            return None
        return HistoryLookup.bucket_seconds(self._window_s)

    def _compose(self, series: _Series, now: float) -> Drawn:
        bucket_s = self._bucket_s()
        history = series.history
        if bucket_s is not None and series.history_step_s != bucket_s:
            history = None  # loaded for another window; its own answer follows
        since = now - self._window_s
        return compose(
            series.buffer.since(since),
            history,
            series.history_step_s if bucket_s is None else bucket_s,
            self._interval_s,
            since,
            bucket_s,
        )

    # -- drawing ------------------------------------------------------------------------
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

    @Slot()
    def redraw_when_due(self) -> None:
        """The timer's redraw: at once when something changed, but when polls only
        moved time on (an idle desktop), once time has moved :data:`STEADY_STEP` of
        the window: repainting the time axes every poll was most of the idle cost."""
        if self._dirty and (
            self._changed or self._clock() - self._drawn_at >= self._window_s * STEADY_STEP
        ):
            self.redraw()

    @Slot()
    def redraw(self) -> None:
        """Draw the chosen spec large and every spec's strip row, if anything changed."""
        if not self._dirty:
            return
        self._dirty = self._changed = False
        self._drawn_at = self._clock()
        self.redraw_count += 1
        now = self._now()
        start = now - self._window_s
        earliest = now
        for series in self._series.values():
            series.drawn = self._compose(series, now)
            counts = series.drawn.counts
            if len(counts):
                earliest = min(earliest, float(counts[0, 0]))
        # Until the data covers the window, zoom to the data instead of a mostly blank axis.
        shown_from = max(start, min(earliest, now - MIN_SPAN_S))
        for series in self._series.values():
            assert series.drawn is not None
            self.strip.set_row(series.spec, self._strip_row(series.drawn, shown_from, now))
        chosen = self.chosen
        self._draw_chosen(self._series.get(chosen) if chosen is not None else None, shown_from, now)
        self.strip.viewport().update()

    def _draw_chosen(self, series: _Series | None, shown_from: float, now: float) -> None:
        drawn = series.drawn if series is not None else None
        if series is None or drawn is None:
            for curve in self.curves.values():
                curve.setData([], [])
            self.title.setText("No watched ports to chart")
            self.title.setToolTip("")
            self.unmeasured.setText("")
            return
        title = f"{series.spec}: connections and traffic"
        tip = title
        if Proto.UDP in series.spec.protos and Proto.TCP in series.spec.protos:
            title += " (traffic: TCP only)"
            tip += " (traffic of TCP only: UDP sockets have no byte counters)"
        self.title.setText(title)
        self.title.setToolTip(tip)
        counts = drawn.counts
        for key, column in (("listening", 2), ("connected", 3)):
            xs, ys = step_xy(counts[:, 0], counts[:, 1], counts[:, column])
            self.curves[key].setData(xs, ys, connect="finite")
        rates = drawn.rates()
        for key, column in (("in", 2), ("out", 3)):
            xs, ys = step_xy(rates[:, 0], rates[:, 1], rates[:, column])
            self.curves[key].setData(xs, ys, connect="finite")
        self.plot.setXRange(shown_from, now, padding=0.02)
        top = 1.0
        for key, column in (("listening", 2), ("connected", 3)):
            values = counts[:, column]
            if self.toggles[key].isChecked() and np.isfinite(values).any():
                top = max(top, float(np.nanmax(values)))
        # A little below zero, so the 0 tick and a line at 0 are not lost in the frame.
        self.plot.setYRange(-top * 0.08 - 0.15, top * 1.15 + 0.5, padding=0)
        # Counts are whole numbers: ticks at whole steps, never 0.5 of a connection.
        step = count_step(top)
        self._set_tick_spacing(self.plot.getPlotItem().getAxis("left"), step)
        axis = self.traffic_plot.getPlotItem().getAxis("left")
        if drawn.measured:
            peak = RATE_FLOOR
            for key, column in (("in", 2), ("out", 3)):
                values = rates[:, column]
                if self.toggles[key].isChecked() and np.isfinite(values).any():
                    peak = max(peak, float(np.nanmax(values)))
            spacing = rate_step(peak)
            self.traffic_plot.setYRange(-peak * 0.08, peak * 1.15, padding=0)
            self._set_tick_spacing(axis, spacing)
            axis.setStyle(showValues=True)
            self.unmeasured.setText("")
        else:
            # Nothing counted: no axis values that could read as "0 B/s", and the reason.
            self.traffic_plot.setYRange(0, 1, padding=0)
            axis.setStyle(showValues=False)
            self.unmeasured.setText(unmeasured_reason(series.spec, self._probe_name))
            self._fit_unmeasured()
            self.unmeasured.setPos((shown_from + now) / 2, 0.5)

    @Slot()
    def _fit_unmeasured(self) -> None:
        box = self.traffic_plot.getPlotItem().getViewBox().boundingRect()
        margin = self.fontMetrics().height()
        self.unmeasured.setTextWidth(max(margin * 4, box.width() - 2 * margin))
        # In a plot too short for it (a short window) it would be cut at the plot's edges;
        # the strip row and the "Traffic now" line still say "not measured".
        fits = self.unmeasured.textItem.boundingRect().height() <= box.height()
        self.unmeasured.setVisible(fits)

    def _strip_row(self, drawn: Drawn, since: float, until: float) -> StripRow:
        counts = drawn.counts
        finite = counts[np.isfinite(counts[:, 2])]
        parts = []
        if len(finite):
            listeners, established = int(finite[-1, 2]), int(finite[-1, 3])
            parts.append(f"{listeners} listening \u00b7 {established} conn.")
        else:
            parts.append("no data")
        rates = drawn.rates()
        if len(rates) and rates[-1, 1] >= until - TRAFFIC_HOLD_INTERVALS * self._interval_s:
            parts.append(
                f"in {readable_rate(rates[-1, 2])} \u00b7 out {readable_rate(rates[-1, 3])}"
            )
        elif not drawn.measured:
            parts.append("traffic not measured")
        sketch = sketch_points(counts, since, until)
        return StripRow("\n".join(parts), sketch, since, until)

    def _set_tick_spacing(self, axis: Any, spacing: float) -> None:
        """Set an axis's tick spacing only when it changes: setting it repaints the axis."""
        if self._tick_spacing.get(id(axis)) != spacing:
            self._tick_spacing[id(axis)] = spacing
            axis.setTickSpacing(major=spacing, minor=spacing)

    def _on_mouse_moved(self, event: tuple[QPointF]) -> None:
        position = event[0]
        for plot in (self.plot, self.traffic_plot):
            item = plot.getPlotItem()
            if item.sceneBoundingRect().contains(position) and plot.underMouse():
                x = item.getViewBox().mapSceneToView(position).x()
                self.readout.setText(self.read_at(x))
                return

    def read_at(self, x: float) -> str:
        """The read-out for time ``x``: the chosen spec's counts and traffic then."""
        parts = [time.strftime("%H:%M:%S", time.localtime(x))]
        spec = self.chosen
        series = self._series.get(spec) if spec is not None else None
        if series is None or series.drawn is None:
            return parts[0]
        counts = series.drawn.counts
        row = np.flatnonzero((counts[:, 0] < x) & (x <= counts[:, 1]))
        if not len(row) or math.isnan(counts[row[-1], 2]):
            parts.append(f"{spec}: no data (gap)")
        else:
            listening, connected = counts[row[-1], 2], counts[row[-1], 3]
            parts.append(f"{spec}: {int(listening)} listening, {int(connected)} connected")
        rates = series.drawn.rates()
        hit = np.flatnonzero((rates[:, 0] < x) & (x <= rates[:, 1]))
        if len(hit):
            got_in, got_out = rates[hit[-1], 2], rates[hit[-1], 3]
            parts.append(f"in {readable_rate(got_in)}, out {readable_rate(got_out)}")
        elif not series.drawn.measured:
            parts.append("traffic not measured")
        return "  \u2022  ".join(parts)

    # -- appearance ---------------------------------------------------------------------
    def apply_palette(self) -> None:
        """Follow the window's palette (light or dark) for background, axes and text."""
        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Base)
        foreground = palette.color(QPalette.ColorRole.Text)
        for plot in (self.plot, self.traffic_plot):
            plot.setBackground(background)
            item = plot.getPlotItem()
            for name in ("left", "bottom"):
                axis = item.getAxis(name)
                axis.setPen(pg.mkPen(foreground))
                axis.setTextPen(pg.mkPen(foreground))
        self.unmeasured.setColor(foreground)
        self._dirty = self._changed = True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Leave and watched in (self.plot, self.traffic_plot):
            self.readout.setText(READOUT_HINT)
        return super().eventFilter(watched, event)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
        super().changeEvent(event)
