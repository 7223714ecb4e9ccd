"""Whether the program a process runs is still the file at its path on disk.

An upgrade or an attacker can delete or replace an executable while the process
that started from it keeps running the old code: the path then names a file that is
not what runs (or nothing). Checked through ``/proc/<pid>/exe`` (the running file,
even when deleted) against the path inside the process's own root (a container's
files are its own).
"""

from __future__ import annotations

import os

from portwatch.probe import procfs

DELETED = "the executable was deleted from disk after the process started"
REPLACED = (
    "the executable on disk was replaced after the process started: "
    "the program running is not the file at that path"
)


def replaced_reason(pid: int, path: str, proc: str = "/proc") -> str | None:
    """Why the running program of ``pid`` is not the file at ``path`` (the executable
    path without the kernel's `` (deleted)`` mark), or None when it is (or cannot be told).
    """
    try:
        running = os.stat(f"{proc}/{pid}/exe")
    except OSError:
        return None
    try:
        on_disk = os.stat(procfs.root_of(pid, proc) + path)
    except (FileNotFoundError, NotADirectoryError):
        return DELETED
    except OSError:
        return None
    if (on_disk.st_dev, on_disk.st_ino) != (running.st_dev, running.st_ino):
        return REPLACED
    return None
