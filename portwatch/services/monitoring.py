"""Builds the engine's Monitor for the sampler thread (probe, history writer, judge)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from portwatch.core.verdict import Judge
from portwatch.core.watchlist import WatchList
from portwatch.engine.monitor import Monitor
from portwatch.probe import create
from portwatch.store.history import HistoryStore, StoreError

log = logging.getLogger(__name__)


def monitor_factory(
    history_db: Path,
    probe_kind: str,
    watchlist: Callable[[], WatchList],
    services: Any = None,
    judge: Judge | None = None,
) -> Callable[[], tuple[Monitor, Sequence[str]]]:
    """A factory the sampler calls *inside its thread*, so the SQLite connection and the
    probe belong to that thread. Returns the monitor and the store's notices.

    ``judge`` decides known/unknown/unattributed (the trust list's ``TrustJudge``);
    without one nothing is trusted."""

    def build() -> tuple[Monitor, Sequence[str]]:
        probe = create(probe_kind)
        try:
            store = HistoryStore.open(history_db)
        except StoreError as exc:
            # Watching matters more than remembering: go on without history.
            log.error("monitoring without history: %s", exc)
            notice = f"{exc}. portwatch keeps watching, but nothing is recorded this session."
            return Monitor(probe, None, watchlist(), judge=judge, services=services), [notice]
        except Exception:
            probe.close()
            raise
        monitor = Monitor(probe, store, watchlist(), judge=judge, services=services)
        return monitor, list(store.notices)

    return build
