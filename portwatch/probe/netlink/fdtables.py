"""Processes' descriptor tables as ``/proc`` shows them: the seam the inode resolver reads through.

Tests hand the resolver a reader over a ``/proc`` tree they build, or one that counts
what it is asked, instead of patching ``os``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from portwatch.files import raise_if_short


def _kernel_counts_fds(proc_root: str) -> bool:
    """Whether ``stat`` on ``/proc/<pid>/fd`` gives the number of open descriptors as
    its size (Linux 6.2 and later; older kernels say 0)."""
    try:
        return os.stat(f"{proc_root}/self/fd").st_size > 0
    except OSError:
        return False


class FdTables:
    """Reads pids, start times and descriptor tables under ``proc_root``."""

    def __init__(self, proc_root: str = "/proc") -> None:
        self.root = proc_root
        # Only the real /proc reports descriptor counts; a tree built by a test does not.
        self._counts = proc_root == "/proc" and _kernel_counts_fds(proc_root)

    def pids(self) -> list[int]:
        """Every process now, ascending; [] if ``/proc`` cannot be listed."""
        try:
            names = os.listdir(self.root)
        except OSError as exc:
            raise_if_short(exc)
            return []
        return sorted(int(name) for name in names if name.isdigit())

    def stat(self, pid: int) -> tuple[int, int] | None:
        """(start time in clock ticks since boot, parent pid); None if it cannot be read."""
        try:
            with open(f"{self.root}/{pid}/stat", "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise_if_short(exc)  # else the process would be taken for gone
            return None
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        fields = raw[raw.rfind(b")") + 2 :].split()
        try:
            return int(fields[19]), int(fields[1])  # fields 22 (starttime) and 4 (ppid)
        except (IndexError, ValueError):
            return None

    def fd_count(self, pid: int) -> int | None:
        """How many descriptors the process has open, from one ``stat`` (no directory
        read); None where the kernel does not say, or the process is gone."""
        if not self._counts:
            return None
        try:
            return os.stat(f"{self.root}/{pid}/fd").st_size
        except OSError:
            return None

    def fd_names(self, pid: int) -> list[str]:
        """The process's open descriptor numbers (one directory read). Raises
        PermissionError for another user's process, OSError when it is gone, and
        ResourceShortage when this process has no descriptor left to read it."""
        try:
            return os.listdir(f"{self.root}/{pid}/fd")
        except OSError as exc:
            raise_if_short(exc)  # else its sockets would look ownerless
            raise

    def fd_targets(self, pid: int, names: Iterable[str]) -> Iterator[tuple[str, str]]:
        """(name, target) for each of ``names`` still open (``socket:[INODE]`` for a
        socket). The links are read relative to one handle on the process's ``fd``
        folder: a busy server's tens of thousands of links then cost half as much as
        with a full path each. Nothing is yielded if the process is gone."""
        try:
            folder = os.open(f"{self.root}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise_if_short(exc)  # else its sockets would look ownerless
            return
        try:
            for name in names:
                try:
                    yield name, os.readlink(name, dir_fd=folder)
                except OSError:
                    continue  # closed meanwhile
        finally:
            os.close(folder)
