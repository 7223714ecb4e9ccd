"""What must hold before SQLite may open the history: safe files and one writer.

SQLite opens the database and its ``-wal``, ``-shm`` and ``-journal`` files itself and
follows links, so they are checked here first (the folder is private, so nothing can
swap them afterwards). One writer per data folder: two recorders would count
everything twice.
"""

from __future__ import annotations

import errno
from pathlib import Path

from portwatch import files

SIDE_FILES = ("-wal", "-shm", "-journal")
# A full disk, or a full quota.
_NO_ROOM = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
LOCK_SUFFIX = ".lock"


class UnsafeHistory(OSError):
    """The history file or its folder cannot be used safely; the message says why."""


class HistoryUnavailable(UnsafeHistory):
    """The history cannot be written for now (a full disk, no descriptors left): not a
    safety matter, so watching can go on without recording."""


class HistoryBusy(UnsafeHistory):
    """Another process is already recording into this history."""

    def __init__(self, message: str, holder: int | None) -> None:
        super().__init__(message)
        self.holder = holder


def check_files(path: Path, *, folder: bool = True) -> None:
    """Raise :class:`UnsafeHistory` when the database or a side file is a link (symbolic
    or hard) or not a regular file, or (``folder``) when its folder is writable by
    another user."""
    try:
        if folder:
            files.check_folder(path.parent)
        for candidate in (path, *(path.with_name(path.name + s) for s in SIDE_FILES)):
            files.check_in_place(candidate)
    except OSError as exc:
        where = exc.filename or path
        raise UnsafeHistory(
            f"cannot use the history file {path}: {where}: {exc.strerror or exc}"
        ) from exc


def claim_writer(path: Path) -> files.FolderLock:
    """The writer's lock for the history at ``path``; :class:`HistoryBusy` when another
    process holds it."""
    lock_path = path.with_name(path.name + LOCK_SUFFIX)
    try:
        lock = files.FolderLock.acquire(lock_path)
    except OSError as exc:
        short = files.shortage(exc)
        if short is not None or exc.errno in _NO_ROOM:
            raise HistoryUnavailable(
                f"cannot take the history lock {lock_path}: {short or exc.strerror}"
            ) from exc
        raise UnsafeHistory(
            f"cannot take the history lock {lock_path}: {exc.strerror or exc}"
        ) from exc
    if lock is None:
        holder = files.FolderLock.holder(lock_path)
        who = f"portwatch (pid {holder})" if holder else "another portwatch"
        raise HistoryBusy(
            f"{who} is already recording history in {path.parent}; one recorder per data"
            " folder (stop it, or use another --data-dir)",
            holder,
        )
    return lock


def set_aside(path: Path, reason: str) -> Path:
    """Move a history file SQLite cannot use out of the way, with its side files."""
    return files.set_aside(path, reason, companions=("-wal", "-shm"))
