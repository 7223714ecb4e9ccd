"""Builds the engine's Monitor for the sampler thread (probe, history writer, judge)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from portwatch.core.watchlist import WatchList
from portwatch.engine.monitor import Monitor
from portwatch.probe import create
from portwatch.store.history import HistoryStore


def monitor_factory(
    history_db: Path,
    probe_kind: str,
    watchlist: Callable[[], WatchList],
    services: Any = None,
) -> Callable[[], tuple[Monitor, Sequence[str]]]:
    """A factory the sampler calls *inside its thread*, so the SQLite connection and the
    probe belong to that thread. Returns the monitor and the store's notices."""

    def build() -> tuple[Monitor, Sequence[str]]:
        probe = create(probe_kind)
        try:
            store = HistoryStore.open(history_db)
        except Exception:
            probe.close()
            raise
        monitor = Monitor(probe, store, watchlist(), services=services)
        return monitor, list(store.notices)

    return build
