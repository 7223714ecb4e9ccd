"""The watch-list file as seen by the desktop app: load, save, and follow edits on disk.

The file stays the single source of truth shared with the CLI: the window writes it
(atomically) and re-reads it whenever it changes, whoever changed it. Edits are noticed
the same way as the trust file's (:class:`portwatch.config.follow.Follower`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from portwatch.config import watchfile
from portwatch.config.follow import Follower
from portwatch.core.watchlist import WatchList, WatchSpec
from portwatch.files import ResourceShortage

log = logging.getLogger(__name__)

# How often the file is checked for edits made elsewhere (an editor, `portwatch watch`).
FOLLOW_EVERY_MS = 500


class WatchListFile(QObject):
    """Owns the current watch list; emits ``changed`` after every (re)load that differs."""

    changed = Signal(object)
    """The new :class:`WatchList`."""
    problems = Signal(list)
    """Problems found while reading the file (line, value, reason), for a banner."""

    def __init__(
        self, path: Path, parent: QObject | None = None, follow_every_ms: int = FOLLOW_EVERY_MS
    ) -> None:
        super().__init__(parent)
        self._path = path
        loaded = watchfile.load(path)
        self._watchlist = loaded.watchlist
        self._initial_problems = list(loaded.problems)
        self._follower = Follower(path, watchfile.follow_load)
        self._timer = QTimer(self)
        self._timer.setInterval(follow_every_ms)
        self._timer.timeout.connect(self.reload_if_changed)
        self._timer.start()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def watchlist(self) -> WatchList:
        return self._watchlist

    def initial_problems(self) -> list[str]:
        """Problems from the first read (before anyone could connect to ``problems``)."""
        return list(self._initial_problems)

    @Slot()
    def reload_if_changed(self) -> None:
        """Pick up an edit made elsewhere; a file that cannot be used at all keeps the
        list in use (the problem is reported)."""
        try:
            loaded = self._follower.poll()
        except (ResourceShortage, MemoryError):
            return  # read again on the next look; the sampler's poll says what ran out
        if loaded is not None:
            self._apply(loaded)

    @Slot()
    def reload(self) -> None:
        """Read the file again now; emit ``changed`` if the list differs, ``problems`` if any."""
        self._follower.mark_seen()
        self._apply(watchfile.follow_load(self._path))

    def _apply(self, loaded: watchfile.LoadedWatchList) -> None:
        if loaded.problems:
            self.problems.emit(list(loaded.problems))
        if loaded.replaces_last_good and loaded.watchlist != self._watchlist:
            self._watchlist = loaded.watchlist
            self.changed.emit(self._watchlist)

    def _save(self, watchlist: WatchList) -> None:
        watchfile.save(self._path, watchlist)
        self._follower.mark_seen()
        if watchlist != self._watchlist:
            self._watchlist = watchlist
            self.changed.emit(watchlist)

    def add(self, spec: WatchSpec) -> bool:
        """Watch ``spec``; False when it was already watched. Raises OSError on write."""
        if spec in self._watchlist.specs:
            return False
        self._save(self._watchlist.with_added(spec))
        return True

    def remove(self, spec: WatchSpec) -> bool:
        """Stop watching ``spec``; False when it was not watched. Raises OSError on write."""
        if spec not in self._watchlist.specs:
            return False
        self._save(self._watchlist.without(spec))
        return True

    def stop(self) -> None:
        self._timer.stop()
