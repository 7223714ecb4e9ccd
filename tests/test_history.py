"""The SQLite history: recording, reading, damage, locks, a full disk, clocks, growth."""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import pytest

from portwatch import files
from portwatch.core.diff import diff
from portwatch.core.types import (
    Endpoint,
    EventKind,
    Family,
    Listener,
    ListenerView,
    Owner,
    PortActivity,
    Proto,
    Sample,
    Status,
)
from portwatch.store import history as history_module
from portwatch.store.history import HistoryStore

OWNER = Owner(
    pid=4242,
    create_time=1000.0,
    name="tsp-client",
    exe="/usr/bin/tspc",
    sha256="ab" * 32,
    user="alice",
)
EP = Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", 3653)


def sample_at(
    wall: float, mono: float, listeners: tuple[Listener, ...] = (), activity=()
) -> Sample:
    return Sample(wall=wall, mono=mono, listeners=listeners, activity=tuple(activity))


def views_of(sample: Sample) -> tuple[ListenerView, ...]:
    return tuple(ListenerView(item, True, Status.UNKNOWN) for item in sample.listeners)


def record(store: HistoryStore, previous: Sample | None, sample: Sample) -> list[str]:
    return store.record(sample, views_of(sample), tuple(diff(previous, sample)))


def test_records_listeners_events_and_activity(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    now = time.time()
    listener = Listener(EP, OWNER)
    first = sample_at(now, 1.0, (listener,), [PortActivity(3653, Proto.TCP, 1, 2)])
    second = sample_at(now + 1, 2.0, (listener,), [PortActivity(3653, Proto.TCP, 1, 3)])
    third = sample_at(now + 2, 3.0, ())
    assert record(store, None, first) == []
    record(store, first, second)
    record(store, second, third)
    observed = store.observed()
    assert len(observed) == 1
    row = observed[0]
    assert (row.proto, row.address, row.port, row.exe, row.sha256, row.user) == (
        "tcp",
        "127.0.0.1",
        3653,
        "/usr/bin/tspc",
        "ab" * 32,
        "alice",
    )
    assert row.first_seen == pytest.approx(now)
    assert row.last_seen == pytest.approx(now + 1)
    assert row.times_seen == 1
    kinds = [e.kind for e in store.recent_events()]
    assert kinds == [EventKind.CLOSED.value, EventKind.OPENED.value]
    points = store.activity(3653, Proto.TCP, now - 60, now + 60)
    assert max(p.established for p in points) == 3
    assert store.first_last_seen(EP) == (pytest.approx(now), pytest.approx(now + 1))
    store.close()
    reader = HistoryStore.open_readonly(tmp_path / "h.sqlite3")
    assert len(reader.observed()) == 1
    reader.close()


def test_reopening_counts_a_listener_seen_again(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    now = time.time()
    for offset in (0, 100):
        store = HistoryStore.open(path)
        s = sample_at(now + offset, 1.0 + offset, (Listener(EP, OWNER),))
        record(store, None, s)
        store.close()
    reader = HistoryStore.open_readonly(path)
    (row,) = reader.observed()
    assert row.times_seen == 2
    assert row.last_seen == pytest.approx(now + 100)


@pytest.mark.parametrize(
    "content",
    [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\x00" * 50],
)
def test_damaged_file_is_moved_aside_and_a_fresh_one_made(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "h.sqlite3"
    path.write_bytes(content)
    store = HistoryStore.open(path)
    assert store.notices and "moved to" in store.notices[0]
    aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == content
    record(store, None, sample_at(time.time(), 1.0, (Listener(EP, OWNER),)))
    assert len(store.observed()) == 1
    store.close()


def test_a_damaged_file_held_open_by_a_reader_is_still_set_aside(tmp_path: Path) -> None:
    # The window's read-only connection may hold the file when the writer finds it damaged;
    # on Windows such a file cannot be renamed. It must still be set aside, not be fatal.
    path = tmp_path / "h.sqlite3"
    content = b"this is not a database at all" * 100
    path.write_bytes(content)
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        store = HistoryStore.open(path)
        assert store.notices and "moved to" in store.notices[0]
        (aside,) = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
        assert aside.read_bytes() == content
        record(store, None, sample_at(time.time(), 1.0, (Listener(EP, OWNER),)))
        assert len(store.observed()) == 1
        store.close()
    finally:
        reader.close()


def test_a_file_windows_will_not_rename_is_copied_aside_and_emptied(tmp_path: Path) -> None:
    # What Windows answers for renaming a file another handle has open: the sharing
    # violation (WinError 32). The copy keeps the user's file; the emptied one is reused.
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"damaged" * 1000)
    (tmp_path / "h.sqlite3-wal").write_bytes(b"wal")
    tries: list[str] = []

    def held(source: object, target: object) -> None:
        tries.append(str(source))
        exc = PermissionError(13, "The process cannot access the file")
        exc.winerror = 32  # type: ignore[attr-defined]
        raise exc

    aside = files.set_aside(
        path, "damaged", companions=("-wal",), replace=held, sleep=lambda _s: None
    )
    assert tries and aside.read_bytes() == b"damaged" * 1000
    assert aside.with_name(aside.name + "-wal").read_bytes() == b"wal"
    assert path.read_bytes() == b"" and (tmp_path / "h.sqlite3-wal").read_bytes() == b""
    store = HistoryStore.open(path)
    assert not any("moved to" in notice for notice in store.notices)
    record(store, None, sample_at(time.time(), 1.0, (Listener(EP, OWNER),)))
    assert len(store.observed()) == 1
    store.close()


@pytest.mark.parametrize(
    # Windows allows no '?' in a file name.
    "folder",
    ["a#b", "50%25 done", *([] if sys.platform == "win32" else ["a?mode=rw&b"])],
)
def test_a_folder_name_with_uri_characters_reads_the_right_file(
    tmp_path: Path, folder: str
) -> None:
    # The read-only connection (export, chart) is opened by URI: '#', '?' and '%' in the
    # data folder's name cut the path short or became options, and opened another file.
    path = tmp_path / folder / "h.sqlite3"
    path.parent.mkdir()
    store = HistoryStore.open(path)
    record(store, None, sample_at(time.time(), 1.0, (Listener(EP, OWNER),)))
    store.close()
    reader = HistoryStore.open_readonly(path)
    try:
        assert len(reader.observed()) == 1
    finally:
        reader.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder]


def test_truncated_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = HistoryStore.open(path)
    for i in range(200):
        record(
            store,
            None,
            sample_at(
                time.time() + i,
                float(i),
                (Listener(Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", 1000 + i), OWNER),),
            ),
        )
    store.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    reopened = HistoryStore.open(path)
    assert reopened.notices
    reopened.close()


def test_locked_database_keeps_polls_in_memory_and_writes_them_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "h.sqlite3"
    store = HistoryStore.open(path)
    store._conn.execute("PRAGMA busy_timeout = 50")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    now = time.time()
    first = sample_at(now, 1.0, (Listener(EP, OWNER),))
    warnings = record(store, None, first)
    assert warnings and "kept in memory" in warnings[0]
    assert store.pending == 1
    blocker.execute("COMMIT")
    blocker.close()
    second = sample_at(now + 1, 2.0, (Listener(EP, OWNER),))
    assert record(store, first, second) == ["history is written again; no poll was lost"]
    assert store.pending == 0
    assert len(store.observed()) == 1
    assert [e.kind for e in store.recent_events()] == ["listener-opened"]
    store.close()


def test_full_disk_rolls_back_whole_and_monitoring_continues(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = HistoryStore.open(path)
    now = time.time()
    record(store, None, sample_at(now, 1.0, ()))
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    # The same error SQLite gives on a full disk: no page can be added.
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    many = tuple(
        Listener(Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", 2000 + i), OWNER) for i in range(400)
    )
    warnings = store.record(sample_at(now + 1, 2.0, many), views_of(sample_at(0, 0, many)), ())
    assert warnings and "full" in warnings[0]
    assert store.observed() == []  # nothing half-written
    # Still full: nothing more is said (one line for the whole outage, not one per poll).
    assert store.record(sample_at(now + 2, 3.0, many), views_of(sample_at(0, 0, many)), ()) == []
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    assert store.record(sample_at(now + 3, 4.0, many), views_of(sample_at(0, 0, many)), ()) == [
        "history is written again; no poll was lost"
    ]
    assert len(store.observed()) == 400
    store.close()


def test_wall_clock_going_backwards_never_moves_last_seen_back(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    now = time.time()
    listener = Listener(EP, OWNER)
    a = sample_at(now, 1.0, (listener,))
    b = sample_at(now - 3600, 40.0, (listener,))  # clock set back an hour
    record(store, None, a)
    record(store, a, b)
    store.close()
    reader = HistoryStore.open_readonly(tmp_path / "h.sqlite3")
    assert reader.observed()[0].last_seen == pytest.approx(now)


def test_forward_clock_jump_does_not_make_recent_history_expire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    now = time.time()
    record(store, None, sample_at(now, 1.0, (Listener(EP, OWNER),)))
    real_time = time.time
    monkeypatch.setattr(history_module.time, "time", lambda: real_time() + 400 * 86400)
    store.apply_retention()
    assert store.count_events() == 1
    assert store.activity(3653, Proto.TCP, now - 60, now + 60)


def test_a_week_of_polling_stays_bounded(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    end = time.time()
    start = end - 7 * 86400
    step = 20.0  # a week at one poll per 20 s: the same buckets a 1 s poll fills
    listener = Listener(EP, OWNER)
    activity = [PortActivity(3653, Proto.TCP, 1, 1), PortActivity(3653, Proto.UDP, 0, 1)]
    wall, mono, previous = start, 0.0, None
    conn = store._conn
    conn.execute("BEGIN")
    while wall < end:
        s = sample_at(wall, mono, (listener,), activity)
        store._write_activity(s)
        wall += step
        mono += step
    conn.execute("COMMIT")
    record(store, previous, sample_at(end, mono, (listener,), activity))
    store.apply_retention()
    counts = dict(
        conn.execute("SELECT resolution, COUNT(*) FROM activity GROUP BY resolution").fetchall()
    )
    for res, keep in history_module.RESOLUTIONS:
        per_series = min(keep, 7 * 86400) / res + 2
        assert counts[res] <= 2 * per_series, (res, counts[res])
    assert counts[10] <= 2 * (6 * 3600 / 10 + 2)
    size = (tmp_path / "h.sqlite3").stat().st_size
    assert size < 20 * 1024 * 1024


def test_hostile_text_is_stored_and_read_back_unchanged(tmp_path: Path) -> None:
    name = "<b>evil</b>&\u202egnp.exe\x07=cmd|' /C calc'!A0"
    owner = Owner(
        pid=1,
        create_time=1.0,
        name=name,
        exe="/tmp/\\xff\\xfe" + name,
        sha256="cd" * 32,
        user="bob",
    )
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    record(store, None, sample_at(time.time(), 1.0, (Listener(EP, owner),)))
    (row,) = store.observed()
    assert row.process == name
    assert row.exe == owner.exe
    store.close()


def test_a_file_locked_by_another_connection_is_not_taken_for_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "h.sqlite3"
    store = HistoryStore.open(path)
    record(store, None, sample_at(time.time(), 1.0, (Listener(EP, OWNER),)))
    store.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(history_module, "BUSY_TIMEOUT_MS", 50)
    try:
        with pytest.raises(history_module.StoreError, match="locked"):
            HistoryStore.open(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    reopened = HistoryStore.open(path)
    assert reopened.notices == []
    assert len(reopened.observed()) == 1
    reopened.close()


def test_a_clock_far_ahead_at_start_up_deletes_no_recent_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "h.sqlite3"
    store = HistoryStore.open(path)
    now = time.time()
    record(store, None, sample_at(now, 1.0, (Listener(EP, OWNER),)))
    store.close()
    real_time = time.time
    # The machine starts with its clock 100 days ahead (a bad RTC, no NTP yet).
    monkeypatch.setattr(history_module.time, "time", lambda: real_time() + 100 * 86400)
    ahead = HistoryStore.open(path)
    record(ahead, None, sample_at(time.time(), 2.0, ()))
    ahead.apply_retention()
    assert ahead.count_events() >= 1
    assert ahead.activity(3653, Proto.TCP, now - 60, now + 60) is not None
    assert any(e.wall == pytest.approx(now) for e in ahead.recent_events())
    ahead.close()


def test_bytes_by_direction_are_kept_per_bucket_and_unknown_stays_unknown(
    tmp_path: Path,
) -> None:
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    now = (time.time() // 60) * 60
    counted = PortActivity(3653, Proto.TCP, 1, 1, 300, 100, 200)
    skipped = PortActivity(3653, Proto.TCP, 1, 1)  # a poll that re-used the last count
    udp = PortActivity(3654, Proto.UDP, 1, 0)
    for offset, item in ((0.0, counted), (2.0, skipped), (4.0, counted)):
        sample = Sample(wall=now + offset, mono=offset, listeners=(), activity=(item, udp))
        store.record(sample, (), ())
    (bucket,) = store.activity(3653, Proto.TCP, now - 1, now + 5, 10)
    assert (bucket.bytes_in, bucket.bytes_out, bucket.bytes) == (200, 400, 600)
    (quiet,) = store.activity(3654, Proto.UDP, now - 1, now + 5, 10)
    assert quiet.bytes_in is None and quiet.bytes_out is None
    # A range read in one query sums the ports that counted and keeps unknown unknown.
    (both,) = store.activity_span(3653, 3654, (Proto.TCP, Proto.UDP), now - 1, now + 5, 10)
    assert (both.listeners, both.bytes_in, both.bytes_out) == (2, 200, 400)
    (udp_only,) = store.activity_span(3653, 3654, (Proto.UDP,), now - 1, now + 5, 10)
    assert udp_only.bytes_in is None
    store.close()
