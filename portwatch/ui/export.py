"""The export job: the listeners CSV written from a fresh read-only history connection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from portwatch.engine.export import export_csv
from portwatch.services.history_lookup import open_readonly


def make_exporter(history_db: Path, services: Any = None) -> Callable[[Path, bool], int]:
    """A function that exports the history at ``history_db`` to a CSV path.

    It runs on a worker thread, so it opens its own read-only connection and closes it
    before returning. Raises ``ExportError``/``StoreError`` with the OS's reason.
    """

    def export(path: Path, watched_only: bool) -> int:
        if not history_db.exists():
            raise FileNotFoundError(2, "no history has been recorded yet", str(history_db))
        reader = open_readonly(history_db)
        try:
            return export_csv(reader, Path(path), watched_only, services)
        finally:
            reader.close()

    return export
