"""Exporting the listener history as CSV, on the thread pool.

Each export opens its own read-only history connection on the worker thread and closes
it before returning; the result comes back on the GUI thread as a signal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from portwatch.engine.export import ServiceNames, export_csv
from portwatch.services.background import JobRunner
from portwatch.services.history_lookup import open_readonly

# Writes the listeners CSV to a path: (path, watched_only) -> rows written.
ExportFunction = Callable[[Path, bool], int]


def make_exporter(
    history_db: Path, services: ServiceNames | None = None, keep: Sequence[Path] = ()
) -> ExportFunction:
    """A function that exports the history at ``history_db`` to a CSV path.

    It runs on a worker thread, so it opens its own read-only connection and closes it
    before returning. Raises ``ExportError``/``StoreError``/``OSError`` with the reason;
    the files in ``keep`` (portwatch's own) are never written over.
    """

    def export(path: Path, watched_only: bool) -> int:
        if not history_db.exists():
            raise FileNotFoundError(2, "no history has been recorded yet", str(history_db))
        reader = open_readonly(history_db)
        try:
            return export_csv(reader, Path(path), watched_only, services, keep)
        finally:
            reader.close()

    return export


class ExportService(QObject):
    """Runs one export at a time off the GUI thread and reports how it ended."""

    started = Signal(object)
    """The path being written."""
    finished = Signal(object, object)
    """(path, rows written or None) when it worked; (path, exception) by ``failed``."""
    failed = Signal(object, object)
    """(path, exception)."""

    def __init__(
        self, export: ExportFunction | None, jobs: JobRunner, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._export = export
        self._jobs = jobs
        self._running = False

    @property
    def available(self) -> bool:
        return self._export is not None

    @property
    def running(self) -> bool:
        return self._running

    def export_to(self, path: Path, watched_only: bool = False) -> bool:
        """Start writing ``path``; False when exporting is unavailable or already running."""
        export = self._export
        if export is None or self._running:
            return False
        self._running = True
        self.started.emit(path)
        self._jobs.submit(
            lambda: export(path, watched_only),
            lambda count: self._done(path, count),
            lambda exc: self._failed(path, exc),
        )
        return True

    def _done(self, path: Path, count: object) -> None:
        self._running = False
        self.finished.emit(path, count if isinstance(count, int) else None)

    def _failed(self, path: Path, exc: BaseException) -> None:
        self._running = False
        self.failed.emit(path, exc)
