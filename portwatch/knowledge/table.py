"""Which description covers a port: the most specific entry, found in log time.

Building a dict of every (port, protocol) a range covers costs the sum of the ranges'
widths (200 wide ranges in a user's file took seconds to load). Instead the entries
are swept once into sorted, non-overlapping segments, each with the entry that wins
there, and a lookup is a binary search.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Iterable

from portwatch.core.types import Proto
from portwatch.knowledge.model import Entry


class PortTable:
    """Maps (port, protocol) to the covering entry: the narrowest one, and among equally
    narrow ones the last given (so a later file or line overrides an earlier one)."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self._starts: dict[Proto, list[int]] = {}
        self._winners: dict[Proto, list[Entry | None]] = {}
        ordered = list(entries)
        for proto in Proto:
            starts, winners = _segments(
                [(i, e) for i, e in enumerate(ordered) if proto in e.protocols]
            )
            self._starts[proto] = starts
            self._winners[proto] = winners

    def get(self, key: tuple[int, Proto]) -> Entry | None:
        port, proto = key
        starts = self._starts.get(proto)
        if not starts:
            return None
        index = bisect_right(starts, port) - 1
        return self._winners[proto][index] if index >= 0 else None


def _segments(items: list[tuple[int, Entry]]) -> tuple[list[int], list[Entry | None]]:
    """Sweep the entries' bounds: at each bound, the best entry still open wins."""
    opening: dict[int, list[tuple[int, Entry]]] = {}
    bounds: set[int] = set()
    for order, entry in items:
        opening.setdefault(entry.lo, []).append((order, entry))
        bounds.update((entry.lo, entry.hi + 1))
    starts: list[int] = []
    winners: list[Entry | None] = []
    # Heap of (-priority): narrowest first, then the latest given.
    heap: list[tuple[int, int, int, Entry]] = []
    for bound in sorted(bounds):
        for order, entry in opening.get(bound, ()):
            heapq.heappush(heap, (entry.width, -order, entry.hi, entry))
        while heap and heap[0][2] < bound:  # closed before this bound
            heapq.heappop(heap)
        winner = heap[0][3] if heap else None
        if winners and winners[-1] is winner:
            continue
        starts.append(bound)
        winners.append(winner)
    return starts, winners
