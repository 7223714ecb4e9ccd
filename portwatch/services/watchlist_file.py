"""The watch-list file as seen by the desktop app: load, save, and follow edits on disk.

The file stays the single source of truth shared with the CLI: the window writes it
(atomically) and re-reads it whenever it changes, whoever changed it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal, Slot

from portwatch.config import watchfile
from portwatch.core.watchlist import WatchList, WatchSpec

log = logging.getLogger(__name__)


class WatchListFile(QObject):
    """Owns the current watch list; emits ``changed`` after every (re)load that differs."""

    changed = Signal(object)
    """The new :class:`WatchList`."""
    problems = Signal(list)
    """Problems found while reading the file (line, value, reason), for a banner."""

    def __init__(self, path: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._path = path
        loaded = watchfile.load(path)
        self._watchlist = loaded.watchlist
        self._initial_problems = list(loaded.problems)
        self._watcher = QFileSystemWatcher(self)
        # An atomic replace swaps the file's inode, which drops a file watch: watch the
        # folder too and re-arm the file watch on every change.
        self._watcher.addPath(str(path.parent))
        self._rewatch()
        self._watcher.fileChanged.connect(self._schedule_reload)
        self._watcher.directoryChanged.connect(self._schedule_reload)
        # Editors write in several steps; read once things settle.
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)
        self._debounce.timeout.connect(self.reload)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def watchlist(self) -> WatchList:
        return self._watchlist

    def initial_problems(self) -> list[str]:
        """Problems from the first read (before anyone could connect to ``problems``)."""
        return list(self._initial_problems)

    def _rewatch(self) -> None:
        if self._path.exists() and str(self._path) not in self._watcher.files():
            self._watcher.addPath(str(self._path))

    @Slot()
    def _schedule_reload(self, *_: object) -> None:
        self._debounce.start()

    @Slot()
    def reload(self) -> None:
        """Read the file again; emit ``changed`` if the list differs, ``problems`` if any."""
        self._rewatch()
        if not self._path.exists():
            return  # mid-replace, or deleted: keep what we have until it returns
        loaded = watchfile.load(self._path)
        if loaded.problems:
            self.problems.emit(list(loaded.problems))
        if loaded.watchlist != self._watchlist:
            self._watchlist = loaded.watchlist
            self.changed.emit(self._watchlist)

    def _save(self, watchlist: WatchList) -> None:
        watchfile.save(self._path, watchlist)
        self._rewatch()
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
