"""The portwatch command as a user runs it, for tests that start it as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def portwatch_cmd() -> list[str]:
    """The installed ``portwatch`` command when there is one (CI), else the module."""
    script = Path(sys.executable).with_name("portwatch")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "portwatch"]


def run(data_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``portwatch --data-dir DATA_DIR ARGS``, its output captured, never raising on failure."""
    return subprocess.run(
        [*portwatch_cmd(), "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class RunningMonitor:
    """``portwatch monitor --json`` in the background, its output collected as it comes."""

    def __init__(self, data_dir: Path, *args: str, interval_s: float = 0.2) -> None:
        self.process = subprocess.Popen(
            [
                *portwatch_cmd(),
                "--data-dir",
                str(data_dir),
                *args,
                "monitor",
                "--json",
                "--interval",
                str(interval_s),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.raw: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, events: bool) -> None:
        for line in stream:
            self.raw.append(line)
            if events and line.startswith("{"):
                self.events.append(json.loads(line))
            elif not events:
                self.errors.append(line.rstrip("\n"))

    def events_for(self, port: int, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in list(self.events)
            if e["port"] == port and (kind is None or e["event"] == kind)
        ]

    def errors_with(self, text: str) -> list[str]:
        return [line for line in list(self.errors) if text in line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()


@contextmanager
def monitoring(data_dir: Path, *args: str) -> Iterator[RunningMonitor]:
    """``portwatch [ARGS] monitor --json`` while the block runs; stopped by SIGTERM."""
    monitor = RunningMonitor(data_dir, *args)
    try:
        yield monitor
    finally:
        monitor.stop()
