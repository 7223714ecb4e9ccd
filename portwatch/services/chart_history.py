"""Back-filling the activity chart from the history, on the thread pool.

A window change (5 min, 1 h, 24 h) or a new watch list asks for up to a few dozen port
queries; they run on a worker with their own read-only connection, never on the GUI
thread. Only the newest request's answer is delivered: a slower, older one is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from portwatch.core.watchlist import WatchSpec
from portwatch.services.background import JobRunner
from portwatch.services.history_lookup import open_readonly

# A range is filled from history port by port; beyond this many ports it is skipped.
HISTORY_FILL_MAX_PORTS = 32

# (wall, listeners, established) rows of one port and protocol.
ActivityRows = list[tuple[float, int, int]]


@dataclass(frozen=True)
class ChartHistory:
    """The history for one chart window: per spec, one list of rows per port and protocol."""

    window_s: float
    step_s: float
    rows: dict[WatchSpec, list[ActivityRows]]


def read_chart_history(
    history_db: Path, specs: Sequence[WatchSpec], since: float, until: float
) -> dict[WatchSpec, list[ActivityRows]]:
    """Read the activity of every port of ``specs`` (small ones) between two wall times."""
    if not history_db.exists():
        return {}
    reader = open_readonly(history_db)
    try:
        out: dict[WatchSpec, list[ActivityRows]] = {}
        for spec in specs:
            if spec.hi - spec.lo + 1 > HISTORY_FILL_MAX_PORTS:
                continue
            rows = [
                [
                    (float(r.wall), int(r.listeners), int(r.established))
                    for r in reader.activity(port, proto, since, until)
                ]
                for port in range(spec.lo, spec.hi + 1)
                for proto in spec.protos
            ]
            if any(rows):
                out[spec] = rows
        return out
    finally:
        reader.close()


class ChartHistoryLoader(QObject):
    """Asks the pool for a chart window's history; emits ``loaded`` with the newest."""

    loaded = Signal(object)
    """A :class:`ChartHistory`."""

    def __init__(self, history_db: Path, jobs: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._history_db = history_db
        self._jobs = jobs
        self._generation = 0

    def request(
        self, specs: Sequence[WatchSpec], window_s: float, step_s: float, until: float
    ) -> None:
        """Read ``window_s`` seconds up to the wall time ``until`` for ``specs``."""
        self._generation += 1
        generation = self._generation
        specs = tuple(specs)
        path = self._history_db

        def deliver(rows: object) -> None:
            if generation == self._generation and isinstance(rows, dict):
                self.loaded.emit(ChartHistory(window_s, step_s, rows))

        self._jobs.submit(
            lambda: read_chart_history(path, specs, until - window_s, until),
            deliver,
            lambda _exc: None,  # no history is an empty chart, not an error
        )
