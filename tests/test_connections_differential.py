"""The netlink connection listing and psutil's agree on the same live connections.

Connections are held by a child process (TCP pairs over IPv4 and IPv6, a connected
UDP socket, and a forked worker that inherits them all, so the pid of a shared socket
is chosen the same way) and by this test (a connection in TIME_WAIT, whose socket no
process holds, and a half-closed one: FIN_WAIT2 on one end, CLOSE_WAIT on the other).
Both listings are compared on what they say of those ports only: other processes'
connections may come and go between the two listings.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator

import pytest
from test_netlink_children import SocketChild, start_child

from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.probe.connections import (
    Connection,
    ConnectionLister,
    netlink_connections,
    psutil_connections,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

SPECS = [
    {"kind": "tcp-pair", "host": "127.0.0.1"},
    {"kind": "tcp-pair", "host": "::1"},
    {"kind": "udp-connected", "host": "127.0.0.1"},
    {"kind": "fork", "host": ""},
]


@pytest.fixture
def child() -> Iterator[SocketChild]:
    started = start_child(SPECS)
    yield started
    started.stop()


@pytest.fixture
def closing() -> Iterator[list[int]]:
    """Server ports of a TIME_WAIT connection and of a half-closed one, held here."""
    keep: list[socket.socket] = []
    ports: list[int] = []
    for half_close in (False, True):
        server = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        ports.append(server.getsockname()[1])
        client.close()  # the active closer: FIN_WAIT2, then TIME_WAIT once the peer closes
        if not half_close:
            accepted.close()
        else:
            keep.append(accepted)  # stays in CLOSE_WAIT
        server.close()
    # The closing handshakes run in the kernel: wait until they are done, so both
    # listings see the same states (TIME_WAIT, and FIN_WAIT2 / CLOSE_WAIT).
    want = {(ports[0], "TIME_WAIT"), (ports[1], "FIN_WAIT2"), (ports[1], "CLOSE_WAIT")}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = {
            (port, c.state)
            for c in psutil_connections(None)
            for port in (c.local_port, c.remote_port)
            if port in ports
        }
        settled = {state for port, state in now if port == ports[0]} == {"TIME_WAIT"}
        if want <= now and settled:
            break
        time.sleep(0.05)
    yield ports
    for sock in keep:
        sock.close()


def _facts(found: list[Connection], ports: set[int]) -> set[tuple[object, ...]]:
    return {
        (
            c.proto,
            c.family,
            c.local_address,
            c.local_port,
            c.remote_address,
            c.remote_port,
            c.state,
            c.pid,
            c.process,
        )
        for c in found
        if c.local_port in ports or c.remote_port in ports
    }


def _ports(child: SocketChild, closing: list[int]) -> set[int]:
    ports = set(closing)
    for item in child.opened:
        ports.update(item[key] for key in ("port", "client_port") if key in item)
    return ports


def test_netlink_and_psutil_list_the_same_connections(
    child: SocketChild, closing: list[int]
) -> None:
    lister = ConnectionLister()
    assert lister.source == "netlink", "netlink socket diagnostics should open on Linux"
    lister.close()
    from portwatch.probe.netlink.connections import NetlinkConnections

    source = NetlinkConnections()
    ports = _ports(child, closing)
    watch = WatchList(tuple(parse_spec(str(p)) for p in sorted(ports)))
    try:
        for watched in (watch, None):
            netlink = _facts(netlink_connections(source, watched), ports)
            psutil_view = _facts(psutil_connections(watched), ports)
            assert netlink == psutil_view
            states = {row[6] for row in netlink}
            assert {"ESTABLISHED", "TIME_WAIT", "CLOSE_WAIT", "FIN_WAIT2", "NONE"} <= states
            families = {row[1] for row in netlink}
            assert families == {"IPv4", "IPv6"}
            pids = {row[7] for row in netlink}
            # The child's sockets are named after its forked worker (the highest pid
            # holding them, as psutil names them), the half-closed one after this test,
            # the TIME_WAIT one after nobody.
            worker = next(item["pid"] for item in child.opened if item["kind"] == "fork")
            assert {worker, os.getpid(), None} == pids
            # The same answer again from the resolver's kept tables.
            assert _facts(netlink_connections(source, watched), ports) == netlink
    finally:
        source.close()


def test_netlink_bytes_match_psutil_listings_counters(child: SocketChild) -> None:
    pair = next(item for item in child.opened if item["kind"] == "tcp-pair")
    child.send(pair["pair"], 200_000)
    from portwatch.probe.netlink.connections import NetlinkConnections

    source = NetlinkConnections()
    watch = WatchList((parse_spec(f"{pair['port']}/tcp"),))
    try:
        netlink = {
            (c.local_port, c.remote_port): (c.bytes_in, c.bytes_out)
            for c in netlink_connections(source, watch)
        }
        psutil_view = {
            (c.local_port, c.remote_port): (c.bytes_in, c.bytes_out)
            for c in psutil_connections(watch)
        }
    finally:
        source.close()
    assert netlink == psutil_view
    # bytes_acked counts the SYN too.
    assert netlink[(pair["client_port"], pair["port"])][1] in (200_000, 200_001)


def test_a_refused_first_netlink_listing_falls_back_to_psutil_for_good(
    child: SocketChild, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portwatch.probe.netlink import codec
    from portwatch.probe.netlink.connections import NetlinkConnections

    def refused(*_args: object) -> object:
        raise codec.DiagError(22, "socket diagnostics request refused: errno 22")

    lister = ConnectionLister()
    pair = next(item for item in child.opened if item["kind"] == "tcp-pair")
    watch = WatchList((parse_spec(str(pair["port"])),))
    with monkeypatch.context() as patch:
        patch.setattr(NetlinkConnections, "read", refused)
        found = lister(watch)
    assert lister.source == "psutil"
    assert {(c.local_port, c.remote_port) for c in found} == {
        (pair["port"], pair["client_port"]),
        (pair["client_port"], pair["port"]),
    }


def test_a_netlink_failure_after_a_good_listing_is_reported(
    child: SocketChild, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portwatch.probe.netlink import codec
    from portwatch.probe.netlink.connections import NetlinkConnections

    def refused(*_args: object) -> object:
        raise codec.DiagError(22, "socket diagnostics request refused: errno 22")

    lister = ConnectionLister()
    assert lister(None)
    monkeypatch.setattr(NetlinkConnections, "read", refused)
    with pytest.raises(OSError, match="refused"):
        lister(None)
    assert lister.source == "netlink"
