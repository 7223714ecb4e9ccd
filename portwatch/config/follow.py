"""Following a config file that another process (an editor, the command line) may
change while portwatch runs: the one way the window and the monitor notice edits.

A change is seen from the file's status (time, size, inode), checked when the caller
polls; an atomic replace, an edit in place and a removal all change it. Reading stays
the loader's job, and the loader only reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")

Stamp = tuple[int, int, int, int, int]


def stamp_of(path: Path) -> Stamp | None:
    """What identifies this version of the file (not following a link), or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Follower(Generic[T]):
    """Loads ``path`` with ``load`` again when it changed since the last look."""

    def __init__(self, path: Path, load: Callable[[Path], T]) -> None:
        self.path = path
        self._load = load
        self._stamp = stamp_of(path)

    def poll(self) -> T | None:
        """The freshly loaded content when the file changed, else None."""
        stamp = stamp_of(self.path)
        if stamp == self._stamp:
            return None
        # A load cut short for want of descriptors or memory raises ResourceShortage:
        # the stamp is then not taken, so the file is read again at the next poll.
        loaded = self._load(self.path)
        self._stamp = stamp
        return loaded

    def mark_seen(self) -> None:
        """Take the file as it is now as known (after our own write, which is not news)."""
        self._stamp = stamp_of(self.path)
