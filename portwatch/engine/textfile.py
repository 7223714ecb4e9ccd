"""``portwatch.prom`` for node_exporter's textfile collector, rewritten after each tick.

The file is replaced atomically (a temp file whose name does not end in ``.prom``,
then a rename), so the collector never reads half a file. It is world-readable:
node_exporter usually runs as its own user.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from portwatch import files
from portwatch.core.metrics import MetricsBook
from portwatch.core.watchlist import WatchList
from portwatch.engine.monitor import TickResult

FILE_NAME = "portwatch.prom"
FILE_MODE = 0o644


class TextfileSink:
    """Writes the metrics of every tick to ``DIR/portwatch.prom``."""

    def __init__(self, directory: Path, watchlist: WatchList | Callable[[], WatchList]) -> None:
        """``watchlist`` may be a callable asked before each write, so an edited watch
        list is followed (the monitor's current one)."""
        self.path = Path(directory) / FILE_NAME
        self._watchlist = watchlist if callable(watchlist) else (lambda: watchlist)
        self.book = MetricsBook(self._watchlist())
        self._failing = False

    def publish(self, result: TickResult) -> list[str]:
        current = self._watchlist()
        if current is not self.book.watchlist:
            self.book.set_watchlist(current)
        self.book.observe(result.sample, result.views, result.duration_s, result.ok)
        return self._write()

    def close(self) -> list[str]:
        self.book.mark_stopped()
        return self._write()

    def _write(self) -> list[str]:
        try:
            files.write_text(self.path, self.book.render(), mode=FILE_MODE)
        except OSError as exc:
            # Said once per outage, not once per tick.
            if self._failing:
                return []
            self._failing = True
            return [f"cannot write the metrics file {self.path}: {exc.strerror or exc}"]
        if self._failing:
            self._failing = False
            return [f"the metrics file {self.path} is written again"]
        return []
