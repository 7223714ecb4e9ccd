"""Atomic file replacement for config files: the file on disk is always the old or the
new version. The safety rules (regular files only, no links) live in :mod:`portwatch.files`;
this keeps the names config code has always used."""

from __future__ import annotations

from pathlib import Path

from portwatch import files


def write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, fsync, replace).

    Raises OSError with the OS's reason (``files.RefusedFile`` for a link or a special
    file at ``path``); on failure no temp file is left behind and the previous file is
    untouched.
    """
    files.write_bytes(path, text.encode(encoding))


def write_bytes(path: Path, data: bytes) -> None:
    """Byte version of :func:`write_text`."""
    files.write_bytes(path, data)


def set_aside(path: Path, reason: str = "bad") -> Path:
    """Move a file the app cannot use out of the way, keeping it for the user to inspect."""
    return files.set_aside(path, reason)
