"""The port table answers exactly what painting every port would, in log time."""

from __future__ import annotations

import random
import time

from portwatch.core.types import Proto
from portwatch.knowledge.model import Entry
from portwatch.knowledge.table import PortTable


def entry(lo: int, hi: int, protocols: tuple[Proto, ...], name: str) -> Entry:
    return Entry(lo=lo, hi=hi, protocols=protocols, name=name, title="", summary="")


def painted(entries: list[Entry]) -> dict[tuple[int, Proto], Entry]:
    # The reference: widest first, each port overwritten by narrower (and later) ones.
    table: dict[tuple[int, Proto], Entry] = {}
    for e in sorted(entries, key=lambda e: -e.width):
        for proto in e.protocols:
            for port in range(e.lo, e.hi + 1):
                table[(port, proto)] = e
    return table


def test_same_answers_as_painting_every_port() -> None:
    rng = random.Random(7)
    for _round in range(30):
        entries = []
        for i in range(rng.randint(0, 25)):
            lo = rng.randint(1, 300)
            hi = lo + rng.choice((0, 0, 1, 5, 40, 200))
            protos = rng.choice(((Proto.TCP,), (Proto.UDP,), (Proto.TCP, Proto.UDP)))
            entries.append(entry(lo, hi, protos, f"e{i}"))
        expected = painted(entries)
        table = PortTable(entries)
        for port in range(0, 520):
            for proto in Proto:
                assert table.get((port, proto)) is expected.get((port, proto)), (port, proto)


def test_many_wide_ranges_build_quickly() -> None:
    entries = [
        entry(lo, min(lo + 30_000, 65535), (Proto.TCP, Proto.UDP), f"r{lo}")
        for lo in range(1, 60_000, 6)
    ]  # 10,000 wide ranges: painting them would touch 600 million ports
    started = time.perf_counter()
    table = PortTable(entries)
    assert time.perf_counter() - started < 5
    assert table.get((30_001, Proto.TCP)) is not None
