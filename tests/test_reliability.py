"""Faults from reliability.md that cut across layers: kills mid-save, many sockets, odd bytes."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from childsockets import ChildSockets, wait_for
from platforms import needs_posix, wine_gives_pid_0

from portwatch.core.csvrows import neutralise
from portwatch.core.text import clean, visible
from portwatch.core.watchlist import WatchList
from portwatch.probe.psutil_probe import PsutilProbe

PYTHON = os.path.realpath(sys.executable)

SAVER = r"""
import sys
from pathlib import Path
from portwatch.config import watchfile
from portwatch.core.watchlist import WatchList, parse_spec
small = WatchList((parse_spec("3653"),))
big = WatchList(tuple(parse_spec(str(p)) for p in range(1000, 6000)))
path = Path(sys.argv[1])
print("ready", flush=True)
while True:
    watchfile.save(path, small)
    watchfile.save(path, big)
"""


@needs_posix  # SIGKILL
def test_killed_while_saving_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "watchlist.txt"
    for round_ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        # Let it get into the write loop, a different distance each round.
        wait_for(lambda: path.exists() and path.stat().st_size > 0)
        deadline = time.monotonic() + 0.01 * (round_ + 1)
        while time.monotonic() < deadline:
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
        assert lines in (["3653"], [str(p) for p in range(1000, 6000)])
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "watchlist.txt"]
    # A kill between mkstemp and rename can leave a temp file; it is never the real one.
    assert all(name.startswith(".watchlist.txt.") for name in leftovers)


@wine_gives_pid_0
def test_thousands_of_sockets_poll_completes(child_sockets: list) -> None:
    child = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")] * 3000, registry=child_sockets)
    probe = PsutilProbe()
    sample = wait_for(
        lambda: (
            (s := probe.poll(WatchList.default()))
            and sum(1 for item in s.listeners if item.owner and item.owner.pid == child.pid) == 3000
            and s
        )
    )
    assert len(sample.listeners) >= 3000


@needs_posix  # file names as raw bytes
def test_non_utf8_executable_name_is_escaped_not_dropped(
    tmp_path: Path, child_sockets: list
) -> None:
    raw = os.fsencode(str(tmp_path)) + b"/srv\xff\xfe-daemon"
    shutil.copy(PYTHON, raw)
    child = ChildSockets.start(
        [("tcp", "127.0.0.1", 0, "listen")], executable=os.fsdecode(raw), registry=child_sockets
    )
    data = tmp_path / "data"
    cmd = [sys.executable, "-m", "portwatch"]
    script = Path(sys.executable).with_name("portwatch")
    if script.exists():
        cmd = [str(script)]
    out = subprocess.run(
        [*cmd, "--data-dir", str(data), "scan", "--json", "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (row,) = [r for r in json.loads(out) if r["pid"] == child.pid]
    assert row["exe"].endswith("srv\\xff\\xfe-daemon")
    subprocess.run(
        [*cmd, "--data-dir", str(data), "monitor", "--interval", "0.2", "--duration", "0.3"],
        capture_output=True,
        check=True,
    )
    exported = subprocess.run(
        [*cmd, "--data-dir", str(data), "export", "-o", "-"], capture_output=True, check=True
    ).stdout.decode("utf-8")
    rows = list(csv.reader(io.StringIO(exported)))
    assert any(cell.endswith("srv\\xff\\xfe-daemon") for r in rows for cell in r)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("  =cmd", "'  =cmd"),
        ("+x", "'+x"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("\nx", "'\nx"),
        ("plain", "plain"),
        (3653, "3653"),
        (None, ""),
        (True, "yes"),
        # Bytes in a history row written by another program: text, not b'...'.
        (b"=x", "'=x"),
        (b"a\xffb", "a\\xffb"),
        # Escape sequences and bidi overrides are shown as escapes, as on screen.
        ("\x1b[31mred", "\\x1b[31mred"),
        ("\u202eexe.txt", "\\u202eexe.txt"),
        ("\x00=cmd", "\\x00=cmd"),
    ],
)
def test_formula_cells_are_neutralised(value: object, expected: str) -> None:
    assert neutralise(value) == expected


def test_every_hostile_row_round_trips_as_one_row() -> None:
    nasty = ["a\nb", 'q"uote', "x\r\ny", '=HYPERLINK("http://x")', "<b>&amp;</b>", "\u202eexe.txt"]
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    for value in nasty:
        writer.writerow([neutralise(value), "next"])
    rows = list(csv.reader(io.StringIO(buf.getvalue(), newline="")))
    assert len(rows) == len(nasty)
    assert all(len(r) == 2 and r[1] == "next" for r in rows)


def test_text_helpers_make_hidden_characters_visible() -> None:
    assert clean(b"ok\xff".decode("utf-8", "surrogateescape")) == "ok\\xff"
    assert visible("a\u202eb\x07c") == "a\\u202eb\\x07c"
    assert visible("<b>bold</b> & more") == "<b>bold</b> & more"


def test_a_byte_and_its_escape_written_as_text_show_differently() -> None:
    byte = b"a\xffb".decode("utf-8", "surrogateescape")
    literal = "a\\xffb"  # the four characters backslash, x, f, f
    assert clean(byte) == "a\\xffb"
    assert clean(literal) == "a\\\\xffb"
    assert visible(clean(byte)) != visible(clean(literal))
    # A backslash just before an escaped byte cannot merge with it either.
    mixed = b"a\\\xff".decode("utf-8", "surrogateescape")
    assert clean(mixed) == "a\\\\\\xff" != clean("a\\xff")
    # A control character and its escape written as text differ too.
    assert visible(clean("a\x07")) != visible(clean("a\\x07"))
    # Backslashes that cannot start an escape stay single (Windows paths read as usual).
    assert clean("C:\\Program Files\\app.exe") == "C:\\Program Files\\app.exe"


def test_windows_paths_stay_as_they_are_and_escapes_stay_unforgeable() -> None:
    # Folders that begin with x or u (C:\users under Wine, C:\xampp) and UNC paths were
    # shown with a doubled backslash, which no longer named the file.
    for path in (
        "C:\\users\\me\\app.exe",
        "C:\\xampp\\apache\\bin\\httpd.exe",
        "\\\\srv\\share\\a",
    ):
        assert clean(path) == path
    assert clean("C:\\xdebug") == "C:\\\\xdebug"  # x and two hex digits read as a byte
    # Every string of these pieces encodes differently: nothing can pose as a byte.
    pieces = ["\\", "x", "u", "f", "0", "a", b"\xff".decode("utf-8", "surrogateescape")]
    seen: dict[str, str] = {}
    for a in pieces:
        for b in pieces:
            for c in pieces:
                for d in pieces:
                    text = a + b + c + d
                    out = clean(text)
                    assert out is not None
                    assert seen.setdefault(out, text) == text, (text, seen[out], out)
