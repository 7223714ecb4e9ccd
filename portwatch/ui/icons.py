"""Icons: the app and tray icons from the package resources, and the per-state glyphs.

States are told apart by shape as well as colour (circle, check, triangle, question
diamond), so they read without colour vision and in a monochrome tray.
"""

from __future__ import annotations

import enum
import functools
import logging
import sys
from importlib import resources

from PySide6.QtCore import QBuffer, QByteArray, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QIcon,
    QImageReader,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QPolygonF,
)

log = logging.getLogger(__name__)


class PortState(str, enum.Enum):
    """What a watched port looks like at a glance."""

    QUIET = "quiet"
    LISTENING = "listening"
    UNKNOWN = "unknown owner"
    UNATTRIBUTED = "unattributed"

    @property
    def label(self) -> str:
        return {
            PortState.QUIET: "quiet",
            PortState.LISTENING: "listening (trusted owner)",
            PortState.UNKNOWN: "unknown owner",
            PortState.UNATTRIBUTED: "unattributed (owner hidden)",
        }[self]

    @property
    def severity(self) -> int:
        """Higher is more worrying; a range shows its most worrying port."""
        return {
            PortState.QUIET: 0,
            PortState.LISTENING: 1,
            PortState.UNATTRIBUTED: 2,
            PortState.UNKNOWN: 3,
        }[self]


STATE_COLOURS = {
    PortState.QUIET: QColor("#7f8c8d"),
    PortState.LISTENING: QColor("#2e8b57"),
    PortState.UNKNOWN: QColor("#d35400"),
    PortState.UNATTRIBUTED: QColor("#8e44ad"),
}

_SIZES = (16, 24, 32, 48, 64)


def _draw_state(painter: QPainter, state: PortState, size: int) -> None:
    colour = STATE_COLOURS[state]
    pen = QPen(colour, max(1.5, size / 10))
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    m = size * 0.12
    box = QRectF(m, m, size - 2 * m, size - 2 * m)
    if state is PortState.QUIET:
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(box)
    elif state is PortState.LISTENING:
        painter.setBrush(colour)
        painter.drawEllipse(box)
        white = QPen(QColor("white"), max(1.5, size / 9))
        white.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(white)
        path = QPainterPath(QPointF(size * 0.3, size * 0.52))
        path.lineTo(size * 0.45, size * 0.66)
        path.lineTo(size * 0.72, size * 0.36)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
    elif state is PortState.UNKNOWN:
        painter.setBrush(colour)
        triangle = QPolygonF(
            [QPointF(size / 2, m), QPointF(size - m, size - m), QPointF(m, size - m)]
        )
        painter.drawPolygon(triangle)
        _draw_mark(painter, "!", size, QRectF(0, size * 0.2, size, size * 0.75))
    else:
        painter.setBrush(colour)
        diamond = QPolygonF(
            [
                QPointF(size / 2, m),
                QPointF(size - m, size / 2),
                QPointF(size / 2, size - m),
                QPointF(m, size / 2),
            ]
        )
        painter.drawPolygon(diamond)
        _draw_mark(painter, "?", size, QRectF(0, 0, size, size))


def _draw_mark(painter: QPainter, mark: str, size: int, rect: QRectF) -> None:
    font = painter.font()
    font.setBold(True)
    font.setPixelSize(max(6, int(size * 0.5)))  # an icon glyph, sized to the icon
    painter.setFont(font)
    painter.setPen(QColor("white"))
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, mark)


@functools.cache
def state_icon(state: PortState) -> QIcon:
    """The glyph for a port state, drawn at several sizes so it stays crisp at 200 %."""
    icon = QIcon()
    for size in _SIZES:
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        _draw_state(painter, state, size)
        painter.end()
        icon.addPixmap(pixmap)
    return icon


def _resource_icon(name: str) -> QIcon | None:
    try:
        ref = resources.files("portwatch.resources").joinpath("icons").joinpath(name)
        if not ref.is_file():
            return None
        data = ref.read_bytes()
    except (FileNotFoundError, ModuleNotFoundError, OSError):
        return None
    pixmaps = QIcon()
    for size in _SIZES:
        # Rendered at each size (not scaled from one bitmap) so edges stay sharp.
        buffer = QBuffer()
        buffer.setData(QByteArray(data))
        reader = QImageReader(buffer)
        reader.setScaledSize(QSize(size, size))
        image = reader.read()
        if not image.isNull():
            pixmaps.addPixmap(QPixmap.fromImage(image))
    if pixmaps.isNull():
        log.warning("cannot load the icon %s", name)
        return None
    return pixmaps


def _placeholder(alert: bool) -> QIcon:
    # Until the drawn icons are packaged: a port "socket" ring, or a warning triangle.
    return state_icon(PortState.UNKNOWN if alert else PortState.LISTENING)


@functools.cache
def app_icon() -> QIcon:
    """The window icon."""
    return _resource_icon("portwatch.svg") or _placeholder(alert=False)


@functools.cache
def tray_icon(alert: bool) -> QIcon:
    """The tray icon; the alert version differs in shape, not only colour.

    macOS tints a mask icon for light and dark menu bars, so it gets the mask version.
    """
    if sys.platform == "darwin":
        mask = _resource_icon("tray-alert-mask.svg" if alert else "tray-mask.svg")
        if mask is not None:
            mask.setIsMask(True)
            return mask
    icon = _resource_icon("tray-alert.svg" if alert else "tray.svg")
    return icon or _placeholder(alert)


@functools.cache
def tray_icon_paused(alert: bool) -> QIcon:
    """The tray icon while monitoring or alerts are paused: the usual (or alert) icon with
    a pause badge (two bars on a dark disc) in a corner, so the pause reads at a glance."""
    base = tray_icon(alert=alert)
    icon = QIcon()
    for size in _SIZES:
        pixmap = base.pixmap(size, size)
        if pixmap.isNull():
            continue
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        badge = size * 0.55
        # Bottom left: the alert icon's warning triangle sits bottom right.
        rect = QRectF(0, size - badge, badge, badge)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#333333"))
        painter.drawEllipse(rect)
        painter.setBrush(QColor("white"))
        bar_w, bar_h = badge * 0.16, badge * 0.5
        top = rect.center().y() - bar_h / 2
        for dx in (-badge * 0.14, badge * 0.14):
            x = rect.center().x() + dx - bar_w / 2
            painter.drawRect(QRectF(x, top, bar_w, bar_h))
        painter.end()
        icon.addPixmap(pixmap)
    return icon
