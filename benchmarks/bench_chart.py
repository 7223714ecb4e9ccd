"""What one chart redraw costs, per window, with full buffers.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_chart.py [--specs 8] [--interval 2]

Fills the chart with 24 hours of polls at the given interval for each watched spec (with
traffic counted on every poll, the worst case) and one hour of 10 s history buckets,
then times ``redraw`` (with the repaint it causes) in the 5 minutes, 1 hour and 24 hours
windows. Prints milliseconds per redraw and the share of one core that costs at the
chart's cadence: every poll for 5 minutes, each new 10 s / 1 min bucket for the others.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


# (label, window seconds, seconds between redraws: every poll, or each new bucket)
WINDOWS_TIMED = (("5 minutes", 300.0, None), ("1 hour", 3600.0, 10.0), ("24 hours", 86400.0, 60.0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", type=int, default=8)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    import numpy as np
    from PySide6.QtWidgets import QApplication

    from portwatch.core.watchlist import WatchList, parse_spec
    from portwatch.ui.chart import ActivityChart

    app = QApplication.instance() or QApplication([sys.argv[0]])
    now = 1_700_000_000.0
    specs = [parse_spec(f"{8000 + i}/tcp") for i in range(args.specs)]
    polls = int(24 * 3600 / args.interval)
    chart = ActivityChart(capacity=polls + 10, clock=lambda: now)
    chart.resize(1000, 500)
    chart.show()
    chart.set_interval(args.interval)
    chart.set_watchlist(WatchList(tuple(specs)))
    walls = now - 24 * 3600 + np.arange(polls) * args.interval
    rng = np.random.default_rng(1)
    for series in chart._series.values():  # filled directly: the appends are not timed
        for wall in walls:
            series.buffer.append(wall, 1, rng.integers(0, 5), rng.integers(0, 1e6), 1e5)

    def buckets(count: int, step: float) -> np.ndarray:
        starts = now - count * step + np.arange(count) * step
        ones = np.ones(count)
        return np.column_stack((starts, ones, 2 * ones, 1e6 * ones, 1e5 * ones))

    for spec in specs:
        chart.load_history(spec, buckets(360, 10.0), 10.0, 3600.0)
    print(f"{args.specs} watched specs, {polls} polls each ({args.interval} s for 24 h)")
    for label, seconds, every in WINDOWS_TIMED:
        chart.set_window(seconds)
        if seconds == 86400.0:
            for spec in specs:  # 1-minute buckets for the day
                chart.load_history(spec, buckets(1440, 60.0), 60.0, seconds)
        app.processEvents()
        started = time.perf_counter()
        for _ in range(args.repeat):
            chart._dirty = True
            chart.redraw()
            app.processEvents()
        per = (time.perf_counter() - started) / args.repeat
        period = max(every or args.interval, args.interval)
        share = per / period * 100
        print(
            f"{label:>10}: {per * 1000:7.2f} ms per redraw, one every {period:g} s:"
            f" {share:5.2f} % of a core"
        )
    chart.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
