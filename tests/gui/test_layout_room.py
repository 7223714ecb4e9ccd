"""At the window's default size (and narrower) nothing is cut: the strip rows, the chart's
title and its "traffic not measured" note fit, and the tables show a screenful of rows."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from guikit import shown_default_window
from PySide6.QtGui import QFontMetrics

import portwatch.ui.chart as chart_module
from portwatch.app import DesktopApp
from portwatch.core.types import PortActivity, Proto
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.ui.chart import ActivityChart, unmeasured_reason
from portwatch.ui.port_strip import ROW_ROLE, PortStrip, StripRow


def _lines_fit(strip: PortStrip) -> list[str]:
    """The strip rows' lines that do not fit their row (the row's side margins off)."""
    metrics = QFontMetrics(strip.font())
    cut = []
    for index in range(strip.count()):
        item = strip.item(index)
        row: StripRow | None = item.data(ROW_ROLE)
        assert row is not None
        room = strip.visualItemRect(item).width() - 2 * 6
        for words in row.summary.split("\n"):
            if metrics.horizontalAdvance(words) > room:
                cut.append(words)
    return cut


def test_every_strip_row_fits_at_the_default_size_and_at_the_narrowest(
    qtbot: Any, make_desktop: Callable[..., DesktopApp]
) -> None:
    desktop = shown_default_window(qtbot, make_desktop, 2)
    window = desktop.window
    window.chart.redraw()
    assert window.chart.strip.count() == 3
    assert _lines_fit(window.chart.strip) == []
    # The widest usual lines fit too (a busy range, megabytes a second) once the chart
    # is wide enough for the strip to take what its lines need (a small screen's default
    # window is not: there the strip narrows and elides them, see below).
    strip = window.chart.strip
    window.resize(1200, window.height())
    qtbot.waitUntil(lambda: strip.width() == strip.text_width_needed())
    usual = strip.row_of(parse_spec("3321"))
    assert usual is not None
    strip.set_row(
        parse_spec("3321"),
        StripRow(
            "99 listening \u00b7 999 conn.\nin 99.9 MB/s \u00b7 out 99.9 MB/s",
            usual.sketch,
            0.0,
            1.0,
        ),
    )
    assert _lines_fit(strip) == []
    strip.set_row(parse_spec("3321"), usual)
    # The narrowest the window goes: the strip narrows to leave the plots room, but the
    # usual lines still fit, and each row's tooltip has its whole text.
    window.resize(window.minimumSizeHint().width(), window.height())
    qtbot.waitUntil(lambda: window.width() <= window.minimumSizeHint().width() + 1)
    assert _lines_fit(window.chart.strip) == []
    for index in range(strip.count()):
        row: StripRow | None = strip.item(index).data(ROW_ROLE)
        assert row is not None
        assert row.summary.replace("\n", "; ") in strip.item(index).toolTip()


def test_the_tables_show_at_least_eight_rows_at_the_default_size(
    qtbot: Any, make_desktop: Callable[..., DesktopApp]
) -> None:
    window = make_desktop(["3653"]).window
    window.show()
    qtbot.waitExposed(window)
    table = window.table
    rows = table.viewport().height() // table.verticalHeader().defaultSectionSize()
    assert rows >= 8, (window.size(), window.middle.sizes())
    # The chart keeps room for both plots.
    assert window.chart.plot.height() >= window.chart.plot.minimumHeight()


def _windows_reason(spec: Any, probe_name: str, platform: str = "") -> str:
    return unmeasured_reason(spec, probe_name, "win32")


@pytest.mark.parametrize("width", [900, 620, 480])
def test_the_unmeasured_note_and_the_title_stay_inside_the_chart(
    qtbot: Any, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    # The longest reason there is (Windows), on a TCP+UDP port (the longest title).
    monkeypatch.setattr(chart_module, "unmeasured_reason", _windows_reason)
    both = parse_spec("3653")
    chart = ActivityChart(capacity=100, clock=lambda: 1010.0)
    qtbot.addWidget(chart)
    chart.set_watchlist(WatchList((both,)))
    for wall in (1000.0, 1002.0, 1004.0):
        sample = SimpleNamespace(
            wall=wall,
            listeners=(),
            activity=(PortActivity(3653, Proto.TCP, 1, 0), PortActivity(3653, Proto.UDP, 1, 0)),
            probe_name="psutil",
        )
        chart.add_sample(sample)
    chart.resize(width, 420)
    chart.show()
    qtbot.waitExposed(chart)
    chart.redraw()
    qtbot.wait(50)
    assert "administrators" in chart.unmeasured.toPlainText()
    box = chart.traffic_plot.getPlotItem().getViewBox().sceneBoundingRect()
    note = chart.unmeasured.sceneBoundingRect()
    assert box.contains(note), (box, note)
    # The title fits its width (shortened with "…" if need be), the whole text kept.
    title = chart.title
    shown = getattr(title, "shown_text", title.text)()
    assert title.fontMetrics().horizontalAdvance(shown) <= title.contentsRect().width()
    assert title.x() + title.width() <= chart.strip.x()
    assert "TCP only" in title.text()
    assert "UDP" in title.toolTip()
