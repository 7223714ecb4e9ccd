"""The compact strip beside the chart: one row per watched spec, the chosen one drawn large.

Each row shows the spec, its counts and traffic now, and a sparkline of its connections
scaled to that spec alone, so a busy 30-port range never flattens a quiet port. Clicking
a row (or choosing it with the keyboard) shows that spec in the big chart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from portwatch.core.watchlist import WatchSpec

SPEC_ROLE = Qt.ItemDataRole.UserRole
ROW_ROLE = Qt.ItemDataRole.UserRole + 1
ACCENT = "#D55E00"  # the chart's "connected" colour
LEFT_MIDDLE = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
# The widest lines a row normally shows: the strip is never narrower than these need.
WIDEST_LINES = ("99 listening \u00b7 999 conn.", "in 99.9 MB/s \u00b7 out 99.9 MB/s")
# Pixels around a row's text (the delegate's margins, the list's frame and spacing).
ROW_MARGIN = 6


@dataclass(frozen=True)
class StripRow:
    """What one strip row shows: two summary lines and the connection counts to sketch."""

    summary: str  # counts, a newline, traffic
    # (time, connections) of the window, NaN where there is no data.
    sketch: np.ndarray
    since: float
    until: float


class _RowPainter(QStyledItemDelegate):
    """Three short lines per row: the spec with its sparkline, its counts, its traffic."""

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        line = option.fontMetrics.height()
        return QSize(line * 12, line * 3 + 8)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        self.initStyleOption(option, index)
        style = option.widget.style() if option.widget is not None else None
        text = option.text
        option.text = ""
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, option.widget)
        row: StripRow | None = index.data(ROW_ROLE)
        rect: QRect = option.rect.adjusted(ROW_MARGIN, 4, -ROW_MARGIN, -4)
        metrics = option.fontMetrics
        line = metrics.height()
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        group = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        colour = option.palette.color(group)
        painter.save()
        painter.setPen(colour)
        # A copy: bolding ``option.font`` itself would draw the summary lines bold too,
        # wider than the metrics they were fitted with.
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        name_width = min(
            painter.fontMetrics().horizontalAdvance(text) + line, rect.width() * 3 // 4
        )
        top = QRect(rect.left(), rect.top(), name_width, line)
        painter.drawText(top, LEFT_MIDDLE, text)
        painter.setFont(option.font)
        if row is not None:
            spark = QRect(top.right() + 1, rect.top() + 2, rect.right() - top.right(), line - 3)
            self._sketch(painter, spark, row, colour, selected)
            painter.setPen(colour)
            for number, words in enumerate(row.summary.split("\n")[:2], start=1):
                place = QRect(rect.left(), rect.top() + number * line, rect.width(), line)
                elided = metrics.elidedText(words, Qt.TextElideMode.ElideRight, place.width())
                painter.drawText(place, LEFT_MIDDLE, elided)
        painter.restore()

    @staticmethod
    def _sketch(
        painter: QPainter, area: QRect, row: StripRow, text: QColor, selected: bool
    ) -> None:
        baseline = QColor(text)
        baseline.setAlpha(70)
        painter.setPen(QPen(baseline, 1))
        painter.drawLine(area.bottomLeft(), area.bottomRight())
        points = row.sketch
        if not len(points) or row.until <= row.since:
            return
        values = points[:, 1]
        finite = np.isfinite(values)
        if not finite.any():
            return
        top = max(1.0, float(values[finite].max()))
        span = row.until - row.since
        path = QPainterPath()
        drawing = False
        previous_y = 0.0
        for wall, value in points:
            if not np.isfinite(value) or wall < row.since:
                drawing = False
                continue
            x = area.left() + (wall - row.since) / span * area.width()
            y = area.bottom() - value / top * area.height()
            if not drawing:
                path.moveTo(QPointF(x, y))
                drawing = True
            else:
                path.lineTo(QPointF(x, previous_y))  # a step, not a ramp
                path.lineTo(QPointF(x, y))
            previous_y = y
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(text if selected else QColor(ACCENT), 1.5))
        painter.drawPath(path)


class PortStrip(QListWidget):
    """One row per watched spec; the current row is the spec the big chart shows."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setItemDelegate(_RowPainter(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setAccessibleName("Watched ports on the chart")
        self.setToolTip("Choose a watched port to chart it large")
        self.setUniformItemSizes(True)

    def sizeHint(self) -> QSize:
        line = self.fontMetrics().height()
        return QSize(self.text_width_needed(), line * 12)

    def text_width_needed(self) -> int:
        """The width in which the widest usual row lines fit whole, scroll bar included."""
        metrics = QFontMetrics(self.font())
        text = max(metrics.horizontalAdvance(words) for words in WIDEST_LINES)
        scroll_bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        return text + 2 * ROW_MARGIN + 2 * self.frameWidth() + scroll_bar + 4

    def set_specs(self, specs: list[WatchSpec]) -> None:
        """One row per spec, in watch-list order; keeps the current one if still there."""
        current = self.current_spec()
        self.blockSignals(True)
        self.clear()
        for spec in specs:
            item = QListWidgetItem(str(spec))
            item.setData(SPEC_ROLE, spec)
            self.addItem(item)
        self.blockSignals(False)
        if current in specs:
            self.setCurrentRow(specs.index(current))
        elif specs:
            self.setCurrentRow(0)

    def current_spec(self) -> WatchSpec | None:
        item = self.currentItem()
        spec: WatchSpec | None = None if item is None else item.data(SPEC_ROLE)
        return spec

    def choose(self, spec: WatchSpec) -> None:
        for row in range(self.count()):
            if self.item(row).data(SPEC_ROLE) == spec:
                self.setCurrentRow(row)
                return

    def set_row(self, spec: WatchSpec, row: StripRow) -> None:
        for index in range(self.count()):
            item = self.item(index)
            if item.data(SPEC_ROLE) == spec:
                item.setData(ROW_ROLE, row)
                item.setToolTip(f"{spec}: " + row.summary.replace("\n", "; "))
                return

    def row_of(self, spec: WatchSpec) -> StripRow | None:
        for index in range(self.count()):
            item = self.item(index)
            if item.data(SPEC_ROLE) == spec:
                data: StripRow | None = item.data(ROW_ROLE)
                return data
        return None
