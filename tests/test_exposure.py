"""Exposure of a listening socket: the one rule both probes use, on recorded host tables."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from cli_runner import run
from test_netlink_children import start_child

from portwatch.core.exposure import canonical_address, exposure_of
from portwatch.core.types import Endpoint, Family, Proto
from portwatch.core.why import reach_phrase
from portwatch.probe.netlink import codec
from portwatch.probe.psutil_probe import normalise_address

HOST = {
    "lo": ["127.0.0.1", "::1"],
    "eth0": ["192.168.1.5", "fe80::1%eth0", "2001:db8::5"],
    "wan0": ["93.184.216.34", "2a00:1450:4001:80b::200e"],
    "docker0": ["172.17.0.1"],
}
PRIVATE = {k: v for k, v in HOST.items() if k != "wan0"}


@pytest.mark.parametrize(
    ("raw", "spelled"),
    [
        ("::ffff:7f00:1", "::ffff:127.0.0.1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("0:0:0:0:0:ffff:c0a8:105", "::ffff:192.168.1.5"),
        ("::ffff:0:0", "::ffff:0.0.0.0"),
        ("0:0::1", "::1"),
    ],
)
def test_mapped_ipv4_has_one_spelling_in_every_probe(raw: str, spelled: str) -> None:
    assert canonical_address(raw, True) == spelled
    assert normalise_address(raw, Family.IPV6) == spelled


def test_link_local_scope_is_kept_or_taken_from_the_device() -> None:
    assert canonical_address("fe80::1%eth0", True) == "fe80::1%eth0"
    assert canonical_address("fe80:0::1", True, "eth0") == "fe80::1%eth0"
    assert canonical_address("2001:db8::5", True, "eth0") == "2001:db8::5"


def test_loopback_and_lo_bound_sockets_reach_this_computer_only() -> None:
    assert exposure_of("127.0.0.1", False, HOST).summary() == "this computer only"
    assert exposure_of("::ffff:127.0.0.1", True, HOST).scope == "local"
    bound = exposure_of("0.0.0.0", False, HOST, device="lo")
    assert bound.scope == "local" and bound.summary() == "this computer only"
    assert Endpoint(Proto.TCP, Family.IPV4, "0.0.0.0", 53, "lo").reach == "loopback"


def test_wildcard_with_a_public_address_names_it() -> None:
    seen = exposure_of("0.0.0.0", False, HOST)
    assert seen.scope == "public" and seen.everywhere
    assert seen.summary().startswith("all interfaces, including a public address: ")
    assert "93.184.216.34" in seen.addresses and "192.168.1.5" in seen.addresses
    assert all(":" not in a for a in seen.addresses)


def test_private_addresses_are_the_local_network_named() -> None:
    seen = exposure_of("0.0.0.0", False, PRIVATE)
    assert seen.scope == "network"
    assert seen.summary() == "local network: 172.17.0.1, 192.168.1.5"
    one = exposure_of("192.168.1.5", False, HOST)
    assert one.scope == "network" and one.addresses == ("192.168.1.5",)


def test_mapped_wildcard_reaches_every_ipv4_interface_only() -> None:
    seen = exposure_of("::ffff:0.0.0.0", True, HOST)
    assert seen.everywhere and seen.scope == "public"
    assert set(seen.addresses) == {"192.168.1.5", "93.184.216.34", "172.17.0.1"}
    assert Endpoint(Proto.TCP, Family.IPV6, "::ffff:0.0.0.0", 80).reach == "all"


def test_dual_stack_and_ipv6_only_wildcards_are_told_apart() -> None:
    dual = exposure_of("::", True, PRIVATE, v6only=False)
    only6 = exposure_of("::", True, PRIVATE, v6only=True)
    assert dual.dual_stack is True and "192.168.1.5" in dual.addresses
    assert "(IPv4 and IPv6)" in dual.summary()
    assert only6.dual_stack is False and "(IPv6 only)" in only6.summary()
    assert "192.168.1.5" not in only6.addresses
    assert "fe80::1%eth0" in only6.addresses  # the link-local scope is kept


def test_device_bound_wildcard_is_reached_through_that_device_only() -> None:
    seen = exposure_of("0.0.0.0", False, HOST, device="docker0")
    assert seen.addresses == ("172.17.0.1",) and not seen.everywhere
    assert seen.summary() == "local network: 172.17.0.1 (bound to device docker0)"
    ep = Endpoint(Proto.TCP, Family.IPV4, "0.0.0.0", 53, "docker0")
    assert ep.label() == "tcp 0.0.0.0:53 on docker0"
    assert ep.reach == "interface"  # one device's, never "all"


def test_a_device_bound_socket_nothing_reaches_says_so() -> None:
    """A device with no address, or a loopback address bound to another device (loopback
    traffic only arrives on ``lo``): no one can connect, and the words do not claim a
    reason that is false."""
    bare = exposure_of("0.0.0.0", False, {**HOST, "ifb0": []}, device="ifb0")
    assert bare.scope == "local" and bare.addresses == ()
    assert bare.summary() == (
        "this computer only (bound to device ifb0, which has no address: nothing reaches it)"
    )
    looped = exposure_of("127.0.0.1", False, HOST, device="eth0")
    assert looped.scope == "local"
    assert looped.summary() == (
        "this computer only (a loopback address bound to device eth0: nothing reaches it)"
    )
    assert reach_phrase(looped) == (
        "reachable from this computer only"
        " (a loopback address bound to device eth0: nothing reaches it)"
    )


def test_the_netlink_reply_carries_the_device_and_ipv6_only_flag() -> None:
    data = codec.encode_message(
        socket.AF_INET6,
        codec.TCP_LISTEN,
        80,
        0,
        src=bytes(16),
        dst=bytes(16),
        ifindex=1,
        attributes=[(codec.INET_DIAG_SKV6ONLY, b"\x01")],
    )
    ((_t, start, end),) = list(codec.iter_messages(data))
    msg = codec.decode_message(data, start, end)
    assert msg.ifindex == 1 and msg.v6only is True
    plain = codec.encode_message(socket.AF_INET, codec.TCP_LISTEN, 80, 0, src=b"", dst=b"")
    ((_t, start, end),) = list(codec.iter_messages(plain))
    msg = codec.decode_message(plain, start, end)
    assert msg.ifindex == 0 and msg.v6only is None


@pytest.mark.skipif(os.geteuid() != 0, reason="SO_BINDTODEVICE needs root here")
@pytest.mark.parametrize("probe", ["psutil", "netlink"])
def test_scan_shows_a_device_bound_socket_by_its_device(tmp_path: Path, probe: str) -> None:
    child = start_child(
        [
            {"kind": "tcp-listen", "host": "0.0.0.0", "device": "lo"},
            {"kind": "tcp-listen", "host": "::ffff:127.0.0.1", "v6only": 0},
        ]
    )
    try:
        bound, mapped = (item["port"] for item in child.opened)
        result = run(tmp_path, "--probe", probe, "scan", "--all", "--json")
        assert result.returncode == 0, result.stderr
        rows = {row["port"]: row for row in json.loads(result.stdout) if row["pid"] == child.pid}
        assert rows[bound]["device"] == "lo" and rows[bound]["reach"] == "loopback"
        assert rows[bound]["exposure"]["scope"] == "local"
        assert rows[bound]["exposure"]["summary"] == "this computer only"
        assert rows[mapped]["address"] == "::ffff:127.0.0.1"
        assert rows[mapped]["exposure"]["scope"] == "local"
        text = run(tmp_path, "--probe", probe, "scan", "--all").stdout
        line = next(ln for ln in text.splitlines() if f":{bound} " in ln)
        assert "reachable from: this computer only" in line
        assert f" 0.0.0.0%lo:{bound} " in line  # the device, spelt as ss spells it
    finally:
        child.stop()
