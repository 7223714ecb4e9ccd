"""``portwatch trust …`` run the way a user runs it, against a real data folder."""

from __future__ import annotations

import hashlib
import io
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from trust_fixtures import listener, owner, sha
from trust_processes import LISTEN_CODE, REAL_PYTHON, listening

from portwatch.cli.trust import review
from portwatch.config import trustfile
from portwatch.core.trust import TrustList
from portwatch.core.types import Owner
from portwatch.core.watchlist import WatchList, parse_spec


def portwatch_cmd() -> list[str]:
    """The installed ``portwatch`` command when there is one (CI), else the module."""
    script = Path(sys.executable).with_name("portwatch")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "portwatch"]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PORTWATCH_DATA_DIR", None)
    return env


def cli(data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = cli_env()
    return subprocess.run(
        [*portwatch_cmd(), "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=60,
    )


def file_sha(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def program(tmp_path: Path) -> Path:
    exe = tmp_path / "bin" / "portd"
    exe.parent.mkdir()
    exe.write_bytes(b"#!/bin/sh\necho portd\n")
    return exe


def test_add_hashes_the_file_now_and_list_shows_it(data_dir: Path, program: Path) -> None:
    added = cli(data_dir, "trust", "add", "3653/tcp", "--exe", str(program), "--note", "mine")
    assert added.returncode == 0, added.stderr
    assert "trusted: 3653/tcp" in added.stdout
    listed = cli(data_dir, "trust", "list")
    assert listed.returncode == 0
    assert str(program) in listed.stdout
    assert file_sha(program) in listed.stdout
    assert "first-run review: pending" in listed.stdout
    data = json.loads((data_dir / "trust.json").read_text())
    assert data["entries"][0]["sha256"] == file_sha(program)
    assert data["entries"][0]["note"] == "mine"


def test_add_again_replaces_the_hash(data_dir: Path, program: Path) -> None:
    assert cli(data_dir, "trust", "add", "3653", "--exe", str(program)).returncode == 0
    new = sha("v2").upper()
    again = cli(data_dir, "trust", "add", "3653", "--exe", str(program), "--sha256", new)
    assert again.returncode == 0
    assert "updated" in again.stdout
    entries = trustfile.load(data_dir / "trust.json").trust_list.entries
    assert [e.sha256 for e in entries] == [sha("v2")]


@pytest.mark.parametrize(
    "args",
    [
        ["3653", "--sha256", "abc"],
        ["3653", "--sha256", "g" * 64],
        ["3653", "--sha256", sha("x") + "00"],
        ["70000"],
        ["true"],
        ["3653", "--script-sha256", sha("x")],
    ],
)
def test_bad_arguments_exit_2(data_dir: Path, program: Path, args: list[str]) -> None:
    spec, *rest = args
    result = cli(data_dir, "trust", "add", spec, "--exe", str(program), *rest)
    assert result.returncode == 2, result.stderr
    assert "error" in result.stderr
    assert not (data_dir / "trust.json").exists()


def test_unreadable_file_without_hash_is_an_error(data_dir: Path, tmp_path: Path) -> None:
    result = cli(data_dir, "trust", "add", "3653", "--exe", str(tmp_path / "missing"))
    assert result.returncode == 1
    assert "cannot read" in result.stderr


def test_script_entry_and_remove(data_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_text("print('serve')\n")
    result = cli(
        data_dir,
        "trust",
        "add",
        "3653/tcp",
        "--exe",
        REAL_PYTHON,
        "--script",
        str(script),
        # By hash on every OS: python.org's Windows python.exe is signed, and the default
        # is the strongest kind that verifies.
        "--by",
        "hash",
    )
    assert result.returncode == 0, result.stderr
    [entry] = trustfile.load(data_dir / "trust.json").trust_list.entries
    assert entry.script == str(script)
    assert entry.script_sha256 == file_sha(script)
    assert entry.sha256 == file_sha(REAL_PYTHON)
    missing = cli(data_dir, "trust", "remove", "3321", "--exe", REAL_PYTHON)
    assert missing.returncode == 1
    assert "nothing is trusted for 3321" in missing.stderr
    removed = cli(data_dir, "trust", "remove", "3653/tcp", "--exe", REAL_PYTHON)
    assert removed.returncode == 0
    assert "removed 1 entry" in removed.stdout
    assert trustfile.load(data_dir / "trust.json").trust_list.entries == ()


def test_bad_trust_file_is_reported_and_kept(data_dir: Path) -> None:
    (data_dir / "trust.json").write_text('{"entries": [{"port": 0}]')
    result = cli(data_dir, "trust", "list")
    assert result.returncode == 0
    assert "not valid JSON" in result.stderr
    # Reading never writes: the file stays as the user wrote it.
    assert not list(data_dir.glob("trust.json.rejected-*"))
    assert (data_dir / "trust.json").read_text() == '{"entries": [{"port": 0}]'


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux probe details")
def test_first_run_review_then_scan_reports_known(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(LISTEN_CODE + "\n# a\n")
    (tmp_path / "b.py").write_text(LISTEN_CODE + "\n# b\n")
    with (
        listening([sys.executable, str(tmp_path / "a.py")]) as a,
        listening([sys.executable, str(tmp_path / "b.py")]) as b,
    ):
        # Only the children's ports: other programs on this machine may hold the defaults.
        (data_dir / "watchlist.txt").write_text(f"{a.port}/tcp\n{b.port}/tcp\n")
        # Not a terminal and no --accept: list only, decide nothing.
        listed = cli(data_dir, "trust", "review")
        assert listed.returncode == 0, listed.stderr
        assert str(tmp_path / "a.py") in listed.stdout
        assert str(tmp_path / "b.py") in listed.stdout
        assert "--accept" in listed.stdout
        assert not trustfile.load(data_dir / "trust.json").trust_list.first_run_review_done
        scan = cli(data_dir, "scan", "--json")
        assert "first-run review is pending" in scan.stderr
        statuses = {row["port"]: row["status"] for row in json.loads(scan.stdout)}
        assert {p: statuses.get(p) for p in (a.port, b.port)} == {
            a.port: "unknown",
            b.port: "unknown",
        }
        # Out of range: a usage error, nothing written.
        assert cli(data_dir, "trust", "review", "--accept", "999").returncode == 2
        lines = listed.stdout.splitlines()
        number_of_a = next(
            line.split(".")[0]
            for i, line in enumerate(lines)
            if line[:1].isdigit() and str(tmp_path / "a.py") in "\n".join(lines[i : i + 4])
        )
        accepted = cli(data_dir, "trust", "review", "--accept", number_of_a)
        assert accepted.returncode == 0, accepted.stderr
        assert "trusted on" in accepted.stdout
        loaded = trustfile.load(data_dir / "trust.json").trust_list
        assert loaded.first_run_review_done
        assert [e.script for e in loaded.entries] == [str(tmp_path / "a.py")]
        scan = cli(data_dir, "scan", "--json")
        assert "first-run review" not in scan.stderr
        statuses = {row["port"]: row["status"] for row in json.loads(scan.stdout)}
        assert {p: statuses.get(p) for p in (a.port, b.port)} == {
            a.port: "known",
            b.port: "unknown",
        }


class TtyInput(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_interactive_review_on_a_terminal() -> None:
    watchlist = WatchList((parse_spec("3653"),))
    listeners = [
        listener(3653, owner("/usr/bin/a")),
        listener(3653, owner("/usr/bin/b")),
        listener(3653, Owner(pid=9, note="access denied")),
    ]
    out = io.StringIO()
    updated = review(
        TrustList(),
        listeners,
        watchlist,
        accept=None,
        stdin=TtyInput("2, 3\n"),
        out=out,
        now_wall=123.0,
    )
    assert updated is not None
    assert updated.reviewed_wall == 123.0
    assert [e.exe for e in updated.entries] == ["/usr/bin/b"]
    text = out.getvalue()
    assert "Trust which?" in text
    assert "cannot be trusted" in text  # the unattributed one


def test_review_with_nothing_listening_is_done_at_once() -> None:
    out = io.StringIO()
    updated = review(
        TrustList(),
        [],
        WatchList((parse_spec("3653"),)),
        accept=None,
        stdin=io.StringIO(),
        out=out,
        now_wall=5.0,
    )
    assert updated is not None and updated.first_run_review_done
    assert "nothing untrusted" in out.getvalue()


FIXED_PORT_CODE = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"""


def free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return int(probe_socket.getsockname()[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux probe details")
def test_running_monitor_picks_up_trust_added_meanwhile(data_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_text(FIXED_PORT_CODE)
    port = free_port()
    assert cli(data_dir, "watch", "add", f"{port}/tcp").returncode == 0
    env = cli_env()
    monitor = subprocess.Popen(
        [
            *portwatch_cmd(),
            "--data-dir",
            str(data_dir),
            "monitor",
            "--json",
            "--interval",
            "0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert monitor.stdout is not None
        for line in monitor.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def next_event(kind: str, timeout: float = 20.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                row = json.loads(lines.get(timeout=0.2))
            except queue.Empty:
                continue
            if row["event"] == kind and row["port"] == port:
                return row  # type: ignore[no-any-return]
        raise AssertionError(f"no {kind} event on {port} within {timeout} s")

    try:
        with listening([sys.executable, str(script), str(port)]):
            opened = next_event("listener-opened")
            assert opened["status"] == "unknown"
            next_event("unknown-owner")
            added = cli(
                data_dir,
                "trust",
                "add",
                f"{port}/tcp",
                "--exe",
                REAL_PYTHON,
                "--script",
                str(script),
            )
            assert added.returncode == 0, added.stderr
        next_event("listener-closed")
        with listening([sys.executable, str(script), str(port)]):
            reopened = next_event("listener-opened")
            assert reopened["status"] == "known"
    finally:
        monitor.terminate()
        monitor.wait(timeout=10)
        if monitor.stdout is not None:
            monitor.stdout.close()


def test_end_of_input_leaves_the_review_pending() -> None:
    out = io.StringIO()
    updated = review(
        TrustList(),
        [listener(3653, owner("/usr/bin/a"))],
        WatchList((parse_spec("3653"),)),
        accept=None,
        stdin=TtyInput(""),
        out=out,
        now_wall=1.0,
    )
    assert updated is None
    assert "still pending" in out.getvalue()


def test_module_and_inline_scripts(data_dir: Path) -> None:
    module = cli(
        data_dir, "trust", "add", "3653", "--exe", REAL_PYTHON, "--script", "-m http.server"
    )
    assert module.returncode == 0, module.stderr
    inline = cli(
        data_dir,
        "trust",
        "add",
        "3321",
        "--exe",
        REAL_PYTHON,
        "--script=-c",
        "--script-sha256",
        sha("code"),
    )
    assert inline.returncode == 0, inline.stderr
    entries = trustfile.load(data_dir / "trust.json").trust_list.entries
    assert [(e.script, e.script_sha256) for e in entries] == [
        ("-m http.server", None),
        ("-c", sha("code")),
    ]


def test_trusting_inline_code_needs_its_hash(data_dir: Path) -> None:
    result = cli(data_dir, "trust", "add", "3653/tcp", "--exe", REAL_PYTHON, "--script=-c")
    assert result.returncode == 2
    assert "--script-sha256" in result.stderr
