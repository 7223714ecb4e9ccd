"""Each connection counts once, although a local one is listed from both of its ends."""

from __future__ import annotations

import sys

import pytest
from childsockets import ChildSockets, wait_for

from portwatch.core.pairs import connection_pair
from portwatch.core.types import PortActivity, Proto
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.probe.base import Probe
from portwatch.probe.psutil_probe import PsutilProbe


def _probes() -> list[str]:
    return ["psutil", "netlink"] if sys.platform.startswith("linux") else ["psutil"]


def _make(name: str) -> Probe:
    if name == "netlink":
        from portwatch.probe.netlink.probe import NetlinkProbe

        return NetlinkProbe()
    return PsutilProbe()


@pytest.mark.parametrize("probe_name", _probes())
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_loopback_connections_from_another_process_count_once(
    child_sockets: list[ChildSockets], probe_name: str, host: str
) -> None:
    server = ChildSockets.start([("tcp", host, 0, "listen")], registry=child_sockets)
    port = server.ports[0]
    ChildSockets.start([("tcp", host, port, "connect")] * 3, registry=child_sockets)
    watched = WatchList((parse_spec(str(port)),))
    probe = _make(probe_name)
    try:

        def tcp() -> PortActivity | None:
            for item in probe.poll(watched).activity:
                if item.port == port and item.proto is Proto.TCP:
                    return item
            return None

        # Three connections, six sockets (each client end and its accepted end).
        item = wait_for(lambda: (a := tcp()) is not None and a.established >= 3 and a)
        assert isinstance(item, PortActivity)
        assert (item.listeners, item.established) == (1, 3)
    finally:
        probe.close()


def test_both_ends_of_a_connection_have_one_key() -> None:
    one = connection_pair(Proto.TCP, "127.0.0.1", 50_000, "127.0.0.1", 8080)
    assert one == connection_pair(Proto.TCP, "127.0.0.1", 8080, "127.0.0.1", 50_000)
    # A dual-stack end sees its IPv4 peer as a mapped address.
    assert one == connection_pair(Proto.TCP, "::ffff:127.0.0.1", 8080, "127.0.0.1", 50_000)
    assert one != connection_pair(Proto.UDP, "127.0.0.1", 8080, "127.0.0.1", 50_000)
    assert one != connection_pair(Proto.TCP, "127.0.0.1", 8080, "127.0.0.1", 50_001)
