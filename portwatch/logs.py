"""Logging set-up: a rotating file in the log folder, warnings also on stderr for the CLI.

Logging must never be what stops portwatch: a log file that cannot be opened (a link, a
full disk, no file descriptors left) or that fails later is reported in one line on
stderr, and portwatch goes on without it, instead of printing a traceback per record.
"""

from __future__ import annotations

import contextlib
import io
import logging
import logging.handlers
import os
import sys
from pathlib import Path

from portwatch import files

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_MAX_BYTES = 1_000_000
LOG_BACKUPS = 3


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc) if exc is not None else "unknown error"


class LogFile(logging.handlers.RotatingFileHandler):
    """The rotating log file, opened without following links; on the first failure to
    write, one line on stderr and the file is dropped (the rest of portwatch goes on)."""

    def __init__(self, path: Path) -> None:
        self.failed = False
        super().__init__(path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")

    def _open(self) -> io.TextIOWrapper:
        fd = files.open_regular(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return open(fd, "a", encoding=self.encoding, errors="backslashreplace")

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if self.failed:
            return
        self.failed = True
        _stderr_line(
            f"portwatch: warning: cannot write the log file {self.baseFilename}:"
            f" {_reason(sys.exc_info()[1])}; going on without it"
        )
        try:
            self.close()
        except OSError:
            self.stream = None


class Console(logging.StreamHandler):  # type: ignore[type-arg]
    """Warnings on stderr; a stderr that cannot be written is not worth a traceback."""

    def handleError(self, record: logging.LogRecord) -> None:
        return


class _ConsoleFormat(logging.Formatter):
    """Lines like every other the commands write: "portwatch: warning: ..."."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return f"portwatch: {record.levelname.lower()}: {record.message}"


def _stderr_line(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr, flush=True)


def configure(log_file: Path | None, *, verbose: bool = False, console: bool = True) -> None:
    """Send records to a rotating file (1 MB x 3) and, for the CLI, warnings to stderr.

    A log file that cannot be opened is reported once on stderr; portwatch goes on.
    """
    # Elsewhere than in our handlers (a library's own), a failing handler stays quiet too.
    logging.raiseExceptions = False
    root = logging.getLogger("portwatch")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.propagate = False
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            file_handler = LogFile(log_file)
        except OSError as exc:
            _stderr_line(
                f"portwatch: warning: cannot write the log file {log_file}: {_reason(exc)}"
            )
        else:
            file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
            root.addHandler(file_handler)
    if console:
        stream = Console(sys.stderr)
        stream.setLevel(logging.DEBUG if verbose else logging.WARNING)
        stream.setFormatter(_ConsoleFormat())
        root.addHandler(stream)
