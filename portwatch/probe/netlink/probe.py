"""The Linux probe on NETLINK_SOCK_DIAG: cost follows the watched ports, not the machine.

Per poll it asks the kernel for TCP listeners, UDP sockets, and TCP connections on
the watched ports only (port filter run in the kernel). Owners come from
:class:`InodeResolver`, which reads ``/proc`` only when a socket it has not seen
appears. Byte counters of watched connections come from ``tcp_info``, readable
without root. The sample means what the psutil probe's means (see ``_poll``).
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
    BOTH_FAMILIES,
    FAMILIES,
    Request,
    SockDiag,
    tcp_connections_request,
    tcp_listeners_request,
    udp_request,
)

log = logging.getLogger(__name__)

_FAMILY: dict[int, Family] = {int(socket.AF_INET): Family.IPV4, int(socket.AF_INET6): Family.IPV6}
_INFO_START = codec.INET_DIAG_MSG.size


@dataclass(frozen=True)
class _Row:
    """What a poll keeps of one socket from the kernel's reply (cached by socket id)."""

    endpoint: Endpoint
    state: int
    dport: int
    inode: int
    # Sort key of the endpoint in plain values (faster than comparing dataclasses).
    order: tuple[str, str, str, int]


@dataclass(frozen=True)
class _WatchPlan:
    """The kernel filter and the watched port sets for one watch list."""

    tcp_filter: bytes  # empty when no TCP port is watched
    tcp_ports: frozenset[int]
    udp_ports: frozenset[int]


def _plan(watched: WatchList) -> _WatchPlan:
    tcp_ranges = codec.merge_ranges(
        (spec.lo, spec.hi) for spec in watched.specs if Proto.TCP in spec.protos
    )
    pairs = watched.ports()
    return _WatchPlan(
        tcp_filter=codec.port_filter(tcp_ranges) if tcp_ranges else b"",
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
        # TCP is asked for both families in one request where the kernel allows it.
        self._tcp_families: tuple[int, ...] = BOTH_FAMILIES
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
        except codec.DiagError as exc:
            if self._tcp_families == FAMILIES:
                raise ProbeError(f"the kernel refused socket diagnostics: {exc}") from exc
            # An old or trimmed kernel without the legacy TCP request: ask per family.
            log.info("combined IPv4+IPv6 TCP request refused (%s); asking per family", exc)
            self._tcp_families = FAMILIES
        except OSError as exc:
            # A netlink socket can be left in a bad state (overrun, interrupted dump):
            # open a fresh one and try once more before giving up on this poll.
            log.warning("socket diagnostics failed (%s); reopening the netlink socket", exc)
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
        """Listeners and activity with the psutil probe's meaning.

        A listener is a TCP socket in LISTEN or a UDP socket with no remote port; one
        per socket, owned by its highest-pid holder (psutil's choice on Linux), and
        one per (endpoint, pid). Activity rows are the watched (port, proto) pairs with
        a listener or a connection; a connection (TCP ESTABLISHED, or connected UDP)
        counts once for each watched port among its local and remote port.
        """
        if self._diag is None:
            raise ProbeError("the netlink probe is closed")
        wall = self._clock()
        mono = self._mono()
        plan = self._plans.get(watched)
        if plan is None:
            if len(self._plans) > 8:
                self._plans.clear()
            plan = self._plans[watched] = _plan(watched)

        listening: list[_Row] = []
        conn_counts: dict[tuple[int, Proto], int] = {}
        byte_totals: dict[bytes, tuple[int, int, int]] = {}
        for family in self._tcp_families:
            listening.extend(self._rows_of(tcp_listeners_request(family), Proto.TCP))
            if plan.tcp_filter:
                request = tcp_connections_request(family, plan.tcp_filter)
                self._read_connections(request, plan, conn_counts, byte_totals)
        for family in FAMILIES:
            for row in self._rows_of(udp_request(family), Proto.UDP):
                if row.dport == 0:
                    listening.append(row)
                elif row.endpoint.port in plan.udp_ports or row.dport in plan.udp_ports:
                    for port in {row.endpoint.port, row.dport}:
                        if port in plan.udp_ports:
                            key = (port, Proto.UDP)
                            conn_counts[key] = conn_counts.get(key, 0) + 1

        owners = self.resolver.resolve([row.inode for row in listening])
        owner_cache: dict[int, Owner | None] = {}
        ordered: list[tuple[tuple[str, str, str, int], int, Listener]] = []
        listener_counts: dict[tuple[int, Proto], int] = {}
        seen: set[tuple[Endpoint, int | None]] = set()
        for row in listening:
            holders = owners.get(row.inode, ())
            pid = holders[-1] if holders else None
            if (row.endpoint, pid) in seen:
                continue  # SO_REUSEPORT twins in one process: one listener, as psutil says
            seen.add((row.endpoint, pid))
            owner = None
            if pid is not None:
                if pid not in owner_cache:
                    owner_cache[pid] = self.owners.owner(pid)
                owner = owner_cache[pid]
            ordered.append((row.order, owner.pid if owner else -1, Listener(row.endpoint, owner)))
            key = (row.endpoint.port, row.endpoint.proto)
            listener_counts[key] = listener_counts.get(key, 0) + 1
        self.owners.forget_unused()
        ordered.sort(key=lambda item: (item[0], item[1]))
        return Sample(
            wall=wall,
            mono=mono,
            listeners=tuple(item[2] for item in ordered),
            activity=self._activity(plan, listener_counts, conn_counts, byte_totals),
            probe_name=self.name,
        )

    def _rows_of(self, request: Request, proto: Proto) -> Iterator[_Row]:
        """The rows of one dump, decoding only sockets not seen at the previous poll."""
        assert self._diag is not None
        key = (request.family, request.protocol)
        old = self._rows.get(key, {})
        new: dict[bytes, _Row] = {}
        for chunk, start, _end in self._diag.dump(request):
            # Ports, addresses, interface and cookie: unique per socket, and they hold
            # everything a row keeps except the inode, which never changes for a socket.
            sockid = chunk[start + 4 : start + 52]
            row = old.get(sockid)
            if row is None:
                row = self._decode_row(chunk, start, proto)
            new[sockid] = row
            yield row
        self._rows[key] = new

    @staticmethod
    def _decode_row(chunk: bytes, start: int, proto: Proto) -> _Row:
        family_code = chunk[start]
        family = _FAMILY[family_code]
        sport = int.from_bytes(chunk[start + 4 : start + 6], "big")
        address = codec.format_address(family_code, chunk[start + 8 : start + 24])
        return _Row(
            endpoint=Endpoint(proto, family, address, sport),
            state=chunk[start + 1],
            dport=int.from_bytes(chunk[start + 6 : start + 8], "big"),
            inode=int.from_bytes(chunk[start + 68 : start + 72], sys.byteorder),
            order=(proto.value, family.value, address, sport),
        )

    def _read_connections(
        self,
        request: Request,
        plan: _WatchPlan,
        conn_counts: dict[tuple[int, Proto], int],
        byte_totals: dict[bytes, tuple[int, int, int]],
    ) -> None:
        assert self._diag is not None
        ports = plan.tcp_ports
        for chunk, start, end in self._diag.dump(request):
            sport = int.from_bytes(chunk[start + 4 : start + 6], "big")
            dport = int.from_bytes(chunk[start + 6 : start + 8], "big")
            if chunk[start + 1] == codec.TCP_ESTABLISHED:
                for port in {sport, dport}:
                    if port in ports:
                        key = (port, Proto.TCP)
                        conn_counts[key] = conn_counts.get(key, 0) + 1
            info = codec.find_attribute(chunk, start + _INFO_START, end, codec.INET_DIAG_INFO)
            total = codec.tcp_bytes(info)
            if total is not None:
                byte_totals[chunk[start + 44 : start + 52]] = (sport, dport, total)

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
