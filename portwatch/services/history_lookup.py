"""Read-only access to the history for the GUI thread (the sampler thread is the one writer).

The connection is opened lazily (the sampler creates the database on its first tick)
and every failure reads as "no history": the window must keep working when the
history is missing, locked or damaged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from portwatch.core.types import Endpoint, Proto

log = logging.getLogger(__name__)


def open_readonly(path: Path) -> Any:
    """A read-only history reader on ``path`` with its own connection; raises on failure."""
    from portwatch.store.history import HistoryStore

    return HistoryStore.open_readonly(path)


class HistoryLookup:
    """The GUI's questions to the history, answered from a read-only connection."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._store: Any = None
        self._failed_once = False

    def _get(self) -> Any:
        if self._store is None:
            if not self._path.exists():
                return None
            try:
                self._store = open_readonly(self._path)
            except Exception as exc:
                if not self._failed_once:
                    log.warning("cannot read the history: %s", exc)
                    self._failed_once = True
                return None
        return self._store

    def _ask(self, method: str, *args: Any, default: Any) -> Any:
        store = self._get()
        if store is None:
            return default
        try:
            return getattr(store, method)(*args)
        except Exception as exc:
            log.warning("history query %s failed: %s", method, exc)
            return default

    def first_last_seen(self, endpoint: Endpoint) -> tuple[float, float] | None:
        """(first seen, last seen) wall times of a listener's endpoint, or None."""
        seen = self._ask("first_last_seen", endpoint, default=None)
        if not seen or seen[0] is None:
            return None
        return float(seen[0]), float(seen[1])

    @staticmethod
    def bucket_seconds(span_s: float) -> float:
        """The width of the history buckets :meth:`activity` returns for a span."""
        from portwatch.store.history import HistoryReader

        return float(HistoryReader.resolution_for(span_s))

    def activity(
        self, port: int, proto: Proto, since_wall: float, until_wall: float
    ) -> list[tuple[float, int, int]]:
        """(wall, listeners, established) rows for one port between two times."""
        rows = self._ask("activity", port, proto, since_wall, until_wall, default=[])
        return [(float(r.wall), int(r.listeners), int(r.established)) for r in rows]

    def events_for(self, port: int, proto: Proto | None, limit: int = 200) -> list[Any]:
        """Recent events on one port, newest first."""
        return list(self._ask("recent_events", limit, port, proto, default=[]))

    def close(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:
                log.exception("closing the history reader failed")
            self._store = None
