"""The history schema and its numbered migrations (``PRAGMA user_version``)."""

from __future__ import annotations

import sqlite3

# Each entry moves the database from version N to N+1; never edit a shipped one.
MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1
    """
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
    """,
    # 1 -> 2: bytes by direction (received, and sent and acknowledged), so the chart can
    # draw traffic in and out from history; NULL where the probe could not measure them.
    """
    ALTER TABLE activity ADD COLUMN bytes_in INTEGER;
    ALTER TABLE activity ADD COLUMN bytes_out INTEGER;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration past the file's version, each in its own transaction."""
    current = version(conn)
    for number in range(current, SCHEMA_VERSION):
        with conn:
            conn.executescript(
                "BEGIN;" + MIGRATIONS[number] + f"; PRAGMA user_version = {number + 1};"
            )
    return version(conn)
