"""Console output that never crashes on a character the terminal cannot show, and
diagnostics that cannot drive the terminal."""

from __future__ import annotations

import contextlib
import io
import sys
from typing import TextIO

from portwatch.core.text import visible

_FAILING = frozenset({"strict", "surrogateescape"})


class EscapedLines(io.TextIOBase):
    """A text stream that shows what is written with :func:`visible`: the newlines that
    end a message stay, every other control, bidi or invisible character (a newline
    inside a message too) is written as an escape.

    Messages quote paths, arguments, file contents and process names; any of them may
    carry an escape sequence that would clear the screen, retitle the window or forge a
    line. Put on stderr, it covers every warning and error, argparse's and the log's too.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        # One write is one message (print writes its newline apart, logging and argparse
        # with it): only the newlines that end it stay; one inside would forge a line.
        body = text.rstrip("\n")
        self.stream.write(visible(body) + text[len(body) :])
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.stream.encoding


def make_output_safe() -> None:
    """Escape, rather than fail on, characters outside stdout's and stderr's encoding,
    and show control characters written to stderr as escapes (:class:`EscapedLines`).

    On Windows a pipe or a file gets the ANSI code page (cp1252, cp932, ...), and process
    names, paths and the user's own port descriptions can hold anything: ``describe | more``
    must print ``\\u2192`` for an arrow cp1252 lacks, not end in UnicodeEncodeError.
    """
    for stream in (sys.stdout, sys.stderr):
        # "surrogateescape" (what a POSIX locale or Windows may pick) still fails on them.
        if isinstance(stream, io.TextIOWrapper) and stream.errors in _FAILING:
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors="backslashreplace")
    if sys.stderr is not None and not isinstance(sys.stderr, EscapedLines):
        sys.stderr = EscapedLines(sys.stderr)
