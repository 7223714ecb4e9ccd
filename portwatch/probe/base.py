"""What every probe back-end promises."""

from __future__ import annotations

from typing import Protocol

from portwatch.core.types import Sample
from portwatch.core.watchlist import WatchList


class ProbeError(RuntimeError):
    """The probe could not produce a sample at all (never raised for one bad row)."""


class Probe(Protocol):
    """Reads the OS connection tables and returns one :class:`Sample` per call.

    Per-row failures (a process that exited, access denied) never escape: the row is
    kept, unattributed or partly described. ``ProbeError`` is raised only when no
    sample can be made at all.
    """

    name: str

    def poll(self, watched: WatchList) -> Sample:
        """One reading: all listeners, and activity counts for the watched ports."""
        ...

    def close(self) -> None:
        """Release OS resources (sockets, caches)."""
        ...
