"""When ticks run: the one scheduling rule shared by ``portwatch monitor`` and the window.

A tick is due one interval after the previous one *started*, on the monotonic clock
(wall time jumps; the monotonic clock does not). A tick slower than the interval is
followed at once, never overlapped; after a stall (the machine slept) there is one tick
now and then the interval again, never a burst of catch-up ticks.

Time comes in as a seam (``clock``), so the rule is tested without real waiting; the
CLI drives :func:`run` with a blocking wait, the sampler thread arms a timer with
:meth:`TickSchedule.delay_after`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

# Below this the machine would do little but poll (the command line's floor; the
# window's settings have their own range).
MIN_INTERVAL_S = 0.1


class TickSchedule:
    """The delay until the next tick, given when the last one started."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.interval_s = interval_s

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @interval_s.setter
    def interval_s(self, value: float) -> None:
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{value!r} is not a positive number of seconds")
        self._interval_s = value

    def delay_after(self, started: float) -> float:
        """Seconds from now until the tick that follows one started at ``started``."""
        return max(0.0, started + self._interval_s - self.clock())

    def overran(self, started: float) -> float | None:
        """How long the tick started at ``started`` took, when that was longer than the
        interval (the next one then starts at once); None otherwise."""
        elapsed = self.clock() - started
        return elapsed if elapsed > self._interval_s else None


def run(
    tick: Callable[[], None],
    schedule: TickSchedule,
    wait: Callable[[float], bool],
    duration_s: float | None = None,
) -> int:
    """Run ``tick`` on ``schedule`` until ``wait`` reports a stop or ``duration_s`` ends.

    ``wait(seconds)`` blocks for up to that long and returns True to stop (a
    ``threading.Event.wait``). Returns the number of ticks run.
    """
    deadline = None if duration_s is None else schedule.clock() + duration_s
    count = 0
    while True:
        started = schedule.clock()
        tick()
        count += 1
        delay = schedule.delay_after(started)
        if deadline is not None and schedule.clock() + delay >= deadline:
            return count
        if wait(delay):
            return count
