"""The "why is it open, who can reach it" words every view shares."""

from __future__ import annotations

from portwatch.core.exposure import Exposure
from portwatch.core.text import visible
from portwatch.core.types import Endpoint, Family, Listener, Owner, PackageInfo, Proto
from portwatch.core.why import WhyFields, sentence

EP = Endpoint(Proto.TCP, Family.IPV4, "0.0.0.0", 80)
NGINX = Owner(
    pid=812,
    create_time=1.0,
    name="nginx",
    exe="/usr/sbin/nginx",
    sha256="ab" * 32,
    package=PackageInfo("nginx-core", "1.22.1-9", "dpkg"),
    started_by="systemd unit nginx.service",
    parents=(("systemd", 1),),
)
LAN = Exposure("network", addresses=("192.168.1.5",), everywhere=True)


def test_the_issue_sentence() -> None:
    text = sentence(Listener(EP, NGINX, exposure=LAN))
    assert text.startswith(
        "Started by systemd unit nginx.service (package nginx-core 1.22.1-9),"
        " reachable from the local network at 192.168.1.5."
    )
    # Never a guess about the firewall.
    assert text.endswith(" Firewall not checked.")


def test_loopback_needs_no_firewall_words() -> None:
    local = Exposure("local")
    assert sentence(Listener(EP, NGINX, exposure=local)) == (
        "Started by systemd unit nginx.service (package nginx-core 1.22.1-9),"
        " reachable from this computer only."
    )


def test_unknown_parts_are_said_to_be_unknown() -> None:
    bare = Owner(pid=5, name="x")
    assert sentence(Listener(EP, bare)) == (
        "What started it is not known, who can reach it was not worked out."
    )
    assert sentence(Listener(EP, None, exposure=LAN)).startswith(
        "The OS does not say which program owns it, reachable from the local network"
    )
    child = Owner(pid=6, name="x", parents=(("bash", 1200), ("sshd", 900)))
    assert sentence(Listener(EP, child, exposure=LAN)).startswith("Started by bash (pid 1200),")


def test_public_and_docker_bypass_are_said() -> None:
    public = Exposure(
        "public", addresses=("192.168.1.5", "203.0.113.7"), everywhere=True, bypasses_firewall=True
    )
    text = sentence(Listener(EP, NGINX, exposure=public))
    assert (
        "reachable from all interfaces, including a public address (192.168.1.5, 203.0.113.7)"
        in text
    )
    assert text.endswith("Published by Docker, which bypasses the host firewall's input rules.")


def test_untrusted_parts_go_through_the_callers_escaping() -> None:
    hostile = Owner(pid=7, name="x", started_by="systemd unit evil\u202egnp.service")
    text = sentence(Listener(EP, hostile, exposure=LAN), visible)
    assert "\u202e" not in text and "\\u202e" in text


def test_fields_for_csv_and_history() -> None:
    fields = WhyFields.of(Listener(EP, NGINX, exposure=LAN))
    assert fields.values() == (
        "systemd unit nginx.service",
        "nginx-core 1.22.1-9",
        "systemd (1)",
        "network",
        "local network: 192.168.1.5",
        "firewall not checked",
        "",
    )
