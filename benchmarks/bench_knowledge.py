"""How fast port descriptions are looked up.

Times, for every one of the 131,070 port/protocol pairs:
  1. the first (cold) lookup, which asks the OS services database once per pair;
  2. a second pass over all pairs, with OS names cached but the description cache
     (bounded) too small to hold them all, so every description is built again;
  3. service_name() for every pair, which is what the table and the CSV use;
and a realistic poll: 300 listeners looked up 1,000 times, all cache hits.

Run from the repository root:  PYTHONPATH=$PWD python benchmarks/bench_knowledge.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

from portwatch.core.types import Proto
from portwatch.knowledge import KnowledgeBase

PAIRS = [(port, proto) for port in range(1, 65536) for proto in (Proto.TCP, Proto.UDP)]


def timed(label: str, count: int, work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    elapsed = time.perf_counter() - start
    per = elapsed / count * 1e6
    print(f"{label:<46} {count:>9,} in {elapsed * 1000:9.1f} ms = {per:7.2f} µs each")
    return elapsed


def main() -> None:
    start = time.perf_counter()
    base, _ = KnowledgeBase.load(None)
    loaded = (time.perf_counter() - start) * 1000
    print(f"{'load (embedded TOML, precomputed table)':<46} {loaded:9.1f} ms")

    def lookup_all() -> None:
        for port, proto in PAIRS:
            base.lookup(port, proto)

    def names_all() -> None:
        for port, proto in PAIRS:
            base.service_name(port, proto)

    cold = timed("lookup, every pair, cold", len(PAIRS), lookup_all)
    warm = timed("lookup, every pair, OS names cached", len(PAIRS), lookup_all)
    timed("service_name, every pair", len(PAIRS), names_all)

    listeners = PAIRS[::437][:300]
    polls = 1000

    def poll() -> None:
        for _ in range(polls):
            for port, proto in listeners:
                base.lookup(port, proto)

    timed(
        f"lookup, {len(listeners)} listeners x {polls} polls (hits)", len(listeners) * polls, poll
    )
    print(f"total for all {len(PAIRS):,} pairs: cold {cold:.2f} s, warm {warm:.2f} s")


if __name__ == "__main__":
    main()
