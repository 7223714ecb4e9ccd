"""The history schema and its numbered migrations (``PRAGMA user_version``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from portwatch.core.exposure import canonical_address

# Each entry moves the database from version N to N+1; never edit a shipped one. An
# entry is SQL, or a function for a step SQL cannot say (run inside the transaction).
Migration = str | Callable[[sqlite3.Connection], None]

# 0 -> 1
_V1 = """
    CREATE TABLE listeners (
        id          INTEGER PRIMARY KEY,
        proto       TEXT    NOT NULL,
        family      TEXT    NOT NULL,
        address     TEXT    NOT NULL,
        port        INTEGER NOT NULL,
        -- identity columns use '' rather than NULL so UNIQUE treats them as equal
        exe         TEXT    NOT NULL DEFAULT '',
        sha256      TEXT    NOT NULL DEFAULT '',
        user        TEXT    NOT NULL DEFAULT '',
        script      TEXT    NOT NULL DEFAULT '',
        process     TEXT,
        last_pid    INTEGER,
        watched     INTEGER NOT NULL DEFAULT 0,
        status      TEXT    NOT NULL,
        first_seen  REAL    NOT NULL,
        last_seen   REAL    NOT NULL,
        times_seen  INTEGER NOT NULL DEFAULT 1,
        UNIQUE (proto, family, address, port, exe, sha256, user, script)
    );
    CREATE INDEX listeners_port ON listeners (port, proto);
    CREATE TABLE events (
        id       INTEGER PRIMARY KEY,
        wall     REAL    NOT NULL,
        kind     TEXT    NOT NULL,
        proto    TEXT    NOT NULL,
        family   TEXT    NOT NULL,
        address  TEXT    NOT NULL,
        port     INTEGER NOT NULL,
        pid      INTEGER,
        process  TEXT,
        exe      TEXT,
        sha256   TEXT,
        user     TEXT,
        watched  INTEGER NOT NULL DEFAULT 0,
        status   TEXT,
        detail   TEXT
    );
    CREATE INDEX events_wall ON events (wall);
    CREATE INDEX events_port ON events (port, proto, wall);
    -- One row per bucket that had at least one poll: tells "quiet" from "not watching".
    CREATE TABLE polls (
        resolution INTEGER NOT NULL,
        bucket     INTEGER NOT NULL,
        samples    INTEGER NOT NULL,
        PRIMARY KEY (resolution, bucket)
    ) WITHOUT ROWID;
    -- Activity per watched port and bucket; only non-zero rows are stored.
    CREATE TABLE activity (
        resolution  INTEGER NOT NULL,
        bucket      INTEGER NOT NULL,
        port        INTEGER NOT NULL,
        proto       TEXT    NOT NULL,
        listeners   INTEGER NOT NULL,
        established INTEGER NOT NULL,
        bytes       INTEGER,
        PRIMARY KEY (resolution, port, proto, bucket)
    ) WITHOUT ROWID;
    """


# The "why is it open" columns of a listener as of version 2 (core.why.WHY_COLUMNS then;
# written out here because a shipped migration never changes), kept up to date while
# the listener is seen; NULL in rows recorded before they existed.
_V2_COLUMNS: tuple[str, ...] = (
    "started_by",
    "package",
    "parents",
    "exposure_scope",
    "reachable_from",
    "firewall",
    "replaced",
)


def _v2_why_and_one_spelling(conn: sqlite3.Connection) -> None:
    """1 -> 2: the why columns, and one spelling per address.

    Python 3.10-3.12 spelled a v4-mapped address in hex (``::ffff:7f00:1``), so the
    psutil probe recorded one socket under another address than the netlink probe
    (``::ffff:127.0.0.1``). Rows are respelled; two rows that become one identity are
    merged (first and last seen widened, sightings added).
    """
    for column in _V2_COLUMNS:
        conn.execute(f"ALTER TABLE listeners ADD COLUMN {column} TEXT")
    respell(conn)


def respell(conn: sqlite3.Connection) -> int:
    """Give every recorded IPv6 address its one spelling; returns the rows changed."""
    changed = 0
    rows = conn.execute(
        "SELECT id, address FROM listeners WHERE family = 'ipv6' AND address LIKE '::ffff:%'"
    ).fetchall()
    for row_id, address in rows:
        wanted = canonical_address(str(address), True)
        if wanted == address:
            continue
        changed += 1
        twin = conn.execute(
            "SELECT t.id FROM listeners t, listeners o WHERE o.id = ? AND t.id != o.id"
            " AND t.proto = o.proto AND t.family = o.family AND t.address = ?"
            " AND t.port = o.port AND t.exe = o.exe AND t.sha256 = o.sha256"
            " AND t.user = o.user AND t.script = o.script",
            (row_id, wanted),
        ).fetchone()
        if twin is None:
            conn.execute("UPDATE listeners SET address = ? WHERE id = ?", (wanted, row_id))
            continue
        first, last, times = conn.execute(
            "SELECT first_seen, last_seen, times_seen FROM listeners WHERE id = ?", (row_id,)
        ).fetchone()
        conn.execute(
            "UPDATE listeners SET first_seen = MIN(first_seen, ?),"
            " last_seen = MAX(last_seen, ?), times_seen = times_seen + ? WHERE id = ?",
            (first, last, times, twin[0]),
        )
        conn.execute("DELETE FROM listeners WHERE id = ?", (row_id,))
    events = conn.execute(
        "SELECT DISTINCT address FROM events WHERE family = 'ipv6' AND address LIKE '::ffff:%'"
    ).fetchall()
    for (address,) in events:
        wanted = canonical_address(str(address), True)
        if wanted != address:
            conn.execute(
                "UPDATE events SET address = ? WHERE family = 'ipv6' AND address = ?",
                (wanted, address),
            )
    return changed


# 2 -> 3: bytes by direction (received, and sent and acknowledged), so the chart can
# draw traffic in and out from history; NULL where the probe could not count them.
_V3 = """
    ALTER TABLE activity ADD COLUMN bytes_in INTEGER;
    ALTER TABLE activity ADD COLUMN bytes_out INTEGER;
"""


MIGRATIONS: tuple[Migration, ...] = (
    _V1,
    # 1 -> 2
    _v2_why_and_one_spelling,
    _V3,
)

SCHEMA_VERSION = len(MIGRATIONS)


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply every migration past the file's version (up to ``target``), each in its own
    transaction."""
    current = version(conn)
    for number in range(current, target):
        step = MIGRATIONS[number]
        if isinstance(step, str):
            with conn:
                conn.executescript(f"BEGIN;{step}; PRAGMA user_version = {number + 1};")
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version(conn)


def _columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    tables = [
        str(row[0])
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not str(row[0]).startswith("sqlite_")
    ]
    return {
        table: {str(row[1]) for row in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))}
        for table in tables
    }


def mismatch(conn: sqlite3.Connection) -> str | None:
    """Why the file's tables are not those its version number promises (a file written
    by something else, or damaged by hand), or None when they are: every table and
    column portwatch's migrations made up to that version is there. A file of version 0
    holds none of portwatch's tables yet."""
    current = version(conn)
    if current < 0:
        return f"its schema number {current} is not one portwatch writes"
    if current > SCHEMA_VERSION:
        return None  # a newer portwatch's file: said elsewhere
    reference = sqlite3.connect(":memory:")
    try:
        migrate(reference, current)
        wanted = _columns(reference) if current else _columns(_fresh(reference))
    finally:
        reference.close()
    found = _columns(conn)
    for table, columns in sorted(wanted.items()):
        if current == 0:
            if table in found:
                return f"it holds a table {table!r} that portwatch did not make"
            continue
        if table not in found:
            return f"its table {table!r} is missing (schema {current})"
        lacking = sorted(columns - found[table])
        if lacking:
            return f"its table {table!r} lacks the column {lacking[0]!r} (schema {current})"
    return None


def _fresh(conn: sqlite3.Connection) -> sqlite3.Connection:
    migrate(conn)
    return conn
