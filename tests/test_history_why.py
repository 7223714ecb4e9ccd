"""History keeps why a listener was open and who could reach it; old files are migrated
(with a backup) and one socket has one address however an older probe spelled it."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from pathlib import Path

from portwatch.core.exposure import Exposure
from portwatch.core.types import (
    Endpoint,
    Family,
    Listener,
    ListenerView,
    Owner,
    PackageInfo,
    Proto,
    Sample,
    Status,
)
from portwatch.engine.export import render_csv
from portwatch.store import schema
from portwatch.store.history import HistoryStore

OWNER = Owner(
    pid=812,
    create_time=1000.0,
    name="nginx",
    exe="/usr/sbin/nginx",
    sha256="ab" * 32,
    user="root",
    package=PackageInfo("nginx-core", "1.22.1-9", "dpkg"),
    started_by="systemd unit nginx.service",
    parents=(("systemd", 1),),
)
EP = Endpoint(Proto.TCP, Family.IPV4, "192.168.1.5", 80)
LAN = Exposure("network", addresses=("192.168.1.5",))


def _record(store: HistoryStore, wall: float, mono: float, *listeners: Listener) -> None:
    sample = Sample(wall=wall, mono=mono, listeners=tuple(listeners))
    views = tuple(ListenerView(item, True, Status.KNOWN) for item in listeners)
    assert store.record(sample, views, ()) == []


def test_history_records_and_exports_why_fields(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    now = time.time()
    _record(store, now, 1.0, Listener(EP, OWNER, exposure=LAN))
    try:
        (item,) = store.observed()
        assert item.started_by == "systemd unit nginx.service"
        assert item.package == "nginx-core 1.22.1-9"
        assert item.parents == "systemd (1)"
        assert item.exposure_scope == "network"
        assert item.reachable_from == "local network: 192.168.1.5"
        assert item.firewall == "firewall not checked"
        assert item.replaced is None
        # The same listener later reachable another way (the host's addresses changed):
        # the row follows, it is not a new identity.
        wider = Exposure("public", addresses=("192.168.1.5", "203.0.113.7"), everywhere=True)
        _record(store, now + 1, 2.0, Listener(EP, OWNER, exposure=wider))
        (item,) = store.observed()
        assert item.exposure_scope == "public"
        assert item.reachable_from.startswith("all interfaces, including a public address")
        text, count = render_csv(store)
        # The same through the versioned view for osquery and scripts.
        row = store._conn.execute(
            "SELECT l.port, w.started_by, w.exposure, w.firewall FROM portwatch_listeners_v1 l"
            " JOIN portwatch_listener_why_v1 w USING (id)"
        ).fetchone()
        assert row == ("80", "systemd unit nginx.service", "public", "firewall not checked")
    finally:
        store.close()
    assert count == 1
    (row,) = csv.DictReader(io.StringIO(text, newline=""))
    assert row["started_by"] == "systemd unit nginx.service"
    assert row["package"] == "nginx-core 1.22.1-9"
    assert row["exposure_scope"] == "public"


def test_hostile_why_text_is_neutralised_in_csv(tmp_path: Path) -> None:
    hostile = Owner(
        pid=5,
        create_time=1.0,
        name="x",
        exe="/x",
        sha256="cd" * 32,
        started_by="=cmd|' /C calc'!A0",
    )
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    try:
        _record(store, time.time(), 1.0, Listener(EP, hostile, exposure=LAN))
        text, _count = render_csv(store)
    finally:
        store.close()
    (row,) = csv.DictReader(io.StringIO(text, newline=""))
    assert row["started_by"] == "'=cmd|' /C calc'!A0"


def _version_one_file(path: Path) -> None:
    """A history as portwatch wrote it before the why columns: the psutil probe on
    Python 3.11 spelled the v4-mapped loopback in hex, the netlink probe did not."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("BEGIN;" + schema.MIGRATIONS[0] + "; PRAGMA user_version = 1; COMMIT;")  # type: ignore[operator]
    rows = [
        ("::ffff:7f00:1", 100.0, 200.0, 3),
        ("::ffff:127.0.0.1", 150.0, 300.0, 2),
        ("::ffff:c0a8:105", 10.0, 20.0, 1),
    ]
    for address, first, last, times in rows:
        conn.execute(
            "INSERT INTO listeners (proto, family, address, port, exe, sha256, user, script,"
            " process, last_pid, watched, status, first_seen, last_seen, times_seen)"
            " VALUES ('tcp', 'ipv6', ?, 8080, '/usr/bin/app', 'aa', 'alice', '', 'app', 7, 1,"
            " 'known', ?, ?, ?)",
            (address, first, last, times),
        )
    conn.execute(
        "INSERT INTO events (wall, kind, proto, family, address, port)"
        " VALUES (150.0, 'listener-opened', 'tcp', 'ipv6', '::ffff:7f00:1', 8080)"
    )
    conn.close()


def test_old_history_is_backed_up_migrated_and_spelled_one_way(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    _version_one_file(path)
    store = HistoryStore.open(path)
    try:
        assert schema.version(store._conn) == schema.SCHEMA_VERSION >= 2
        assert any("upgraded" in notice for notice in store.notices)
        rows = {item.address: item for item in store.observed()}
        # One socket, one row: the two spellings merged, first/last seen widened.
        assert set(rows) == {"::ffff:127.0.0.1", "::ffff:192.168.1.5"}
        merged = rows["::ffff:127.0.0.1"]
        assert (merged.first_seen, merged.last_seen, merged.times_seen) == (100.0, 300.0, 5)
        assert merged.started_by is None  # not recorded then; not made up now
        events = store.recent_events()
        assert [e.address for e in events] == ["::ffff:127.0.0.1"]
    finally:
        store.close()
    backup = path.with_name(path.name + f".before-v{schema.SCHEMA_VERSION}")
    conn = sqlite3.connect(backup)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM listeners").fetchone()[0] == 3
    finally:
        conn.close()


def test_a_reader_of_an_unmigrated_file_reads_one_spelling(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    _version_one_file(path)
    reader = HistoryStore.open_readonly(path)
    try:
        items = reader.observed()
    finally:
        reader.close()
    assert {item.address for item in items} == {"::ffff:127.0.0.1", "::ffff:192.168.1.5"}
    assert all(item.started_by is None and item.reachable_from is None for item in items)
