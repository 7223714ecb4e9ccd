"""The JSON-lines event log: fields, rotation bounds, and followers that lose nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from childsockets import ChildSockets, free_port, wait_for
from cli_runner import run
from feedtools import PYTHON, SLOW_S, monitor
from platforms import TERMINATED_EXIT_CODE, WINDOWS, needs_posix, wine_gives_pid_0

from portwatch.core.eventlog import event_record
from portwatch.core.types import (
    Endpoint,
    EventKind,
    Family,
    Listener,
    Owner,
    PortEvent,
    Proto,
    Sample,
    Status,
)
from portwatch.engine.jsonl import JsonlSink, RotatingLines
from portwatch.engine.monitor import TickResult

README = Path(__file__).resolve().parents[1] / "README.md"

# Follows FILE by name the way log shippers do: read to the end, and when the name
# points at a new file, finish the old one first, then switch. Prints what it read.
FOLLOWER = r"""
import os, sys, time
path, stop = sys.argv[1], sys.argv[2]
while not os.path.exists(path):
    time.sleep(0.005)
handle = open(path, "rb")
inode = os.fstat(handle.fileno()).st_ino
buffer = b""
out = sys.stdout.buffer
while True:
    chunk = handle.read(65536)
    if chunk:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            out.write(line + b"\n")
            if line == stop.encode():
                out.flush()
                sys.exit(0)
        continue
    try:
        now = os.stat(path).st_ino
    except FileNotFoundError:
        now = inode
    if now != inode:
        rest = handle.read()
        if rest:
            buffer += rest
            continue
        handle.close()
        handle = open(path, "rb")
        inode = os.fstat(handle.fileno()).st_ino
        continue
    time.sleep(0.002)
"""


def _line(number: int) -> bytes:
    return json.dumps({"n": number, "pad": "x" * (number % 37)}).encode() + b"\n"


def test_rotation_keeps_a_bounded_number_of_files_each_within_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = RotatingLines(path, max_bytes=500, keep=3)
    for number in range(400):
        writer.append(_line(number))
    writer.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["events.jsonl", "events.jsonl.1", "events.jsonl.2", "events.jsonl.3"]
    assert all(p.stat().st_size <= 500 for p in tmp_path.iterdir())
    kept: list[int] = []
    for name in reversed(names[1:]):
        kept += [json.loads(x)["n"] for x in (tmp_path / name).read_text().splitlines()]
    kept += [json.loads(x)["n"] for x in path.read_text().splitlines()]
    # The newest lines, in order, none missing between the oldest kept and the last.
    assert kept == list(range(kept[0], 400))


def test_an_existing_file_is_appended_to_and_its_size_counts(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"x" * 450 + b"\n")
    writer = RotatingLines(path, max_bytes=500, keep=1)
    writer.append(b"y" * 60 + b"\n")
    writer.close()
    assert (tmp_path / "events.jsonl.1").read_bytes() == b"x" * 450 + b"\n"
    assert path.read_bytes() == b"y" * 60 + b"\n"


@pytest.mark.skipif(
    WINDOWS,
    reason="Windows refuses to rename a file a follower holds open: rotation is put off"
    " instead (test_a_refused_rotation_keeps_appending_and_says_so_once)",
)
@pytest.mark.parametrize("follower", ["python", "tail -F"])
def test_a_follower_loses_no_line_across_rotations(tmp_path: Path, follower: str) -> None:
    path = tmp_path / "events.jsonl"
    total = 1500
    stop = _line(total).rstrip(b"\n").decode()
    if follower == "python":
        command = [sys.executable, "-c", FOLLOWER, str(path), stop]
    else:
        tail = shutil.which("tail")
        if tail is None:
            pytest.skip("tail is not installed")
        command = [tail, "-F", "-n", "+1", "-s", "0.01", str(path)]
    # The follower writes to a file, not a pipe: a full pipe would stall it, which is
    # the test's doing, not the rotation's.
    got_path = tmp_path / "followed.out"
    with got_path.open("wb") as sink:
        reader = subprocess.Popen(command, stdout=sink, stderr=subprocess.DEVNULL)
    try:
        # Files of a few hundred lines: each rotation is one rotation for the reader (a
        # follower that sleeps through two rotations cannot find the middle file by name).
        writer = RotatingLines(path, max_bytes=24_000, keep=2)
        # The first line once the follower is running, so it is following from the start.
        writer.append(_line(0))
        wait_for(lambda: got_path.read_bytes().startswith(_line(0)), timeout=SLOW_S)
        for number in range(1, total + 1):
            writer.append(_line(number))
            if number % 100 == 0:
                # The pace of a busy machine: many events a second, a rotation every few
                # hundred milliseconds at most.
                time.sleep(0.03)
        writer.close()

        def numbers() -> list[int]:
            lines = got_path.read_bytes().decode().splitlines()
            return [json.loads(x)["n"] for x in lines if x.startswith("{")]

        wait_for(lambda: stop.encode() in got_path.read_bytes(), timeout=SLOW_S)
        assert len(list(tmp_path.glob("events.jsonl.*"))) == 2
        assert numbers() == list(range(total + 1))
    finally:
        reader.kill()
        reader.wait()


def _event(owner: Owner | None, kind: EventKind = EventKind.UNKNOWN_OWNER) -> PortEvent:
    endpoint = Endpoint(Proto.TCP, Family.IPV6, "::1", 3653)
    return PortEvent(
        kind, Listener(endpoint, owner), 1_700_000_000.25, 1.0, watched=True, detail="why"
    )


def test_text_a_process_wrote_stays_literal_and_the_line_is_valid_utf8(tmp_path: Path) -> None:
    owner = Owner(pid=9, name='a"b\nc\udcff\u202e', exe="/tmp/\udcfe\x1b[31m", user="u")
    path = tmp_path / "events.jsonl"
    sink = JsonlSink(path, hostname="host\udcff")
    sample = Sample(wall=1.0, mono=1.0, listeners=())
    assert sink.publish(TickResult(sample, (), (_event(owner),), (), ())) == []
    sink.close()
    raw = path.read_bytes()
    assert raw.count(b"\n") == 1
    record = json.loads(raw.decode("utf-8", errors="strict"))
    assert record["process"]["name"] == 'a"b\nc\\xff\u202e'
    assert record["process"]["executable"] == "/tmp/\\xfe\x1b[31m"
    assert record["host"]["hostname"] == "host\\xff"
    assert record["@timestamp"] == "2023-11-14T22:13:20.250Z"
    assert record["event"]["kind"] == "alert" and record["event"]["reason"] == "why"
    # The human summary shows the controls as escapes.
    assert "\n" not in record["message"] and "\u202e" not in record["message"]


@needs_posix  # a planted symbolic link (Windows needs admin rights or developer mode)
def test_a_file_that_cannot_be_written_holds_events_and_warns_once(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    path = tmp_path / "events.jsonl"
    path.symlink_to(target)  # a planted link is refused, not followed
    sink = JsonlSink(path, hostname="h")
    sample = Sample(wall=1.0, mono=1.0, listeners=())
    tick = TickResult(sample, (), (_event(None),), (), ())
    first = sink.publish(tick)
    assert len(first) == 1 and "cannot write the event log" in first[0]
    assert sink.publish(tick) == []
    assert target.read_text() == ""
    path.unlink()
    assert sink.publish(tick) == [f"the event log {path} is written again"]
    assert [json.loads(x)["event"]["sequence"] for x in path.read_text().splitlines()] == [
        1,
        2,
        3,
    ]


def _paths(record: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _paths(value, name + ".")
        else:
            out.add(name)
    return out


def _documented_fields() -> set[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Event log fields", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([^`]+)`", section, re.MULTILINE))


def test_every_field_written_is_documented() -> None:
    if not README.exists():
        pytest.skip("the README is in the source tree")
    from portwatch.core.exposure import Exposure
    from portwatch.core.types import PackageInfo

    owner = Owner(pid=9, create_time=1.0, name="n", exe="/e", sha256="0" * 64, user="u",
                  script="/s.py", package=PackageInfo("p", "1", "dpkg"),
                  started_by="systemd unit n.service", parents=(("systemd", 1),),
                  replaced="deleted from disk")  # fmt: skip
    exposure = Exposure("network", addresses=("192.168.1.5",), everywhere=True)
    event = PortEvent(
        EventKind.OWNER_CHANGED,
        Listener(Endpoint(Proto.TCP, Family.IPV4, "0.0.0.0", 3653), owner, exposure=exposure),
        1.0,
        1.0,
        watched=True,
        previous=owner,
        detail="d",
        status=Status.UNKNOWN,
    )
    record = event_record(event, "h", 1, "svc")
    written = _paths(record)
    assert written <= _documented_fields(), written - _documented_fields()
    assert record["portwatch"]["started_by"] == "systemd unit n.service"
    assert record["portwatch"]["reachable_from"] == "local network: 192.168.1.5"
    assert record["portwatch"]["firewall"] == "firewall not checked"
    assert record["process"]["parent"] == {"pid": 1, "name": "systemd"}


@wine_gives_pid_0
def test_monitor_appends_events_as_json_lines(data_dir: Path, child_sockets: list) -> None:
    port = free_port()
    assert run(data_dir, "watch", "add", str(port)).returncode == 0
    path = data_dir / "events.jsonl"
    with monitor(data_dir, "--jsonl", str(path)) as process:
        child = ChildSockets.start([("tcp", "127.0.0.1", port, "listen")], registry=child_sockets)

        def alerted() -> list[dict[str, Any]]:
            lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
            records = [json.loads(x) for x in lines]
            return [
                r
                for r in records
                if r["event"]["action"] == "unknown-owner" and r["server"]["port"] == port
            ]

        (record,) = wait_for(alerted, timeout=SLOW_S)  # type: ignore[misc]
        process.terminate()
        assert process.wait(timeout=30) == TERMINATED_EXIT_CODE
    assert record["process"]["pid"] == child.pid
    assert record["process"]["executable"] == PYTHON
    assert record["network"]["transport"] == "tcp"
    assert record["portwatch"]["watched"] is True
    assert record["portwatch"]["status"] == "unknown"
    assert record["event"]["kind"] == "alert"
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o640)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--jsonl-keep", "0"], "--jsonl-keep"),
        (["--jsonl-max-bytes", "10"], "--jsonl-max-bytes"),
        (["--jsonl-max-bytes", "ten"], "--jsonl-max-bytes"),
    ],
)
def test_bad_rotation_arguments_exit_2_with_one_line(
    data_dir: Path, args: list[str], needle: str
) -> None:
    result = run(data_dir, "monitor", "--duration", "1", "--jsonl", str(data_dir / "e"), *args)
    assert result.returncode == 2
    assert needle in result.stderr


def test_a_refused_rotation_keeps_appending_and_says_so_once(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    # A folder where the first rotated name should go: the rename is refused, as Windows
    # refuses it while a reader holds the old file open.
    (tmp_path / "events.jsonl.1").mkdir()
    (tmp_path / "events.jsonl.1" / "keep").write_text("")
    sink = JsonlSink(path, max_bytes=1024, keep=1, hostname="h")
    sample = Sample(wall=1.0, mono=1.0, listeners=())
    tick = TickResult(sample, (), (_event(None),) * 5, (), ())
    warnings = [w for _ in range(4) for w in sink.publish(tick)]
    sink.close()
    assert len(warnings) == 1 and "cannot rotate the event log" in warnings[0], warnings
    sequences = [json.loads(x)["event"]["sequence"] for x in path.read_text().splitlines()]
    assert sequences == list(range(1, 21))
