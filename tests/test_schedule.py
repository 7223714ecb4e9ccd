"""One scheduling rule for ``portwatch monitor`` and the window's sampler, checked on a
clock that moves only when the test says so (no real waiting)."""

from __future__ import annotations

from typing import Any

import pytest
from fakeclock import FakeClock

from portwatch.engine.schedule import TickSchedule, run
from portwatch.services.sampler import Sampler


class Ticks:
    """A tick source on the fake clock: each tick takes ``cost`` seconds of it."""

    def __init__(self, clock: FakeClock, cost: float = 0.0, limit: int = 200) -> None:
        self.clock = clock
        self.cost = cost
        self.at: list[float] = []
        self.limit = limit
        self.sampler: Sampler | None = None

    def tick(self) -> int:
        self.at.append(self.clock.now)
        self.clock.now += self.cost
        if len(self.at) >= self.limit and self.sampler is not None:
            self.sampler.pause()  # a runaway loop ends the test instead of hanging it
        return len(self.at)

    def set_watchlist(self, watchlist: Any) -> None:
        pass

    def close(self) -> None:
        pass


def test_the_next_tick_is_one_interval_after_the_last_one_started() -> None:
    clock = FakeClock()
    schedule = TickSchedule(5.0, clock.monotonic)
    started = clock.now
    clock.now += 1.5  # the tick took 1.5 s
    assert schedule.delay_after(started) == pytest.approx(3.5)
    assert schedule.overran(started) is None
    clock.now += 6.0  # a tick longer than the interval: the next one at once, and said so
    assert schedule.delay_after(started) == 0.0
    assert schedule.overran(started) == pytest.approx(7.5)
    with pytest.raises(ValueError):
        TickSchedule(0.0)


def test_run_ticks_on_the_interval_until_the_duration_ends() -> None:
    clock = FakeClock()
    ticks = Ticks(clock, cost=0.25)
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        clock.now += seconds
        return False

    assert run(lambda: ticks.tick() and None, TickSchedule(2.0, clock.monotonic), wait, 9.0) == 5
    assert [t - ticks.at[0] for t in ticks.at] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert waits == [1.75] * 4


def test_run_stops_when_told() -> None:
    clock = FakeClock()
    ticks = Ticks(clock)
    stops = iter([False, False, True])
    count = run(
        lambda: ticks.tick() and None, TickSchedule(1.0, clock.monotonic), lambda s: next(stops)
    )
    assert count == 3


def make_sampler(clock: FakeClock, interval_s: float, cost: float = 0.0) -> tuple[Sampler, Ticks]:
    ticks = Ticks(clock, cost)
    sampler = Sampler(lambda: (ticks, []), interval_s, clock)
    ticks.sampler = sampler
    return sampler, ticks


def test_the_sampler_ticks_once_per_interval(qtbot: Any) -> None:
    clock = FakeClock()
    sampler, ticks = make_sampler(clock, 5.0)
    sampler.start()
    assert len(ticks.at) == 1
    clock.advance(4.9)
    assert len(ticks.at) == 1
    clock.advance(0.2)
    assert len(ticks.at) == 2
    clock.advance(50.0)
    assert len(ticks.at) == 12
    gaps = {round(b - a, 6) for a, b in zip(ticks.at, ticks.at[1:], strict=False)}
    assert gaps == {5.0}


def test_the_sampler_follows_a_new_interval_and_never_bursts_after_a_slow_tick(
    qtbot: Any,
) -> None:
    clock = FakeClock()
    sampler, ticks = make_sampler(clock, 2.0, cost=0.5)
    sampler.start()
    clock.advance(10.0)
    assert len(ticks.at) == 6  # at 0, 2, 4, 6, 8, 10
    sampler.set_interval(1.0)
    clock.advance(5.0)
    assert len(ticks.at) == 11
    # One tick as slow as seven intervals: the next starts at once, then the interval
    # again, with no burst to catch up.
    ticks.cost = 7.0
    clock.advance(1.0)
    ticks.cost = 0.0
    before = len(ticks.at)
    clock.advance(3.0)
    assert len(ticks.at) - before <= 4


def test_a_paused_sampler_does_not_tick_and_resumes_at_once_then_on_the_interval(
    qtbot: Any,
) -> None:
    clock = FakeClock()
    sampler, ticks = make_sampler(clock, 5.0)
    paused: list[bool] = []
    sampler.paused_changed.connect(paused.append)
    sampler.start()
    sampler.pause()
    clock.advance(100.0)
    assert len(ticks.at) == 1
    sampler.resume()
    assert paused == [True, False]
    clock.advance(0.0)
    assert len(ticks.at) == 2  # at once, not an interval later
    clock.advance(5.0)
    assert len(ticks.at) == 3
    assert ticks.at[-1] - ticks.at[-2] == 5.0
