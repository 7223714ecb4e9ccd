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

# (bucket start, listeners, established, bytes in, bytes out) rows of one watched spec,
# its ports summed; bytes are None where the probe could not count them.
ActivityRows = list[tuple[float, int, int, int | None, int | None]]


@dataclass(frozen=True)
class ChartHistory:
    """The history for one chart window: per spec, its rows (every spec asked for)."""

    window_s: float
    step_s: float
    rows: dict[WatchSpec, ActivityRows]


def read_chart_history(
    history_db: Path,
    specs: Sequence[WatchSpec],
    since: float,
    until: float,
    resolution: int | None = None,
) -> dict[WatchSpec, ActivityRows]:
    """Read the activity of ``specs`` between two wall times, in buckets of
    ``resolution`` seconds (None: the store's choice for the span); one query per spec,
    whatever the size of its range."""
    if not history_db.exists():
        return {spec: [] for spec in specs}
    reader = open_readonly(history_db)
    try:
        return {
            spec: [
                (float(r.wall), int(r.listeners), int(r.established), r.bytes_in, r.bytes_out)
                for r in reader.activity_span(
                    spec.lo, spec.hi, spec.protos, since, until, resolution
                )
            ]
            for spec in specs
        }
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
        """Read ``window_s`` seconds up to the wall time ``until`` for ``specs``, in the
        store's buckets of ``step_s`` seconds."""
        self._generation += 1
        generation = self._generation
        specs = tuple(specs)
        path = self._history_db

        def deliver(rows: object) -> None:
            if generation == self._generation and isinstance(rows, dict):
                self.loaded.emit(ChartHistory(window_s, step_s, rows))

        self._jobs.submit(
            lambda: read_chart_history(path, specs, until - window_s, until, int(step_s)),
            deliver,
            lambda _exc: None,  # no history is an empty chart, not an error
        )
