"""The export job: the listeners CSV written from a fresh read-only history connection."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portwatch.services.history_reader import open_readonly

# Where the CSV writer may live; the first that exists is used.
_WRITER_MODULES = ("portwatch.cli.export", "portwatch.engine.export", "portwatch.core.csvrows")


def find_writer() -> Callable[..., Any] | None:
    """``write_csv(store_or_rows, path, watched_only)`` if this build has it."""
    for name in _WRITER_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        writer = getattr(module, "write_csv", None)
        if callable(writer):
            return writer
    return None


def make_exporter(history_db: Path) -> Callable[[Path, bool], Any] | None:
    """A function that exports the history at ``history_db`` to a CSV path, or None."""
    writer = find_writer()
    if writer is None:
        return None

    def export(path: Path, watched_only: bool) -> Any:
        # Runs on a worker thread: its own read-only connection, closed before returning.
        store = open_readonly(history_db)
        try:
            return writer(store, path, watched_only)
        finally:
            store.close()

    return export
