"""Connections followed from poll to poll: how long each has been seen, and its byte rates.

No OS portwatch reads records when a connection was opened, so a connection's age is
counted from the first poll that saw it; connections already open at that first poll
are older than that, and say so (``age_is_lower_bound``). Rates are the change of the
kernel's byte counters between two polls, over the monotonic time between them. No Qt:
the desktop app runs this on its sampler thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from portwatch.core.pairs import connection_pair
from portwatch.core.types import Proto
from portwatch.core.watchlist import WatchList
from portwatch.probe.connections import Connection, ConnectionLister

# A connection is one socket seen from its local end, held by one process.
RowKey = tuple[Proto, str, int, str, int, int | None]

Lister = Callable[[WatchList | None], list[Connection]]


def row_key(connection: Connection) -> RowKey:
    """A connection's identity across polls (the same 4-tuple again with another pid is
    another row: the socket was handed over or reopened)."""
    c = connection
    return (c.proto, c.local_address, c.local_port, c.remote_address, c.remote_port, c.pid)


@dataclass(frozen=True)
class ConnectionRow:
    """One connection as the window shows it."""

    connection: Connection
    # The end on a watched port (the local one when both are), None for neither.
    watched_port: int | None
    age_s: float
    # True for connections already open at the first poll: they are at least this old.
    age_is_lower_bound: bool
    rate_in: float | None = None  # bytes per second, None where bytes are not measured
    rate_out: float | None = None

    @property
    def watched(self) -> bool:
        return self.watched_port is not None


@dataclass(frozen=True)
class ConnectionsSnapshot:
    """One poll's connections, immutable so it can cross threads by signal."""

    rows: tuple[ConnectionRow, ...]
    all_ports: bool
    wall: float
    error: str | None = None

    @property
    def connection_count(self) -> int:
        """Connections, each counted once (a loopback connection has two rows)."""
        return len(
            {
                connection_pair(
                    r.connection.proto,
                    r.connection.local_address,
                    r.connection.local_port,
                    r.connection.remote_address,
                    r.connection.remote_port,
                )
                for r in self.rows
            }
        )


@dataclass
class _Seen:
    first_mono: float
    lower_bound: bool
    bytes_mono: float = 0.0
    bytes_in: int | None = None
    bytes_out: int | None = None
    rate_in: float | None = None
    rate_out: float | None = None


class ConnectionTracker:
    """Lists connections and remembers, per connection, when it was first seen.

    Single-threaded: one thread (the sampler's) calls :meth:`poll`.
    """

    def __init__(
        self,
        watchlist: Callable[[], WatchList],
        lister: Lister | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._watchlist = watchlist
        # One lister for every poll: its inode resolver is kept from poll to poll, so
        # later polls read only the descriptor tables that may have changed.
        self._lister: Lister = lister if lister is not None else ConnectionLister()
        self._clock = clock
        self._wall = wall
        self._seen: dict[RowKey, _Seen] = {}
        # The scope of the last poll, None when polls stopped (nothing was watched meanwhile).
        self._last_scope: bool | None = None

    def stop_following(self) -> None:
        """Polls stop for a while: connections found by the next one may be older than it."""
        self._last_scope = None

    def poll(self, all_ports: bool) -> ConnectionsSnapshot:
        """The connections on watched ports (every one with ``all_ports``)."""
        watchlist = self._watchlist()
        try:
            found = self._lister(None if all_ports else watchlist)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return ConnectionsSnapshot((), all_ports, self._wall(), f"cannot list: {reason}")
        now = self._clock()
        # A connection first found by a poll that follows no poll of the same scope may
        # have been open for a while before it.
        unfollowed = self._last_scope is not all_ports
        self._last_scope = all_ports
        rows = self._follow(found, watchlist, now, unfollowed)
        return ConnectionsSnapshot(rows, all_ports, self._wall())

    def _follow(
        self, found: Sequence[Connection], watchlist: WatchList, now: float, unfollowed: bool
    ) -> tuple[ConnectionRow, ...]:
        seen: dict[RowKey, _Seen] = {}
        rows: list[ConnectionRow] = []
        for item in found:
            key = row_key(item)
            track = self._seen.get(key) or _Seen(now, lower_bound=unfollowed, bytes_mono=now)
            seen[key] = track
            self._measure(track, item, now)
            watched: int | None = None
            if watchlist.contains(item.local_port, item.proto):
                watched = item.local_port
            elif watchlist.contains(item.remote_port, item.proto):
                watched = item.remote_port
            rows.append(
                ConnectionRow(
                    item,
                    watched,
                    max(0.0, now - track.first_mono),
                    track.lower_bound,
                    track.rate_in,
                    track.rate_out,
                )
            )
        # Connections not seen this poll are forgotten: one back later is a new one.
        self._seen = seen
        return tuple(rows)

    @staticmethod
    def _measure(track: _Seen, item: Connection, now: float) -> None:
        if item.bytes_in is None or item.bytes_out is None:
            track.bytes_in = track.bytes_out = track.rate_in = track.rate_out = None
            return
        elapsed = now - track.bytes_mono
        if track.bytes_in is not None and track.bytes_out is not None and elapsed > 0:
            # Counters only grow; a smaller one is another socket's (reused 4-tuple).
            track.rate_in = max(0, item.bytes_in - track.bytes_in) / elapsed
            track.rate_out = max(0, item.bytes_out - track.bytes_out) / elapsed
        track.bytes_in, track.bytes_out, track.bytes_mono = item.bytes_in, item.bytes_out, now
