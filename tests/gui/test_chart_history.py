"""History drawn on the chart: consecutive buckets join up, missing buckets are gaps."""

from __future__ import annotations

import math
from typing import Any

from portwatch.services.history_lookup import HistoryLookup
from portwatch.ui.chart import is_gap, rows_to_points


def test_consecutive_history_buckets_draw_as_a_line() -> None:
    step = HistoryLookup.bucket_seconds(3600)
    assert step == 10
    rows = [(1000.0 + i * step, 1, 2) for i in range(30)]
    points = rows_to_points([rows], step)
    assert len(points) == 30
    assert not any(math.isnan(v) for v in points[:, 1])


def test_a_missing_stretch_of_buckets_is_one_gap() -> None:
    rows = [(1000.0, 1, 0), (1010.0, 1, 0), (1500.0, 1, 0), (1510.0, 1, 0)]
    points = rows_to_points([rows], 10.0)
    assert sum(math.isnan(v) for v in points[:, 1]) == 1


def test_several_ports_of_a_range_are_summed_per_bucket() -> None:
    a = [(1000.0, 1, 1), (1010.0, 1, 0)]
    b = [(1000.0, 0, 3)]
    points = rows_to_points([a, b], 10.0)
    assert points[0].tolist() == [1000.0, 1.0, 4.0]


def test_a_clock_set_backwards_is_a_gap_not_a_line_back_in_time() -> None:
    assert is_gap(-5.0, 2.0)
    assert not is_gap(2.0, 2.0)
    assert is_gap(3600.0, 2.0)


def test_tooltip_lines_break_where_meant_and_process_newlines_stay_visible() -> None:
    from portwatch.services.plain_text import tooltip

    tip = tooltip("/usr/bin/<b>x</b>\nfake", "SHA-256 abc")
    assert "<br>" in tip
    assert "\\x0a" in tip  # the newline inside the name is shown, not obeyed
    assert "&lt;b&gt;" in tip and "<b>" not in tip


def test_alert_log_and_tray_menu_stay_bounded(qtbot: Any) -> None:
    from portwatch.core.alerts import Alert, Urgency
    from portwatch.services.notify import LOG_LIMIT, LoggedAlert
    from portwatch.ui.alert_log import AlertLog
    from portwatch.ui.tray import Tray

    log = AlertLog()
    qtbot.addWidget(log)
    tray = Tray()
    for i in range(LOG_LIMIT + 50):
        entry = LoggedAlert(i, float(i), Alert(f"t{i}", "x", 1, None, Urgency.NORMAL), "log")
        log.add(entry)
        tray.add_recent(entry)
    assert log.count() == LOG_LIMIT
    qtbot.waitUntil(lambda: len(tray.recent_menu.findChildren(type(tray.open_action))) <= 20)
