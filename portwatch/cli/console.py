"""Console output that never crashes on a character the terminal cannot show."""

from __future__ import annotations

import contextlib
import io
import sys

_FAILING = frozenset({"strict", "surrogateescape"})


def make_output_safe() -> None:
    """Escape, rather than fail on, characters outside stdout's and stderr's encoding.

    On Windows a pipe or a file gets the ANSI code page (cp1252, cp932, ...), and process
    names, paths and the user's own port descriptions can hold anything: ``describe | more``
    must print ``\\u2192`` for an arrow cp1252 lacks, not end in UnicodeEncodeError.
    """
    for stream in (sys.stdout, sys.stderr):
        # "surrogateescape" (what a POSIX locale or Windows may pick) still fails on them.
        if isinstance(stream, io.TextIOWrapper) and stream.errors in _FAILING:
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors="backslashreplace")
