"""The versioned SQLite views other programs (osquery's ATC) read while portwatch writes."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from childsockets import ChildSockets, free_port
from cli_runner import run
from feedtools import PYTHON, monitor
from platforms import TERMINATED_EXIT_CODE, wine_gives_pid_0

from portwatch.core.types import (
    Endpoint,
    EventKind,
    Family,
    Listener,
    ListenerView,
    Owner,
    PortEvent,
    Proto,
    Sample,
    Status,
)
from portwatch.store import schema, views
from portwatch.store.history import HistoryStore

README = Path(__file__).resolve().parents[1] / "README.md"

# Another process, reading the way osquery's automatic tables do: read-only, its own
# connection per query, until the child's listener and its alert show up.
READER = r"""
import json, sqlite3, sys, time
path, port = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 40
reads = 0
while time.monotonic() < deadline:
    # Until portwatch has created the file and its views there is nothing to read;
    # from the first good read on, any error is a failure.
    if not reads:
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
            conn.execute("SELECT 1 FROM portwatch_schema_v1").fetchall()
            conn.close()
        except sqlite3.Error:
            time.sleep(0.05)
            continue
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        version = conn.execute("SELECT * FROM portwatch_schema_v1").fetchall()
        listeners = conn.execute(
            "SELECT * FROM portwatch_listeners_v1 WHERE port = ? AND watched = '1'", (port,)
        ).fetchall()
        events = conn.execute(
            "SELECT event, status, pid, exe FROM portwatch_events_v1 WHERE port = ?", (port,)
        ).fetchall()
        columns = [d[0] for d in conn.execute("SELECT * FROM portwatch_listeners_v1").description]
        conn.close()
        reads += 1
    except sqlite3.Error as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        sys.exit(1)
    if listeners and any(e[0] == "unknown-owner" for e in events):
        print(json.dumps({"mode": mode, "version": version, "columns": columns,
                          "listeners": listeners, "events": events, "reads": reads}))
        sys.exit(0)
    time.sleep(0.05)
print(json.dumps({"error": "timed out", "reads": reads}))
sys.exit(1)
"""


@wine_gives_pid_0
def test_views_are_read_by_another_process_while_monitor_writes(
    data_dir: Path, child_sockets: list
) -> None:
    port = free_port()
    assert run(data_dir, "watch", "add", str(port)).returncode == 0
    db = data_dir / "history.sqlite3"
    with monitor(data_dir) as process:
        child = ChildSockets.start([("tcp", "127.0.0.1", port, "listen")], registry=child_sockets)
        reader = subprocess.run(
            [sys.executable, "-c", READER, str(db), str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        found = json.loads(reader.stdout.strip().splitlines()[-1])
        assert reader.returncode == 0, found
        # While it runs, another writer can still take the lock: portwatch never holds
        # the file exclusively, so osquery (or sqlite3) is never shut out.
        other = sqlite3.connect(db, timeout=5, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()
        sqlite_cli = shutil.which("sqlite3")
        if sqlite_cli:
            cli = subprocess.run(
                [sqlite_cli, "-readonly", str(db), "SELECT * FROM portwatch_schema_v1"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert cli.returncode == 0, cli.stderr
            assert cli.stdout.strip() == f"{views.VIEWS_VERSION}|{schema.SCHEMA_VERSION}"
        process.terminate()
        assert process.wait(timeout=30) == TERMINATED_EXIT_CODE
        errors = process.stderr.read() if process.stderr else ""
    assert "locked" not in errors and "busy" not in errors
    assert found["mode"] == "wal"
    assert found["version"] == [[str(views.VIEWS_VERSION), str(schema.SCHEMA_VERSION)]]
    assert found["columns"] == list(views.LISTENER_COLUMNS)
    (row,) = found["listeners"]
    listener = dict(zip(views.LISTENER_COLUMNS, row, strict=True))
    assert listener["pid"] == str(child.pid)
    assert listener["exe"] == PYTHON
    assert listener["status"] == "unknown"
    assert listener["reach"] == "loopback"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", listener["first_seen"])
    assert ["unknown-owner", "unknown", str(child.pid), PYTHON] in found["events"]


# Recent, so retention keeps it; whole seconds plus a half to check rounding.
WALL = float(int(time.time()) - 3600) + 0.5


def _store_with_rows(path: Path) -> HistoryStore:
    store = HistoryStore.open(path)
    owner = Owner(pid=42, create_time=1.0, name="srv", exe="/usr/bin/srv", sha256="ab" * 32)
    listener = Listener(Endpoint(Proto.TCP, Family.IPV6, "::", 3653), owner)
    sample = Sample(wall=WALL, mono=1.0, listeners=(listener,))
    view = ListenerView(listener, True, Status.UNKNOWN)
    event = PortEvent(EventKind.OPENED, listener, sample.wall, 1.0, watched=True)
    assert store.record(sample, (view,), (event,)) == []
    store.close()
    return store


def test_every_column_is_text_and_none_is_null(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    _store_with_rows(db)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    for name, columns in (
        (views.LISTENERS, views.LISTENER_COLUMNS),
        (views.EVENTS, views.EVENT_COLUMNS),
        (views.SCHEMA, views.SCHEMA_COLUMNS),
        (views.WHY, views.WHY_COLUMNS),
    ):
        cursor = conn.execute(f"SELECT * FROM {name}")  # noqa: S608
        assert tuple(d[0] for d in cursor.description) == columns
        rows = cursor.fetchall()
        assert rows, name
        for row in rows:
            assert all(isinstance(value, str) for value in row), (name, row)
    listener = dict(zip(views.LISTENER_COLUMNS, conn.execute(f"SELECT * FROM {views.LISTENERS}")  # noqa: S608
                        .fetchone(), strict=True))  # fmt: skip
    assert listener["first_seen"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(WALL))
    assert listener["first_seen_unix"] == str(int(WALL))
    assert listener["reach"] == "all" and listener["watched"] == "1"
    assert listener["user"] == "" and listener["port"] == "3653"
    # Text columns still compare with numbers the way a query writer expects.
    assert conn.execute(f"SELECT count(*) FROM {views.LISTENERS} WHERE port = 3653").fetchone() == (  # noqa: S608
        1,
    )
    conn.close()


@pytest.mark.parametrize(
    "address",
    ["0.0.0.0", "::", "*", "", "127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1",
     "localhost", "192.168.1.10", "fe80::1", "::ffff:10.0.0.1", "::ffff:0.0.0.0"],
)  # fmt: skip
def test_reach_in_the_views_is_the_same_rule_as_the_app(tmp_path: Path, address: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (address TEXT)")
    conn.execute("INSERT INTO t VALUES (?)", (address,))
    sql = views._REACH  # the one expression both views use
    (reach,) = conn.execute(f"SELECT {sql} FROM t").fetchone()  # noqa: S608
    assert reach == Endpoint(Proto.TCP, Family.IPV4, address, 1).reach


def test_reopening_leaves_unchanged_views_alone(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    _store_with_rows(db)
    conn = sqlite3.connect(db)
    before = conn.execute("PRAGMA schema_version").fetchone()
    conn.close()
    HistoryStore.open(db).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA schema_version").fetchone() == before
    # A view that drifted (an older portwatch, a hand edit) is put back as documented.
    conn.execute(f"DROP VIEW {views.EVENTS}")
    conn.execute(f"CREATE VIEW {views.EVENTS} AS SELECT 1 AS id")
    conn.commit()
    conn.close()
    HistoryStore.open(db).close()
    conn = sqlite3.connect(db)
    cursor = conn.execute(f"SELECT * FROM {views.EVENTS}")  # noqa: S608
    assert tuple(d[0] for d in cursor.description) == views.EVENT_COLUMNS
    conn.close()


def test_the_readme_documents_every_view_column() -> None:
    if not README.exists():
        pytest.skip("the README is in the source tree")
    text = README.read_text(encoding="utf-8")
    section = text.split("### osquery", 1)[1].split("\n### ", 1)[0]
    for name, columns in (
        (views.LISTENERS, views.LISTENER_COLUMNS),
        (views.EVENTS, views.EVENT_COLUMNS),
        (views.SCHEMA, views.SCHEMA_COLUMNS),
        (views.WHY, views.WHY_COLUMNS),
    ):
        assert name in section
        for column in columns:
            assert f"`{column}`" in section or f'"{column}"' in section, (name, column)
