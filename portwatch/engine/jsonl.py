"""Events appended to a file, one JSON object per line, rotated by size.

Rotation renames (``FILE`` → ``FILE.1`` → ``FILE.2`` …, the oldest dropped) and then
creates a new ``FILE``; it never copies or truncates. Every line is written whole
before the rename, so a reader that follows the file by name (``tail -F``, Vector,
Promtail, Filebeat) finishes the old file and then reads the new one without losing
a line.
"""

from __future__ import annotations

import json
import os
import socket
from collections import deque
from pathlib import Path

from portwatch import files
from portwatch.core.eventlog import event_record
from portwatch.engine.monitor import TickResult

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 5
# Lines held while the file cannot be written (disk full); the oldest go first.
MAX_PENDING_LINES = 10_000
FILE_MODE = 0o640


class RotatingLines:
    """Appends whole lines to ``path``; at most ``keep`` rotated files are kept."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP):
        if max_bytes < 1:
            raise ValueError("the size limit must be at least one byte")
        if keep < 1:
            raise ValueError("at least one rotated file must be kept")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self._fd: int | None = None
        self._size = 0
        self.rotation_error: str | None = None

    def rotated(self, number: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{number}")

    def _open(self) -> int:
        if self._fd is None:
            # Links, FIFOs and devices planted at the name are refused, never followed.
            fd = files.open_regular(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            self._fd, self._size = fd, os.fstat(fd).st_size
        return self._fd

    def _rotate(self) -> None:
        self._close_fd()
        for number in range(self.keep - 1, 0, -1):
            source = self.rotated(number)
            if source.exists():
                os.replace(source, self.rotated(number + 1))
        os.replace(self.path, self.rotated(1))

    def append(self, line: bytes) -> None:
        """Write one line (ending in a newline); raises OSError, leaving it unwritten.

        A rotation the OS refuses (Windows, while a reader holds an old file open) is
        put off: the line goes to the current file and :attr:`rotation_error` says why.
        """
        fd = self._open()
        if self._size > 0 and self._size + len(line) > self.max_bytes:
            try:
                self._rotate()
                self.rotation_error = None
            except OSError as exc:
                self.rotation_error = exc.strerror or str(exc)
            fd = self._open()
        view = memoryview(line)
        while view:
            written = os.write(fd, view)
            view = view[written:]
            self._size += written

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def close(self) -> None:
        self._close_fd()


class JsonlSink:
    """Appends each tick's events to a rotating JSON-lines file."""

    def __init__(
        self,
        path: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep: int = DEFAULT_KEEP,
        hostname: str | None = None,
    ) -> None:
        self.file = RotatingLines(path, max_bytes, keep)
        self.hostname = hostname if hostname is not None else socket.gethostname()
        self._sequence = 0
        self._pending: deque[bytes] = deque(maxlen=MAX_PENDING_LINES)
        self._failing = False
        self._rotation_reported = False

    def publish(self, result: TickResult) -> list[str]:
        services = {
            (view.listener.port, view.listener.proto): view.service for view in result.views
        }
        for event in result.events:
            self._sequence += 1
            record = event_record(
                event,
                self.hostname,
                self._sequence,
                services.get((event.listener.port, event.listener.proto), ""),
            )
            text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
            self._pending.append(text.encode("utf-8", errors="backslashreplace") + b"\n")
        return self._flush()

    def _flush(self) -> list[str]:
        while self._pending:
            try:
                self.file.append(self._pending[0])
            except OSError as exc:
                self.file.close()
                if self._failing:
                    return []
                self._failing = True
                reason = exc.strerror or str(exc)
                return [f"cannot write the event log {self.file.path}: {reason}; holding events"]
            self._pending.popleft()
        warnings: list[str] = []
        if self._failing:
            self._failing = False
            warnings.append(f"the event log {self.file.path} is written again")
        rotation = self.file.rotation_error
        if rotation is not None and not self._rotation_reported:
            warnings.append(
                f"cannot rotate the event log {self.file.path}: {rotation}; still appending"
            )
        self._rotation_reported = rotation is not None
        return warnings

    def close(self) -> list[str]:
        try:
            return self._flush()
        finally:
            self.file.close()
