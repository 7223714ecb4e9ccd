"""The netlink probe against the real kernel, with sockets held by child processes."""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_netlink_children import SocketChild, start_child

from portwatch.core.types import Endpoint, Family, PortActivity, Proto, Sample
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.probe.base import ProbeError
from portwatch.probe.netlink import NetlinkProbe, codec, inodes
from portwatch.probe.netlink.fallback import FirstPollFallback, netlink_or_fallback
from portwatch.probe.netlink.fdtables import FdTables
from portwatch.probe.netlink.inodes import InodeResolver
from portwatch.probe.netlink.probe import CONNECTION_BUDGET_S, MAX_CONNECTION_SKIP
from portwatch.probe.netlink.sockdiag import (
    BOTH_FAMILIES,
    FAMILIES,
    SockDiag,
    tcp_connections_request,
)

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_NETLINK"), reason="Linux only")


@pytest.fixture
def child() -> Iterator[SocketChild]:
    proc = start_child(
        [
            {"kind": "tcp-listen", "host": "127.0.0.1"},
            {"kind": "tcp-listen", "host": "::1"},
            {"kind": "udp", "host": "127.0.0.1"},
            {"kind": "udp", "host": "::1"},
            {"kind": "udp-connected", "host": "127.0.0.1"},
            {"kind": "tcp-pair", "host": "127.0.0.1"},
            {"kind": "tcp-pair", "host": "::1"},
        ]
    )
    yield proc
    proc.stop()


@pytest.fixture
def probe() -> Iterator[NetlinkProbe]:
    # Counting connections "costs nothing" here, so every poll counts them; the
    # cadence for a costly count has its own test.
    p = NetlinkProbe(cpu=lambda: 0.0)
    yield p
    p.close()


def _watch(*ports: int) -> WatchList:
    return WatchList(tuple(parse_spec(str(port)) for port in ports))


def _of(sample: Sample, pid: int) -> set[Endpoint]:
    return {
        item.endpoint
        for item in sample.listeners
        if item.owner is not None and item.owner.pid == pid
    }


def _dump(families: tuple[int, ...], bytecode: bytes) -> list[codec.DiagMessage]:
    diag = SockDiag()
    try:
        return [
            codec.decode_message(chunk, start, end)
            for family in families
            for chunk, start, end in diag.dump(tcp_connections_request(family, bytecode))
        ]
    finally:
        diag.close()


def test_kernel_filter_returns_only_connections_on_the_watched_port(child: SocketChild) -> None:
    pairs = [o for o in child.opened if o["kind"] == "tcp-pair"]
    for wanted, other in (pairs, pairs[::-1]):
        bytecode = codec.port_filter([(wanted["port"], wanted["port"])])
        seen = _dump(FAMILIES, bytecode)
        ports = {(m.sport, m.dport) for m in seen}
        # Both ends of the watched connection, nothing of the other one.
        assert (wanted["port"], wanted["client_port"]) in ports
        assert (wanted["client_port"], wanted["port"]) in ports
        assert all(wanted["port"] in pair for pair in ports)
        assert all(other["port"] not in pair for pair in ports)
        established = [m for m in seen if m.state == codec.TCP_ESTABLISHED]
        assert all(m.tcp_info is not None and len(m.tcp_info) >= 136 for m in established)
        # The legacy request answers for IPv4 and IPv6 at once, with the same sockets.
        both = _dump(BOTH_FAMILIES, bytecode)
        assert sorted(m.cookie for m in both) == sorted(m.cookie for m in seen)


def test_listeners_are_tcp_listen_and_unconnected_udp_with_their_owner(
    child: SocketChild, probe: NetlinkProbe
) -> None:
    sample = probe.poll(WatchList())
    assert sample.probe_name == "netlink"
    got = _of(sample, child.pid)
    expected = set()
    for item in child.opened:
        family = Family.IPV6 if ":" in item["host"] else Family.IPV4
        if item["kind"] in ("tcp-listen", "tcp-pair"):
            expected.add(Endpoint(Proto.TCP, family, item["host"], item["port"]))
        elif item["kind"] == "udp":
            expected.add(Endpoint(Proto.UDP, family, item["host"], item["port"]))
    # The connected UDP pair and the TCP connections are not listeners.
    assert got == expected


def test_activity_counts_listeners_and_each_local_connection_once(
    child: SocketChild, probe: NetlinkProbe
) -> None:
    pair = next(o for o in child.opened if o["kind"] == "tcp-pair" and o["host"] == "::1")
    udp = next(o for o in child.opened if o["kind"] == "udp-connected")
    sample = probe.poll(_watch(pair["port"], udp["port"]))
    activity = {(a.port, a.proto): a for a in sample.activity}
    tcp = activity[(pair["port"], Proto.TCP)]
    # Both ends of the loopback connection are listed; it is one connection.
    assert (tcp.listeners, tcp.established) == (1, 1)
    # Like the psutil probe: only watched pairs with a listener or a connection.
    assert (pair["port"], Proto.UDP) not in activity
    assert (udp["port"], Proto.TCP) not in activity
    udp_activity = activity[(udp["port"], Proto.UDP)]
    assert (udp_activity.listeners, udp_activity.established) == (0, 1)
    assert udp_activity.bytes_delta is None  # no byte counters for UDP in sock_diag


def test_bytes_delta_counts_bytes_since_the_previous_poll(
    child: SocketChild, probe: NetlinkProbe
) -> None:
    pair = next(o for o in child.opened if o["kind"] == "tcp-pair" and o["host"] == "127.0.0.1")
    watched = _watch(pair["port"])

    def tcp_delta() -> int | None:
        sample = probe.poll(watched)
        return next(a for a in sample.activity if a.proto is Proto.TCP).bytes_delta

    assert tcp_delta() is None  # the first poll has no baseline
    assert tcp_delta() == 0
    child.send(pair["pair"], 50_000)
    delta = tcp_delta()
    # Received by the watched (server) end; the client end of the same loopback
    # connection counts for its own port, not this one, so nothing is counted twice.
    assert delta is not None and 50_000 <= delta <= 50_001
    rest = tcp_delta()
    assert rest is not None and delta + rest <= 50_001


class StepCPU:
    """A CPU clock seam: each reading advances by ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_costly_connection_count_is_spread_over_polls_and_loses_no_bytes(
    child: SocketChild,
) -> None:
    """A count that costs 3.5 ms of CPU (a busy server's whole connection table) is
    taken only every few polls (as many as keep its share of each poll within the
    budget); the polls between repeat it and carry no byte counts, and the bytes moved
    meanwhile all come with the next count."""
    pair = next(o for o in child.opened if o["kind"] == "tcp-pair" and o["host"] == "127.0.0.1")
    watched = _watch(pair["port"])
    probe = NetlinkProbe(cpu=StepCPU(0.0035))
    skipped = int(0.0035 / CONNECTION_BUDGET_S)
    assert 2 <= skipped <= MAX_CONNECTION_SKIP
    try:

        def tcp() -> PortActivity:
            return next(a for a in probe.poll(watched).activity if a.proto is Proto.TCP)

        first = tcp()
        assert probe.connection_reads == 1
        assert (first.established, first.bytes_delta) == (1, None)
        assert tcp().bytes_delta is None
        child.send(pair["pair"], 50_000)
        between = [tcp() for _ in range(skipped - 1)]
        assert probe.connection_reads == 1
        assert [(a.established, a.bytes_delta) for a in between] == [(1, None)] * (skipped - 1)
        counted = tcp()
        assert probe.connection_reads == 2
        assert counted.established == 1
        assert counted.bytes_delta is not None and 50_000 <= counted.bytes_delta <= 50_001
        # Never more than MAX_CONNECTION_SKIP polls apart, however costly.
        probe._cpu = StepCPU(1.0)
        for _ in range(2 * (MAX_CONNECTION_SKIP + 1)):
            tcp()
        assert probe.connection_reads in (4, 5)
    finally:
        probe.close()


def test_sockets_opened_after_the_caches_are_warm_are_attributed(
    child: SocketChild, probe: NetlinkProbe
) -> None:
    # How much /proc is read is counted exactly on a /proc we build (below); on this
    # machine other processes come and go, so here only the answers are checked.
    for _ in range(3):
        assert _of(probe.poll(WatchList()), child.pid)
    # A new process: read whole when it appears.
    other = start_child([{"kind": "tcp-listen", "host": "127.0.0.1"}])
    try:
        port = other.opened[0]["port"]
        assert Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", port) in _of(
            probe.poll(WatchList()), other.pid
        )
        # A new socket in a process already read: found by a scan of new fds.
        port = other.listen("::1")
        sample = probe.poll(WatchList())
        assert Endpoint(Proto.TCP, Family.IPV6, "::1", port) in _of(sample, other.pid)
    finally:
        other.stop()
    assert not _of(probe.poll(WatchList()), other.pid)


def test_closed_probe_refuses_to_poll() -> None:
    p = NetlinkProbe()
    p.close()
    with pytest.raises(ProbeError):
        p.poll(WatchList())


# --- the inode resolver on a /proc tree we build ---------------------------------------


def _fake_process(root: Path, pid: int, start: int, fds: dict[int, str], parent: int = 1) -> None:
    proc = root / str(pid)
    (proc / "fd").mkdir(parents=True, exist_ok=True)
    fields = ["S", str(parent)] + ["0"] * 17 + [str(start)] + ["0"] * 10
    (proc / "stat").write_text(f"{pid} (a (weird) name) " + " ".join(fields) + "\n")
    for fd in list((proc / "fd").iterdir()):
        fd.unlink()
    for fd, target in fds.items():
        os.symlink(target, proc / "fd" / str(fd))


def test_resolver_caches_and_scans_only_as_far_as_needed(tmp_path: Path) -> None:
    _fake_process(tmp_path, 10, 100, {0: "/dev/null", 3: "socket:[1001]", 4: "pipe:[5]"})
    _fake_process(tmp_path, 20, 200, {3: "socket:[2001]", 4: "socket:[2002]"})
    (tmp_path / "self").mkdir()  # non-numeric entries are not processes
    resolver = InodeResolver(str(tmp_path), rescan_every=1000)
    # The first call reads every process (all are new to it); no search was needed.
    assert resolver.resolve([1001, 2002, 0]) == {1001: (10,), 2002: (20,), 0: ()}
    assert (resolver.stats.scans, resolver.stats.new_processes) == (0, 2)
    # Known inodes: nothing read at all.
    links = resolver.stats.links_read
    assert resolver.resolve([1001, 2002]) == {1001: (10,), 2002: (20,)}
    assert (resolver.stats.scans, resolver.stats.links_read) == (0, links)
    # A new socket: every fd of every process is read (6 links), because it may have
    # several holders, each of which can accept on it.
    _fake_process(tmp_path, 20, 200, {3: "socket:[2001]", 4: "socket:[2002]", 5: "socket:[2003]"})
    _fake_process(tmp_path, 10, 100, {0: "/dev/null", 3: "socket:[2003]", 4: "pipe:[5]"})
    links = resolver.stats.links_read
    assert resolver.resolve([2002, 2003])[2003] == (10, 20)
    assert resolver.stats.links_read == links + 4
    # An inode nobody holds is searched for once, then remembered as missing.
    assert resolver.resolve([9999]) == {9999: ()}
    scans = resolver.stats.scans
    assert resolver.resolve([9999]) == {9999: ()}
    assert resolver.stats.scans == scans


def test_resolver_finds_a_holder_that_joins_a_known_socket(tmp_path: Path) -> None:
    # A descriptor passed to a process that was already running: no new inode and no
    # new process reveal it, so the periodic full re-read must.
    _fake_process(tmp_path, 10, 100, {3: "socket:[1001]"})
    _fake_process(tmp_path, 20, 200, {3: "pipe:[7]"})
    resolver = InodeResolver(str(tmp_path), rescan_every=3)
    assert resolver.resolve([1001]) == {1001: (10,)}
    _fake_process(tmp_path, 20, 200, {3: "socket:[1001]"})
    seen = [resolver.resolve([1001])[1001] for _ in range(3)]
    assert seen[-1] == (10, 20)
    # A holder that closed its copy is dropped by the same re-read.
    _fake_process(tmp_path, 10, 100, {3: "pipe:[8]"})
    seen = [resolver.resolve([1001])[1001] for _ in range(3)]
    assert (10, 20) in seen and seen[-1] == (20,)


def test_resolver_spaces_out_a_costly_periodic_pass(tmp_path: Path) -> None:
    # On a machine with many descriptors the periodic full re-read is costly: it runs
    # no more often than keeps its share of each poll within the budget (the clock is
    # the resolver's CPU seam; each full pass "costs" 40 ms here), and a cheap one keeps
    # the set rhythm.
    _fake_process(tmp_path, 10, 100, {3: "socket:[1001]"})
    ticks = iter(range(1000))
    expensive = InodeResolver(str(tmp_path), rescan_every=3, cpu=lambda: next(ticks) * 0.040)
    cheap = InodeResolver(str(tmp_path), rescan_every=3, cpu=lambda: 0.0)
    for _ in range(150):
        assert expensive.resolve([1001]) == {1001: (10,)}
        cheap.resolve([1001])
    spacing = math.ceil(0.040 / inodes.RESCAN_BUDGET_S)
    assert expensive.stats.scans == 1 + (150 - 3) // spacing
    assert cheap.stats.scans == 150 // 3


def test_resolver_finds_a_reused_fd_number_and_a_reused_pid(tmp_path: Path) -> None:
    _fake_process(tmp_path, 10, 100, {3: "socket:[1001]"})
    resolver = InodeResolver(str(tmp_path), rescan_every=1000)
    assert resolver.resolve([1001]) == {1001: (10,)}
    # fd 3 closed and reopened as another socket: the process held a socket that has
    # gone, so its whole table is read again, without a pass over every process.
    _fake_process(tmp_path, 10, 100, {3: "socket:[1002]", 4: "pipe:[9]"})
    assert resolver.resolve([1002]) == {1002: (10,)}
    assert resolver.stats.scans == 0
    # A pipe's number re-used for a new socket, the count unchanged: nothing points at
    # the process, so the full pass finds it.
    _fake_process(tmp_path, 10, 100, {3: "socket:[1002]", 4: "socket:[1003]"})
    assert resolver.resolve([1002, 1003]) == {1002: (10,), 1003: (10,)}
    assert resolver.stats.scans == 1
    # pid 10 exits and a new process gets pid 10 holding the socket: read as a new process.
    _fake_process(tmp_path, 10, 555, {7: "socket:[1002]"})
    assert resolver.resolve([1002]) == {1002: (10,)}
    assert resolver.stats.new_processes == 2
    # The process vanishes: its socket becomes unattributed, no error.
    (tmp_path / "10" / "fd" / "7").unlink()
    (tmp_path / "10" / "fd").rmdir()
    (tmp_path / "10" / "stat").unlink()
    (tmp_path / "10").rmdir()
    assert resolver.resolve([1002]) == {1002: ()}


def test_resolver_adds_a_forked_process_as_another_holder(tmp_path: Path) -> None:
    _fake_process(tmp_path, 10, 100, {3: "socket:[1001]"})
    _fake_process(tmp_path, 11, 101, {3: "socket:[1001]", 4: "socket:[1002]"})
    resolver = InodeResolver(str(tmp_path), rescan_every=1000)
    assert resolver.resolve([1001, 1002]) == {1001: (10, 11), 1002: (11,)}
    # A worker forked later inherits the listener: it is one more holder.
    _fake_process(tmp_path, 12, 102, {3: "socket:[1001]"}, parent=10)
    assert resolver.resolve([1001, 1002]) == {1001: (10, 11, 12), 1002: (11,)}
    # A new process that no holder started is only noted, not read...
    _fake_process(tmp_path, 30, 300, {3: "socket:[1001]", 4: "socket:[3001]"})
    links = resolver.stats.links_read
    assert resolver.resolve([1001, 1002]) == {1001: (10, 11, 12), 1002: (11,)}
    assert resolver.stats.links_read == links
    # ...until a socket of its own makes a scan read it.
    assert resolver.resolve([1001, 1002, 3001]) == {
        1001: (10, 11, 12, 30),
        1002: (11,),
        3001: (30,),
    }
    assert resolver.stats.scans == 0  # found among the tables never read


class _CountingTables(FdTables):
    """The /proc reader over a tree we build, counting the descriptor tables it lists.
    It reports descriptor counts as Linux 6.2+ does (one stat, no directory read)."""

    def __init__(self, root: Path) -> None:
        super().__init__(str(root))
        self.listed: list[int] = []

    def fd_count(self, pid: int) -> int | None:
        try:
            return len(os.listdir(f"{self.root}/{pid}/fd"))
        except OSError:
            return None

    def fd_names(self, pid: int) -> list[str]:
        self.listed.append(pid)
        return super().fd_names(pid)


def test_resolver_reads_only_the_tables_that_changed(tmp_path: Path) -> None:
    # A machine of ten processes, two of them servers; a steady poll reads no
    # descriptor table, and a poll where one unrelated socket appears reads only the
    # table of the process that opened it (it was every process's, every fd).
    for pid in range(10, 20):
        _fake_process(tmp_path, pid, pid * 10, {0: "/dev/null", 1: f"pipe:[{pid}]"})
    _fake_process(tmp_path, 20, 200, {3: "socket:[2001]"})
    _fake_process(tmp_path, 21, 210, {3: "socket:[2101]", 4: "socket:[2102]"})
    tables = _CountingTables(tmp_path)
    resolver = InodeResolver(tables=tables, rescan_every=1000, check_every=1000)
    assert resolver.resolve([2001, 2101]) == {2001: (20,), 2101: (21,)}
    tables.listed.clear()
    for _ in range(3):
        assert resolver.resolve([2001, 2101]) == {2001: (20,), 2101: (21,)}
    assert tables.listed == []
    # Process 14 opens a UDP socket.
    _fake_process(tmp_path, 14, 140, {0: "/dev/null", 1: "pipe:[14]", 2: "socket:[3001]"})
    assert resolver.resolve([2001, 2101, 3001])[3001] == (14,)
    assert tables.listed == [14]
    assert resolver.stats.scans == 0
    tables.listed.clear()
    # It binds and listens on another socket, forks a worker, and passes the socket
    # to a running process: every holder is found on that poll, each table read once.
    _fake_process(
        tmp_path, 14, 140, {0: "/dev/null", 1: "pipe:[14]", 2: "socket:[3001]", 3: "socket:[3002]"}
    )
    _fake_process(tmp_path, 30, 300, {3: "socket:[3002]"}, parent=14)
    _fake_process(tmp_path, 17, 170, {0: "/dev/null", 1: "pipe:[17]", 5: "socket:[3002]"})
    assert resolver.resolve([2001, 2101, 3001, 3002])[3002] == (14, 17, 30)
    assert sorted(tables.listed) == [14, 17, 30]
    assert resolver.stats.scans == 0


# --- choosing a back-end ----------------------------------------------------------------


class _Recording:
    """A probe double: fails as told, records calls."""

    def __init__(self, name: str, fail: bool) -> None:
        self.name = name
        self.fail = fail
        self.closed = False
        self.polls = 0

    def poll(self, watched: WatchList) -> Sample:
        self.polls += 1
        if self.fail:
            raise ProbeError("refused")
        return Sample(wall=0.0, mono=0.0, listeners=(), probe_name=self.name)

    def close(self) -> None:
        self.closed = True


def test_first_poll_failure_switches_to_the_fallback_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    preferred, fallback = _Recording("netlink", True), _Recording("psutil", False)
    probe = FirstPollFallback(preferred, lambda: fallback)
    with caplog.at_level(logging.WARNING):
        assert probe.poll(WatchList()).probe_name == "psutil"
    assert preferred.closed and probe.name == "psutil"
    assert "first poll" in caplog.text and "refused" in caplog.text
    probe.poll(WatchList())
    assert fallback.polls == 2


def test_failure_after_a_good_first_poll_is_reported_not_hidden() -> None:
    preferred, fallback = _Recording("netlink", False), _Recording("psutil", False)
    probe = FirstPollFallback(preferred, lambda: fallback)
    probe.poll(WatchList())
    preferred.fail = True
    with pytest.raises(ProbeError):
        probe.poll(WatchList())
    assert fallback.polls == 0


def test_unavailable_netlink_falls_back_at_once(caplog: pytest.LogCaptureFixture) -> None:
    fallback = _Recording("psutil", False)

    def broken() -> NetlinkProbe:
        raise OSError(97, "Address family not supported by protocol")

    with caplog.at_level(logging.WARNING):
        assert netlink_or_fallback(broken, lambda: fallback) is fallback
    assert "not available" in caplog.text


def test_per_family_requests_give_the_same_sample_as_the_combined_one(
    child: SocketChild, probe: NetlinkProbe
) -> None:
    pair = next(o for o in child.opened if o["kind"] == "tcp-pair")
    watched = _watch(pair["port"])
    combined = probe.poll(watched)
    per_family = NetlinkProbe()
    # What a kernel without the legacy TCP request gets after its first refusal.
    per_family._tcp_families = FAMILIES
    try:
        separate = per_family.poll(watched)
    finally:
        per_family.close()
    assert _of(separate, child.pid) == _of(combined, child.pid)
    assert [(a.port, a.proto, a.listeners, a.established) for a in separate.activity] == [
        (a.port, a.proto, a.listeners, a.established) for a in combined.activity
    ]


def test_create_picks_netlink_on_linux_and_honours_a_forced_choice() -> None:
    from portwatch.probe import create

    auto = create("auto")
    try:
        assert isinstance(auto, FirstPollFallback)
        assert auto.poll(WatchList()).probe_name == "netlink"
        assert auto.name == "netlink"
    finally:
        auto.close()
    forced = create("netlink")
    try:
        assert isinstance(forced, NetlinkProbe)
    finally:
        forced.close()
    plain = create("psutil")
    try:
        assert plain.poll(WatchList()).probe_name == "psutil"
    finally:
        plain.close()


class _PsStandIn:
    """The part of psutil OwnerReader uses, failing the way the brief's faults do."""

    class Error(Exception):
        pass

    class NoSuchProcess(Error):
        pass

    class ZombieProcess(NoSuchProcess):
        pass

    class AccessDenied(Error):
        pass

    def __init__(self, failure: type[Exception]) -> None:
        self.failure = failure

    def Process(self, pid: int) -> object:  # psutil's name
        raise self.failure(pid)


def test_owner_exiting_mid_poll_drops_the_row_and_access_denied_keeps_it_unattributed(
    child: SocketChild,
) -> None:
    from portwatch.probe.identity import OwnerReader

    ours = {
        Endpoint(Proto.TCP, Family.IPV4, o["host"], o["port"])
        for o in child.opened
        if o["kind"] == "tcp-listen" and o["host"] == "127.0.0.1"
    }
    gone = NetlinkProbe(OwnerReader(ps=_PsStandIn(_PsStandIn.NoSuchProcess)))
    denied = NetlinkProbe(OwnerReader(ps=_PsStandIn(_PsStandIn.AccessDenied)))
    try:
        # The process "exited" between the socket listing and its owner: no row.
        assert not ours & {item.endpoint for item in gone.poll(WatchList()).listeners}
        rows = [item for item in denied.poll(WatchList()).listeners if item.endpoint in ours]
        assert len(rows) == 1
        owner = rows[0].owner
        assert owner is not None and owner.pid == child.pid and not rows[0].attributed
        assert owner.note is not None and "access denied" in owner.note
    finally:
        gone.close()
        denied.close()


def test_a_huge_watch_list_is_filtered_coarsely_in_the_kernel_and_exactly_here(
    child: SocketChild, probe: NetlinkProbe
) -> None:
    pair = next(o for o in child.opened if o["kind"] == "tcp-pair" and o["host"] == "127.0.0.1")
    # Hundreds of scattered single ports around the watched one, which the kernel
    # filter widens into a few ranges that include unwatched neighbours.
    ports = sorted({pair["port"], *range(1024, 65000, 97)} - {pair["client_port"]})
    sample = probe.poll(_watch(*ports))
    activity = {(a.port, a.proto): a for a in sample.activity}
    assert activity[(pair["port"], Proto.TCP)].established == 1
    assert all(port in ports for port, _ in activity)
