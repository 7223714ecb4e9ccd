"""The Linux probe on NETLINK_SOCK_DIAG: cost follows the watched ports, not the machine.

Per poll it asks the kernel for TCP listeners, UDP sockets, and TCP connections on
the watched ports only (port filter run in the kernel). Owners come from
:class:`InodeResolver`, which reads ``/proc`` only when a socket it has not seen
appears. Byte counters of watched connections come from ``tcp_info``, readable
without root. The sample means what the psutil probe's means (see ``_poll``).
"""

from __future__ import annotations

import bisect
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from portwatch.core.pairs import PairKey, connection_pair
from portwatch.core.types import Endpoint, Family, Listener, Owner, PortActivity, Proto, Sample
from portwatch.core.watchlist import WatchList
from portwatch.files import ResourceShortage, raise_if_short, shortage
from portwatch.probe.base import ProbeError
from portwatch.probe.exposure import device_name, endpoint_of, host_interfaces, listener_exposure
from portwatch.probe.firewall import FirewallState, FirewallWatch
from portwatch.probe.identity import OwnerReader
from portwatch.probe.netlink import codec
from portwatch.probe.netlink.inodes import InodeResolver
from portwatch.probe.netlink.sockdiag import (
    BOTH_FAMILIES,
    FAMILIES,
    REPLY_TYPES,
    Request,
    SockDiag,
    tcp_connections_request,
    tcp_listeners_request,
    udp_request,
)
from portwatch.probe.sharing import SocketRow, shared_holders

log = logging.getLogger(__name__)

_FAMILY: dict[int, Family] = {int(socket.AF_INET): Family.IPV4, int(socket.AF_INET6): Family.IPV6}
# A longer kernel filter costs every socket the kernel walks; wider ranges cost little.
_MAX_FILTER_RANGES = 16
# Counting connections on the watched ports makes the kernel walk its whole table of
# established sockets, every connection on the machine: on a busy server (12,000
# connections) that walk is most of a poll. Its CPU is measured; when it costs more
# than this per poll, connections are counted on every n-th poll only ...
CONNECTION_BUDGET_S = 0.0005
# ... but at least every this many polls. Polls in between repeat the last counts and
# carry no byte counts (the next count has them all: counters are totals).
MAX_CONNECTION_SKIP = 9


@dataclass(frozen=True)
class _Row:
    """What a poll keeps of one socket from the kernel's reply (cached by socket id)."""

    sockid: bytes
    endpoint: Endpoint
    state: int
    dport: int
    inode: int
    # Sort key of the endpoint in plain values (faster than comparing dataclasses).
    order: tuple[str, str, str, int, str]
    # IPV6_V6ONLY of an IPv6 socket (None: IPv4, or not said).
    v6only: bool | None = None
    # The remote address (empty for listeners), to count a local connection once.
    dst: str = ""


def _sort_key(
    item: tuple[tuple[str, str, str, int, str], int, SocketRow, _Row],
) -> tuple[object, ...]:
    # The psutil probe's order: endpoint, then owner pid (-1 for none).
    return (item[0], item[1])


@dataclass(frozen=True)
class _WatchPlan:
    """The kernel filter and the watched port sets for one watch list."""

    tcp_filter: bytes  # empty when no TCP port is watched
    tcp_ports: frozenset[int]
    udp_ports: frozenset[int]


@dataclass(frozen=True)
class _Assembled:
    """Listeners built from one poll's rows, kept to be reused by the next poll."""

    plan: _WatchPlan
    generation: int  # the resolver's, when built
    owners: dict[int, Owner | None]  # pid → owner as read when built
    listeners: tuple[Listener, ...]
    listener_counts: dict[tuple[int, Proto], int]
    udp_connections: dict[tuple[int, Proto], int]
    # The machine's addresses the listeners' exposure was worked out from.
    interfaces: dict[str, list[str]]
    # The firewall reading it was worked out with.
    firewall: FirewallState | None = None


# A poll where at most this many sockets came, went or changed holders patches the
# last poll's listeners (work in proportion to the change) instead of going through
# every socket again.
PATCH_LIMIT = 64
# Tests set this: every patch is checked against a full pass over the same rows.
VERIFY_PATCHES = False

_Order = tuple[str, str, str, int, str]
_Key = tuple[_Order, int]  # a listener's place: endpoint order, then owner pid (-1: none)


@dataclass
class _Layout:
    """The listeners of one poll in order, and what patching them needs."""

    plan: _WatchPlan
    rows: dict[int, _Row] = field(default_factory=dict)  # id → every listening row
    at_order: dict[_Order, int] = field(default_factory=dict)  # endpoint → its rows
    keys: list[_Key] = field(default_factory=list)  # sorted, one per listener
    listeners: list[Listener] = field(default_factory=list)
    counts: dict[tuple[int, Proto], int] = field(default_factory=dict)
    # id(row) → its listener's key and the (row, owner) identity it was built under.
    placed: dict[int, tuple[_Key, tuple[int, int]]] = field(default_factory=dict)
    owners: dict[int, Owner | None] = field(default_factory=dict)  # pid → as last read

    def copy(self) -> _Layout:
        return _Layout(
            self.plan,
            dict(self.rows),
            dict(self.at_order),
            list(self.keys),
            list(self.listeners),
            dict(self.counts),
            dict(self.placed),
            self.owners,
        )

    def add(
        self, key: _Key, row: _Row, listener: Listener, ident: tuple[int, int], insert: bool = False
    ) -> None:
        """Place ``listener`` (at the end, or with ``insert`` where its key sorts)."""
        if insert:
            at = bisect.bisect_right(self.keys, key)
            self.keys.insert(at, key)
            self.listeners.insert(at, listener)
        else:
            self.keys.append(key)
            self.listeners.append(listener)
        self.placed[id(row)] = (key, ident)
        port, proto = row.endpoint.port, row.endpoint.proto
        if port in (self.plan.tcp_ports if proto is Proto.TCP else self.plan.udp_ports):
            self.counts[(port, proto)] = self.counts.get((port, proto), 0) + 1

    def remove(self, row_id: int) -> tuple[int, int] | None:
        """Take out row ``row_id`` and its listener; the identity it was built under."""
        row = self.rows.pop(row_id)
        placed = self.placed.pop(row_id, None)
        if placed is None:
            return None  # it made no listener
        key, ident = placed
        at = bisect.bisect_left(self.keys, key)
        if at >= len(self.keys) or self.keys[at] != key:
            raise AssertionError(f"listener {key} is not where its key sorts")
        del self.keys[at]
        del self.listeners[at]
        port, proto = row.endpoint.port, row.endpoint.proto
        if (port, proto) in self.counts:
            self.counts[(port, proto)] -= 1
            if not self.counts[(port, proto)]:
                del self.counts[(port, proto)]
        return ident


@dataclass(frozen=True)
class _Inputs:
    """What listeners are built from in one poll."""

    plan: _WatchPlan
    listening: list[_Row]
    gone: set[int]
    owner_of: Callable[[int], Owner | None]
    interfaces: dict[str, list[str]]
    firewall: FirewallState | None


def _check_patch(patched: _Layout, full: _Layout) -> None:
    """A patched layout must say what a full pass over the same rows says."""
    if (patched.listeners, patched.counts, patched.keys) != (
        full.listeners,
        full.counts,
        full.keys,
    ):
        raise AssertionError(
            f"patched listeners differ from a full pass: {patched.keys} != {full.keys}"
        )
    if patched.rows.keys() != full.rows.keys() or patched.at_order != full.at_order:
        raise AssertionError("patched rows differ from a full pass")


def _plan(watched: WatchList) -> _WatchPlan:
    tcp_ranges = codec.coarsen(
        ((spec.lo, spec.hi) for spec in watched.specs if Proto.TCP in spec.protos),
        _MAX_FILTER_RANGES,
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
        cpu: Callable[[], float] = time.thread_time,
        firewall: FirewallWatch | None = None,
    ) -> None:
        self.owners = owners or OwnerReader()
        # The firewall's rules, read rarely and in the background (never on each poll).
        self.firewall = firewall if firewall is not None else FirewallWatch()
        self._clock = clock
        self._mono = mono
        self._cpu = cpu
        # The last connection count (per watched pair) and how many polls may reuse it.
        self._connections: tuple[_WatchPlan, dict[tuple[int, Proto], int]] | None = None
        self._connection_skip = 0
        self.connection_reads = 0
        # Listeners built anew (not re-used from the last poll): for tests and benchmarks.
        self.listeners_built = 0
        # Polls whose listeners were patched rather than gone through again: for tests.
        self.listeners_patched = 0
        self._diag: SockDiag | None = SockDiag()
        self.resolver = InodeResolver(proc_root)
        # TCP is asked for both families in one request where the kernel allows it.
        self._tcp_families: tuple[int, ...] = BOTH_FAMILIES
        # Per listener query (family, protocol): the kernel's last answer as raw reads,
        # the rows decoded from each read, and socket id → row to decode only new sockets.
        self._chunks: dict[tuple[int, int], list[bytes]] = {}
        self._chunk_rows: dict[tuple[int, int], list[tuple[_Row, ...]]] = {}
        self._rows: dict[tuple[int, int], dict[bytes, _Row]] = {}
        # The last assembled listeners, reused while nothing they depend on changed.
        self._assembled: _Assembled | None = None
        # (row, owner) -> the Listener built from them, re-used while both are the same
        # objects: an unchanged listener stays the same object from poll to poll, so the
        # engine finds what changed by identity instead of comparing values.
        self._built: dict[tuple[int, int], tuple[_Row, Owner | None, Listener]] = {}
        # The last poll's listeners in order, with what a patch needs (see _patch).
        self._layout: _Layout | None = None
        self._plans: dict[WatchList, _WatchPlan] = {}
        # Unowned sockets already seen in two dumps (see _gone_unowned).
        self._unowned_checked: set[int] = set()
        # connection cookie → byte total at the previous poll; ports watched then.
        self._last_bytes: dict[bytes, tuple[int, int]] = {}
        self._bytes_ports: frozenset[int] | None = None

    def close(self) -> None:
        """Close the netlink socket and drop caches."""
        if self._diag is not None:
            self._diag.close()
            self._diag = None
        self.resolver.forget()
        self._forget_rows()

    def _forget_rows(self) -> None:
        self._chunks.clear()
        self._chunk_rows.clear()
        self._rows.clear()
        self._assembled = None
        self._built = {}
        self._layout = None

    # --- polling --------------------------------------------------------------------

    def poll(self, watched: WatchList) -> Sample:
        """One reading: every TCP/UDP listener, and activity on the watched ports."""
        try:
            return self._poll(watched)
        except ResourceShortage:
            self._forget_partial()
            raise
        except (OSError, ValueError) as exc:
            if shortage(exc) is not None:
                self._forget_partial()
                raise_if_short(exc)
            # A netlink socket can be left in a bad state (overrun, interrupted dump,
            # a reply cut short): open a fresh one and try once more before giving up.
            log.warning("socket diagnostics failed (%s); reopening the netlink socket", exc)
            self._reopen()
        try:
            return self._poll(watched)
        except ResourceShortage:
            self._forget_partial()
            raise
        except (OSError, ValueError) as exc:
            if shortage(exc) is not None:
                self._forget_partial()
                raise_if_short(exc)
            raise ProbeError(f"kernel socket diagnostics failed: {exc}") from exc

    def _forget_partial(self) -> None:
        # A poll cut short for want of descriptors or memory may have left the socket
        # holders half-read: the next poll starts again from what the kernel says.
        self.resolver.forget()
        self._forget_rows()

    def _reopen(self) -> None:
        if self._diag is not None:
            self._diag.close()
            self._diag = None
        self._forget_rows()
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

        try:
            tables, same = self._read_tcp_listeners()
        except codec.DiagError as exc:
            if self._tcp_families != BOTH_FAMILIES:
                raise
            # A kernel without the legacy TCP request: ask per family from now on.
            log.info("combined IPv4+IPv6 TCP request refused (%s); asking per family", exc)
            self._tcp_families = FAMILIES
            tables, same = self._read_tcp_listeners()
        conn_counts, byte_totals = self._read_tcp_connections(plan)
        unchanged = same and self._assembled is not None and self._assembled.plan is plan
        for family in FAMILIES:
            chunks, same = self._collect(udp_request(family), Proto.UDP)
            tables.append((Proto.UDP, chunks))
            unchanged = unchanged and same

        assembled = self._assembled
        interfaces = host_interfaces()
        firewall = self.firewall.state()
        moved = assembled is not None and (
            assembled.interfaces != interfaces or assembled.firewall is not firewall
        )
        if moved:
            self._built = {}  # every exposure is to be worked out again
            self._layout = None
        if unchanged and assembled is not None:
            self.resolver.update(None)
            if (
                self.resolver.generation != assembled.generation
                or moved
                or any(self.owners.owner(pid) != owner for pid, owner in assembled.owners.items())
            ):
                assembled = self._assemble(plan, tables, interfaces, firewall)
        else:
            self.resolver.update([row.inode for row in self._listening(tables)])
            assembled = self._assemble(plan, tables, interfaces, firewall)
        self._assembled = assembled
        self.owners.forget_unused()
        for key, count in assembled.udp_connections.items():
            conn_counts[key] = conn_counts.get(key, 0) + count
        return Sample(
            wall=wall,
            mono=mono,
            listeners=assembled.listeners,
            activity=self._activity(plan, assembled.listener_counts, conn_counts, byte_totals),
            probe_name=self.name,
        )

    def _read_tcp_listeners(self) -> tuple[list[tuple[Proto, list[tuple[_Row, ...]]]], bool]:
        """TCP listeners, per read, and whether all reads were as before."""
        tables: list[tuple[Proto, list[tuple[_Row, ...]]]] = []
        unchanged = True
        for family in self._tcp_families:
            chunks, same = self._collect(tcp_listeners_request(family), Proto.TCP)
            tables.append((Proto.TCP, chunks))
            unchanged = unchanged and same
        return tables, unchanged

    def _read_tcp_connections(
        self, plan: _WatchPlan
    ) -> tuple[dict[tuple[int, Proto], int], dict[bytes, tuple[int, int, int, int]] | None]:
        """Connection counts per watched TCP pair, and byte totals by connection cookie
        (None when this poll re-uses the last count; see ``CONNECTION_BUDGET_S``)."""
        if not plan.tcp_filter:
            return {}, {}
        last = self._connections
        if last is not None and last[0] is plan and self._connection_skip > 0:
            self._connection_skip -= 1
            return dict(last[1]), None
        conn_counts: dict[tuple[int, Proto], int] = {}
        byte_totals: dict[bytes, tuple[int, int, int, int]] = {}
        ends: dict[PairKey, list[bytes]] = {}
        started = self._cpu()
        for family in self._tcp_families:
            request = tcp_connections_request(family, plan.tcp_filter)
            self._read_connections(request, plan, conn_counts, byte_totals, ends)
        for cookies in ends.values():
            if len(cookies) < 2:
                continue
            # Both ends are on this machine: each end's bytes count for its own local
            # port only, or the traffic would be counted once from each side.
            for cookie in cookies:
                totals = byte_totals.get(cookie)
                if totals is not None:
                    byte_totals[cookie] = (totals[0], 0, totals[2], totals[3])
        cost = self._cpu() - started
        self.connection_reads += 1
        self._connection_skip = min(MAX_CONNECTION_SKIP, int(cost / CONNECTION_BUDGET_S))
        self._connections = (plan, dict(conn_counts))
        return conn_counts, byte_totals

    def _assemble(
        self,
        plan: _WatchPlan,
        tables: list[tuple[Proto, list[tuple[_Row, ...]]]],
        interfaces: dict[str, list[str]],
        firewall: FirewallState | None = None,
    ) -> _Assembled:
        """Listeners, their counts and UDP connection counts from the decoded rows.

        The resolver must be up to date for these rows. When only a few sockets came,
        went or changed holders since the last poll, the last poll's listeners are
        patched (see :meth:`_patch`); otherwise every row is gone through again.
        """
        listening = self._listening(tables)
        holders = self.resolver.holders
        gone = self._gone_unowned([row.inode for row in listening if not holders.get(row.inode)])
        changed = self.resolver.take_changes()
        owners: dict[int, Owner | None] = {}

        def owner_of(pid: int) -> Owner | None:
            if pid not in owners:
                owners[pid] = self.owners.owner(pid)
            return owners[pid]

        inputs = _Inputs(plan, listening, gone, owner_of, interfaces, firewall)
        layout = None
        last = self._layout
        if last is not None and last.plan is plan and changed is not None:
            layout = self._patch(last, inputs, changed)
            if layout is not None and VERIFY_PATCHES:
                built = self.listeners_built
                _check_patch(layout, self._rebuild(inputs, dict(self._built))[0])
                self.listeners_built = built
        if layout is None:
            layout, self._built = self._rebuild(inputs, self._built)
        layout.owners = owners
        self._layout = layout
        return _Assembled(
            plan=plan,
            generation=self.resolver.generation,
            owners=owners,
            listeners=tuple(layout.listeners),
            listener_counts=dict(layout.counts),
            udp_connections=self._udp_connections(plan, tables),
            interfaces=interfaces,
            firewall=firewall,
        )

    @staticmethod
    def _udp_connections(
        plan: _WatchPlan, tables: list[tuple[Proto, list[tuple[_Row, ...]]]]
    ) -> dict[tuple[int, Proto], int]:
        """Connected UDP sockets per watched UDP pair, a local pair counted once."""
        udp_connections: dict[tuple[int, Proto], int] = {}
        pairs: set[PairKey] = set()  # both ends of a local connection are listed
        for proto, chunks in tables:
            if proto is not Proto.UDP:
                continue
            for rows in chunks:
                for row in rows:
                    if row.dport == 0:
                        continue
                    end = row.endpoint
                    pair = connection_pair(proto, end.address, end.port, row.dst, row.dport)
                    if pair in pairs:
                        continue
                    pairs.add(pair)
                    for port in {row.endpoint.port, row.dport}:
                        if port in plan.udp_ports:
                            key = (port, Proto.UDP)
                            udp_connections[key] = udp_connections.get(key, 0) + 1
        return udp_connections

    def _rebuild(
        self,
        inputs: _Inputs,
        built_before: dict[tuple[int, int], tuple[_Row, Owner | None, Listener]],
    ) -> tuple[_Layout, dict[tuple[int, int], tuple[_Row, Owner | None, Listener]]]:
        """Every row gone through: the listeners in order, and what each was built from."""
        plan, holders, owner_of = inputs.plan, self.resolver.holders, inputs.owner_of
        ordered: list[tuple[tuple[str, str, str, int, str], int, SocketRow, _Row]] = []
        seen: set[tuple[tuple[str, str, str, int, str], int | None]] = set()
        at_order: dict[tuple[str, str, str, int, str], int] = {}
        layout = _Layout(plan=plan)
        for row in inputs.listening:
            layout.rows[id(row)] = row
            at_order[row.order] = at_order.get(row.order, 0) + 1
            pids = holders.get(row.inode, ())
            pid = pids[-1] if pids else None
            if pid is None and row.inode in inputs.gone:
                continue  # closed, or its process exited, between the dump and /proc
            if (row.order, pid) in seen:
                continue  # SO_REUSEPORT twins in one process: one listener, as psutil says
            seen.add((row.order, pid))
            owner = None
            if pid is not None:
                owner = owner_of(pid)
                if owner is None:
                    # The process exited since /proc was read; its socket goes with it
                    # (the psutil probe drops it too).
                    continue
            # Every other holder of the socket can accept on it too.
            others: list[Owner] = []
            if len(pids) > 1:
                others = [o for o in (owner_of(p) for p in pids[:-1]) if o is not None]
            ordered.append(
                (row.order, owner.pid if owner else -1, (row.endpoint, owner, others), row)
            )
        ordered.sort(key=_sort_key)
        built: dict[tuple[int, int], tuple[_Row, Owner | None, Listener]] = {}
        # A listener is built only for a socket that is new, has another owner or is
        # shared otherwise; the others keep last poll's object (and the engine, seeing
        # the same object, keeps its view and verdict).
        for (order, pid, (_endpoint, owner, _others), row), shared in zip(
            ordered, shared_holders([item[2] for item in ordered]), strict=True
        ):
            ident, reused = self._listener_for(built_before, row, owner, shared, inputs)
            built[ident] = reused
            layout.add((order, pid), row, reused[2], ident)
        layout.at_order = at_order
        return layout, built

    def _patch(self, last: _Layout, inputs: _Inputs, changed: set[int]) -> _Layout | None:
        """The last poll's listeners with the few sockets that came, went or changed
        holders since then taken out or put in; None when a full pass is needed (many
        changes, an owner that changed, or a touched socket that shares its address
        and port or has several holders: those affect other listeners)."""
        current = {id(row): row for row in inputs.listening}
        removed = last.rows.keys() - current.keys()
        added = current.keys() - last.rows.keys()
        # Sockets still there whose holders changed: taken out and put in again.
        regrouped = (
            {key for key, row in current.items() if row.inode in changed} if changed else set()
        )
        regrouped -= added
        if len(removed) + len(added) + len(regrouped) > PATCH_LIMIT:
            return None
        # An owner that changed (exec, another user) changes every listener it holds.
        if any(inputs.owner_of(pid) is not owner for pid, owner in last.owners.items()):
            return None
        at_order = dict(last.at_order)
        for key in removed:
            order = last.rows[key].order
            at_order[order] -= 1
            if not at_order[order]:
                del at_order[order]
        for key in added:
            order = current[key].order
            at_order[order] = at_order.get(order, 0) + 1
        holders = self.resolver.holders
        for key in removed | regrouped:
            if last.at_order.get(last.rows[key].order, 0) > 1:
                return None
        for key in added | regrouped:
            row = current[key]
            if at_order[row.order] > 1 or last.at_order.get(row.order, 1) > 1:
                return None
            if len(holders.get(row.inode, ())) > 1:
                return None
        layout = last.copy()
        layout.at_order = at_order
        built = self._built
        for key in removed | regrouped:
            ident = layout.remove(key)
            if ident is not None:
                built.pop(ident, None)
        for key in added | regrouped:
            row = current[key]
            layout.rows[key] = row
            pids = holders.get(row.inode, ())
            pid = pids[-1] if pids else None
            if pid is None and row.inode in inputs.gone:
                continue
            owner = None
            if pid is not None:
                owner = inputs.owner_of(pid)
                if owner is None:
                    continue
            ident, reused = self._listener_for(built, row, owner, (), inputs)
            built[ident] = reused
            layout.add((row.order, owner.pid if owner else -1), row, reused[2], ident, insert=True)
        self.listeners_patched += 1
        return layout

    def _listener_for(
        self,
        known: dict[tuple[int, int], tuple[_Row, Owner | None, Listener]],
        row: _Row,
        owner: Owner | None,
        shared: tuple[Owner, ...],
        inputs: _Inputs,
    ) -> tuple[tuple[int, int], tuple[_Row, Owner | None, Listener]]:
        """The listener for ``row`` held by ``owner``, under its (row, owner) identity:
        the one in ``known`` if it was built from the same row and owner with the same
        other holders, else a new one."""
        ident = (id(row), id(owner))
        reused = known.get(ident)
        if (
            reused is None
            or reused[0] is not row
            or reused[1] is not owner
            or reused[2].shared_with != shared
        ):
            reused = (row, owner, self._listener(row, owner, shared, inputs))
        return ident, reused

    def _listener(
        self, row: _Row, owner: Owner | None, shared: tuple[Owner, ...], inputs: _Inputs
    ) -> Listener:
        exposure = listener_exposure(
            row.endpoint, inputs.interfaces, row.v6only, owner=owner, firewall=inputs.firewall
        )
        self.listeners_built += 1
        return Listener(row.endpoint, owner, shared, exposure)

    def _gone_unowned(self, inodes: list[int]) -> set[int]:
        """Of the sockets no process held when ``/proc`` was read, those a second dump
        no longer shows: they closed (or their process exited) after the first dump,
        so they are gone, not unattributed. Each unowned socket is checked once; one
        still there is genuinely unattributed (another user's, or the kernel's)."""
        current = {inode for inode in inodes if inode}
        fresh = current - self._unowned_checked
        if not fresh:
            self._unowned_checked &= current
            return set()
        present = self._listener_inodes()
        gone = fresh - present
        self._unowned_checked = current - gone
        return gone

    def _listener_inodes(self) -> set[int]:
        """The inodes of every listening socket now (a fresh dump, nothing cached)."""
        assert self._diag is not None
        requests = [tcp_listeners_request(f) for f in self._tcp_families]
        requests += [udp_request(f) for f in FAMILIES]
        inodes: set[int] = set()
        for request in requests:
            for chunk in self._diag.dump_chunks(request):
                for msg_type, start, end in codec.iter_messages(chunk):
                    if msg_type in REPLY_TYPES:
                        message = codec.decode_message(chunk, start, end, with_info=False)
                        inodes.add(message.inode)
        return inodes

    @staticmethod
    def _listening(tables: list[tuple[Proto, list[tuple[_Row, ...]]]]) -> list[_Row]:
        """TCP listeners, and UDP sockets with no remote port."""
        return [
            row
            for proto, chunks in tables
            for rows in chunks
            for row in rows
            if proto is Proto.TCP or row.dport == 0
        ]

    def _collect(self, request: Request, proto: Proto) -> tuple[list[tuple[_Row, ...]], bool]:
        """Rows of one listener query, per kernel read, and whether all reads were as before.

        Reads identical to the last poll's keep their decoded rows; in a changed read
        only sockets not seen before are decoded.
        """
        assert self._diag is not None
        key = (request.family, request.protocol)
        previous = self._chunks.get(key, [])
        previous_rows = self._chunk_rows.get(key, [])
        chunks = self._diag.dump_chunks(request, previous)
        same = len(chunks) == len(previous)
        rows: list[tuple[_Row, ...]] = []
        by_id = self._rows.get(key, {})
        for index, chunk in enumerate(chunks):
            if index < len(previous) and chunk == previous[index]:
                rows.append(previous_rows[index])
            else:
                same = False
                rows.append(self._decode_chunk(chunk, proto, by_id))
        if not same:
            self._rows[key] = {row.sockid: row for chunk_rows in rows for row in chunk_rows}
        self._chunks[key] = chunks
        self._chunk_rows[key] = rows
        return rows, same

    def _decode_chunk(
        self, chunk: bytes, proto: Proto, by_id: dict[bytes, _Row]
    ) -> tuple[_Row, ...]:
        rows = []
        for msg_type, start, end in codec.iter_messages(chunk):
            if msg_type not in REPLY_TYPES:
                continue
            # The socket id never changes for a socket and holds everything a row keeps
            # but the inode, which never changes either: decode only sockets not seen.
            row = by_id.get(codec.socket_id(chunk, start))
            if row is None:
                row = self._decode_row(
                    codec.decode_message(chunk, start, end, with_info=False), proto
                )
            rows.append(row)
        return tuple(rows)

    @staticmethod
    def _decode_row(msg: codec.DiagMessage, proto: Proto) -> _Row:
        family = _FAMILY[msg.family]
        # The kernel names the bound device by index: a device-bound socket (and a
        # link-local one, whose scope is its device) answers on that device only.
        endpoint = endpoint_of(
            Endpoint(proto, family, msg.src, msg.sport), device_name(msg.ifindex)
        )
        return _Row(
            sockid=msg.sockid,
            endpoint=endpoint,
            state=msg.state,
            dport=msg.dport,
            inode=msg.inode,
            order=(proto.value, family.value, endpoint.address, msg.sport, endpoint.device),
            v6only=msg.v6only,
            dst=msg.dst,
        )

    def _read_connections(
        self,
        request: Request,
        plan: _WatchPlan,
        conn_counts: dict[tuple[int, Proto], int],
        byte_totals: dict[bytes, tuple[int, int, int, int]],
        ends: dict[PairKey, list[bytes]],
    ) -> None:
        assert self._diag is not None
        ports = plan.tcp_ports
        for chunk, start, end in self._diag.dump(request):
            msg = codec.decode_message(chunk, start, end)
            pair = connection_pair(Proto.TCP, msg.src, msg.sport, msg.dst, msg.dport)
            seen = ends.setdefault(pair, [])
            seen.append(msg.cookie)
            # Both ends of a local connection are listed; count the connection once.
            if msg.state == codec.TCP_ESTABLISHED and len(seen) == 1:
                for port in {msg.sport, msg.dport}:
                    if port in ports:
                        key = (port, Proto.TCP)
                        conn_counts[key] = conn_counts.get(key, 0) + 1
            split = codec.tcp_bytes_split(msg.tcp_info)
            if split is not None:
                byte_totals[msg.cookie] = (msg.sport, msg.dport, *split)

    def _activity(
        self,
        plan: _WatchPlan,
        listener_counts: dict[tuple[int, Proto], int],
        conn_counts: dict[tuple[int, Proto], int],
        byte_totals: dict[bytes, tuple[int, int, int, int]] | None,
    ) -> tuple[PortActivity, ...]:
        # Bytes received and sent (acknowledged) per watched port since the last poll.
        deltas: dict[int, tuple[int, int]] = {}
        measured = byte_totals is not None
        for cookie, (sport, dport, received, sent) in (byte_totals or {}).items():
            # A connection first seen now was opened since the previous poll: all its
            # bytes are new. Counters only grow; a smaller one means a reused cookie.
            before_in, before_out = self._last_bytes.get(cookie, (0, 0))
            if received < before_in or sent < before_out:
                before_in = before_out = 0
            for port in {sport, dport}:
                if port in plan.tcp_ports:
                    got_in, got_out = deltas.get(port, (0, 0))
                    deltas[port] = (got_in + received - before_in, got_out + sent - before_out)
        baseline = (self._bytes_ports or frozenset()) if measured else frozenset()
        if byte_totals is not None:
            self._last_bytes = {
                cookie: (received, sent) for cookie, (_, _, received, sent) in byte_totals.items()
            }
            self._bytes_ports = plan.tcp_ports

        def measured_on(port: int, proto: Proto) -> bool:
            return proto is Proto.TCP and port in baseline

        # The same rows as the psutil probe: watched pairs with a listener or a connection
        # (both dicts hold watched pairs only).
        active = listener_counts.keys() | conn_counts.keys()
        return tuple(
            PortActivity(
                port=port,
                proto=proto,
                listeners=listener_counts.get((port, proto), 0),
                established=conn_counts.get((port, proto), 0),
                # No baseline on a port's first poll or on a poll that re-used the last
                # connection count, and UDP has no byte counters here.
                bytes_delta=sum(deltas.get(port, (0, 0))) if measured_on(port, proto) else None,
                bytes_in_delta=deltas.get(port, (0, 0))[0] if measured_on(port, proto) else None,
                bytes_out_delta=deltas.get(port, (0, 0))[1] if measured_on(port, proto) else None,
            )
            for port, proto in sorted(active)
        )
