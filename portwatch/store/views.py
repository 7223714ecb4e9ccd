"""Stable, versioned views over the history for other programs (osquery's ATC, scripts).

The tables may change from one portwatch release to the next; a ``_v1`` view keeps its
name, columns and meaning for as long as it ships. Every column is text (osquery's
automatic tables are all text): times as UTC ISO 8601 plus Unix seconds, flags as
``'0'``/``'1'``, missing values as ``''``. The views are (re)created by the writer when
it opens the file, so they always match the tables underneath.
"""

from __future__ import annotations

import sqlite3

VIEWS_VERSION = 1

_ISO = "'%Y-%m-%dT%H:%M:%SZ'"


# The outer CAST gives each column TEXT affinity, so `WHERE port = 22` still matches.
def _time(column: str) -> str:
    return f"CAST(COALESCE(strftime({_ISO}, {column}, 'unixepoch'), '') AS TEXT)"


def _unix(column: str) -> str:
    return f"CAST(COALESCE(CAST({column} AS INTEGER), '') AS TEXT)"


def _text(column: str) -> str:
    return f"CAST(COALESCE({column}, '') AS TEXT)"


_FLAG = "CAST(CASE WHEN watched THEN '1' ELSE '0' END AS TEXT)"
# Rows recorded before the neutral status existed said "unknown" for unwatched ports too;
# trust is only judged on watched ones (the CSV export applies the same rule).
_STATUS = "CAST(CASE WHEN watched THEN COALESCE(status, '') ELSE 'unwatched' END AS TEXT)"


# The same rule as Endpoint.reach for a socket bound to no device (a test holds the
# two together); history does not record the device.
_REACH = (
    "CAST(CASE WHEN address IN ('0.0.0.0', '::', '*', '', '::ffff:0.0.0.0') THEN 'all'"
    " WHEN address LIKE '127.%' OR address IN ('::1', 'localhost')"
    " OR address LIKE '::ffff:127.%' THEN 'loopback' ELSE 'interface' END AS TEXT)"
)

LISTENERS = "portwatch_listeners_v1"
EVENTS = "portwatch_events_v1"
SCHEMA = "portwatch_schema_v1"
# Why each listener was open and who could reach it, by listener id (a view of its own:
# the listeners view keeps its columns).
WHY = "portwatch_listener_why_v1"

# Column names of each view, in order: the documented contract.
LISTENER_COLUMNS: tuple[str, ...] = (
    "id", "proto", "family", "address", "port", "reach", "watched", "status",
    "pid", "process", "exe", "sha256", "user", "script",
    "first_seen", "last_seen", "first_seen_unix", "last_seen_unix", "times_seen",
)  # fmt: skip
EVENT_COLUMNS: tuple[str, ...] = (
    "id", "time", "time_unix", "event", "proto", "family", "address", "port", "reach",
    "watched", "status", "pid", "process", "exe", "sha256", "user", "detail",
)  # fmt: skip
SCHEMA_COLUMNS: tuple[str, ...] = ("views_version", "history_version")
WHY_COLUMNS: tuple[str, ...] = (
    "id", "started_by", "package", "parents", "exposure", "reachable_from", "firewall",
    "replaced",
)  # fmt: skip


def _why_sql() -> str:
    expressions = {
        "id": _text("id"),
        "started_by": _text("started_by"),
        "package": _text("package"),
        "parents": _text("parents"),
        "exposure": _text("exposure_scope"),
        "reachable_from": _text("reachable_from"),
        "firewall": _text("firewall"),
        "replaced": _text("replaced"),
    }
    columns = ",\n  ".join(f"{expressions[name]} AS {name}" for name in WHY_COLUMNS)
    return f"CREATE VIEW {WHY} AS SELECT\n  {columns}\nFROM listeners"


def _listeners_sql() -> str:
    expressions = {
        "id": _text("id"),
        "proto": _text("proto"),
        "family": _text("family"),
        "address": _text("address"),
        "port": _text("port"),
        "reach": _REACH,
        "watched": _FLAG,
        "status": _STATUS,
        "pid": _text("last_pid"),
        "process": _text("process"),
        "exe": _text("exe"),
        "sha256": _text("sha256"),
        "user": _text("user"),
        "script": _text("script"),
        "first_seen": _time("first_seen"),
        "last_seen": _time("last_seen"),
        "first_seen_unix": _unix("first_seen"),
        "last_seen_unix": _unix("last_seen"),
        "times_seen": _text("times_seen"),
    }
    columns = ",\n  ".join(f"{expressions[name]} AS {name}" for name in LISTENER_COLUMNS)
    return f"CREATE VIEW {LISTENERS} AS SELECT\n  {columns}\nFROM listeners"


def _events_sql() -> str:
    expressions = {
        "id": _text("id"),
        "time": _time("wall"),
        "time_unix": _unix("wall"),
        "event": _text("kind"),
        "proto": _text("proto"),
        "family": _text("family"),
        "address": _text("address"),
        "port": _text("port"),
        "reach": _REACH,
        "watched": _FLAG,
        "status": _STATUS,
        "pid": _text("pid"),
        "process": _text("process"),
        "exe": _text("exe"),
        "sha256": _text("sha256"),
        "user": _text("user"),
        "detail": _text("detail"),
    }
    columns = ",\n  ".join(f"{expressions[name]} AS {name}" for name in EVENT_COLUMNS)
    return f"CREATE VIEW {EVENTS} AS SELECT\n  {columns}\nFROM events"


def _schema_sql(history_version: int) -> str:
    return (
        f"CREATE VIEW {SCHEMA} AS SELECT '{VIEWS_VERSION}' AS views_version,"
        f" '{int(history_version)}' AS history_version"
    )


def install(conn: sqlite3.Connection, history_version: int) -> None:
    """Create or refresh the views; a view already as written is left alone."""
    wanted = {
        LISTENERS: _listeners_sql(),
        EVENTS: _events_sql(),
        SCHEMA: _schema_sql(history_version),
        WHY: _why_sql(),
    }
    existing = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"))
    stale = {name: sql for name, sql in wanted.items() if existing.get(name) != sql}
    if not stale:
        return
    with conn:
        conn.execute("BEGIN")
        for name, sql in stale.items():
            conn.execute(f"DROP VIEW IF EXISTS {name}")
            conn.execute(sql)
