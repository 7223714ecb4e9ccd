"""A list of connections: TCP in every state but LISTEN, and UDP sockets with a remote.

On Linux the kernel's socket diagnostics (``NETLINK_SOCK_DIAG``) list them, filtered
in the kernel to the watched ports, with byte counters from the same answer's
``tcp_info`` (``bytes_received`` and ``bytes_acked``, the numbers ``ss -ti`` prints)
and owners from an inode resolver that re-reads only changed descriptor tables.
Elsewhere, or where netlink is unavailable, psutil's socket table lists them (bytes
from netlink's ``tcp_info`` still, where it answers). For UDP, connections in
TIME_WAIT and other OSes bytes are unknown (None), never zero.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil

from portwatch.core.text import clean
from portwatch.core.types import Proto
from portwatch.core.watchlist import WatchList
from portwatch.files import shortage

if TYPE_CHECKING:
    from portwatch.probe.netlink.connections import NetlinkConnections

log = logging.getLogger(__name__)

# (local address, local port, remote address, remote port) of a TCP socket.
_TcpKey = tuple[str, int, str, int]


@dataclass(frozen=True)
class Connection:
    """One socket of a connection, seen from its local end.

    A connection between two local sockets appears twice, once from each end, each
    with its own process and its own direction of bytes.
    """

    proto: Proto
    family: str  # "IPv4" or "IPv6"
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    state: str  # psutil's state name ("ESTABLISHED", ...); "NONE" for UDP
    pid: int | None
    process: str | None
    bytes_in: int | None = None  # received by this socket
    bytes_out: int | None = None  # sent by this socket and acknowledged by the peer
    # No OS portwatch reads records when a connection opened; a one-shot listing sees each
    # connection once, so this stays None there. The window counts age from when it first
    # saw the connection (engine.connection_track).
    age_s: float | None = None
    # The process's start time and user, so an action on it names the right process.
    create_time: float | None = None
    user: str | None = None


def list_connections(watched: WatchList | None) -> list[Connection]:
    """Connections with a watched local or remote port; every one if ``watched`` is None.

    A one-shot listing (the CLI); something that lists again and again keeps a
    :class:`ConnectionLister`, whose later listings cost less.
    """
    lister = ConnectionLister()
    try:
        return lister(watched)
    finally:
        lister.close()


class ConnectionLister:
    """Lists connections through netlink socket diagnostics on Linux, psutil elsewhere.

    The netlink listing is psutil's without its machine-wide socket table: the kernel
    answers for the watched ports only, bytes come from the same answer, and owners
    from a resolver that re-reads only descriptor tables that may have changed. Where
    netlink cannot be opened, or its first listing fails, psutil lists from then on;
    after a good first listing a failure is reported (``OSError``), not hidden.
    Not thread-safe: one thread (the sampler's, or the CLI's) lists.
    """

    def __init__(self, ps: Any = psutil, *, use_netlink: bool | None = None) -> None:
        self._ps = ps
        self._netlink: NetlinkConnections | None = None
        self._proven = False
        if use_netlink is None:
            use_netlink = ps is psutil and sys.platform.startswith("linux")
        if use_netlink:
            from portwatch.probe.netlink.connections import NetlinkConnections

            try:
                self._netlink = NetlinkConnections()
            except OSError as exc:
                log.warning(
                    "kernel socket diagnostics (netlink) are not available (%s); "
                    "listing connections with psutil",
                    exc.strerror or exc,
                )

    @property
    def source(self) -> str:
        """Where the listing comes from: "netlink" or "psutil"."""
        return "psutil" if self._netlink is None else "netlink"

    def close(self) -> None:
        """Stop using netlink (its listings hold no socket open between calls)."""
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None

    def __call__(self, watched: WatchList | None) -> list[Connection]:
        if self._netlink is None:
            return psutil_connections(watched, self._ps)
        try:
            found = netlink_connections(self._netlink, watched, self._ps)
        except (OSError, ValueError) as exc:
            # Out of descriptors or memory says nothing about netlink: report it, keep it.
            if self._proven or shortage(exc) is not None:
                if isinstance(exc, OSError):
                    raise
                raise OSError(errno.EIO, f"kernel socket diagnostics: {exc}") from exc
            log.warning(
                "listing connections through netlink failed (%s: %s); using psutil instead",
                type(exc).__name__,
                exc,
            )
            self.close()
            return psutil_connections(watched, self._ps)
        self._proven = True
        return found


def netlink_connections(
    source: NetlinkConnections, watched: WatchList | None, ps: Any = psutil
) -> list[Connection]:
    """:func:`psutil_connections`'s list, read through netlink socket diagnostics."""
    ports = watched.ports() if watched is not None else None
    if watched is None:
        tcp_ranges: list[tuple[int, int]] | None = None
        with_udp = True
    else:
        tcp_ranges = [(spec.lo, spec.hi) for spec in watched.specs if Proto.TCP in spec.protos]
        with_udp = any(Proto.UDP in spec.protos for spec in watched.specs)
    found = _Found(ports, ps)
    for item, pid in source.read(tcp_ranges, with_udp):
        found.add(
            item.proto,
            "IPv6" if item.family == socket.AF_INET6 else "IPv4",
            (item.src, item.sport),
            (item.dst, item.dport),
            item.state,
            pid,
            item.bytes,
        )
    return found.in_order()


class _Found:
    """The connections a listing finds: on the watched ports only (``ports`` None: all),
    each socket once (one socket held by several processes, forked workers, is listed
    under the first), and each process's facts read once."""

    def __init__(self, ports: frozenset[tuple[int, Proto]] | None, ps: Any) -> None:
        self._ports = ports
        self._ps = ps
        self._facts: dict[int, tuple[str | None, float | None, str | None]] = {}
        self._seen: set[tuple[Proto, str, int, str, int]] = set()
        self._found: list[Connection] = []

    def add(
        self,
        proto: Proto,
        family: str,
        local: tuple[str, int],
        remote: tuple[str, int],
        state: str,
        pid: int | None,
        moved: tuple[int, int] | None = None,
    ) -> None:
        """One socket as read; ``moved`` is its (bytes in, bytes out) where known."""
        ports = self._ports
        if ports is not None and not ((local[1], proto) in ports or (remote[1], proto) in ports):
            return
        key = (proto, local[0], local[1], remote[0], remote[1])
        if key in self._seen:
            return
        self._seen.add(key)
        if pid is not None and pid not in self._facts:
            self._facts[pid] = _process_facts(self._ps, pid)
        name, started, user = self._facts[pid] if pid is not None else (None, None, None)
        self._found.append(
            Connection(
                proto=proto,
                family=family,
                local_address=local[0],
                local_port=local[1],
                remote_address=remote[0],
                remote_port=remote[1],
                state=state,
                pid=pid,
                process=name,
                bytes_in=moved[0] if moved is not None else None,
                bytes_out=moved[1] if moved is not None else None,
                create_time=started,
                user=user,
            )
        )

    def in_order(self) -> list[Connection]:
        return sorted(self._found, key=_order)


def _order(c: Connection) -> tuple[int, int, str, str]:
    return (c.local_port, c.remote_port, c.local_address, c.proto.value)


def psutil_connections(watched: WatchList | None, ps: Any = psutil) -> list[Connection]:
    """Connections from psutil's socket table (bytes from netlink's tcp_info on Linux)."""
    ports = watched.ports() if watched is not None else None
    rows = ps.net_connections(kind="inet")
    found = _Found(ports, ps)
    for row in rows:
        proto = Proto.TCP if row.type == socket.SOCK_STREAM else Proto.UDP
        if not row.laddr or not row.raddr:
            continue  # listeners and unconnected UDP sockets
        if proto is Proto.TCP and row.status in (ps.CONN_LISTEN, ps.CONN_NONE):
            continue
        found.add(
            proto,
            "IPv6" if row.family == socket.AF_INET6 else "IPv4",
            (row.laddr.ip, row.laddr.port),
            (row.raddr.ip, row.raddr.port),
            str(row.status) if proto is Proto.TCP else "NONE",
            row.pid if row.pid else None,
        )
    listed = found.in_order()
    tcp_ports = sorted({c.local_port for c in listed if c.proto is Proto.TCP})
    # Only the ports of what was found are asked for (a kernel-side filter), not every
    # connection of the machine; a long list is asked as a few wider ranges.
    counters = tcp_byte_counters([(p, p) for p in tcp_ports]) if tcp_ports else {}
    return [_with_bytes(item, counters) for item in listed]  # still in order


def _with_bytes(item: Connection, counters: dict[_TcpKey, tuple[int, int]]) -> Connection:
    if item.proto is not Proto.TCP:
        return item
    got = counters.get((item.local_address, item.local_port, item.remote_address, item.remote_port))
    if got is None:
        return item
    received, acked = got
    return Connection(**{**item.__dict__, "bytes_in": received, "bytes_out": acked})


def _process_facts(ps: Any, pid: int) -> tuple[str | None, float | None, str | None]:
    """Name, start time and user of ``pid`` (None for what the OS will not say)."""
    try:
        process = ps.Process(pid)
        name = clean(process.name())
        started = process.create_time()
    except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess):
        return None, None, None
    try:
        user: str | None = clean(process.username())
    except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess, KeyError):
        user = None  # KeyError: a uid with no name
    return name, started, user


def tcp_byte_counters(
    ports: Sequence[tuple[int, int]] = (),
) -> dict[_TcpKey, tuple[int, int]]:
    """(bytes received, bytes acknowledged) per TCP socket, from the kernel (Linux only):
    of sockets with a local or remote port in ``ports`` (inclusive ranges), all if empty.

    Empty where the kernel cannot be asked; a connection missing here has unknown bytes.
    """
    if not sys.platform.startswith("linux"):
        return {}
    from portwatch.probe.netlink import codec
    from portwatch.probe.netlink.sockdiag import FAMILIES, SockDiag, tcp_connections_request

    try:
        diag = SockDiag()
    except OSError:
        return {}
    counters: dict[_TcpKey, tuple[int, int]] = {}
    bytecode = codec.port_filter(codec.coarsen(ports, 16)) if ports else b""
    try:
        for family in FAMILIES:
            for chunk, start, end in diag.dump(tcp_connections_request(family, bytecode)):
                msg = codec.decode_message(chunk, start, end)
                split = codec.tcp_bytes_split(msg.tcp_info)
                if split is not None:
                    counters[(msg.src, msg.sport, msg.dst, msg.dport)] = split
    except OSError:
        return counters
    finally:
        diag.close()
    return counters


def connection_fields(items: Iterable[Connection]) -> list[dict[str, Any]]:
    """The JSON shape of connections (one object each)."""
    return [
        {
            "proto": c.proto.value,
            "family": c.family,
            "local_address": c.local_address,
            "local_port": c.local_port,
            "remote_address": c.remote_address,
            "remote_port": c.remote_port,
            "state": c.state,
            "pid": c.pid,
            "process": c.process,
            "bytes_in": c.bytes_in,
            "bytes_out": c.bytes_out,
            "age_s": c.age_s,
        }
        for c in items
    ]
