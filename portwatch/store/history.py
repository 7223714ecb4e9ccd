"""The history of every listener portwatch has seen, its events and per-port activity.

One writer (the sampler thread or the ``monitor`` command) owns a :class:`HistoryStore`;
readers (the window's chart, exports) open their own read-only connection with
:meth:`HistoryStore.open_readonly`.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from portwatch import files
from portwatch.core.exposure import canonical_address
from portwatch.core.problems import Outage
from portwatch.core.types import (
    Endpoint,
    ListenerView,
    PortEvent,
    Proto,
    Sample,
)
from portwatch.core.why import WHY_COLUMNS, WhyFields
from portwatch.files import FolderLock
from portwatch.store import guard, schema, views

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

BUSY_TIMEOUT_MS = 2000
# Activity is kept at three resolutions: (bucket seconds, how long it is kept).
RESOLUTIONS: tuple[tuple[int, float], ...] = (
    (10, 6 * 3600.0),
    (60, 8 * 86400.0),
    (900, 400 * 86400.0),
)
EVENT_RETENTION_S = 90 * 86400.0
EVENT_MAX_ROWS = 500_000
RETENTION_EVERY_S = 3600.0
# Continuing listeners get their last_seen refreshed this often, not every poll: the
# time is kept in memory (it is the last poll's) and written in batches of at most
# LAST_SEEN_BATCH rows per poll, so a poll's writes stay small however many listen.
LAST_SEEN_FLUSH_S = 30.0
LAST_SEEN_BATCH = 500
# Polls held in memory while the database is locked or the disk is full.
MAX_PENDING = 3600


class StoreError(RuntimeError):
    """The history file cannot be used at all (the folder is unwritable, ...)."""


class StoreUnavailable(StoreError):
    """The history cannot be written for now (a full disk, no file descriptors or memory
    left): monitoring can go on without recording; the message says why."""


class StoreBusy(StoreError):
    """Another process already records into this history (one writer per data folder)."""


@dataclass(frozen=True)
class ObservedListener:
    """One listener identity from history, as exported."""

    first_seen: float
    last_seen: float
    proto: str
    family: str
    address: str
    port: int
    watched: bool
    pid: int | None
    process: str | None
    exe: str | None
    sha256: str | None
    user: str | None
    script: str | None
    status: str
    times_seen: int
    # Why it was open and who could reach it, as last seen (None in rows recorded
    # before portwatch kept them).
    started_by: str | None = None
    package: str | None = None
    parents: str | None = None
    exposure_scope: str | None = None
    reachable_from: str | None = None
    firewall: str | None = None
    replaced: str | None = None


@dataclass(frozen=True)
class ActivityPoint:
    """Activity in one bucket: the most listeners and connections seen in it, and the
    bytes moved in it (None where the probe could not count them)."""

    wall: float
    listeners: int
    established: int
    bytes: int | None
    bytes_in: int | None = None
    bytes_out: int | None = None


@dataclass(frozen=True)
class StoredEvent:
    """An event as recorded."""

    wall: float
    kind: str
    proto: str
    family: str
    address: str
    port: int
    pid: int | None
    process: str | None
    exe: str | None
    sha256: str | None
    user: str | None
    watched: bool
    status: str | None
    detail: str | None


IdentityKey = tuple[str, str, str, int, str, str, str, str]
# The why columns' values of a view, as written (None: nothing to say).
WhyValues = tuple[str | None, ...]


OpenRow = tuple[int, str, bool, WhyValues]

# Built once from the constant column names (no outside text reaches the SQL).
_WHY_NAMES = ", ".join(WHY_COLUMNS)
_INSERT_LISTENER = (
    "INSERT INTO listeners (proto, family, address, port, exe, sha256, user, script,"  # noqa: S608
    f" process, last_pid, watched, status, first_seen, last_seen, {_WHY_NAMES})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    + ", ".join("?" * len(WHY_COLUMNS))
    + ") ON CONFLICT (proto, family, address, port, exe, sha256, user, script)"
    " DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen),"
    " times_seen = times_seen + 1, process = excluded.process,"
    " last_pid = excluded.last_pid, watched = excluded.watched, status = excluded.status, "
    + ", ".join(f"{c} = excluded.{c}" for c in WHY_COLUMNS)
    + " RETURNING id"
)
_UPDATE_LISTENER = (
    "UPDATE listeners SET status = ?, watched = ?, last_seen = MAX(last_seen, ?), "  # noqa: S608
    + ", ".join(f"{c} = ?" for c in WHY_COLUMNS)
    + " WHERE id = ?"
)
_SELECT_OBSERVED = (
    "SELECT first_seen, last_seen, proto, family, address, port, watched, last_pid,"
    " process, exe, sha256, user, script, status, times_seen, {why} FROM listeners"
)
KeyedView = tuple[ListenerView, IdentityKey, WhyValues]

# A poll where at most this many views came or went writes only those (the engine
# hands the same view objects for unchanged listeners); more go through every view.
PATCH_LIMIT = 64


@dataclass(frozen=True)
class _Written:
    """What a write of the listeners leaves open, once it is committed."""

    open: dict[IdentityKey, OpenRow]  # identity → its open row
    keys: dict[int, KeyedView]  # id(view) → the view, its identity and why values
    open_ids: set[int]  # the open rows' ids
    key_count: dict[IdentityKey, int]  # identity → how many views hold it


def _why(view: ListenerView) -> WhyValues:
    return tuple(value or None for value in WhyFields.of(view.listener).values())


def _identity(view: ListenerView) -> IdentityKey:
    ep = view.listener.endpoint
    owner = view.listener.owner
    if owner is None:
        return (ep.proto.value, ep.family.value, ep.address, ep.port, "", "", "", "")
    return (
        ep.proto.value,
        ep.family.value,
        ep.address,
        ep.port,
        owner.exe or "",
        owner.sha256 or "",
        owner.user or "",
        owner.script or "",
    )


def _readonly_uri(path: Path) -> str:
    """A read-only SQLite URI for ``path``. Percent-encoded: a folder named with ``#``,
    ``?`` or ``%`` must not end the path early or read as an option (another file)."""
    return Path(os.path.abspath(path)).as_uri() + "?mode=ro"


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            _readonly_uri(path), uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _damage(path: Path) -> str | None:
    """Why the file at ``path`` is not a usable database, or None when it is fine."""
    try:
        conn = sqlite3.connect(_readonly_uri(path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            user_version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = schema.mismatch(conn) if result == "ok" else None
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        # Locked or busy is someone else using a healthy file, not damage: never move it.
        text = str(exc).lower()
        if "locked" in text or "busy" in text or "unable to open" in text:
            return None
        return str(exc)
    except sqlite3.DatabaseError as exc:
        return str(exc)
    if result != "ok":
        return f"integrity check failed: {result}"
    if user_version > schema.SCHEMA_VERSION:
        return f"it was written by a newer portwatch (schema {user_version})"
    return tables


def _reading(method: Callable[P, R]) -> Callable[P, R]:
    """SQLite failures while reading become :class:`StoreError` with the reason."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the history: {files.shortage_now() or exc}") from exc

    return wrapper


def _time_value(value: object) -> float | None:
    """A time read back from the file, or None when the row holds no usable one: the
    file may have been written by anything (text, NULL, an infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) else None


def _amount(value: object) -> int | None:
    """A count or byte total read back from the file; None for what is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return max(0, int(value))


def _activity_point(res: int, bucket: object, *values: object) -> ActivityPoint:
    listeners, established, total, bytes_in, bytes_out = (_amount(v) for v in values)
    return ActivityPoint(
        (_time_value(bucket) or 0.0) * res,
        listeners or 0,
        established or 0,
        total,
        bytes_in,
        bytes_out,
    )


def _spelled(family: object, address: object) -> Any:
    """A recorded address in its one spelling (``::ffff:7f00:1`` → ``::ffff:127.0.0.1``)."""
    if family == "ipv6" and isinstance(address, str):
        return canonical_address(address, True)
    return address


_SQLITE_FULL = 13


def _disk_full(exc: BaseException) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL or "disk is full" in str(exc)


class HistoryReader:
    """Read-only queries over the history file (any thread that opened it)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._has_why: bool | None = None

    def _why_select(self) -> str:
        """The why columns to select: NULLs from a file a reader opened before the
        writer migrated it (it may be an older portwatch's, still running)."""
        if self._has_why is None:
            names = {row[1] for row in self._conn.execute("PRAGMA table_info(listeners)")}
            self._has_why = all(column in names for column in WHY_COLUMNS)
        if self._has_why:
            return ", ".join(WHY_COLUMNS)
        return ", ".join("NULL" for _ in WHY_COLUMNS)

    @_reading
    def observed(self, watched_only: bool = False) -> list[ObservedListener]:
        """Every listener identity seen, newest first (one spelling per address, even
        from a file recorded before there was one)."""
        sql = _SELECT_OBSERVED.format(why=self._why_select())
        if watched_only:
            sql += " WHERE watched = 1"
        sql += " ORDER BY last_seen DESC, port, proto, address"
        return [
            ObservedListener(
                first_seen=row[0],
                last_seen=row[1],
                proto=row[2],
                family=row[3],
                address=_spelled(row[3], row[4]),
                port=row[5],
                watched=bool(row[6]),
                pid=row[7],
                process=row[8],
                exe=row[9] or None,
                sha256=row[10] or None,
                user=row[11] or None,
                script=row[12] or None,
                status=row[13],
                times_seen=row[14],
                **dict(zip(WHY_COLUMNS, row[15:], strict=True)),
            )
            for row in self._conn.execute(sql)
        ]

    def iter_observed(self, watched_only: bool = False) -> Iterable[ObservedListener]:
        return iter(self.observed(watched_only))

    @staticmethod
    def resolution_for(span_s: float) -> int:
        """The finest stored resolution that covers a span with a readable number of points."""
        if span_s <= 2 * 3600:
            return RESOLUTIONS[0][0]
        if span_s <= 2 * 86400:
            return RESOLUTIONS[1][0]
        return RESOLUTIONS[2][0]

    @_reading
    def activity(
        self,
        port: int,
        proto: Proto | str,
        since_wall: float,
        until_wall: float,
        resolution: int | None = None,
    ) -> list[ActivityPoint]:
        """Activity on one port per bucket; buckets with no poll at all are absent (gaps)."""
        res = resolution or self.resolution_for(until_wall - since_wall)
        proto_text = proto.value if isinstance(proto, Proto) else str(proto)
        rows = self._conn.execute(
            "SELECT p.bucket, COALESCE(a.listeners, 0), COALESCE(a.established, 0), a.bytes,"
            " a.bytes_in, a.bytes_out FROM polls p LEFT JOIN activity a"
            " ON a.resolution = p.resolution AND a.bucket = p.bucket AND a.port = ? AND a.proto = ?"
            " WHERE p.resolution = ? AND p.bucket BETWEEN ? AND ? ORDER BY p.bucket",
            (port, proto_text, res, int(since_wall // res), int(until_wall // res)),
        )
        return [_activity_point(res, *row) for row in rows]

    @_reading
    def activity_span(
        self,
        lo: int,
        hi: int,
        protos: Sequence[Proto | str],
        since_wall: float,
        until_wall: float,
        resolution: int | None = None,
    ) -> list[ActivityPoint]:
        """Activity of the ports ``lo``..``hi`` on ``protos``, summed per bucket, in one
        query (a watched range of any size). Bytes are summed over the ports that
        counted them and None where none did; buckets with no poll are absent (gaps)."""
        res = resolution or self.resolution_for(until_wall - since_wall)
        names = [p.value if isinstance(p, Proto) else str(p) for p in protos] or ["tcp"]
        rows = self._conn.execute(
            "SELECT p.bucket, COALESCE(SUM(a.listeners), 0), COALESCE(SUM(a.established), 0),"
            " SUM(a.bytes), SUM(a.bytes_in), SUM(a.bytes_out) FROM polls p LEFT JOIN activity a"
            " ON a.resolution = p.resolution AND a.bucket = p.bucket"
            " AND a.port BETWEEN ? AND ? AND a.proto IN (?, ?)"
            " WHERE p.resolution = ? AND p.bucket BETWEEN ? AND ?"
            " GROUP BY p.bucket ORDER BY p.bucket",
            (
                lo,
                hi,
                names[0],
                names[-1],
                res,
                int(since_wall // res),
                int(until_wall // res),
            ),
        )
        return [_activity_point(res, *row) for row in rows]

    @_reading
    def recent_events(
        self, limit: int = 200, port: int | None = None, proto: Proto | str | None = None
    ) -> list[StoredEvent]:
        """The newest events, optionally for one port (and protocol)."""
        where: list[str] = []
        args: list[Any] = []
        if port is not None:
            where.append("port = ?")
            args.append(port)
        if proto is not None:
            where.append("proto = ?")
            args.append(proto.value if isinstance(proto, Proto) else str(proto))
        sql = (
            "SELECT wall, kind, proto, family, address, port, pid, process, exe, sha256, user,"
            " watched, status, detail FROM events"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY wall DESC, id DESC LIMIT ?"
        args.append(limit)
        return [
            StoredEvent(
                # A row the file holds may not be what portwatch wrote: no time reads
                # as the epoch rather than failing the whole list.
                wall=_time_value(r[0]) or 0.0,
                kind=r[1],
                proto=r[2],
                family=r[3],
                address=r[4],
                port=r[5],
                pid=r[6],
                process=r[7],
                exe=r[8],
                sha256=r[9],
                user=r[10],
                watched=bool(r[11]),
                status=r[12],
                detail=r[13],
            )
            for r in self._conn.execute(sql, args)
        ]

    @_reading
    def count_events(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    @_reading
    def first_last_seen(
        self,
        endpoint: Endpoint | None = None,
        *,
        port: int | None = None,
        proto: Proto | None = None,
    ) -> tuple[float, float] | None:
        """When something was first and last seen on an endpoint (or on a port)."""
        if endpoint is not None:
            row = self._conn.execute(
                "SELECT MIN(first_seen), MAX(last_seen) FROM listeners"
                " WHERE proto = ? AND family = ? AND address = ? AND port = ?",
                (endpoint.proto.value, endpoint.family.value, endpoint.address, endpoint.port),
            ).fetchone()
        else:
            sql = "SELECT MIN(first_seen), MAX(last_seen) FROM listeners WHERE port = ?"
            args: list[Any] = [port]
            if proto is not None:
                sql += " AND proto = ?"
                args.append(proto.value)
            row = self._conn.execute(sql, args).fetchone()
        first = _time_value(row[0]) if row is not None else None
        last = _time_value(row[1]) if row is not None else None
        if first is None or last is None:
            return None
        return (first, last)

    def close(self) -> None:
        self._conn.close()


class HistoryStore(HistoryReader):
    """The single writer of the history file.

    Opening checks the file (a damaged one is moved aside with a timestamp and a fresh
    one made; :attr:`notices` tells the user), backs it up before migrating, and sets WAL
    with ``synchronous=NORMAL``. Writes that fail because the file is locked or the
    disk is full roll back whole; the polls wait in memory (bounded) and are written
    on a later call.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        notices: list[str],
        lock: FolderLock | None = None,
    ) -> None:
        super().__init__(conn)
        self.path = path
        self.notices = notices
        self._lock = lock
        self._pending: deque[tuple[Sample, tuple[ListenerView, ...], tuple[PortEvent, ...]]] = (
            deque()
        )
        self._dropped = 0
        self._outage = Outage()
        # identity -> (row id, status, watched, why values) for listeners present in
        # the last poll
        self._open: dict[IdentityKey, OpenRow] = {}
        self._open_ids: set[int] = set()
        # The views last written, and id(view) -> (view, identity, why values) for them:
        # the engine hands the same objects for unchanged listeners, so only changes are
        # looked at.
        self._written: tuple[ListenerView, ...] | None = None
        self._keys: dict[int, KeyedView] = {}
        # identity -> how many of those views have it (see _patch_listeners).
        self._key_count: dict[IdentityKey, int] = {}
        # Writes that looked only at the views that came or went: for tests.
        self.listeners_patched = 0
        # Row ids whose last_seen is to be refreshed, a batch per poll.
        self._due: deque[int] = deque()
        self._last_wall: float | None = None
        self._last_flush_mono: float | None = None
        self._last_retention_mono: float | None = None
        # For retention: wall time as implied by the monotonic clock since we started,
        # so a wall clock that jumps forward cannot make recent history look old.
        self._start_wall = time.time()
        self._start_mono = time.monotonic()
        self._newest_at_open = self._newest_recorded()

    def _newest_recorded(self) -> float | None:
        row = self._conn.execute(
            "SELECT MAX(w) FROM (SELECT MAX(wall) AS w FROM events"
            " UNION ALL SELECT MAX(last_seen) FROM listeners)"
        ).fetchone()
        return None if row is None else _time_value(row[0])

    # -- opening ---------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> HistoryStore:
        """Open (or create) the history file for writing."""
        path = Path(path)
        notices: list[str] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
        try:
            guard.check_files(path)
            lock = guard.claim_writer(path)
        except guard.HistoryBusy as exc:
            raise StoreBusy(str(exc)) from exc
        except guard.HistoryUnavailable as exc:
            raise StoreUnavailable(str(exc)) from exc
        except guard.UnsafeHistory as exc:
            raise StoreError(str(exc)) from exc
        try:
            return cls._open_locked(path, notices, lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(cls, path: Path, notices: list[str], lock: FolderLock) -> HistoryStore:
        if path.exists():
            why = _damage(path)
            if why is not None:
                try:
                    aside = guard.set_aside(path, "damaged")
                except OSError as exc:
                    raise StoreError(
                        f"the history file {path} is unusable ({why}) and cannot be moved"
                        f" aside: {exc.strerror or exc}"
                    ) from exc
                notices.append(
                    f"The history file could not be used ({why}). It was moved to {aside}"
                    " and a new, empty history was started."
                )
                log.info(notices[-1])  # returned to the caller, who shows it
        try:
            conn = _connect(path)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            current = schema.version(conn)
            if 0 < current < schema.SCHEMA_VERSION:
                backup = path.with_name(f"{path.name}.before-v{schema.SCHEMA_VERSION}")
                guard.check_files(backup, folder=False)
                target = sqlite3.connect(backup)
                with target:
                    conn.backup(target)
                target.close()
                notices.append(f"History was upgraded; the previous file is kept as {backup}.")
            views.install(conn, schema.migrate(conn))
        except guard.UnsafeHistory as exc:
            raise StoreError(str(exc)) from exc
        except (sqlite3.Error, MemoryError) as exc:
            short = files.shortage(exc) or files.shortage_now()
            if short is not None or _disk_full(exc):
                raise StoreUnavailable(
                    f"cannot open the history file {path}: {short or exc}"
                ) from exc
            raise StoreError(f"cannot open the history file {path}: {exc}") from exc
        return cls(conn, path, notices, lock)

    @staticmethod
    def open_readonly(path: Path) -> HistoryReader:
        """A reader with its own connection, for another thread (chart, export)."""
        try:
            guard.check_files(Path(path))
        except guard.UnsafeHistory as exc:
            raise StoreError(str(exc)) from exc
        try:
            return HistoryReader(_connect(Path(path), readonly=True))
        except sqlite3.Error as exc:
            why = files.shortage_now() or exc
            raise StoreError(f"cannot read the history file {path}: {why}") from exc

    # -- writing ---------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Polls waiting in memory to be written."""
        return len(self._pending)

    def record(
        self,
        sample: Sample,
        views: Sequence[ListenerView],
        events: Sequence[PortEvent],
    ) -> list[str]:
        """Record one poll; returns warnings for the user (nothing raised for a busy file)."""
        self._pending.append((sample, tuple(views), tuple(events)))
        warnings: list[str] = []
        if len(self._pending) > MAX_PENDING:
            self._pending.popleft()
            self._dropped += 1
        while self._pending:
            item = self._pending[0]
            try:
                self._write(*item)
            except (sqlite3.DatabaseError, MemoryError) as exc:
                # A full disk or no descriptors left fails every poll alike: one line
                # when it starts, one when it is over, not one per poll.
                why = files.shortage(exc) or files.shortage_now() or str(exc)
                news = self._outage.failed(
                    f"history could not be written ({why}); polls are kept in memory (up to"
                    f" {MAX_PENDING}) and will be written when possible"
                )
                if news is not None:
                    warnings.append(news)
                    log.info(news)  # returned to the caller, who shows it
                break
            self._pending.popleft()
        if not self._pending:
            failed = self._outage.ended()
            if self._dropped:
                lost = (
                    "1 poll could not be recorded and was dropped"
                    if self._dropped == 1
                    else f"{self._dropped} polls could not be recorded and were dropped"
                )
                warnings.append(f"history is written again; {lost}")
                self._dropped = 0
            elif failed:
                warnings.append("history is written again; no poll was lost")
        return warnings

    def _write(
        self, sample: Sample, views: tuple[ListenerView, ...], events: tuple[PortEvent, ...]
    ) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            changed = None if views is self._written else self._write_listeners(sample, views)
            open_ids = changed.open_ids if changed is not None else self._open_ids
            refreshed = self._refresh_last_seen(sample, open_ids)
            self._write_activity(sample)
            self._write_events(events)
            if self._retention_due(sample.mono):
                self._apply_retention()
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        if changed is not None:
            self._open, self._keys = changed.open, changed.keys
            self._open_ids, self._key_count = changed.open_ids, changed.key_count
            self._written = views
        for _ in range(refreshed):
            self._due.popleft()
        self._last_wall = max(sample.wall, self._last_wall or sample.wall)

    def _write_listeners(self, sample: Sample, views: tuple[ListenerView, ...]) -> _Written:
        """Insert new listener identities, update changed ones, close the gone ones.

        Returns the open identities, the identity of each view, the open row ids and
        how many views hold each identity.
        """
        patched = self._patch_listeners(sample, views)
        if patched is not None:
            return patched
        wall = sample.wall
        cached = self._keys
        keys: dict[int, KeyedView] = {}
        open_after: dict[IdentityKey, OpenRow] = {}
        key_count: dict[IdentityKey, int] = {}
        for view in views:
            hit = cached.get(id(view))
            if hit is not None and hit[0] is view:
                key, why = hit[1], hit[2]
            else:
                key, why = _identity(view), _why(view)
            keys[id(view)] = (view, key, why)
            key_count[key] = key_count.get(key, 0) + 1
            if key in open_after:
                continue
            open_after[key] = self._open_row(key, view, why, wall)
        # Gone: identities of views no longer present that no present view holds.
        gone = {
            self._open[key][0]
            for view_id, (_view, key, _why_values) in cached.items()
            if view_id not in keys and key not in open_after and key in self._open
        }
        if gone and self._last_wall is not None:
            # Last seen is the last poll that saw them, not this one.
            self._touch(sorted(gone), self._last_wall)
        open_ids = {entry[0] for entry in open_after.values()}
        return _Written(open_after, keys, open_ids, key_count)

    def _open_row(
        self, key: IdentityKey, view: ListenerView, why: WhyValues, wall: float
    ) -> OpenRow:
        """The open row for identity ``key`` as ``view`` shows it: inserted if new,
        updated if its status, watched flag or why values changed."""
        owner = view.listener.owner
        status = view.status.value
        known = self._open.get(key)
        if known is None:
            row = self._conn.execute(
                _INSERT_LISTENER,
                (
                    *key,
                    owner.name if owner else None,
                    owner.pid if owner else None,
                    int(view.watched),
                    status,
                    wall,
                    wall,
                    *why,
                ),
            ).fetchone()
            return (int(row[0]), status, view.watched, why)
        if known[1] != status or known[2] != view.watched or known[3] != why:
            self._conn.execute(
                _UPDATE_LISTENER,
                (status, int(view.watched), wall, *why, known[0]),
            )
            return (known[0], status, view.watched, why)
        return known

    def _patch_listeners(self, sample: Sample, views: tuple[ListenerView, ...]) -> _Written | None:
        """Only the views that came or went since the last write, when they are few
        and each identity they touch is held by at most one view before and after
        (else which view speaks for an identity depends on the order: the full pass
        decides). None when the full pass is needed."""
        cached = self._keys
        if not cached:
            return None
        current = {id(view): view for view in views}
        removed = cached.keys() - current.keys()
        added = current.keys() - cached.keys()
        if len(removed) + len(added) > PATCH_LIMIT:
            return None
        delta: dict[IdentityKey, int] = {}
        for view_id in removed:
            key = cached[view_id][1]
            delta[key] = delta.get(key, 0) - 1
        fresh: dict[int, KeyedView] = {}
        for view_id in added:
            view = current[view_id]
            key = _identity(view)
            fresh[view_id] = (view, key, _why(view))
            delta[key] = delta.get(key, 0) + 1
        for key, change in delta.items():
            if self._key_count.get(key, 0) > 1 or self._key_count.get(key, 0) + change > 1:
                return None
        keys = dict(cached)
        for view_id in removed:
            del keys[view_id]
        keys.update(fresh)
        key_count = dict(self._key_count)
        open_after = dict(self._open)
        open_ids = set(self._open_ids)
        gone: list[int] = []
        for key, change in delta.items():
            count = key_count.get(key, 0) + change
            if count:
                key_count[key] = count
            else:
                key_count.pop(key, None)
        for view, key, why in fresh.values():
            before = open_after.get(key)
            row = self._open_row(key, view, why, sample.wall)
            open_after[key] = row
            if before is None:
                open_ids.add(row[0])
        for key in delta:
            if key not in key_count and key in open_after:
                row_id = open_after.pop(key)[0]
                open_ids.discard(row_id)
                gone.append(row_id)
        if gone and self._last_wall is not None:
            self._touch(sorted(gone), self._last_wall)
        self.listeners_patched += 1
        return _Written(open_after, keys, open_ids, key_count)

    def _refresh_last_seen(self, sample: Sample, open_ids: set[int]) -> int:
        """Write the last-seen time of at most one batch of open rows; returns how many
        due rows the batch took (they leave the queue once the write is committed)."""
        if not self._due and open_ids and self._flush_due(sample.mono):
            self._due.extend(sorted(open_ids))
        taken = min(LAST_SEEN_BATCH, len(self._due))
        if taken:
            batch = [row_id for row_id in itertools.islice(self._due, taken) if row_id in open_ids]
            if batch:
                self._touch(batch, sample.wall)
        return taken

    def _touch(self, row_ids: list[int], wall: float) -> None:
        for start in range(0, len(row_ids), 500):
            chunk = row_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self._conn.execute(
                f"UPDATE listeners SET last_seen = MAX(last_seen, ?) WHERE id IN ({marks})",  # noqa: S608
                (wall, *chunk),
            )

    def _flush_due(self, mono: float) -> bool:
        if self._last_flush_mono is None:
            # Rows written by the first poll are fresh: the period starts there.
            self._last_flush_mono = mono
            return False
        if mono - self._last_flush_mono >= LAST_SEEN_FLUSH_S:
            self._last_flush_mono = mono
            return True
        return False

    def _write_activity(self, sample: Sample) -> None:
        conn = self._conn
        for res, _keep in RESOLUTIONS:
            bucket = int(sample.wall // res)
            conn.execute(
                "INSERT INTO polls (resolution, bucket, samples) VALUES (?, ?, 1)"
                " ON CONFLICT (resolution, bucket) DO UPDATE SET samples = samples + 1",
                (res, bucket),
            )
            rows = [
                (
                    res,
                    bucket,
                    a.port,
                    a.proto.value,
                    a.listeners,
                    a.established,
                    a.bytes_delta,
                    a.bytes_in_delta,
                    a.bytes_out_delta,
                )
                for a in sample.activity
                if a.listeners or a.established or a.bytes_delta
            ]
            if rows:
                conn.executemany(
                    "INSERT INTO activity (resolution, bucket, port, proto, listeners,"
                    " established, bytes, bytes_in, bytes_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (resolution, port, proto, bucket) DO UPDATE SET"
                    " listeners = MAX(listeners, excluded.listeners),"
                    " established = MAX(established, excluded.established),"
                    # A poll that could not count (NULL) leaves the bucket's bytes as
                    # they were: NULL stays "not measured", never becomes zero.
                    " bytes = CASE WHEN excluded.bytes IS NULL THEN bytes"
                    " ELSE COALESCE(bytes, 0) + excluded.bytes END,"
                    " bytes_in = CASE WHEN excluded.bytes_in IS NULL THEN bytes_in"
                    " ELSE COALESCE(bytes_in, 0) + excluded.bytes_in END,"
                    " bytes_out = CASE WHEN excluded.bytes_out IS NULL THEN bytes_out"
                    " ELSE COALESCE(bytes_out, 0) + excluded.bytes_out END",
                    rows,
                )

    def _write_events(self, events: tuple[PortEvent, ...]) -> None:
        if not events:
            return
        rows = []
        for event in events:
            ep = event.listener.endpoint
            owner = event.listener.owner
            rows.append(
                (
                    event.wall,
                    event.kind.value,
                    ep.proto.value,
                    ep.family.value,
                    ep.address,
                    ep.port,
                    owner.pid if owner else None,
                    owner.name if owner else None,
                    owner.exe if owner else None,
                    owner.sha256 if owner else None,
                    owner.user if owner else None,
                    int(event.watched),
                    event.status.value if event.status else None,
                    event.detail,
                )
            )
        self._conn.executemany(
            "INSERT INTO events (wall, kind, proto, family, address, port, pid, process, exe,"
            " sha256, user, watched, status, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    # -- retention -------------------------------------------------------------------

    def _retention_due(self, mono: float) -> bool:
        if (
            self._last_retention_mono is None
            or mono - self._last_retention_mono >= RETENTION_EVERY_S
        ):
            self._last_retention_mono = mono
            return True
        return False

    def retention_now(self) -> float:
        """The wall time retention measures age from, in monitored time: never ahead of
        the newest history found at open plus the time measured since (monotonic clock).
        A clock that jumps forward, or is wrong at start-up, deletes nothing recent; after
        a long shutdown, old history simply goes a little later."""
        elapsed = time.monotonic() - self._start_mono
        candidates = [time.time(), self._start_wall + elapsed]
        if self._newest_at_open is not None:
            candidates.append(self._newest_at_open + elapsed)
        return min(candidates)

    def _apply_retention(self) -> None:
        now = self.retention_now()
        conn = self._conn
        conn.execute("DELETE FROM events WHERE wall < ?", (now - EVENT_RETENTION_S,))
        conn.execute(
            "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC"
            " LIMIT 1 OFFSET ?)",
            (EVENT_MAX_ROWS,),
        )
        for res, keep in RESOLUTIONS:
            cutoff = int((now - keep) // res)
            conn.execute("DELETE FROM polls WHERE resolution = ? AND bucket < ?", (res, cutoff))
            conn.execute("DELETE FROM activity WHERE resolution = ? AND bucket < ?", (res, cutoff))

    def apply_retention(self) -> None:
        """Run retention now (normally once an hour inside :meth:`record`)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._apply_retention()
            self._conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Write what waits in memory and the listeners' last-seen times, then close."""
        with contextlib.suppress(sqlite3.Error):
            if self._pending:
                for item in list(self._pending):
                    self._write(*item)
                self._pending.clear()
            if self._open and self._last_wall is not None:
                self._conn.execute("BEGIN IMMEDIATE")
                self._touch([entry[0] for entry in self._open.values()], self._last_wall)
                self._conn.execute("COMMIT")
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA optimize")
        with contextlib.suppress(sqlite3.Error):
            # Back to a rollback journal while nothing records: the -wal and -shm files go,
            # and a read-only reader (export) then opens the file without creating them
            # (reading never writes). The next writer turns WAL on again.
            self._conn.execute("PRAGMA journal_mode = DELETE")
        self._conn.close()
        if self._lock is not None:
            self._lock.release()
