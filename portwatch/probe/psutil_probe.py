"""The portable probe: psutil's connection tables on Linux, Windows and macOS."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import psutil

from portwatch.core.exposure import canonical_address
from portwatch.core.pairs import PairKey, connection_pair
from portwatch.core.types import Endpoint, Family, Listener, Owner, PortActivity, Proto, Sample
from portwatch.core.watchlist import WatchList
from portwatch.files import ResourceShortage, raise_if_short
from portwatch.probe.base import ProbeError
from portwatch.probe.exposure import device_name, endpoint_of, host_interfaces, listener_exposure
from portwatch.probe.firewall import FirewallState, FirewallWatch
from portwatch.probe.identity import OwnerReader
from portwatch.probe.netlink import codec
from portwatch.probe.netlink.inodes import InodeResolver
from portwatch.probe.netlink.sockdiag import (
    FAMILIES,
    SockDiag,
    tcp_listeners_request,
    udp_request,
)
from portwatch.probe.netstat_table import TableReader, parse_netstat, read_netstat
from portwatch.probe.sharing import SocketRow, listeners_with_holders

MACOS_PARTIAL_REASON = (
    "macOS shows other users' and system processes' sockets only to administrators: "
    "{denied} could not be inspected, so listeners they own are missing. "
    "Run portwatch with administrator rights (sudo) to see every listener."
)
MACOS_UNATTRIBUTED_REASON = (
    "macOS shows other users' and system processes' sockets only to administrators: "
    "{denied} could not be inspected, so listeners they own are shown without their program "
    "(unattributed). Run portwatch with administrator rights (sudo) to see who owns them."
)


def _family(value: int) -> Family | None:
    if value == socket.AF_INET:
        return Family.IPV4
    if value == socket.AF_INET6:
        return Family.IPV6
    return None


def _proto(kind: int) -> Proto | None:
    if kind == socket.SOCK_STREAM:
        return Proto.TCP
    if kind == socket.SOCK_DGRAM:
        return Proto.UDP
    return None


def normalise_address(address: str, family: Family, device: str = "") -> str:
    """One spelling per address, so both probes and history agree (``::1``, not
    ``0:0::1``; ``::ffff:127.0.0.1``, not ``::ffff:7f00:1``; link-local with its scope)."""
    return canonical_address(address, family is Family.IPV6, device)


# What the kernel says of one socket that psutil does not: its device and IPV6_V6ONLY.
_Detail = tuple[int, bool | None]

# One listening socket as read: where, its owner and pid (None: unattributed), its inode
# (0: unknown).
_Found = tuple[Endpoint, Owner | None, int | None, int]


class _KernelDetails:
    """Device binding and IPv6-only flag of the listening sockets, from the kernel.

    psutil reads ``/proc/net/*``, which leaves both out; on Linux the socket
    diagnostics the netlink probe uses answer any user. Sockets are matched by inode
    where psutil's row leads to one, else by address and port. Elsewhere (or when
    the kernel refuses) nothing is known, and the exposure says so.
    """

    def __init__(self) -> None:
        self.by_inode: dict[int, _Detail] = {}
        self.by_endpoint: dict[tuple[Proto, Family, str, int], list[tuple[int, _Detail]]] = {}
        self.known = False

    def read(self) -> None:
        self.by_inode.clear()
        self.by_endpoint.clear()
        self.known = False
        try:
            diag = SockDiag()
        except OSError as exc:
            raise_if_short(exc)
            return
        try:
            for family in FAMILIES:
                for proto, request in (
                    (Proto.TCP, tcp_listeners_request(family)),
                    (Proto.UDP, udp_request(family)),
                ):
                    for chunk, start, end in diag.dump(request):
                        msg = codec.decode_message(chunk, start, end, with_info=False)
                        if proto is Proto.UDP and msg.dport != 0:
                            continue
                        fam = Family.IPV4 if msg.family == socket.AF_INET else Family.IPV6
                        detail = (msg.ifindex, msg.v6only)
                        self.by_inode[msg.inode] = detail
                        key = (proto, fam, normalise_address(msg.src, fam), msg.sport)
                        self.by_endpoint.setdefault(key, []).append((msg.inode, detail))
        except (OSError, ValueError):
            return
        finally:
            diag.close()
        for matches in self.by_endpoint.values():
            matches.sort()
        self.known = True

    def detail(self, endpoint: Endpoint, inode: int, taken: set[int]) -> tuple[int, _Detail] | None:
        """The socket's inode and detail: by inode, or the first unclaimed socket at
        ``endpoint``."""
        if inode and inode in self.by_inode:
            taken.add(inode)
            return inode, self.by_inode[inode]
        for other, detail in self.unclaimed(endpoint, taken):
            taken.add(other)
            return other, detail
        return None

    def unclaimed(self, endpoint: Endpoint, taken: set[int]) -> list[tuple[int, _Detail]]:
        """The sockets at ``endpoint`` (psutil's spelling: no device) not yet claimed."""
        key = (endpoint.proto, endpoint.family, endpoint.address, endpoint.port)
        return [item for item in self.by_endpoint.get(key, ()) if item[0] not in taken]


class PsutilProbe:
    """Reads listeners with one system-wide ``net_connections`` call per poll.

    Where the OS refuses that call (macOS without root), walks processes one by one
    and marks the sample partial with the reason. ``ps`` is the psutil module or a
    stand-in: the seam tests use to inject permission errors and vanishing processes.
    """

    name = "psutil"

    def __init__(
        self,
        ps: Any = psutil,
        owners: OwnerReader | None = None,
        clock: Any = time,
        platform: str = sys.platform,
        socket_table: TableReader | None = None,
        firewall: FirewallWatch | None = None,
    ) -> None:
        self._ps = ps
        self.owners = owners or OwnerReader(ps=ps, platform=platform)
        self._clock = clock
        self._platform = platform
        # Where the per-process walk cannot see everything (macOS without root), the
        # system's own socket table, which needs no rights, names the sockets it missed.
        self._socket_table = socket_table or (read_netstat if platform == "darwin" else None)
        # psutil names one holder per socket (the highest pid); on Linux the others are
        # found through the socket's inode, since each can accept connections too.
        self._holders = InodeResolver() if platform.startswith("linux") else None
        # Unowned listeners already asked about twice (see _settle_unowned).
        self._unowned_checked: set[Endpoint] = set()
        self._details = _KernelDetails() if platform.startswith("linux") else None
        self._v6only: dict[Endpoint, bool | None] = {}
        self._taken: set[int] = set()
        self._interfaces: dict[str, list[str]] = {}
        # The firewall's rules, read rarely and in the background (never on each poll).
        self.firewall = firewall if firewall is not None else FirewallWatch()
        self._firewall_state: FirewallState | None = None

    def poll(self, watched: WatchList) -> Sample:
        mono = self._clock.monotonic()
        wall = self._clock.time()
        partial_reason: str | None = None
        try:
            rows: Iterable[Any] = self._ps.net_connections("inet")
        except self._ps.AccessDenied:
            rows, denied = self._walk_processes()
            counted = f"{denied} process" if denied == 1 else f"{denied} processes"
            unseen = self._unseen_in_table(rows)
            if unseen is None:
                partial_reason = MACOS_PARTIAL_REASON.format(denied=counted)
            else:
                rows = [*rows, *unseen]
                partial_reason = MACOS_UNATTRIBUTED_REASON.format(denied=counted)
        except (OSError, self._ps.Error) as exc:
            raise_if_short(exc)
            # Anything else psutil raises for the whole table is one failed poll, not a crash.
            raise ProbeError(f"cannot read the connection table: {exc}") from exc
        self._interfaces = host_interfaces(self._ps)
        self._firewall_state = self.firewall.state()
        try:
            listeners, activity = self._interpret(rows, watched)
        except ResourceShortage:
            if self._holders is not None:
                self._holders.forget()  # may be half-read: read again next poll
            raise
        self.owners.forget_unused()
        return Sample(
            wall=wall,
            mono=mono,
            listeners=tuple(listeners),
            activity=tuple(activity),
            partial=partial_reason is not None,
            partial_reason=partial_reason,
            probe_name=self.name,
        )

    def _unseen_in_table(self, walked: list[Any]) -> list[Any] | None:
        """Listening sockets in the system table that the walk did not find (no pid).

        None when there is no table to read, so the sample says listeners may be missing.
        """
        if self._socket_table is None:
            return None
        text = self._socket_table()
        if not text.strip():
            return None
        known = set()
        for row in walked:
            family, proto = _family(row.family), _proto(row.type)
            if family is not None and proto is not None and row.laddr:
                known.add((proto, normalise_address(row.laddr.ip, family), row.laddr.port))
        unseen: list[Any] = []
        for item in parse_netstat(text):
            address = normalise_address(item.address, item.family)
            if (item.proto, address, item.port) in known:
                continue
            known.add((item.proto, address, item.port))
            unseen.append(
                _Row(
                    -1,
                    socket.AF_INET if item.family is Family.IPV4 else socket.AF_INET6,
                    socket.SOCK_STREAM if item.proto is Proto.TCP else socket.SOCK_DGRAM,
                    _Address(address, item.port),
                    (),
                    self._ps.CONN_LISTEN if item.proto is Proto.TCP else "NONE",
                    None,
                )
            )
        return unseen

    def _walk_processes(self) -> tuple[list[Any], int]:
        """Ask each process for its own sockets; the ones we may not inspect are counted."""
        ps = self._ps
        rows: list[Any] = []
        denied = 0
        for proc in ps.process_iter():
            try:
                conns = proc.net_connections("inet")
            except ps.AccessDenied:
                denied += 1
                continue
            except (ps.NoSuchProcess, ps.ZombieProcess):
                continue
            # Per-process rows carry no pid field; add it back in the same shape.
            rows.extend(
                _Row(c.fd, c.family, c.type, c.laddr, c.raddr, c.status, proc.pid) for c in conns
            )
        return rows, denied

    def _interpret(
        self, rows: Iterable[Any], watched: WatchList
    ) -> tuple[list[Listener], list[PortActivity]]:
        listen_status = self._ps.CONN_LISTEN
        self._v6only = {}
        self._taken = set()
        if self._details is not None:
            self._details.read()
        established_status = self._ps.CONN_ESTABLISHED
        watched_ports = watched.ports()
        seen: set[tuple[Endpoint, int | None]] = set()
        found: list[_Found] = []
        # Listening endpoints psutil named no process for (see _unnamed_sockets).
        unnamed: list[Endpoint] = []
        owners_this_poll: dict[int | None, Owner | None] = {}
        established: Counter[tuple[int, Proto]] = Counter()
        # Both ends of a connection between two local sockets are listed; count it once.
        pairs: set[PairKey] = set()
        for row in rows:
            family = _family(row.family)
            proto = _proto(row.type)
            if family is None or proto is None or not row.laddr:
                continue
            raddr = row.raddr
            is_listener = (proto is Proto.TCP and row.status == listen_status) or (
                proto is Proto.UDP and not raddr
            )
            if is_listener:
                endpoint = Endpoint(
                    proto, family, normalise_address(row.laddr.ip, family), row.laddr.port
                )
                if row.pid is None:
                    unnamed.append(endpoint)
                endpoint, inode = self._bound_device(endpoint, _socket_inode(row.pid, row.fd))
                key = (endpoint, row.pid)
                if key in seen:  # the same socket shared by threads or forked workers
                    continue
                seen.add(key)
                # One lookup per process per poll, however many sockets it holds.
                if row.pid not in owners_this_poll:
                    owners_this_poll[row.pid] = self.owners.owner(row.pid)
                owner = owners_this_poll[row.pid]
                if owner is None and row.pid is not None and row.pid > 0:
                    # The process exited between the listing and now; its socket goes too.
                    continue
                found.append((endpoint, owner, row.pid, inode))
                continue
            if not raddr:
                continue
            connected = proto is Proto.UDP or row.status == established_status
            if not connected:
                continue
            # One spelling of mapped IPv4 (``::ffff:127.0.0.1``), as the netlink probe has.
            pair = connection_pair(
                proto,
                normalise_address(row.laddr.ip, family),
                row.laddr.port,
                normalise_address(raddr.ip, family),
                raddr.port,
            )
            if pair in pairs:
                continue
            pairs.add(pair)
            for port in {row.laddr.port, raddr.port}:
                if (port, proto) in watched_ports:
                    established[(port, proto)] += 1
        found.extend(self._unnamed_sockets(unnamed))
        found = self._settle_unowned(found)
        listeners = listeners_with_holders(self._with_other_holders(found, owners_this_poll))
        listeners = [self._exposed(listener) for listener in listeners]
        listeners.sort(key=lambda item: (item.endpoint, item.owner.pid if item.owner else -1))
        listener_counts = Counter(
            (item.endpoint.port, item.endpoint.proto)
            for item in listeners
            if (item.endpoint.port, item.endpoint.proto) in watched_ports
        )
        activity = [
            PortActivity(port, proto, listener_counts[(port, proto)], established[(port, proto)])
            for port, proto in sorted(set(listener_counts) | set(established))
        ]
        return listeners, activity

    def _unnamed_sockets(self, unnamed: list[Endpoint]) -> list[_Found]:
        """The other sockets at endpoints psutil named no process for.

        psutil gives up on a whole process when one of its descriptors points to a
        deleted file in a folder this user may not search (it checks the path), so
        even this user's own sockets can come back without a pid; and it returns its
        rows as a set, so the unnamed sockets of one endpoint (an SO_REUSEPORT group)
        collapse into one row. The kernel lists each of them: every one not yet
        claimed becomes a row of its own, for the holders lookup to name (as the
        netlink probe does); those nobody visible holds stay one unattributed row.
        """
        details = self._details
        if details is None or not details.known:
            return []
        extra: list[_Found] = []
        for endpoint in dict.fromkeys(unnamed):
            for inode, (ifindex, v6only) in details.unclaimed(endpoint, self._taken):
                self._taken.add(inode)
                bound = endpoint_of(endpoint, device_name(ifindex))
                self._v6only[bound] = v6only
                extra.append((bound, None, None, inode))
        return extra

    def _listener_endpoint(self, row: Any) -> Endpoint | None:
        """The endpoint of a listening row (TCP LISTEN, UDP without a peer), else None."""
        family = _family(row.family)
        proto = _proto(row.type)
        if family is None or proto is None or not row.laddr:
            return None
        if proto is Proto.TCP and row.status != self._ps.CONN_LISTEN:
            return None
        if proto is Proto.UDP and row.raddr:
            return None
        return Endpoint(proto, family, normalise_address(row.laddr.ip, family), row.laddr.port)

    def _settle_unowned(self, found: list[_Found]) -> list[_Found]:
        """Listeners no process was named for: asked once more. psutil reads the
        processes' sockets before the socket tables, so a socket can be listed after
        its process closed it or exited (gone: dropped), or before its new process
        was read (named now). One still unnamed is genuinely unattributed; each is
        asked about once, so a steady poll costs nothing more."""
        current = {ep for ep, owner, pid, _inode in found if owner is None and pid is None}
        fresh = current - self._unowned_checked
        if not fresh:
            self._unowned_checked &= current
            return found
        try:
            again = self._ps.net_connections("inet")
        except (OSError, self._ps.Error) as exc:
            raise_if_short(exc)
            return found
        # psutil's rows carry no device: match them to listeners without it.
        fresh_rows = {_without_device(ep) for ep in fresh}
        listed: dict[Endpoint, list[tuple[int | None, int]]] = {}
        for row in again:
            endpoint = self._listener_endpoint(row)
            if endpoint in fresh_rows:
                listed.setdefault(endpoint, []).append((row.pid, row.fd))
        # A process already named at an endpoint is not the owner of another socket
        # there: sockets of other users can share a port with this user's (UDP with
        # SO_REUSEADDR, as mDNS responders and browsers do), and stay unattributed.
        named = {(ep, pid) for ep, _owner, pid, _inode in found if pid is not None}
        settled: list[_Found] = []
        for endpoint, owner, pid, inode in found:
            if owner is not None or pid is not None or endpoint not in fresh:
                settled.append((endpoint, owner, pid, inode))
                continue
            rows = listed.get(_without_device(endpoint))
            if rows is None:
                continue  # gone
            for new_pid, new_fd in rows:
                if new_pid is None or (endpoint, new_pid) in named:
                    continue
                new_inode = _socket_inode(new_pid, new_fd)
                if inode and new_inode and new_inode != inode:
                    continue  # another socket at the same endpoint
                new_owner = self.owners.owner(new_pid)
                if new_owner is not None:
                    named.add((endpoint, new_pid))
                    settled.append((endpoint, new_owner, new_pid, new_inode or inode))
                break
            else:
                settled.append((endpoint, None, None, inode))
        self._unowned_checked = {
            ep for ep, owner, pid, _inode in settled if owner is None and pid is None
        }
        return settled

    def _bound_device(self, endpoint: Endpoint, inode: int) -> tuple[Endpoint, int]:
        """``endpoint`` with the device its socket is bound to, where readable, and the
        socket's inode (``inode``, or the one the kernel lists there; 0: unknown); keeps
        the socket's IPv6-only flag for its exposure."""
        details = self._details
        if details is None or not details.known:
            return endpoint, inode
        found = details.detail(endpoint, inode, self._taken)
        if found is None:
            return endpoint, inode
        inode, (ifindex, v6only) = found
        endpoint = endpoint_of(endpoint, device_name(ifindex))
        self._v6only[endpoint] = v6only
        return endpoint, inode

    def _exposed(self, listener: Listener) -> Listener:
        endpoint = listener.endpoint
        v6only = self._v6only.get(endpoint)
        known = self._details is not None and self._details.known
        exposure = listener_exposure(
            endpoint,
            self._interfaces,
            v6only,
            device_known=known,
            owner=listener.owner,
            firewall=self._firewall_state,
        )
        return replace(listener, exposure=exposure)

    def _with_other_holders(
        self, found: list[_Found], owners: dict[int | None, Owner | None]
    ) -> list[SocketRow]:
        """Each listener row with the other processes holding the same socket; a
        socket psutil named no process for gets its holders from ``/proc`` (the
        highest pid as owner, as psutil would have named it)."""
        if self._holders is None:
            return [(endpoint, owner, ()) for endpoint, owner, _pid, _inode in found]
        self._holders.update([inode for _endpoint, _owner, _pid, inode in found])
        holders = self._holders.holders

        def owner_of(pid: int) -> Owner | None:
            if pid not in owners:
                owners[pid] = self.owners.owner(pid)
            return owners[pid]

        rows: list[SocketRow] = []
        seen: set[tuple[Endpoint, int | None]] = set()
        for endpoint, named, named_pid, inode in found:
            owner, pid = named, named_pid
            pids = holders.get(inode, ())
            if pid is None and pids:
                pid = pids[-1]
                owner = owner_of(pid)
                if owner is None:
                    continue  # exited since /proc was read: its socket goes too
            if (endpoint, pid) in seen:
                continue  # one listener per endpoint and owner (or unattributed)
            seen.add((endpoint, pid))
            others = [
                held_by
                for held_by in (owner_of(other) for other in pids if other != pid)
                if held_by is not None
            ]
            rows.append((endpoint, owner, others))
        return rows

    def close(self) -> None:
        """Nothing to release: psutil keeps no open handles between calls."""


def _without_device(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` as a psutil row spells it: no device, no link-local scope."""
    if not endpoint.device:
        return endpoint
    return replace(endpoint, address=endpoint.address.partition("%")[0], device="")


def _socket_inode(pid: int | None, fd: int) -> int:
    """The inode of socket ``fd`` of ``pid`` (0 when it cannot be read)."""
    if pid is None or pid <= 0 or fd < 0:
        return 0
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return 0
    if target.startswith("socket:[") and target.endswith("]"):
        try:
            return int(target[8:-1])
        except ValueError:
            return 0
    return 0


class _Row:
    """A connection row from a per-process walk, in the shape of psutil's system-wide rows."""

    __slots__ = ("family", "fd", "laddr", "pid", "raddr", "status", "type")

    def __init__(
        self,
        fd: int,
        family: int,
        type_: int,
        laddr: Any,
        raddr: Any,
        status: str,
        pid: int | None,
    ) -> None:
        self.fd = fd
        self.family = family
        self.type = type_
        self.laddr = laddr
        self.raddr = raddr
        self.status = status
        self.pid = pid


class _Address:
    """A local address in the shape of psutil's ``addr`` (``.ip``, ``.port``)."""

    __slots__ = ("ip", "port")

    def __init__(self, ip: str, port: int) -> None:
        self.ip = ip
        self.port = port

    def __bool__(self) -> bool:
        return True
