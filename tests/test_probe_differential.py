"""The netlink and psutil probes agree on the same live sockets.

Sockets are held by child processes: one running as root (this test's user), one as
the unprivileged uid 65534, and a pre-fork pair sharing a listener. The comparison is
made as root here, and again from a probe process running as uid 65534 (the view a
normal desktop user gets: other users' sockets are unattributed).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from test_netlink_children import SocketChild, other_device, start_child

import portwatch
from portwatch.core.types import Sample
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.probe.netlink import NetlinkProbe
from portwatch.probe.psutil_probe import PsutilProbe

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

NOBODY = 65534
OWNER = 6  # index of the owner in a listener row

SPECS = [
    {"kind": "tcp-listen", "host": "127.0.0.1"},
    {"kind": "tcp-listen", "host": "::1"},
    {"kind": "udp", "host": "127.0.0.1"},
    {"kind": "udp", "host": "::1"},
    {"kind": "udp-connected", "host": "127.0.0.1"},
    {"kind": "udp-connected", "host": "::1"},
    {"kind": "tcp-pair", "host": "127.0.0.1"},
    {"kind": "tcp-pair", "host": "::1"},
    # Exposure: v4-mapped addresses (one spelling in both probes), the v4-mapped
    # wildcard, IPv6-only and dual-stack wildcards.
    {"kind": "tcp-listen", "host": "::ffff:127.0.0.1", "v6only": 0},
    {"kind": "udp", "host": "::ffff:127.0.0.1", "v6only": 0},
    {"kind": "tcp-listen", "host": "::ffff:0.0.0.0", "v6only": 0},
    {"kind": "tcp-listen", "host": "::", "v6only": 1},
    {"kind": "tcp-listen", "host": "::", "v6only": 0},
    {"kind": "udp", "host": "::", "v6only": 1},
]
# Device-bound sockets (SO_BINDTODEVICE needs root here): the wildcard on ``lo``.
DEVICE_SPECS = [
    {"kind": "tcp-listen", "host": "0.0.0.0", "device": "lo"},
    {"kind": "udp", "host": "0.0.0.0", "device": "lo"},
    {"kind": "tcp-listen", "host": "::", "device": "lo", "v6only": 0},
]


def _root_specs() -> list[dict[str, Any]]:
    specs = SPECS + DEVICE_SPECS
    other = other_device()
    if other is not None:
        name, link_local = other
        specs = [*specs, {"kind": "tcp-listen", "host": "0.0.0.0", "device": name}]
        if link_local:
            specs.append({"kind": "tcp-listen", "host": f"{link_local}%{name}"})
    return specs


# Runs the two probes in one process (as uid 65534) and prints what they saw.
PROBE_RUNNER = r"""
import json, sys
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.probe.netlink import NetlinkProbe
from portwatch.probe.psutil_probe import PsutilProbe

if len(sys.argv) > 3:
    # Started as root so the interpreter and packages load from wherever they live
    # (CI's venv sits in a 0700 folder); give up root before anything is probed.
    import os
    uid = int(sys.argv[3])
    os.setuid(uid)  # group kept, like the uid-65534 socket holder started with Popen(user=)

ports = json.loads(sys.argv[1])
pids = set(json.loads(sys.argv[2]))
watched = WatchList(tuple(parse_spec(str(p)) for p in ports))
out = {}
for probe in (PsutilProbe(), NetlinkProbe()):
    sample = probe.poll(watched)
    out[sample.probe_name] = {
        "listeners": sorted((
            [l.endpoint.proto.value, l.endpoint.family.value, l.endpoint.address,
             l.endpoint.port, l.endpoint.device,
             None if l.exposure is None else [l.exposure.scope, list(l.exposure.addresses),
             l.exposure.device, l.exposure.dual_stack, l.exposure.everywhere,
             l.exposure.device_unknown, l.exposure.summary()],
             None if l.owner is None else
             [l.owner.pid, l.owner.exe, l.owner.sha256, l.owner.user, l.owner.name]]
            for l in sample.listeners if l.endpoint.port in ports
            and (l.owner is None or l.owner.pid in pids)
        ), key=json.dumps),
        "activity": [[a.port, a.proto.value, a.listeners, a.established] for a in sample.activity],
    }
    probe.close()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def children(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SocketChild]]:
    started: dict[str, SocketChild] = {}
    # The unprivileged child logs to a file its starter (root) made in a folder only
    # root may search, then deleted, as a daemon started from a root shell may: its
    # descriptor table names a path its own user cannot look up.
    logs = tmp_path_factory.mktemp("root-only")
    logs.chmod(0o700)
    log = (logs / "daemon.log").open("w")
    try:
        started["root"] = start_child(_root_specs())
        started["nobody"] = start_child(SPECS[:4] + SPECS[6:7] + SPECS[8:], user=NOBODY, stderr=log)
        (logs / "daemon.log").unlink()
        # One UDP port two users share (SO_REUSEADDR), as an mDNS responder and a
        # browser share 5353: to uid 65534 one socket is its own, the other nobody's.
        shared = {"kind": "udp", "host": "127.0.0.1", "reuseaddr": 1}
        started["shared-root"] = start_child([shared])
        port = started["shared-root"].opened[0]["port"]
        started["shared-nobody"] = start_child([{**shared, "port": port}], user=NOBODY)
        # A pre-fork server: one listener, two processes holding it.
        started["forked"] = start_child(
            [{"kind": "tcp-listen", "host": "127.0.0.1"}, {"kind": "fork", "host": ""}]
        )
        yield started
    finally:
        for child in started.values():
            child.stop()
        log.close()


def _ports(children: dict[str, SocketChild]) -> list[int]:
    ports = set()
    for child in children.values():
        for item in child.opened:
            ports.update(item[key] for key in ("port", "client_port") if key in item)
    return sorted(ports)


def _listeners(sample: Sample, ports: list[int], pids: set[int] | None = None) -> list[Any]:
    """The listeners on ``ports`` owned by ``pids`` or unattributed, in plain values.

    Other processes on the machine come and go while the probes run one after the
    other; only the children's sockets are compared.
    """
    return sorted(
        (
            [
                item.endpoint.proto.value,
                item.endpoint.family.value,
                item.endpoint.address,
                item.endpoint.port,
                item.endpoint.device,
                None
                if item.exposure is None
                else [
                    item.exposure.scope,
                    list(item.exposure.addresses),
                    item.exposure.device,
                    item.exposure.dual_stack,
                    item.exposure.everywhere,
                    item.exposure.device_unknown,
                    item.exposure.summary(),
                ],
                None
                if item.owner is None
                else [
                    item.owner.pid,
                    item.owner.exe,
                    item.owner.sha256,
                    item.owner.user,
                    item.owner.name,
                ],
            ]
            for item in sample.listeners
            if item.endpoint.port in ports
            and (pids is None or item.owner is None or item.owner.pid in pids)
        ),
        key=json.dumps,
    )


def _pids(children: dict[str, SocketChild]) -> set[int]:
    pids = {child.pid for child in children.values()}
    pids.update(
        item["pid"] for child in children.values() for item in child.opened if "pid" in item
    )
    return pids


def _activity(sample: Sample) -> list[Any]:
    return [[a.port, a.proto.value, a.listeners, a.established] for a in sample.activity]


def _watch(ports: list[int]) -> WatchList:
    return WatchList(tuple(parse_spec(str(port)) for port in ports))


def test_both_probes_report_the_same_listeners_owners_and_activity_as_root(
    children: dict[str, SocketChild],
) -> None:
    ports = _ports(children)
    watched = _watch(ports)
    psutil_probe, netlink_probe = PsutilProbe(), NetlinkProbe()
    try:
        by_psutil = psutil_probe.poll(watched)
        by_netlink = netlink_probe.poll(watched)
        again = netlink_probe.poll(watched)  # from the warm caches
    finally:
        psutil_probe.close()
        netlink_probe.close()
    assert by_netlink.probe_name == "netlink"
    pids = _pids(children)
    assert _listeners(by_netlink, ports, pids) == _listeners(by_psutil, ports, pids)
    assert _listeners(again, ports, pids) == _listeners(by_psutil, ports, pids)
    assert _activity(by_netlink) == _activity(by_psutil)
    assert _activity(again) == _activity(by_psutil)
    # The expectations themselves: every child socket that listens is there, with its
    # owner, including the unprivileged child's and both holders of the forked one.
    owners = {(row[3], row[OWNER][0]) for row in _listeners(by_netlink, ports) if row[OWNER]}
    for child in (children["root"], children["nobody"]):
        for item in child.opened:
            if item["kind"] in ("tcp-listen", "udp", "tcp-pair"):
                assert (item["port"], child.pid) in owners
    # A socket held by two processes is one listener owned by the higher pid (psutil's
    # choice on Linux).
    forked = children["forked"]
    holders = [pid for port, pid in owners if port == forked.opened[0]["port"]]
    assert holders == [max(forked.pid, forked.opened[1]["pid"])]
    nobody_rows = [
        r
        for r in _listeners(by_netlink, ports)
        if r[OWNER] and r[OWNER][0] == children["nobody"].pid
    ]
    assert nobody_rows and all(r[OWNER][3] == "nobody" for r in nobody_rows)


def test_both_probes_agree_for_an_unprivileged_user(
    children: dict[str, SocketChild], tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to uid 65534")
    ports = _ports(children)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE_RUNNER,
            json.dumps(ports),
            json.dumps(sorted(_pids(children))),
            str(NOBODY),
        ],
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(Path(portwatch.__file__).resolve().parents[1])},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["netlink"] == seen["psutil"]
    # Not root: root's sockets are unattributed, uid 65534's own are attributed.
    by_port = {}
    for row in seen["netlink"]["listeners"]:
        by_port.setdefault(row[3], []).append(row[OWNER])
    for item in children["root"].opened:
        if item["kind"] in ("tcp-listen", "udp"):
            assert by_port[item["port"]] == [None]
    for item in children["nobody"].opened:
        if item["kind"] in ("tcp-listen", "udp"):
            assert [owner[0] for owner in by_port[item["port"]]] == [children["nobody"].pid]
    shared = by_port[children["shared-root"].opened[0]["port"]]
    assert sorted(owner[0] if owner else 0 for owner in shared) == [
        0,
        children["shared-nobody"].pid,
    ]
    assert socket.AF_NETLINK  # the run above really used netlink (Linux only module)


def test_exposure_of_device_bound_mapped_and_wildcard_sockets(
    children: dict[str, SocketChild],
) -> None:
    """What both probes say of each kind of socket, not only that they agree."""
    ports = _ports(children)
    root = children["root"]
    specs = _root_specs()
    for probe in (PsutilProbe(), NetlinkProbe()):
        try:
            sample = probe.poll(_watch(ports))
        finally:
            probe.close()
        mine = {
            (item.endpoint.proto.value, item.endpoint.port): item
            for item in sample.listeners
            if item.owner is not None and item.owner.pid == root.pid
        }
        for spec, item in zip(specs, root.opened, strict=True):
            if item["kind"] not in ("tcp-listen", "udp"):
                continue
            proto = "tcp" if item["kind"] == "tcp-listen" else "udp"
            listener = mine[(proto, item["port"])]
            exposure = listener.exposure
            assert exposure is not None, (probe.name, spec)
            host, device = spec["host"], spec.get("device", "")
            where = (probe.name, spec, listener.endpoint, exposure)
            if host.startswith("fe80"):
                # The link-local scope is kept, from the device the kernel bound it to.
                name = host.partition("%")[2]
                assert listener.endpoint.address == host, where
                assert listener.endpoint.device == name, where
                assert exposure.scope == "network" and exposure.addresses == (host,), where
                continue
            assert listener.endpoint.device == device, where
            if device == "lo":
                assert exposure.scope == "local", where
                assert exposure.summary() == "this computer only", where
                assert listener.endpoint.reach == "loopback", where
            elif device:
                # Bound to one device: its addresses only, named, never "all interfaces".
                own = {
                    a.address for a in psutil.net_if_addrs()[device] if a.family == socket.AF_INET
                }
                assert set(exposure.addresses) == own, where
                assert not exposure.everywhere and exposure.device == device, where
                assert f"bound to device {device}" in exposure.summary(), where
            elif host == "::ffff:127.0.0.1":
                assert listener.endpoint.address == "::ffff:127.0.0.1", where
                assert exposure.scope == "local", where
            elif host == "::ffff:0.0.0.0":
                # Every IPv4 interface reaches it, and nothing over IPv6.
                assert listener.endpoint.reach == "all", where
                assert exposure.addresses, where
                assert all(":" not in a for a in exposure.addresses), where
            elif host == "::":
                v6only = bool(spec["v6only"])
                assert exposure.dual_stack is (not v6only), where
                families = {":" in a for a in exposure.addresses}
                if v6only:
                    assert families <= {True}, where
                    assert "IPv6 only" in exposure.summary(), where
                else:
                    assert "IPv4 and IPv6" in exposure.summary(), where
                    assert False in families, where
