"""The command line as a user runs it: real child sockets, real files, exit statuses."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from childsockets import ChildSockets, free_port
from cli_runner import portwatch_cmd, run
from platforms import needs_posix, wine_gives_pid_0

PYTHON = os.path.realpath(sys.executable)


@wine_gives_pid_0
def test_scan_json_sees_a_child_listener_on_a_watched_port(
    data_dir: Path, child_sockets: list
) -> None:
    port = free_port()
    assert run(data_dir, "watch", "add", f"{port}/tcp").returncode == 0
    child = ChildSockets.start([("tcp", "127.0.0.1", port, "listen")], registry=child_sockets)
    result = run(data_dir, "scan", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    (row,) = [r for r in rows if r["port"] == port]
    assert row["proto"] == "tcp"
    assert row["family"] == "ipv4"
    assert row["address"] == "127.0.0.1"
    assert row["pid"] == child.pid
    assert row["exe"] == PYTHON
    assert row["process"]
    assert row["user"]
    assert row["watched"] is True
    assert row["status"] == "unknown"
    assert all(r["watched"] for r in rows)


def test_scan_all_includes_unwatched_listeners(data_dir: Path, child_sockets: list) -> None:
    child = ChildSockets.start([("udp", "::1", 0, "listen")], registry=child_sockets)
    rows = json.loads(run(data_dir, "scan", "--json", "--all").stdout)
    (row,) = [r for r in rows if r["port"] == child.ports[0] and r["pid"] == child.pid]
    assert row["watched"] is False
    assert row["family"] == "ipv6"
    assert row["reach"] == "loopback"
    text = run(data_dir, "scan", "--all")
    assert str(child.ports[0]) in text.stdout


@needs_posix  # ends monitor with SIGTERM, which Windows does not deliver
def test_monitor_reports_open_and_close_then_history_and_export_have_it(
    data_dir: Path, child_sockets: list, tmp_path: Path
) -> None:
    port = free_port()
    run(data_dir, "watch", "add", str(port))
    # The JSON events carry the port's service name, here the user's own.
    (data_dir / "ports.toml").write_text(
        f'[[entry]]\nport = {port}\nprotocols = ["tcp", "udp"]\nname = "team-cache"\n'
        'summary = "Our cache."\n',
        encoding="utf-8",
    )
    monitor = subprocess.Popen(
        [*portwatch_cmd(), "--data-dir", str(data_dir), "monitor", "--interval", "0.2", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen: list[dict] = []

        def read_until(predicate) -> dict:
            assert monitor.stdout is not None
            for line in monitor.stdout:
                event = json.loads(line)
                seen.append(event)
                if predicate(event):
                    return event
            raise AssertionError(
                f"monitor ended early: {monitor.stderr.read() if monitor.stderr else ''}"
            )

        # The first poll reports what already listens; a marker listener tells us it ran.
        child = ChildSockets.start(
            [("tcp", "127.0.0.1", port, "listen"), ("udp", "127.0.0.1", port, "listen")],
            registry=child_sockets,
        )
        opened = read_until(lambda e: e["event"] == "listener-opened" and e["port"] == port)
        assert opened["pid"] == child.pid
        assert opened["watched"] is True
        assert opened["service"] == "team-cache"
        assert "+" in opened["time"] or opened["time"].endswith("Z") or "-" in opened["time"][19:]
        unknown = read_until(lambda e: e["event"] == "unknown-owner" and e["port"] == port)
        assert unknown["status"] == "unknown"
        child.stop()
        closed = read_until(lambda e: e["event"] == "listener-closed" and e["port"] == port)
        assert closed["pid"] == child.pid
    finally:
        monitor.send_signal(signal.SIGTERM)
        assert monitor.wait(timeout=30) == 0
        for stream in (monitor.stdout, monitor.stderr):
            if stream:
                stream.close()
    out = tmp_path / "listeners.csv"
    result = run(data_dir, "export", "-o", str(out), "--watched-only")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline="")))
    mine = [r for r in rows if r["port"] == str(port)]
    assert {r["proto"] for r in mine} == {"tcp", "udp"}
    assert all(r["exe"] == PYTHON and r["watched"] == "yes" for r in mine)
    assert all(r["first_seen"] and r["last_seen"] and r["sha256"] for r in mine)
    count = len(rows)
    assert f"wrote {count} listener{'' if count == 1 else 's'} to {out}" in result.stderr
    header = out.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert header == [
        "first_seen",
        "last_seen",
        "proto",
        "family",
        "address",
        "port",
        "watched",
        "service",
        "pid",
        "process",
        "exe",
        "sha256",
        "user",
        "status",
        "times_seen",
        "started_by",
        "package",
        "parents",
        "exposure_scope",
        "reachable_from",
        "firewall",
        "replaced",
    ]
    # Why it was open and who could reach it, from the real child: its parent is this
    # test's Python, and a loopback socket reaches this computer only.
    assert all(f"({os.getpid()})" in r["parents"] for r in mine)
    assert all(r["exposure_scope"] == "local" for r in mine)
    assert all(r["reachable_from"] == "this computer only" for r in mine)


def test_monitor_duration_stops_by_itself(data_dir: Path) -> None:
    result = run(data_dir, "monitor", "--interval", "0.2", "--duration", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert (data_dir / "history.sqlite3").exists()


def test_export_to_stdout(data_dir: Path) -> None:
    run(data_dir, "monitor", "--interval", "0.2", "--duration", "0.5")
    result = run(data_dir, "export", "-o", "-")
    assert result.returncode == 0
    assert result.stdout.startswith("first_seen,last_seen,proto")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["scan", "--bogus"], "unrecognized arguments"),
        (["monitor", "--interval", "0"], "outside 0.1-3600 seconds"),
        (["monitor", "--interval", "abc"], "not a number"),
        (["watch", "add", "65536"], "outside 1-65535"),
        (["watch", "add", "true"], "'true'"),
        (["nonsense"], "invalid choice"),
        (["export"], "required"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(data_dir: Path, args: list[str], needle: str) -> None:
    result = run(data_dir, *args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_export_failures_exit_1_with_the_os_reason(data_dir: Path, tmp_path: Path) -> None:
    run(data_dir, "monitor", "--interval", "0.2", "--duration", "0.3")
    blocker = tmp_path / "plainfile"
    blocker.write_text("x")
    folder = tmp_path / "afolder"
    folder.mkdir()
    cases = {
        # (Windows words it as a missing path.)
        str(blocker / "out.csv"): "Not a directory" if os.name == "posix" else "cannot write",
        str(tmp_path / "missing" / "out.csv"): "does not exist",
        str(folder): "folder",
    }
    for target, reason in cases.items():
        result = run(data_dir, "export", "-o", target)
        assert result.returncode == 1, target
        assert reason in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1


@needs_posix  # a file-size limit (resource) makes the write fail
def test_failed_export_keeps_the_previous_file_and_leaves_no_partial(
    data_dir: Path, tmp_path: Path, child_sockets: list
) -> None:
    ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")] * 300, registry=child_sockets)
    run(data_dir, "monitor", "--interval", "0.2", "--duration", "0.3")
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    out = out_dir / "out.csv"
    assert run(data_dir, "export", "-o", str(out)).returncode == 0
    before = out.read_bytes()
    assert len(before) > 60_000

    import resource

    def small_files() -> None:
        # A file-size limit makes the write fail part-way, as a full disk would.
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    result = subprocess.run(
        [*portwatch_cmd(), "--data-dir", str(data_dir), "export", "-o", str(out)],
        capture_output=True,
        text=True,
        preexec_fn=small_files,
        check=False,
    )
    assert result.returncode == 1
    assert "File too large" in result.stderr
    assert "Traceback" not in result.stderr
    assert out.read_bytes() == before
    assert [p.name for p in out_dir.iterdir()] == ["out.csv"]


def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run(blocker / "data", "scan")
    assert result.returncode == 1
    assert "cannot use the data folder" in result.stderr
    assert "Traceback" not in result.stderr


@needs_posix  # the default folders come from HOME and XDG_* here
def test_a_look_runs_where_the_default_folders_cannot_be_used(tmp_path: Path) -> None:
    """``setpriv``/``runuser`` to another user keep or set a HOME that user cannot
    write: scan, connections and describe keep nothing, so they run (with a warning);
    a command that keeps something, and a folder chosen with --data-dir, stay errors."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    xdg = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "PORTWATCH_DATA_DIR")
    env = {k: v for k, v in os.environ.items() if k not in xdg}
    env["HOME"] = str(blocker / "home")

    def portwatch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*portwatch_cmd(), *args], capture_output=True, text=True, env=env, check=False
        )

    for look in (["scan", "--json", "--all"], ["connections", "--all"], ["describe", "22"]):
        result = portwatch(*look)
        assert result.returncode == 0, (look, result.stderr)
        assert "cannot use the config folder" in result.stderr
        assert "keeps nothing" in result.stderr and "Traceback" not in result.stderr
    assert isinstance(json.loads(portwatch("scan", "--json", "--all").stdout), list)
    for keeps in (["watch", "add", "9999"], ["--data-dir", str(blocker / "d"), "scan"]):
        result = portwatch(*keeps)
        assert result.returncode == 1 and "cannot use the" in result.stderr
        assert "keeps nothing" not in result.stderr


def test_environment_variable_sets_the_data_dir(tmp_path: Path) -> None:
    env = {**os.environ, "PORTWATCH_DATA_DIR": str(tmp_path / "envdata")}
    result = subprocess.run(
        [*portwatch_cmd(), "watch", "list"], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0
    assert (tmp_path / "envdata" / "watchlist.txt").exists()
    assert result.stdout.split() == ["3321", "3353", "3653"]


@needs_posix  # <, > and & cannot be in a Windows file name
def test_hostile_process_name_is_escaped_in_text_and_literal_in_json(
    data_dir: Path, tmp_path: Path, child_sockets: list
) -> None:
    hostile = tmp_path / "<img src=x onerror=alert(1)>&\u202eevil"
    shutil.copy(PYTHON, hostile)
    child = ChildSockets.start(
        [("tcp", "127.0.0.1", 0, "listen")], executable=str(hostile), registry=child_sockets
    )
    rows = json.loads(run(data_dir, "scan", "--json", "--all").stdout)
    (row,) = [r for r in rows if r["pid"] == child.pid]
    assert row["exe"] == str(hostile)
    text = run(data_dir, "scan", "--all").stdout
    assert "\u202e" not in text
    assert "\\u202e" in text


@needs_posix  # copies the interpreter, which on Windows needs its DLLs beside it
def test_export_neutralises_formulas_from_process_names(
    data_dir: Path, tmp_path: Path, child_sockets: list
) -> None:
    hostile = tmp_path / "=HYPERLINK(1)"
    shutil.copy(PYTHON, hostile)
    ChildSockets.start(
        [("tcp", "127.0.0.1", 0, "listen")], executable=str(hostile), registry=child_sockets
    )
    run(data_dir, "monitor", "--interval", "0.2", "--duration", "0.3")
    out = run(data_dir, "export", "-o", "-").stdout
    rows = list(csv.reader(io.StringIO(out)))
    cells = [cell for row in rows for cell in row]
    assert "'=HYPERLINK(1)" in cells or any(c.startswith("'=HYPERLINK") for c in cells)
    assert not any(c.startswith("=") for c in cells)


def test_export_counts_one_listener_in_the_singular(data_dir: Path, tmp_path: Path) -> None:
    import time

    from test_history import EP, OWNER, record, sample_at

    from portwatch.core.types import Listener
    from portwatch.store.history import HistoryStore

    store = HistoryStore.open(data_dir / "history.sqlite3")
    record(store, None, sample_at(time.time(), 1.0, (Listener(EP, OWNER),)))
    store.close()
    out = tmp_path / "one.csv"
    result = run(data_dir, "export", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert f"wrote 1 listener to {out}" in result.stderr
