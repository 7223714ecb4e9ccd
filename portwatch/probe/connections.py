"""A list of connections: TCP in every state but LISTEN, and UDP sockets with a remote.

psutil gives the sockets and their processes on every OS. Byte counters come from the
kernel's ``tcp_info`` on Linux (``bytes_received`` and ``bytes_acked`` through
``NETLINK_SOCK_DIAG``, the numbers ``ss -ti`` prints); elsewhere, for UDP, and for
connections in TIME_WAIT they are unknown (None), never zero.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from portwatch.core.text import clean
from portwatch.core.types import Proto
from portwatch.core.watchlist import WatchList

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


def list_connections(watched: WatchList | None, ps: Any = psutil) -> list[Connection]:
    """Connections with a watched local or remote port; every one if ``watched`` is None."""
    ports = watched.ports() if watched is not None else None
    rows = ps.net_connections(kind="inet")
    names: dict[int, tuple[str | None, float | None, str | None]] = {}
    seen: set[tuple[Proto, str, int, str, int]] = set()
    found: list[Connection] = []
    for row in rows:
        proto = Proto.TCP if row.type == socket.SOCK_STREAM else Proto.UDP
        if not row.laddr or not row.raddr:
            continue  # listeners and unconnected UDP sockets
        if proto is Proto.TCP and row.status in (ps.CONN_LISTEN, ps.CONN_NONE):
            continue
        local, remote = row.laddr, row.raddr
        if ports is not None and not (
            (local.port, proto) in ports or (remote.port, proto) in ports
        ):
            continue
        key = (proto, local.ip, local.port, remote.ip, remote.port)
        if key in seen:  # one socket held by several processes (forked workers)
            continue
        seen.add(key)
        pid = row.pid if row.pid else None
        if pid is not None and pid not in names:
            names[pid] = _process_facts(ps, pid)
        name, started, user = names[pid] if pid is not None else (None, None, None)
        found.append(
            Connection(
                proto=proto,
                family="IPv6" if row.family == socket.AF_INET6 else "IPv4",
                local_address=local.ip,
                local_port=local.port,
                remote_address=remote.ip,
                remote_port=remote.port,
                state=str(row.status) if proto is Proto.TCP else "NONE",
                pid=pid,
                process=name,
                create_time=started,
                user=user,
            )
        )
    tcp_ports = sorted({c.local_port for c in found if c.proto is Proto.TCP})
    # Only the ports of what was found are asked for (a kernel-side filter), not every
    # connection of the machine; a long list is asked as a few wider ranges.
    counters = tcp_byte_counters([(p, p) for p in tcp_ports]) if tcp_ports else {}
    with_bytes = [_with_bytes(item, counters) for item in found]
    with_bytes.sort(key=lambda c: (c.local_port, c.remote_port, c.local_address, c.proto.value))
    return with_bytes


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
