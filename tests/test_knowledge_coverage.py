"""Depth where people look: every registered port answers with its registration, and the
most common ports (tests/common_ports.py) have a curated description."""

from __future__ import annotations

import pytest
from common_ports import TCP, TOP, UDP

from portwatch.core.types import Proto
from portwatch.knowledge import KnowledgeBase
from portwatch.knowledge.render import to_text


@pytest.fixture(scope="module")
def base() -> KnowledgeBase:
    # The curated data as a whole, Linux-only entries included, on whatever OS this runs.
    loaded, problems = KnowledgeBase.load(None, system="linux")
    assert problems == ()
    return loaded


def test_every_registered_port_answers_with_its_registration(base: KnowledgeBase) -> None:
    wrong = []
    for (port, proto), rows in base.registry.exact.items():
        services = [r for r in rows if r.is_service]
        if not services:
            continue
        info = base.lookup(port, proto)
        if services[0] not in info.iana:
            wrong.append(f"{port}/{proto.value}: {info.source} {info.name!r}")
    assert wrong == []


@pytest.mark.parametrize(("ports", "proto"), [(TCP, Proto.TCP), (UDP, Proto.UDP)])
def test_the_common_ports_say_their_registration(
    base: KnowledgeBase, ports: tuple[int, ...], proto: Proto
) -> None:
    assert len(ports) == len(set(ports)) == 300
    for port in ports:
        info = base.lookup(port, proto)
        services = base.registry.services(port, proto)
        text = to_text(info)
        if services:
            assert f'"{services[0].name}"' in text, f"{port}/{proto.value}"
        else:
            assert info.iana_status is not None or info.source == "curated", port
        assert "search IANA" not in text


@pytest.mark.parametrize(("ports", "proto"), [(TCP, Proto.TCP), (UDP, Proto.UDP)])
def test_the_most_common_ports_are_curated(
    base: KnowledgeBase, ports: tuple[int, ...], proto: Proto
) -> None:
    missing = [p for p in ports[:TOP] if base.lookup(p, proto).source != "curated"]
    assert missing == []


def test_common_linux_listeners_are_known(base: KnowledgeBase) -> None:
    # chronyd's command port, VXLAN, a second PostgreSQL cluster.
    assert base.lookup(323, Proto.UDP).name == "chronyd" or base.lookup(323, Proto.UDP).iana
    assert base.lookup(4789, Proto.UDP).name == "vxlan"
    assert "postgres" in base.lookup(5433, Proto.TCP).title.lower()
