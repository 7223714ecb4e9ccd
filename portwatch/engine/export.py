"""Export observed listeners from history as CSV (the window and the CLI share this)."""

from __future__ import annotations

import csv
import io
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol, TextIO

from portwatch import files
from portwatch.core.csvrows import COLUMNS, render_row
from portwatch.core.types import Proto, Status
from portwatch.core.why import WHY_COLUMNS
from portwatch.store.history import HistoryReader


class ServiceNames(Protocol):
    def service_name(self, port: int, proto: Proto) -> str: ...


# A report the user may share: readable by others, like the files their tools write.
EXPORT_MODE = 0o644


class ExportError(RuntimeError):
    """The export could not be written; the message carries the OS's reason."""


def check_target(target: Path, keep: Sequence[Path] = ()) -> None:
    """Raise :class:`ExportError` unless ``target`` is a regular file or nothing yet,
    in an existing folder, that is none of the files in ``keep`` (portwatch's own) and
    not read-only (checked before any work is done)."""
    try:
        exists = files.check_target(target)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if not target.parent.is_dir():
        raise ExportError(f"cannot write {target}: the folder {target.parent} does not exist")
    own = files.one_of(target, keep)
    if own is not None:
        raise ExportError(
            f"cannot write {target}: it is portwatch's own {own.name}; choose another file"
        )
    if exists:
        mode = stat.S_IMODE(os.lstat(target).st_mode)
        # Root may replace anything; a file marked read-only is still not to be changed.
        if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            raise ExportError(
                f"cannot write {target}: it is read-only (mode {mode:o}); choose another file"
            )


def render_csv(
    reader: HistoryReader, watched_only: bool = False, services: ServiceNames | None = None
) -> tuple[str, int]:
    """The CSV text of every observed listener and the number of data rows.

    Command lines are never part of it: they can carry passwords.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    for item in reader.observed(watched_only):
        service = ""
        # Rows come from a file: a port that is not one gets no name rather than an error.
        if services is not None and type(item.port) is int and 0 <= item.port <= 65535:
            try:
                service = services.service_name(item.port, Proto(item.proto))
            except ValueError:
                service = ""
        writer.writerow(
            render_row(
                {
                    "first_seen": item.first_seen,
                    "last_seen": item.last_seen,
                    "proto": item.proto,
                    "family": item.family,
                    "address": item.address,
                    "port": item.port,
                    "watched": item.watched,
                    "service": service,
                    "pid": item.pid,
                    "process": item.process,
                    "exe": item.exe,
                    "sha256": item.sha256,
                    "user": item.user,
                    # Rows recorded before the neutral status existed said "unknown"
                    # for unwatched ports too; trust is only judged on watched ones.
                    "status": item.status if item.watched else Status.UNWATCHED.value,
                    "times_seen": item.times_seen,
                    **{column: getattr(item, column) for column in WHY_COLUMNS},
                }
            )
        )
        count += 1
    return buffer.getvalue(), count


def export_csv(
    reader: HistoryReader,
    target: Path | TextIO | BinaryIO,
    watched_only: bool = False,
    services: ServiceNames | None = None,
    keep: Sequence[Path] = (),
) -> int:
    """Write the CSV to a path (atomically) or an open stream; returns the row count.

    A file starts with a UTF-8 byte order mark: Excel, on Windows and macOS, reads a CSV
    without one in the ANSI code page and garbles every non-ASCII name. A stream gets plain
    UTF-8 without one (a pipe's reader is a program, not Excel), written as bytes when the
    stream has a binary side, so Windows' text mode cannot turn each CR LF into CR CR LF.

    A path must be a regular file or not exist yet: a symbolic link is not followed and
    never replaced, a device, FIFO or folder is refused, and so are the files in ``keep``
    and a read-only file (:func:`check_target`). A failed write leaves no partial file
    and any previous export intact.
    """
    if isinstance(target, Path):
        check_target(target, keep)
    text, count = render_csv(reader, watched_only, services)
    if isinstance(target, Path):
        try:
            files.write_bytes(target, text.encode("utf-8-sig"), EXPORT_MODE)
        except OSError as exc:
            raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return count
    binary = getattr(target, "buffer", None)
    if binary is not None:
        target.flush()
        binary.write(text.encode("utf-8"))
        binary.flush()
    elif isinstance(target, io.TextIOBase):
        target.write(text)
        target.flush()
    else:
        target.write(text.encode("utf-8"))  # type: ignore[arg-type]
        target.flush()
    return count
