"""Connections from NETLINK_SOCK_DIAG: what psutil's socket table lists, without reading it.

psutil lists connections by parsing the machine-wide ``/proc/net/{tcp,tcp6,udp,udp6}``
and reading every process's descriptor table, every call: with a thousand sockets
that is most of a poll. Here the kernel answers one dump per protocol and family (TCP
filtered in the kernel to the watched ports), the same dump carries the byte
counters (``tcp_info``), and owners come from an :class:`InodeResolver` that keeps
what it read and re-reads only descriptor tables that may have changed.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import NamedTuple

from portwatch.core.types import Proto
from portwatch.probe.netlink import codec
from portwatch.probe.netlink.inodes import InodeResolver
from portwatch.probe.netlink.sockdiag import (
    FAMILIES,
    INFO_EXT,
    Request,
    SockDiag,
    udp_request,
)

# The kernel's TCP states under psutil's names (psutil reads the same numbers from
# /proc/net/tcp). A request socket (NEW_SYN_RECV) is reported as SYN_RECV there too.
STATE_NAMES = {
    codec.TCP_ESTABLISHED: "ESTABLISHED",
    codec.TCP_SYN_SENT: "SYN_SENT",
    codec.TCP_SYN_RECV: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    codec.TCP_TIME_WAIT: "TIME_WAIT",
    codec.TCP_CLOSE: "CLOSE",
    codec.TCP_CLOSE_WAIT: "CLOSE_WAIT",
    codec.TCP_LAST_ACK: "LAST_ACK",
    codec.TCP_CLOSING: "CLOSING",
    codec.TCP_NEW_SYN_RECV: "SYN_RECV",
}
# Every state /proc/net/tcp can show but LISTEN; not the "bound, inactive" bit (13),
# which makes the kernel walk its bind table (sockets with no remote: never listed).
_STATES = 0
for _state in STATE_NAMES:
    _STATES |= codec.state_bit(_state)
# More ranges cost every socket the kernel walks; wider ones cost little (exact
# filtering follows in Python).
_MAX_FILTER_RANGES = 16


class KernelConnection(NamedTuple):
    """One connected socket as the kernel reports it."""

    proto: Proto
    family: int
    src: str
    sport: int
    dst: str
    dport: int
    state: str  # psutil's name; "NONE" for UDP
    inode: int  # 0 for sockets no process holds (TIME_WAIT)
    bytes: tuple[int, int] | None  # (received, acknowledged) from tcp_info


class NetlinkConnections:
    """Lists connected sockets through netlink; owners through a resolver kept between
    listings (so a listing reads only descriptor tables that may have changed).

    Each listing opens its own netlink socket and closes it (a few microseconds): a
    lister dropped without being closed leaks nothing. Raises ``OSError`` from the
    constructor where netlink socket diagnostics cannot be opened. Not thread-safe:
    one thread lists.
    """

    def __init__(self, proc_root: str = "/proc") -> None:
        SockDiag().close()  # raises where netlink socket diagnostics are unavailable
        self.resolver = InodeResolver(proc_root)

    def close(self) -> None:
        """Forget what the resolver read."""
        self.resolver.forget()

    def read(
        self, tcp_ports: list[tuple[int, int]] | None, with_udp: bool
    ) -> list[tuple[KernelConnection, int | None]]:
        """Connected sockets with the pid holding each, or None.

        Of several holders (forked workers) the highest pid is named: psutil's choice,
        the last process it read that holds the socket.

        ``tcp_ports``: inclusive ranges a TCP socket's local or remote port must touch
        (the kernel filters; the caller still checks exactly); None for every TCP
        socket, an empty list for none. ``with_udp``: list connected UDP sockets too.
        """
        diag = SockDiag()
        try:
            found = self._dump(diag, tcp_ports, with_udp)
        finally:
            diag.close()
        holders = self.resolver.resolve([item.inode for item in found if item.inode])
        return [
            (item, (holders.get(item.inode) or (None,))[-1] if item.inode else None)
            for item in found
        ]

    def _dump(
        self, diag: SockDiag, tcp_ports: list[tuple[int, int]] | None, with_udp: bool
    ) -> list[KernelConnection]:
        found: list[KernelConnection] = []
        if tcp_ports is None or tcp_ports:
            ranges = codec.coarsen(tcp_ports, _MAX_FILTER_RANGES) if tcp_ports else []
            bytecode = codec.port_filter(ranges) if ranges else b""
            for family in FAMILIES:
                request = Request(family, socket.IPPROTO_TCP, _STATES, INFO_EXT, bytecode)
                found.extend(self._read(diag, request, Proto.TCP))
        if with_udp:
            for family in FAMILIES:
                found.extend(self._read(diag, udp_request(family), Proto.UDP))
        return found

    @staticmethod
    def _read(diag: SockDiag, request: Request, proto: Proto) -> Iterator[KernelConnection]:
        for chunk, start, end in diag.dump(request):
            msg = codec.decode_message(chunk, start, end, with_info=proto is Proto.TCP)
            if msg.dport == 0:
                continue  # listeners and unconnected UDP sockets (psutil: no remote)
            if proto is Proto.TCP:
                state = STATE_NAMES.get(msg.state)
                if state is None:
                    continue
            else:
                state = "NONE"
            yield KernelConnection(
                proto,
                msg.family,
                msg.src,
                msg.sport,
                msg.dst,
                msg.dport,
                state,
                msg.inode,
                codec.tcp_bytes_split(msg.tcp_info) if proto is Proto.TCP else None,
            )
