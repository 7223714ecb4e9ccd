"""``portwatch monitor`` as a user runs it: a verdict that changes while it runs alerts once.

An untrusted program already listens; the port is added to the watch list from another
terminal (one ``unknown-owner``); its program is trusted (quiet), then the trust is
removed (one ``unknown-owner`` again). Real child process, real files, real command.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from platforms import TERMINATED_EXIT_CODE, wine_gives_pid_0
from test_trust_cli import FIXED_PORT_CODE, cli, cli_env, free_port, portwatch_cmd
from trust_processes import REAL_PYTHON, listening

ALERTING = {"unknown-owner", "unattributed-owner", "binary-changed"}


class Events:
    """The monitor's JSON lines, read on a thread so every wait has a deadline."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.port = port
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[dict[str, object]] = []

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                self.lines.put(line)

        threading.Thread(target=pump, daemon=True).start()

    def _take(self, timeout: float) -> dict[str, object] | None:
        try:
            row: dict[str, object] = json.loads(self.lines.get(timeout=timeout))
        except queue.Empty:
            return None
        if row["port"] == self.port:
            self.seen.append(row)
            return row
        return None

    def wait(self, kind: str, timeout: float = 40.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self._take(0.2)
            if row is not None and row["event"] == kind:
                return row
        raise AssertionError(f"no {kind} on {self.port} within {timeout} s: {self.seen}")

    def quiet_for(self, seconds: float) -> list[dict[str, object]]:
        """Every event on the port in the next ``seconds``."""
        out = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            row = self._take(0.1)
            if row is not None:
                out.append(row)
        return out


@wine_gives_pid_0
def test_a_watched_port_or_a_removed_trust_alerts_once_in_a_running_monitor(
    data_dir: Path, tmp_path: Path
) -> None:
    script = tmp_path / "serve.py"
    script.write_text(FIXED_PORT_CODE)
    port = free_port()
    monitor = subprocess.Popen(
        [*portwatch_cmd(), "--data-dir", str(data_dir), "monitor", "--json", "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=cli_env(),
    )
    events = Events(monitor, port)
    try:
        with listening([sys.executable, str(script), str(port)]):
            opened = events.wait("listener-opened")
            assert (opened["watched"], opened["status"]) == (False, "unwatched")
            assert [e for e in events.quiet_for(0.5) if e["event"] in ALERTING] == []

            assert cli(data_dir, "watch", "add", f"{port}/tcp").returncode == 0
            alert = events.wait("unknown-owner")
            assert (alert["watched"], alert["status"]) == (True, "unknown")
            assert [e for e in events.quiet_for(1.0) if e["event"] in ALERTING] == []

            trusted = cli(
                data_dir,
                "trust",
                "add",
                f"{port}/tcp",
                "--exe",
                REAL_PYTHON,
                "--script",
                str(script),
            )
            assert trusted.returncode == 0, trusted.stderr
            assert [e for e in events.quiet_for(1.0) if e["event"] in ALERTING] == []

            removed = cli(data_dir, "trust", "remove", f"{port}/tcp", "--exe", REAL_PYTHON)
            assert removed.returncode == 0, removed.stderr
            again = events.wait("unknown-owner")
            assert again["status"] == "unknown"
            assert [e for e in events.quiet_for(1.0) if e["event"] in ALERTING] == []
    finally:
        monitor.terminate()
        assert monitor.wait(timeout=30) == TERMINATED_EXIT_CODE
        if monitor.stdout is not None:
            monitor.stdout.close()
