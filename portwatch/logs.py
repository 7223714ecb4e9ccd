"""Logging set-up: a rotating file in the log folder, warnings also on stderr for the CLI."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(log_file: Path | None, *, verbose: bool = False, console: bool = True) -> None:
    """Send records to a rotating file (1 MB x 3) and, for the CLI, warnings to stderr.

    A log folder that cannot be written is reported once on stderr; portwatch goes on.
    """
    root = logging.getLogger("portwatch")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.propagate = False
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            file_handler = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
            )
        except OSError as exc:
            print(
                f"portwatch: warning: cannot write the log file {log_file}: {exc.strerror or exc}",
                file=sys.stderr,
            )
        else:
            file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
            root.addHandler(file_handler)
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(logging.DEBUG if verbose else logging.WARNING)
        stream.setFormatter(logging.Formatter("portwatch: %(levelname)s: %(message)s"))
        root.addHandler(stream)
