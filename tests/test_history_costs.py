"""The history's bookkeeping: what a steady poll writes, last-seen batches, retention
of events by age and by count, and the bound on polls held while the file is locked."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_history import EP, OWNER, record, sample_at, views_of

from portwatch.core.types import (
    Endpoint,
    Family,
    Listener,
    ListenerView,
    Owner,
    Proto,
    Sample,
    Status,
)
from portwatch.store import history as history_module
from portwatch.store.history import HistoryStore

DAY = 86400.0


def many(count: int) -> tuple[Listener, ...]:
    return tuple(
        Listener(Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", 2000 + i), OWNER)
        for i in range(count)
    )


def last_seen(path: Path) -> list[float]:
    reader = HistoryStore.open_readonly(path)
    try:
        return [item.last_seen for item in reader.observed()]
    finally:
        reader.close()


def _locked_store(path: Path) -> tuple[HistoryStore, sqlite3.Connection]:
    """A history store, and another connection holding its file locked (COMMIT and
    close it to let the store write)."""
    store = HistoryStore.open(path)
    store._conn.execute("PRAGMA busy_timeout = 0")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    return store, blocker


def test_steady_polls_do_not_rewrite_listener_rows_and_stop_loses_nothing(
    tmp_path: Path,
) -> None:
    """1,200 listeners that do not change: a poll writes its activity, not 1,200 rows;
    every 30 s last-seen goes out in batches of at most 500 rows; at stop, all of them."""
    path = tmp_path / "h.sqlite3"
    store = HistoryStore.open(path)
    listeners = many(1200)
    views: tuple[ListenerView, ...] = views_of(sample_at(0, 0, listeners))
    now = time.time()

    def poll(offset: float) -> int:
        before = store._conn.total_changes
        sample = Sample(wall=now + offset, mono=1.0 + offset, listeners=listeners)
        assert store.record(sample, views, ()) == []
        return store._conn.total_changes - before

    assert poll(0) >= 1200  # the first poll inserts every row
    # The activity of a poll is three rows (one per resolution), nothing per listener.
    assert [poll(t) for t in range(1, 29)] == [3] * 28
    # Thirty seconds on: last-seen is refreshed, in bounded batches.
    batches = [poll(t) - 3 for t in range(30, 36)]
    assert batches == [500, 500, 200, 0, 0, 0]
    assert min(last_seen(path)) >= now + 30
    # Between two flushes last-seen lives in memory; closing writes it.
    for t in range(36, 50):
        assert poll(t) == 3
    store.close()
    assert set(last_seen(path)) == {now + 49}


def test_event_retention_deletes_events_older_than_the_limit_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    now = time.time()
    limit = 90 * DAY  # the README's "kept 90 days"
    listener = Listener(EP, OWNER)
    for age in (limit + 10 * DAY, limit + DAY, limit - DAY, 0.0):
        record(store, None, sample_at(now - age, 1.0, (listener,)))
    store.apply_retention()
    kept = sorted(round((now - e.wall) / DAY) for e in store.recent_events())
    assert kept == [0, round((limit - DAY) / DAY)]
    store.close()


def test_event_retention_keeps_at_most_the_newest_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_module, "EVENT_MAX_ROWS", 3)
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    now = time.time()
    for i in range(7):
        record(store, None, sample_at(now + i, 1.0 + i, (Listener(EP, OWNER),)))
    store.apply_retention()
    assert sorted(e.wall for e in store.recent_events()) == [now + 4, now + 5, now + 6]
    store.close()


def test_polls_held_while_the_file_is_locked_are_bounded_and_the_loss_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_module, "MAX_PENDING", 5)
    store, blocker = _locked_store(tmp_path / "h.sqlite3")
    now = time.time()
    for i in range(8):
        warnings = record(store, None, sample_at(now + i, 1.0 + i))
        # Told when it starts, not again while it lasts.
        assert (bool(warnings) and "kept in memory" in warnings[0]) if i == 0 else warnings == []
        assert store.pending == min(i + 1, 5)
    blocker.execute("COMMIT")
    blocker.close()
    warnings = record(store, None, sample_at(now + 8, 9.0))
    # Nine polls for five places: the four oldest were dropped, the five newest written.
    assert warnings == ["history is written again; 4 polls could not be recorded and were dropped"]
    assert store.pending == 0
    polls = store._conn.execute(
        "SELECT SUM(samples) FROM polls WHERE resolution = ?", (history_module.RESOLUTIONS[0][0],)
    ).fetchone()[0]
    assert polls == 5
    store.close()


def _scripted_history(path: Path) -> tuple[list[tuple[object, ...]], int]:
    """A history written through listeners that come, go, change status and share an
    identity; its listener rows, and how many writes were patches."""
    store = HistoryStore.open(path)
    now = 1_700_000_000.0
    pool = {
        i: Listener(Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", 2000 + i), OWNER)
        for i in range(40)
    }
    views = {i: ListenerView(lst, True, Status.UNKNOWN) for i, lst in pool.items()}
    twin = Listener(
        pool[3].endpoint,
        Owner(
            pid=OWNER.pid + 1, name=OWNER.name, exe=OWNER.exe, sha256=OWNER.sha256, user=OWNER.user
        ),
    )
    steps: list[Callable[[], None]] = [
        lambda: None,
        lambda: views.update(
            {
                40: ListenerView(
                    Listener(Endpoint(Proto.UDP, Family.IPV6, "::1", 2040), OWNER),
                    True,
                    Status.UNKNOWN,
                )
            }
        ),
        lambda: views.pop(7) and None,
        lambda: views.update({5: ListenerView(pool[5], True, Status.KNOWN)}),
        lambda: views.update(
            {41: ListenerView(twin, False, Status.UNKNOWN)}
        ),  # one identity, two views
        lambda: views.pop(41) and None,
        lambda: views.pop(3) and None,
        lambda: views.update({7: ListenerView(pool[7], True, Status.UNKNOWN)}),  # seen again
        lambda: views.update({8: ListenerView(pool[8], False, Status.UNKNOWN)}),
    ]
    for tick, step in enumerate(steps):
        step()
        ordered = tuple(views[i] for i in sorted(views))
        sample = Sample(
            wall=now + tick, mono=1.0 + tick, listeners=tuple(v.listener for v in ordered)
        )
        assert store.record(sample, ordered, ()) == []
    patched = store.listeners_patched
    store.close()
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT * FROM listeners ORDER BY id").fetchall()
    finally:
        conn.close()
    return rows, patched


def test_a_write_of_the_few_views_that_changed_leaves_what_a_full_write_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    patched_rows, patches = _scripted_history(tmp_path / "patched.sqlite3")
    monkeypatch.setattr(history_module, "PATCH_LIMIT", -1)
    full_rows, none = _scripted_history(tmp_path / "full.sqlite3")
    assert patched_rows == full_rows
    assert len(full_rows) == 41  # 40 and the UDP one (7, seen again, keeps its row)
    assert none == 0 and patches >= 5


def test_retention_runs_by_itself_once_an_hour_of_monitoring(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    now = time.time()
    listener = Listener(EP, OWNER)
    record(store, None, sample_at(now, 1.0, ()))  # the first poll runs retention
    old = now - 100 * DAY
    record(store, None, sample_at(old, 2.0, (listener,)))
    # Not on every poll: within the hour the old event is still there.
    record(store, None, sample_at(now + 3598, 3599.0, ()))
    assert [e.wall for e in store.recent_events()] == [old]
    # An hour (monotonic) after the last run, a poll deletes it.
    record(store, None, sample_at(now + 3599, 3601.0, ()))
    assert store.recent_events() == []
    store.close()


def test_an_hour_of_one_second_polls_waits_in_memory_while_the_file_is_locked(
    tmp_path: Path,
) -> None:
    # The README's promise: "up to 3600 polls" are kept, the oldest dropped beyond that.
    store, blocker = _locked_store(tmp_path / "h.sqlite3")
    now = time.time()
    for i in range(3601):
        record(store, None, sample_at(now + i, 1.0 + i))
    assert store.pending == 3600
    blocker.execute("COMMIT")
    blocker.close()
    # One more poll: 3602 for 3600 places, the two oldest dropped and the rest written.
    warnings = record(store, None, sample_at(now + 3601, 3602.0))
    assert warnings == ["history is written again; 2 polls could not be recorded and were dropped"]
    store.close()


def test_one_dropped_poll_is_said_in_the_singular(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_module, "MAX_PENDING", 2)
    store, blocker = _locked_store(tmp_path / "h.sqlite3")
    now = time.time()
    for i in range(2):
        record(store, None, sample_at(now + i, 1.0 + i))
    blocker.execute("COMMIT")
    blocker.close()
    warnings = record(store, None, sample_at(now + 2, 3.0))
    assert warnings == ["history is written again; 1 poll could not be recorded and was dropped"]
    store.close()
