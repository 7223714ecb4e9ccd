"""Atomic file replacement: the file on disk is always the old or the new version."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path


def write_text(path: Path, text: str, encoding: str = "utf-8", mode: int | None = None) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, fsync, replace).

    Raises OSError with the OS's reason; on failure no temp file is left behind and the
    previous file is untouched.
    """
    write_bytes(path, text.encode(encoding), mode=mode)


def write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Byte version of :func:`write_text`.

    ``mode`` sets the new file's permission bits (the temp file starts as 0600, which
    suits private files but not one another service must read).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))
    folder = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None and os.name == "posix":
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on Windows, where it is not needed.
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def set_aside(path: Path, reason: str = "bad") -> Path:
    """Move a file the app cannot use out of the way, keeping it for the user to inspect."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{reason}-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{reason}-{stamp}-{counter}")
        counter += 1
    os.replace(path, target)
    return target
