"""What "why is it open, who can reach it" costs (Linux).

Prints:
- one ``nft -j list ruleset`` reading (median of 5; only as root with nft installed),
  which runs once at start and then in the background every five minutes;
- evaluating a flat ruleset of 5,000 port rules for 200 ports: the first poll (every
  port walked) and a later poll (answers cached per port);
- a steady poll of each probe with 200 listeners on 0.0.0.0, with a firewall reading
  and without one (ratio), so the firewall's share of a poll is a figure, not a guess.

    PYTHONPATH=$PWD python benchmarks/bench_why.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from childsockets import ChildSockets

from portwatch.core import firewall
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.probe.firewall import NOT_READ, FirewallState, FirewallWatch, read_state


def _median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _flat_ruleset(rules: int) -> firewall.Ruleset:
    chain = firewall.Chain(
        family="inet",
        table="filter",
        name="input",
        policy="drop",
        rules=tuple(
            (
                {
                    "match": {
                        "op": "==",
                        "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                        "right": 20000 + n,
                    }
                },
                {"accept": None},
            )
            for n in range(rules)
        ),
    )
    return firewall.Ruleset(tables=1, chains=(chain,))


def main() -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("nft"):
        print(f"nft -j list ruleset, one reading: {_median_ms(read_state, 5):.1f} ms (median of 5)")
    else:
        print("nft reading: not measured (needs root and nft)")

    ports = range(30000, 30200)
    state = FirewallState(_flat_ruleset(5000))
    first = _median_ms(lambda: [state.verdict("tcp", p, {4}) for p in ports], 1)
    later = _median_ms(lambda: [state.verdict("tcp", p, {4}) for p in ports], 5)
    print(
        f"5,000 rules x 200 ports: first poll {first:.1f} ms, later polls {later:.2f} ms"
        f" ({first / max(later, 1e-6):.0f}x)"
    )

    child = ChildSockets.start([("tcp", "0.0.0.0", 0, "listen")] * 200)
    try:
        watched = WatchList(tuple(parse_spec(str(p)) for p in child.ports[:50]))
        from portwatch.probe.netlink import NetlinkProbe
        from portwatch.probe.psutil_probe import PsutilProbe

        read = FirewallState(_flat_ruleset(5000))
        for name, make in (("netlink", NetlinkProbe), ("psutil", PsutilProbe)):
            figures = []
            for label, watch in (
                ("with a firewall reading", FirewallWatch(lambda: read)),
                ("without", FirewallWatch(lambda: NOT_READ)),
            ):
                probe: Any = make(firewall=watch)
                try:
                    probe.poll(watched)
                    ms = _median_ms(lambda p=probe: p.poll(watched), 15)
                finally:
                    probe.close()
                figures.append(ms)
                print(f"{name} steady poll, 200 listeners, {label}: {ms:.1f} ms")
            print(f"{name}: with/without = {figures[0] / figures[1]:.2f}")
    finally:
        child.stop()


if __name__ == "__main__":
    main()
