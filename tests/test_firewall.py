"""What the firewall does with a port: real nftables rules in a private network
namespace where this machine allows it, recorded rulesets for the rest, and both
probes carrying the answer (or "firewall not checked", never a guess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from childsockets import ChildSockets, free_port
from platforms import wine_gives_pid_0

from portwatch.core import firewall
from portwatch.core.exposure import Exposure
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.probe.firewall import FirewallState, FirewallWatch, read_state
from portwatch.probe.psutil_probe import PsutilProbe

REPO = Path(__file__).resolve().parents[1]

# A typical hand-written host firewall (nft syntax), and what `nft -j list ruleset`
# printed for it (nftables 1.0.6, Debian 12), kept as data in tests/snapshots/.
RULES = """
table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iif lo accept
    tcp dport { 22, 80 } accept
    udp dport 5000-5100 accept
    ip saddr 10.0.0.0/8 tcp dport 8080 accept
  }
}
"""
RECORDED: dict[str, Any] = json.loads(
    (REPO / "tests" / "snapshots" / "nft-ruleset-debian12.json").read_text(encoding="utf-8")
)
EXPECTED = {
    ("tcp", 80): "the firewall lets it in (rule tcp dport {22,80} accept in inet filter input)",
    ("udp", 5050): "the firewall lets it in (rule udp dport 5000-5100 accept in inet filter input)",
    ("tcp", 3306): "the firewall drops it (policy drop in inet filter input)",
    # Accepted from some sources only: not evaluated, never a guess.
    ("tcp", 8080): firewall.NOT_EVALUATED,
}


@pytest.mark.parametrize(("key", "words"), list(EXPECTED.items()))
def test_recorded_ruleset(key: tuple[str, int], words: str) -> None:
    proto, port = key
    assert firewall.parse(RECORDED).verdict(proto, port, {4}) == words


def _chain(family: str, policy: str, *rules: list[dict[str, Any]]) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"table": {"family": family, "name": "t"}},
        {
            "chain": {
                "family": family,
                "table": "t",
                "name": "in",
                "type": "filter",
                "hook": "input",
                "prio": 0,
                "policy": policy,
            }
        },
    ]
    items += [{"rule": {"family": family, "table": "t", "chain": "in", "expr": r}} for r in rules]
    return {"nftables": items}


def test_no_tables_and_no_input_chain_are_told_apart() -> None:
    assert firewall.parse({"nftables": [{"metainfo": {}}]}).verdict("tcp", 80, {4}) == (
        firewall.NO_RULES
    )
    # Docker's NAT table alone filters nothing on input.
    nat_only = {
        "nftables": [
            {"table": {"family": "ip", "name": "nat"}},
            {
                "chain": {
                    "family": "ip",
                    "table": "nat",
                    "name": "PREROUTING",
                    "type": "nat",
                    "hook": "prerouting",
                    "prio": -100,
                    "policy": "accept",
                }
            },
        ]
    }
    assert firewall.parse(nat_only).verdict("tcp", 80, {4}) == firewall.NO_INPUT_FILTER


def test_jumps_into_other_chains_are_not_evaluated() -> None:
    # ufw and firewalld send input through chains of their own.
    ufw = _chain("ip", "drop", [{"jump": {"target": "ufw-before-input"}}])
    assert firewall.parse(ufw).verdict("tcp", 22, {4}) == firewall.NOT_EVALUATED


def test_an_ip6_table_says_nothing_about_ipv4_and_families_can_differ() -> None:
    ip6_drop = firewall.parse(_chain("ip6", "drop"))
    assert ip6_drop.verdict("tcp", 80, {4}) == firewall.NO_INPUT_FILTER
    assert ip6_drop.verdict("tcp", 80, {4, 6}) == (
        f"IPv4: {firewall.NO_INPUT_FILTER}; IPv6: the firewall drops it (policy drop in ip6 t in)"
    )


def test_reading_is_not_guessed_without_root_or_nft() -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        assert read_state(lambda: None, ufw=lambda: None).verdict("tcp", 80, {4}) == (
            "firewall not checked (nft is not installed)"
        )
        # ufw's own setting is readable by anyone: said, and still not a verdict.
        assert read_state(lambda: None, ufw=lambda: True).verdict("tcp", 80, {4}) == (
            "firewall not checked (nft is not installed; ufw is enabled in its settings)"
        )
        assert "nft could not list the rules" in read_state(lambda: (1, b"")).why_not
    assert read_state(lambda: (0, b"{}"), platform="win32").ruleset is None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # iptables-legacy rules are invisible to nft: the reading says so.
        empty = b'{"nftables": []}'
        assert read_state(lambda: (0, empty), legacy=lambda: False).verdict("tcp", 1, {4}) == (
            firewall.NO_RULES
        )
        assert read_state(lambda: (0, empty), legacy=lambda: True).verdict("tcp", 1, {4}) == (
            f"{firewall.NOT_EVALUATED} (iptables-legacy tables are loaded)"
        )


def test_the_watch_reads_once_then_refreshes_in_the_background() -> None:
    now = [0.0]
    reads: list[int] = []
    states = [FirewallState(None, "first"), FirewallState(None, "second")]

    def read() -> FirewallState:
        reads.append(1)
        return states[len(reads) - 1]

    watch = FirewallWatch(read, refresh_s=300.0, clock=lambda: now[0])
    assert watch.state().why_not == "first"
    assert watch.state().why_not == "first" and len(reads) == 1  # cached
    now[0] = 301.0
    assert watch.state().why_not == "first"  # never waits for the refresh
    import time

    deadline = time.monotonic() + 10
    while watch.state().why_not != "second":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert len(reads) == 2


def _can_unshare() -> bool:
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return False
    if shutil.which("unshare") is None or shutil.which("nft") is None:
        return False
    done = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return done.returncode == 0


READER = """
import json, sys
from portwatch.probe.firewall import read_state
state = read_state()
print(json.dumps({f"{p}/{n}": state.verdict(p, n, {4}) for p, n in
                  [("tcp", 80), ("udp", 5050), ("tcp", 3306), ("tcp", 8080)]}))
"""


@pytest.mark.skipif(not _can_unshare(), reason="needs root, nft and network namespaces")
def test_real_nftables_rules_in_a_private_network_namespace(tmp_path: Path) -> None:
    rules = tmp_path / "rules.nft"
    rules.write_text(RULES, encoding="utf-8")
    script = 'nft -f "$1" && exec "$2" -c "$3"'
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, "sh", str(rules), sys.executable, READER],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found == {f"{p}/{n}": words for (p, n), words in EXPECTED.items()}


@wine_gives_pid_0
def test_both_probes_carry_the_firewall_answer_for_a_real_listener(
    child_sockets: list[ChildSockets],
) -> None:
    port = free_port()
    child = ChildSockets.start([("tcp", "0.0.0.0", port, "listen")], registry=child_sockets)
    state = FirewallState(firewall.parse(_chain("inet", "drop")))
    watch = FirewallWatch(lambda: state)
    probes: list[Any] = [PsutilProbe(firewall=watch)]
    if sys.platform.startswith("linux"):
        from portwatch.probe.netlink import NetlinkProbe

        probes.append(NetlinkProbe(firewall=watch))
    try:
        samples = [probe.poll(WatchList((parse_spec(str(port)),))) for probe in probes]
    finally:
        for probe in probes:
            probe.close()
    for probe, sample in zip(probes, samples, strict=True):
        mine = [
            item
            for item in sample.listeners
            if item.port == port and item.owner and item.owner.pid == child.pid
        ]
        assert mine, type(probe).__name__
        exposure = mine[0].exposure
        assert isinstance(exposure, Exposure)
        if exposure.scope == "local":  # a host with no address but loopback
            assert exposure.firewall is None
            continue
        assert exposure.firewall == "the firewall drops it (policy drop in inet t in)"
        assert exposure.firewall_words() == exposure.firewall


def test_docker_proxy_listeners_are_flagged_as_bypassing_the_firewall() -> None:
    from portwatch.core.types import Endpoint, Family, Owner, Proto
    from portwatch.probe.exposure import listener_exposure

    endpoint = Endpoint(Proto.TCP, Family.IPV4, "0.0.0.0", 8080)
    interfaces = {"lo": ["127.0.0.1"], "eth0": ["192.168.1.5"]}
    state = FirewallState(firewall.parse(_chain("inet", "drop")))
    proxy = Owner(pid=3, name="docker-proxy", exe="/usr/bin/docker-proxy")
    exposure = listener_exposure(endpoint, interfaces, None, owner=proxy, firewall=state)
    assert exposure.bypasses_firewall
    assert exposure.firewall_words() == (
        "published by Docker, which bypasses the host firewall's input rules"
    )
    # rootlessport listens in the host's own stack: the host's rules apply to it.
    rootless = Owner(pid=4, name="rootlessport", exe="/usr/libexec/podman/rootlessport")
    exposure = listener_exposure(endpoint, interfaces, None, owner=rootless, firewall=state)
    assert not exposure.bypasses_firewall
    assert exposure.firewall == "the firewall drops it (policy drop in inet t in)"


def _dport(right: Any, verdict: str, op: str = "==") -> list[dict[str, Any]]:
    return [
        {
            "match": {
                "op": op,
                "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                "right": right,
            }
        },
        {verdict: None},
    ]


def test_the_first_rule_that_holds_decides_whatever_its_kind() -> None:
    exact_first = firewall.parse(
        _chain("inet", "drop", _dport(80, "drop"), _dport({"range": [1, 100]}, "accept"))
    )
    assert exact_first.verdict("tcp", 80, {4}).startswith(
        "the firewall drops it (rule tcp dport 80"
    )
    assert exact_first.verdict("tcp", 81, {4}).startswith("the firewall lets it in")
    range_first = firewall.parse(
        _chain("inet", "drop", _dport({"range": [1, 100]}, "accept"), _dport(80, "drop"))
    )
    assert range_first.verdict("tcp", 80, {4}).startswith("the firewall lets it in")
    negated = firewall.parse(_chain("inet", "accept", _dport(22, "drop", op="!=")))
    assert negated.verdict("tcp", 22, {4}) == (
        "the firewall lets it in (policy accept in inet t in)"
    )
    assert negated.verdict("tcp", 23, {4}).startswith("the firewall drops it")
    # A port match on UDP says nothing about TCP.
    assert negated.verdict("udp", 23, {4}).startswith("the firewall lets it in")


def test_ufw_setting_file(tmp_path: Path) -> None:
    from portwatch.probe.firewall import ufw_enabled

    conf = tmp_path / "ufw.conf"
    # /etc/ufw/ufw.conf as Ubuntu 22.04 ships it, after `ufw enable`.
    conf.write_text("# /etc/ufw/ufw.conf\n#\nENABLED=yes\nLOGLEVEL=low\n", encoding="utf-8")
    assert ufw_enabled(str(conf)) is True
    conf.write_text("ENABLED=no\n", encoding="utf-8")
    assert ufw_enabled(str(conf)) is False
    assert ufw_enabled(str(tmp_path / "absent")) is None


@pytest.mark.skipif(
    not (hasattr(os, "geteuid") and os.geteuid() == 0), reason="drops from root to nobody"
)
def test_an_unprivileged_reader_says_not_checked() -> None:
    # Imports as root (the venv may be private to root), then runs as uid 65534.
    code = (
        "import os; from portwatch.probe.firewall import read_state;"
        " os.setgid(65534); os.setuid(65534);"
        " print(read_state(ufw=lambda: None).verdict('tcp', 80, {4}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "firewall not checked (reading the rules needs root)"
