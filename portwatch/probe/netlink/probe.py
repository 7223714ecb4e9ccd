"""The Linux probe on NETLINK_SOCK_DIAG: cost follows the watched ports, not the machine.

Per poll it asks the kernel for TCP listeners, UDP sockets, and TCP connections on
the watched ports only (port filter run in the kernel), for IPv4 and IPv6. Owners
come from :class:`InodeResolver`, which reads ``/proc`` only when a socket it has not
seen appears. Byte counters of watched connections come from ``tcp_info``, readable
without root.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from portwatch.core.types import Endpoint, Family, Listener, Owner, PortActivity, Proto, Sample
from portwatch.core.watchlist import WatchList
from portwatch.probe.base import ProbeError
from portwatch.probe.identity import OwnerReader
from portwatch.probe.netlink import codec
from portwatch.probe.netlink.inodes import InodeResolver
from portwatch.probe.netlink.sockdiag import (
    FAMILIES,
    SockDiag,
    tcp_connections_request,
    tcp_listeners_request,
    udp_request,
)

log = logging.getLogger(__name__)

_FAMILY: dict[int, Family] = {int(socket.AF_INET): Family.IPV4, int(socket.AF_INET6): Family.IPV6}
_MSG = codec.INET_DIAG_MSG
# Offsets inside an inet_diag_msg payload.
_SOCKID = slice(4, 52)  # ports, addresses, interface and cookie: unique per socket


@dataclass(frozen=True)
class _Row:
    """What a poll keeps of one socket from the kernel's reply (cached by socket id)."""

    family: Family
    state: int
    sport: int
    dport: int
    address: str
    inode: int
    cookie: bytes


@dataclass(frozen=True)
class _WatchPlan:
    """The kernel filter and the (port, proto) list for one watch list."""

    tcp_ranges: tuple[tuple[int, int], ...]
    requests: tuple[tuple[int, int, int, int, bytes], ...]  # per family, with the port filter
    tcp_ports: frozenset[int]
    udp_ports: frozenset[int]


def _plan(watched: WatchList) -> _WatchPlan:
    tcp_ranges = codec.merge_ranges(
        (spec.lo, spec.hi) for spec in watched.specs if Proto.TCP in spec.protos
    )
    pairs = watched.ports()
    return _WatchPlan(
        tcp_ranges=tuple(tcp_ranges),
        requests=tuple(tcp_connections_request(family, tcp_ranges) for family in FAMILIES)
        if tcp_ranges
        else (),
        tcp_ports=frozenset(port for port, proto in pairs if proto is Proto.TCP),
        udp_ports=frozenset(port for port, proto in pairs if proto is Proto.UDP),
    )


class NetlinkProbe:
    """A :class:`~portwatch.probe.base.Probe` reading sockets through NETLINK_SOCK_DIAG.

    ``owners`` turns a pid into an :class:`Owner` (shared with the psutil probe, so
    both describe a process the same way); ``proc_root`` is where ``/proc`` is.
    Raises ``OSError`` from the constructor when netlink socket diagnostics are not
    available, so a caller can fall back to another probe.
    """

    name = "netlink"

    def __init__(
        self,
        owners: OwnerReader | None = None,
        *,
        proc_root: str = "/proc",
        clock: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.owners = owners or OwnerReader()
        self._clock = clock
        self._mono = mono
        self._diag: SockDiag | None = SockDiag()
        self.resolver = InodeResolver(proc_root)
        # socket id bytes → decoded row, per query; rebuilt every poll so it never grows.
        self._rows: dict[tuple[int, int], dict[bytes, _Row]] = {}
        self._plans: dict[WatchList, _WatchPlan] = {}
        # connection cookie → byte total at the previous poll; ports watched then.
        self._last_bytes: dict[bytes, int] = {}
        self._bytes_ports: frozenset[int] | None = None

    def close(self) -> None:
        """Close the netlink socket and drop caches."""
        if self._diag is not None:
            self._diag.close()
            self._diag = None
        self.resolver.forget()
        self._rows.clear()

    # --- polling --------------------------------------------------------------------

    def poll(self, watched: WatchList) -> Sample:
        """One reading: every TCP/UDP listener, and activity on the watched ports."""
        try:
            return self._poll(watched)
        except OSError as first:
            # A netlink socket can be left in a bad state (overrun, interrupted dump):
            # open a fresh one and try once more before giving up on this poll.
            log.warning("socket diagnostics failed (%s); reopening the netlink socket", first)
            self._reopen()
            try:
                return self._poll(watched)
            except OSError as exc:
                raise ProbeError(f"kernel socket diagnostics failed: {exc}") from exc

    def _reopen(self) -> None:
        if self._diag is not None:
            self._diag.close()
            self._diag = None
        self._rows.clear()
        self._diag = SockDiag()

    def _poll(self, watched: WatchList) -> Sample:
        if self._diag is None:
            raise ProbeError("the netlink probe is closed")
        wall = self._clock()
        mono = self._mono()
        plan = self._plans.get(watched)
        if plan is None:
            if len(self._plans) > 8:
                self._plans.clear()
            plan = self._plans[watched] = _plan(watched)

        listening: list[tuple[Proto, _Row]] = []
        conn_counts: dict[tuple[int, Proto], int] = {}
        byte_totals: dict[bytes, tuple[int, int, int]] = {}
        for index, family in enumerate(FAMILIES):
            for row in self._rows_of(family, socket.IPPROTO_TCP, tcp_listeners_request(family)):
                listening.append((Proto.TCP, row))
            for row in self._rows_of(family, socket.IPPROTO_UDP, udp_request(family)):
                if row.dport == 0:
                    listening.append((Proto.UDP, row))
                else:
                    self._count(conn_counts, row, Proto.UDP, plan.udp_ports)
            if plan.requests:
                self._read_connections(family, plan.requests[index], plan, conn_counts, byte_totals)

        owners = self.resolver.resolve([row.inode for _, row in listening])
        owner_cache: dict[int, Owner | None] = {}
        listeners: list[Listener] = []
        listener_counts: dict[tuple[int, Proto], int] = {}
        seen: set[tuple[Endpoint, int | None]] = set()
        for proto, row in listening:
            endpoint = Endpoint(proto, row.family, row.address, row.sport)
            holders = owners.get(row.inode, ())
            # One row per socket, owned by the holder with the highest pid: what psutil
            # reports on Linux (its inode map keeps the last pid listed in /proc).
            pid = holders[-1] if holders else None
            if (endpoint, pid) in seen:
                continue  # SO_REUSEPORT twins in one process: one listener, as psutil says
            seen.add((endpoint, pid))
            owner = None
            if pid is not None:
                if pid not in owner_cache:
                    owner_cache[pid] = self.owners.owner(pid)
                owner = owner_cache[pid]
            listeners.append(Listener(endpoint, owner))
            key = (row.sport, proto)
            listener_counts[key] = listener_counts.get(key, 0) + 1

        self.owners.forget_unused()
        activity = self._activity(plan, listener_counts, conn_counts, byte_totals)
        listeners.sort(key=lambda item: (item.endpoint, item.owner.pid if item.owner else -1))
        return Sample(
            wall=wall,
            mono=mono,
            listeners=tuple(listeners),
            activity=activity,
            probe_name=self.name,
        )

    def _rows_of(
        self, family: int, protocol: int, request: tuple[int, int, int, int, bytes]
    ) -> Iterator[_Row]:
        """The rows of one dump, decoding only sockets not seen at the previous poll."""
        assert self._diag is not None
        key = (family, protocol)
        old = self._rows.get(key, {})
        new: dict[bytes, _Row] = {}
        fam = _FAMILY[family]
        for chunk, start, _end in self._diag.dump(request):
            sockid = chunk[start + 4 : start + 52]
            row = old.get(sockid)
            if row is None:
                # State is part of the key's meaning for UDP (connect() changes dport),
                # and dport is inside sockid, so a cached row is always current.
                state = chunk[start + 1]
                inode = int.from_bytes(chunk[start + 68 : start + 72], sys.byteorder)
                sport = int.from_bytes(chunk[start + 4 : start + 6], "big")
                dport = int.from_bytes(chunk[start + 6 : start + 8], "big")
                address = codec.format_address(family, chunk[start + 8 : start + 24])
                row = _Row(fam, state, sport, dport, address, inode, chunk[start + 44 : start + 52])
            new[sockid] = row
            yield row
        self._rows[key] = new

    def _read_connections(
        self,
        family: int,
        request: tuple[int, int, int, int, bytes],
        plan: _WatchPlan,
        conn_counts: dict[tuple[int, Proto], int],
        byte_totals: dict[bytes, tuple[int, int, int]],
    ) -> None:
        assert self._diag is not None
        fam = _FAMILY[family]
        for chunk, start, end in self._diag.dump(request):
            state = chunk[start + 1]
            sport = int.from_bytes(chunk[start + 4 : start + 6], "big")
            dport = int.from_bytes(chunk[start + 6 : start + 8], "big")
            row = _Row(fam, state, sport, dport, "", 0, chunk[start + 44 : start + 52])
            self._count(conn_counts, row, Proto.TCP, plan.tcp_ports)
            total = codec.tcp_bytes(
                codec.find_attribute(chunk, start + _MSG.size, end, codec.INET_DIAG_INFO)
            )
            if total is not None:
                byte_totals[row.cookie] = (sport, dport, total)

    @staticmethod
    def _count(
        counts: dict[tuple[int, Proto], int], row: _Row, proto: Proto, ports: frozenset[int]
    ) -> None:
        """Count an established connection once for each watched port it touches."""
        if proto is Proto.TCP and row.state != codec.TCP_ESTABLISHED:
            return
        for port in {row.sport, row.dport}:
            if port in ports:
                counts[(port, proto)] = counts.get((port, proto), 0) + 1

    def _activity(
        self,
        plan: _WatchPlan,
        listener_counts: dict[tuple[int, Proto], int],
        conn_counts: dict[tuple[int, Proto], int],
        byte_totals: dict[bytes, tuple[int, int, int]],
    ) -> tuple[PortActivity, ...]:
        deltas: dict[int, int] = {}
        for cookie, (sport, dport, total) in byte_totals.items():
            # A connection first seen now was opened since the previous poll: all its
            # bytes are new. Counters only grow; a smaller one means a reused cookie.
            before = self._last_bytes.get(cookie, 0)
            delta = total - before if total >= before else total
            for port in {sport, dport}:
                if port in plan.tcp_ports:
                    deltas[port] = deltas.get(port, 0) + delta
        baseline = self._bytes_ports or frozenset()
        self._last_bytes = {cookie: total for cookie, (_, _, total) in byte_totals.items()}
        self._bytes_ports = plan.tcp_ports
        # The same rows as the psutil probe: watched pairs with a listener or a connection.
        active = {
            pair
            for pair in (*listener_counts, *conn_counts)
            if pair[0] in (plan.tcp_ports if pair[1] is Proto.TCP else plan.udp_ports)
        }
        return tuple(
            PortActivity(
                port=port,
                proto=proto,
                listeners=listener_counts.get((port, proto), 0),
                established=conn_counts.get((port, proto), 0),
                # No baseline on a port's first poll, and UDP has no byte counters here.
                bytes_delta=deltas.get(port, 0)
                if proto is Proto.TCP and port in baseline
                else None,
            )
            for port, proto in sorted(active)
        )
