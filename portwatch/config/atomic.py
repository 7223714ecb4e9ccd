"""Atomic file replacement: the file on disk is always the old or the new version."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Windows refuses to replace a file that another program holds open without
# FILE_SHARE_DELETE (Excel showing the last export, an antivirus scan, another portwatch
# reading settings): ERROR_ACCESS_DENIED (5) or ERROR_SHARING_VIOLATION (32). Such holds are
# usually brief, so the replace is retried for about two seconds before giving up.
_HELD_WINERRORS = frozenset({5, 32})
_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.5, 0.75)
HELD_BY_ANOTHER_PROGRAM = (
    "another program has the file open (close it there, for example in Excel, and try again)"
)


class FileHeldError(PermissionError):
    """The target stayed open in another program for every retry (Windows)."""


def write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, fsync, replace).

    Raises OSError with the OS's reason; on failure no temp file is left behind and the
    previous file is untouched.
    """
    write_bytes(path, text.encode(encoding))


def write_bytes(path: Path, data: bytes) -> None:
    """Byte version of :func:`write_text`."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))
    folder = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        replace_with_retry(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(folder)


def _is_held(exc: OSError) -> bool:
    return getattr(exc, "winerror", None) in _HELD_WINERRORS


def replace_with_retry(
    source: str | Path,
    target: str | Path,
    replace: Callable[[str | Path, str | Path], None] = os.replace,
    sleep: Callable[[float], None] = time.sleep,
    is_held: Callable[[OSError], bool] = _is_held,
) -> None:
    """``os.replace``, retried while another program holds ``target`` open (Windows).

    Raises :class:`FileHeldError`, whose message says why, when the hold outlasts the retries;
    any other error at once.
    """
    for delay in (*_RETRY_DELAYS, None):
        try:
            replace(source, target)
            return
        except OSError as exc:
            if not is_held(exc):
                raise
            if delay is None:
                raise FileHeldError(exc.errno, HELD_BY_ANOTHER_PROGRAM, str(target)) from exc
            sleep(delay)


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
