"""The embedded IANA registry, and the one order every answer follows: the user's file,
a curated exact entry, IANA's exact registration, a curated range, the OS services
database, nothing."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portwatch.core.types import Proto
from portwatch.knowledge import KnowledgeBase
from portwatch.knowledge import registry as registry_module
from portwatch.knowledge.render import to_dict, to_html, to_text

TCP, UDP = Proto.TCP, Proto.UDP


@pytest.fixture(scope="module")
def base() -> KnowledgeBase:
    loaded, problems = KnowledgeBase.load(None)
    assert problems == ()
    return loaded


def test_the_resource_says_what_copy_it_is() -> None:
    reg = registry_module.load()
    assert reg.copy_date >= "2026-01-01"
    assert any("CC0" in line for line in reg.header)
    assert any("port-numbers" in line for line in reg.header)
    # Compact: a compressed file well under half a megabyte.
    path = Path(registry_module.__file__).parent.parent / "resources/registry/iana-ports.tsv.gz"
    assert path.stat().st_size < 400_000
    assert gzip.decompress(path.read_bytes()).startswith(b"# IANA")


@pytest.mark.parametrize(
    ("port", "proto", "name"),
    [
        (22, TCP, "ssh"),
        (80, TCP, "http"),
        (631, TCP, "ipp"),
        (1720, TCP, "h323hostcall"),
        (3283, UDP, "net-assistant"),
        (3321, UDP, "vnsstr"),
        (3353, TCP, "fatpipe"),
        (3653, UDP, "tsp"),
        (4789, UDP, "vxlan"),
        (5683, TCP, "coap"),
        (7680, TCP, "ms-do"),
    ],
)
def test_the_registry_knows_registrations_old_and_new(port: int, proto: Proto, name: str) -> None:
    services = registry_module.load().services(port, proto)
    assert services and services[0].name == name


def test_details_come_with_a_registration() -> None:
    reg = registry_module.load()
    (tsp,) = reg.services(3653, TCP)
    assert tsp.reference == "RFC 5572" and tsp.assignee and tsp.registered.startswith("2003")
    assert {s.name for s in reg.services(631, TCP)} == {"ipp", "ipps"}
    assert reg.services(80, TCP)[0].name == "http"


def test_unassigned_reserved_and_dynamic_ranges() -> None:
    reg = registry_module.load()
    assert reg.status(4, TCP) is not None and reg.status(4, TCP).description == "Unassigned"
    assert reg.status(0, UDP) is not None and reg.status(0, UDP).description == "Reserved"
    dynamic = reg.status(50000, TCP)
    assert dynamic is not None and (dynamic.lo, dynamic.hi) == (49152, 65535)
    x11 = reg.range_for(6003, TCP)
    assert x11 is not None and x11.name == "x11" and (x11.lo, x11.hi) == (6000, 6063)
    # Every port has an answer of some kind.
    for port in range(0, 65536, 97):
        for proto in (TCP, UDP):
            assert reg.services(port, proto) or reg.status(port, proto) is not None


def test_an_exact_registration_beats_a_curated_range(base: KnowledgeBase) -> None:
    # 1720 lies in KDE Connect's range, but IANA registers it for H.323.
    info = base.lookup(1720, TCP)
    assert "h323" in info.name.lower() or "H.323" in info.title
    assert info.name != "kdeconnect"
    assert any("kdeconnect" in note for note in info.also_in)
    assert "Also in range 1714-1764" in to_text(info)
    assert base.service_name(1720, TCP) == info.name


def test_apple_remote_desktop_is_not_framehawk(base: KnowledgeBase) -> None:
    info = base.lookup(3283, UDP)
    assert info.name != "framehawk"
    assert "Apple Remote Desktop" in info.title
    assert any(note.startswith("3224-3324/udp") for note in info.also_in)
    assert base.service_name(3283, UDP) == info.name


def test_apt_cacher_ng_is_not_mydoom(base: KnowledgeBase) -> None:
    info = base.lookup(3142, TCP)
    assert info.name == "apt-cacher-ng" and info.source == "curated"
    assert "mydoom" not in base.service_name(3142, TCP)
    # The registry's own name for the number is still said.
    assert any(row.name == "rdc-wh-eos" for row in info.iana)
    assert any("mydoom" in note for note in info.also_in)


def test_no_registered_port_gets_a_curated_ranges_name(base: KnowledgeBase) -> None:
    reg = base.registry
    wrong = []
    for (port, proto), rows in reg.exact.items():
        services = [r for r in rows if r.is_service]
        entry = base.entry_for(port, proto)
        if services and entry is not None and entry.is_range and entry.source == "curated":
            wrong.append(f"{port}/{proto.value}")
    assert wrong == []


def test_the_users_file_beats_everything(tmp_path: Path) -> None:
    path = tmp_path / "ports.toml"
    path.write_text(
        '[[entry]]\nrange = [1700, 1800]\nprotocols = ["tcp"]\nname = "lab"\nsummary = "Lab."\n',
        encoding="utf-8",
    )
    base, problems = KnowledgeBase.load(path)
    assert problems == ()
    assert base.lookup(1720, TCP).name == "lab" and base.service_name(1720, TCP) == "lab"
    assert base.service_name(1720, UDP) != "lab"


def test_a_curated_exact_entry_beats_the_registry_and_states_it(base: KnowledgeBase) -> None:
    info = base.lookup(3353, UDP)
    assert info.source == "curated" and info.name == "fatpipe"
    assert [row.name for row in info.iana] == ["fatpipe"]
    assert '"fatpipe" on 3353/tcp+udp' in to_text(info)


def test_the_os_services_name_comes_after_the_registry(base: KnowledgeBase) -> None:
    # netbase calls 5061 "sip-tls"; IANA registers "sips".
    info = base.lookup(5061, TCP)
    assert info.name == "sips" or info.source == "curated"
    assert base.service_name(5061, TCP) == info.name


def test_unknown_ports_say_what_the_registry_says(base: KnowledgeBase) -> None:
    info = base.lookup(4, TCP)
    assert info.source == "none"
    assert "4/tcp is unassigned" in to_text(info)
    dynamic = base.lookup(61234, TCP)
    assert dynamic.source in ("curated", "none")
    assert "search IANA" not in to_text(base.lookup(4, UDP))


def test_json_and_html_carry_the_registration(base: KnowledgeBase) -> None:
    data = to_dict(base.lookup(1720, UDP))
    assert data["iana"][0]["name"] == "h323hostcall"
    assert data["also_in"] and data["source"] == "registry"
    page = to_html(base.lookup(1720, UDP))
    assert "h323hostcall" in page and "1714-1764" in page


def test_the_short_name_follows_the_same_order(base: KnowledgeBase) -> None:
    # The table, JSON and CSV use service_name(); describe and the panel use lookup().
    for port in [*range(1, 65536, 61), 1720, 3142, 3283, 3321, 3353, 3653]:
        for proto in (TCP, UDP):
            assert base.service_name(port, proto) == base.lookup(port, proto).name


def test_the_registry_is_parsed_on_the_first_port_asked_not_at_load() -> None:
    # A new interpreter: in this one other tests have parsed it already.
    code = (
        "from portwatch.core.types import Proto\n"
        "from portwatch.knowledge import KnowledgeBase, registry\n"
        "base, _ = KnowledgeBase.load()\n"
        "print(registry._read_once.cache_info().currsize)\n"
        "base.lookup(22, Proto.TCP)\n"
        "print(registry._read_once.cache_info().currsize)\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["0", "1"]
