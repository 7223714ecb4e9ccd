"""History drawn on the chart: consecutive buckets join up, missing buckets are gaps."""

from __future__ import annotations

from typing import Any

import numpy as np

from portwatch.services.history_lookup import HistoryLookup
from portwatch.ui.chart_data import bucket_counts, is_gap, step_xy, sum_port_rows


def _drawn_breaks(buckets: np.ndarray, step: float) -> int:
    counts = bucket_counts(buckets, step)
    _xs, ys = step_xy(counts[:, 0], counts[:, 1], counts[:, 2])
    return int(np.isnan(ys).sum())


def test_consecutive_history_buckets_draw_as_one_stepped_line() -> None:
    step = HistoryLookup.bucket_seconds(3600)
    assert step == 10
    rows = [(1000.0 + i * step, 1, i % 3, None, None) for i in range(30)]
    buckets = sum_port_rows([rows])
    assert len(buckets) == 30
    assert _drawn_breaks(buckets, step) == 0
    counts = bucket_counts(buckets, step)
    xs, ys = step_xy(counts[:, 0], counts[:, 1], counts[:, 3])
    # Steps, not ramps: every value is flat across its bucket.
    assert all(xs[i] == xs[i + 1] or ys[i] == ys[i + 1] for i in range(len(xs) - 1) if i % 2 == 0)


def test_a_missing_stretch_of_buckets_is_one_gap_not_a_ramp() -> None:
    rows = [(1000.0, 1, 0, None, None), (1010.0, 1, 0, None, None)]
    rows += [(1500.0, 1, 0, None, None), (1510.0, 1, 0, None, None)]
    assert _drawn_breaks(sum_port_rows([rows]), 10.0) == 1


def test_several_ports_of_a_range_are_summed_per_bucket() -> None:
    a = [(1000.0, 1, 1, 10, 20), (1010.0, 1, 0, 0, 0)]
    b = [(1000.0, 0, 3, None, None)]
    points = sum_port_rows([a, b])
    assert points[0].tolist() == [1000.0, 1.0, 4.0, 10.0, 20.0]


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
