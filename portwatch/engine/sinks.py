"""Where each tick's result goes besides the history: files other tools read.

A sink receives every :class:`TickResult` in order, from the one thread that runs
the ticks. Sinks never raise into the loop: a failure comes back as a warning, so a
full disk under a metrics folder cannot stop the monitoring itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from portwatch.engine.monitor import TickResult

log = logging.getLogger(__name__)


class TickSink(Protocol):
    """Receives every tick's result; returns warnings for people, never raises."""

    def publish(self, result: TickResult) -> list[str]: ...

    def close(self) -> list[str]: ...


class Sinks:
    """Several sinks fed in order, as one."""

    def __init__(self, sinks: Sequence[TickSink] = ()) -> None:
        self._sinks = tuple(sinks)

    def __len__(self) -> int:
        return len(self._sinks)

    def publish(self, result: TickResult) -> list[str]:
        warnings: list[str] = []
        for sink in self._sinks:
            warnings.extend(sink.publish(result))
        return warnings

    def close(self) -> list[str]:
        warnings: list[str] = []
        for sink in self._sinks:
            warnings.extend(sink.close())
        return warnings
