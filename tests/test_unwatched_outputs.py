"""A listener on a port nobody watches has the neutral status ``unwatched`` in every
output (scan text and JSON, monitor JSON, the CSV export): never "unknown", which reads
as an alarm about something trust was never asked to decide."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from childsockets import ChildSockets, free_port
from cli_runner import run
from platforms import wine_gives_pid_0


@wine_gives_pid_0
def test_unwatched_listeners_are_unwatched_in_scan_monitor_and_export(
    data_dir: Path, child_sockets: list, tmp_path: Path
) -> None:
    watched_port, other_port = free_port(), free_port()
    assert run(data_dir, "watch", "add", f"{watched_port}/tcp").returncode == 0
    child = ChildSockets.start(
        [
            ("tcp", "127.0.0.1", watched_port, "listen"),
            ("tcp", "127.0.0.1", other_port, "listen"),
            ("udp", "127.0.0.1", other_port, "listen"),
        ],
        registry=child_sockets,
    )

    rows = json.loads(run(data_dir, "scan", "--json", "--all").stdout)
    mine = {(r["port"], r["proto"]): r for r in rows if r["pid"] == child.pid}
    assert mine[(watched_port, "tcp")]["status"] == "unknown"
    assert mine[(other_port, "tcp")]["status"] == "unwatched"
    assert mine[(other_port, "udp")]["status"] == "unwatched"
    # The machine's own unwatched listeners too: nothing off the watch list is judged.
    assert {r["status"] for r in rows if not r["watched"]} <= {"unwatched"}

    text = run(data_dir, "scan", "--all").stdout
    lines = [line for line in text.splitlines() if f":{other_port} " in line]
    assert len(lines) == 2
    assert all(" unwatched " in line and "unknown" not in line for line in lines)

    monitor = run(data_dir, "monitor", "--interval", "0.2", "--duration", "0.6", "--json")
    assert monitor.returncode == 0, monitor.stderr
    events = [json.loads(line) for line in monitor.stdout.splitlines()]
    about_other = [e for e in events if e["port"] == other_port and e["pid"] == child.pid]
    assert {e["event"] for e in about_other} == {"listener-opened"}
    assert {e["status"] for e in about_other} == {"unwatched"}
    assert {e["status"] for e in events if not e["watched"]} <= {"unwatched"}
    alerting = {"unknown-owner", "unattributed-owner", "binary-changed"}
    assert [e for e in events if e["event"] in alerting and not e["watched"]] == []
    assert any(e["event"] == "unknown-owner" and e["port"] == watched_port for e in events)

    out = tmp_path / "all.csv"
    assert run(data_dir, "export", "-o", str(out)).returncode == 0
    table = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    other = [r for r in table if r["port"] == str(other_port) and r["pid"] == str(child.pid)]
    assert len(other) == 2
    assert {r["status"] for r in other} == {"unwatched"}
    assert {r["status"] for r in table if r["watched"] == "no"} <= {"unwatched"}
