"""A clock for tests: time moves only when the test says so, and timers fire then.

Passed to services through their ``clock`` parameter (``services.clock.Clock``), so a
rule such as "one summary a minute" or "the snooze ends at noon" is checked in
microseconds, in order, without real waiting.
"""

from __future__ import annotations

from collections.abc import Callable


class FakeTimer:
    def __init__(self, clock: FakeClock, callback: Callable[[], None], single_shot: bool) -> None:
        self._clock = clock
        self._callback = callback
        self._single_shot = single_shot
        self.interval_s = 0.0
        self.due: float | None = None

    def start(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.due = self._clock.now + interval_s

    def stop(self) -> None:
        self.due = None

    def is_active(self) -> bool:
        return self.due is not None

    def fire(self) -> None:
        self.due = None if self._single_shot else self._clock.now + max(self.interval_s, 1e-3)
        self._callback()


class FakeClock:
    """Monotonic and wall time that advance together, by hand."""

    def __init__(self, now: float = 1000.0, wall_offset: float = 1_700_000_000.0) -> None:
        self.now = now
        self.wall_offset = wall_offset
        self.timers: list[FakeTimer] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self.wall_offset

    def timer(self, callback: Callable[[], None], *, single_shot: bool) -> FakeTimer:
        timer = FakeTimer(self, callback, single_shot)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that falls due on the way, in order."""
        end = self.now + seconds
        while True:
            due = [t for t in self.timers if t.due is not None and t.due <= end]
            if not due:
                break
            timer = min(due, key=lambda t: t.due or 0.0)
            self.now = max(self.now, timer.due or self.now)
            timer.fire()
        self.now = end
