"""A narrow or short window (a small screen, 200 % scaling): the status bar's passing
message is elided beside the permanent line, never run into it; the tables keep a few
rows; the count plot's labels are not cut at its edge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from guikit import shown_default_window, wait_ticks
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter

from portwatch.app import DesktopApp

ALERT = "Alert: Untrusted program on 3353/udp (View \u25b8 Alert log lists every alert)"


def test_the_status_message_is_elided_beside_the_whole_status_line(
    qtbot: Any, make_desktop: Callable[..., DesktopApp]
) -> None:
    desktop = shown_default_window(qtbot, make_desktop, 1)
    window = desktop.window
    window.resize(720, window.height())
    qtbot.waitUntil(lambda: window.width() == 720)
    bar = window.statusBar()
    bar.showMessage(ALERT, 15_000)
    qtbot.wait(20)
    status = window.status_text
    assert status.text().startswith("Last check")
    # The permanent line is whole at 720 px.
    assert status.fontMetrics().horizontalAdvance(status.text()) <= status.contentsRect().width()
    # The message ends a gap before it, shortened with "…", whole in the tooltip.
    shown = getattr(bar, "shown_message", bar.currentMessage)()
    room = status.x() - 6 - bar.fontMetrics().horizontalAdvance(" ")
    assert bar.fontMetrics().horizontalAdvance(shown) <= room, (shown, room)
    assert shown.endswith("\u2026") and shown != ALERT
    assert bar.toolTip() == ALERT
    # Narrower still, the permanent line itself shortens and keeps its whole text.
    window.resize(window.minimumSizeHint().width(), window.height())
    qtbot.wait(20)
    assert status.x() + status.width() <= bar.width()
    assert status.toolTip() == status.text()


def test_a_short_window_keeps_table_rows_and_whole_count_labels(
    qtbot: Any, make_desktop: Callable[..., DesktopApp]
) -> None:
    desktop = shown_default_window(qtbot, make_desktop, 2)
    window = desktop.window
    window.resize(700, 480)
    qtbot.waitUntil(lambda: window.width() == 700 and abs(window.height() - 480) <= 5)
    qtbot.wait(50)
    window.chart.redraw()
    table = window.table
    rows = table.viewport().height() // table.verticalHeader().defaultSectionSize()
    assert rows >= 4, (window.size(), window.middle.sizes())
    # The strip leaves the plots most of the chart's width.
    assert window.chart.strip.width() <= window.chart.width() * 2 // 5 + 1
    # Every count label drawn lies inside the plot's widget (none cut at its edge).
    plot = window.chart.plot
    axis = plot.getPlotItem().getAxis("left")
    image = QImage(4, 4, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _axis, _ticks, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    assert texts
    inside = QRectF(plot.rect())
    for rect, _flags, text in texts:
        placed = axis.mapRectToScene(rect)
        assert inside.contains(placed), (text, placed, inside)
    # The sideways axis names would run into each other in plots this short: hidden.
    assert not axis.label.isVisible()
    window.resize(700, 900)
    qtbot.waitUntil(lambda: window.height() > 600)
    assert axis.label.isVisible()


def test_the_unmeasured_note_shows_only_where_it_fits(
    qtbot: Any, make_desktop: Callable[..., DesktopApp]
) -> None:
    desktop = make_desktop(["3321"])  # nobody listens: traffic is not measured
    window = desktop.window
    window.show()
    qtbot.waitExposed(window)
    wait_ticks(qtbot, desktop, 2)
    chart = window.chart
    for width, height in ((700, 480), (1200, 900)):
        window.resize(width, height)
        qtbot.wait(50)
        chart.redraw()
        qtbot.wait(50)
        note = chart.unmeasured
        assert note.toPlainText()
        box = chart.traffic_plot.getPlotItem().getViewBox().sceneBoundingRect()
        if note.isVisible():
            assert box.contains(note.sceneBoundingRect()), (width, height)
    assert note.isVisible()  # a plot tall enough shows it
