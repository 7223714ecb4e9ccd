"""Verdicts, not only listeners, produce events: the engine alerts once whenever a watched
listener becomes untrusted, whatever made it so, and never about unwatched ports.

The probe here is a seam we own: it hands the engine the listeners a test sets, either
as the very same tuple while nothing changes (as the netlink probe does) or as a fresh,
equal tuple every poll (as the psutil probe does); both must behave the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from trust_fixtures import listener, owner

from portwatch.core.alerts import ALERTING_KINDS
from portwatch.core.trust import TrustJudge, TrustList, trust_listener
from portwatch.core.types import EventKind, Listener, PortEvent, Sample, Status
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.engine.monitor import Monitor, TickResult


class SetProbe:
    """Returns the listeners the test set; ``fresh`` copies the tuple on every poll."""

    name = "set"

    def __init__(self, fresh: bool) -> None:
        self.fresh = fresh
        self.listeners: tuple[Listener, ...] = ()
        self.polls = 0

    def poll(self, watched: WatchList) -> Sample:
        self.polls += 1
        listeners = tuple(list(self.listeners)) if self.fresh else self.listeners
        return Sample(
            wall=1_763_700_000.0 + self.polls, mono=float(self.polls), listeners=listeners
        )

    def close(self) -> None:
        pass


def watch(*specs: str) -> WatchList:
    return WatchList(tuple(parse_spec(s) for s in specs))


UNTRUSTED = listener(4444, owner("/tmp/intruder", pid=900))
TRUSTED_PROGRAM = listener(3653, owner("/usr/bin/good", pid=901))


@pytest.fixture(params=["same tuple", "fresh tuple"])
def probe(request: pytest.FixtureRequest) -> Iterator[SetProbe]:
    yield SetProbe(fresh=request.param == "fresh tuple")


def alerting(result: TickResult) -> list[PortEvent]:
    return [e for e in result.events if e.kind in ALERTING_KINDS]


def ticks(monitor: Monitor, count: int) -> list[PortEvent]:
    out: list[PortEvent] = []
    for _ in range(count):
        out += alerting(monitor.tick())
    return out


def test_a_port_added_to_the_watch_list_under_an_untrusted_program_alerts_once(
    probe: SetProbe,
) -> None:
    probe.listeners = (UNTRUSTED, TRUSTED_PROGRAM)
    monitor = Monitor(probe, None, watch("3653"), judge=TrustJudge(TrustList()))
    first = monitor.tick()
    # 3653 is watched and nobody is trusted there; 4444 is not watched yet.
    assert [e.listener.port for e in alerting(first)] == [3653]
    assert ticks(monitor, 3) == []

    monitor.set_watchlist(watch("3653", "4444"))
    (event,) = ticks(monitor, 1)
    assert event.kind is EventKind.UNKNOWN_OWNER
    assert event.listener == UNTRUSTED
    assert event.watched and event.status is Status.UNKNOWN
    assert event.detail == "no program is trusted for 4444/tcp"
    # No repeat while nothing changes.
    assert ticks(monitor, 5) == []

    # Unwatched and watched again: that is news again.
    monitor.set_watchlist(watch("3653"))
    assert ticks(monitor, 2) == []
    monitor.set_watchlist(watch("3653", "4444"))
    assert [e.listener for e in ticks(monitor, 3)] == [UNTRUSTED]


def test_trust_removed_from_a_program_holding_a_watched_port_alerts_once(
    probe: SetProbe,
) -> None:
    probe.listeners = (TRUSTED_PROGRAM,)
    spec = parse_spec("3653")
    trusted = trust_listener(TrustList(), TRUSTED_PROGRAM, spec, 0.0)
    judge = TrustJudge(trusted)
    monitor = Monitor(probe, None, watch("3653"), judge=judge)
    assert ticks(monitor, 3) == []
    assert monitor.tick().views[0].status is Status.KNOWN

    judge.set_trust_list(TrustList())
    (event,) = ticks(monitor, 1)
    assert event.kind is EventKind.UNKNOWN_OWNER
    assert event.listener == TRUSTED_PROGRAM
    assert ticks(monitor, 5) == []

    # Trusted again: quiet. Removed again: one alert again.
    judge.set_trust_list(trusted)
    assert ticks(monitor, 2) == []
    judge.set_trust_list(TrustList())
    assert len(ticks(monitor, 3)) == 1


def test_a_new_judge_is_a_trust_change_too(probe: SetProbe) -> None:
    probe.listeners = (TRUSTED_PROGRAM,)
    trusted = trust_listener(TrustList(), TRUSTED_PROGRAM, parse_spec("3653"), 0.0)
    monitor = Monitor(probe, None, watch("3653"), judge=TrustJudge(trusted))
    assert ticks(monitor, 2) == []
    monitor.set_judge(TrustJudge(TrustList()))
    assert len(ticks(monitor, 3)) == 1


def test_a_listener_that_appears_untrusted_alerts_once_and_again_for_another_program(
    probe: SetProbe,
) -> None:
    monitor = Monitor(probe, None, watch("4444"), judge=TrustJudge(TrustList()))
    assert ticks(monitor, 2) == []
    probe.listeners = (UNTRUSTED,)
    result = monitor.tick()
    kinds = [e.kind for e in result.events]
    # The alert follows the event that explains it.
    assert kinds == [EventKind.OPENED, EventKind.UNKNOWN_OWNER]
    assert ticks(monitor, 5) == []
    # The same process exec()s another program: another untrusted program, another alert.
    other = listener(4444, owner("/tmp/second-stage", pid=900))
    probe.listeners = (other,)
    events = monitor.tick().events
    assert [e.kind for e in events] == [EventKind.OWNER_CHANGED, EventKind.UNKNOWN_OWNER]
    assert ticks(monitor, 3) == []


def test_a_trusted_file_replaced_is_reported_as_binary_changed_once(probe: SetProbe) -> None:
    trusted = trust_listener(TrustList(), TRUSTED_PROGRAM, parse_spec("3653"), 0.0)
    monitor = Monitor(probe, None, watch("3653"), judge=TrustJudge(trusted))
    probe.listeners = (TRUSTED_PROGRAM,)
    assert ticks(monitor, 2) == []
    replaced = listener(3653, owner("/usr/bin/good", "ff" * 32, pid=901))
    probe.listeners = (replaced,)
    (event,) = ticks(monitor, 4)
    assert event.kind is EventKind.BINARY_CHANGED
    assert event.detail and "ff" * 32 in event.detail


def test_no_alerting_event_ever_names_an_unwatched_port(probe: SetProbe) -> None:
    hidden = listener(5555, None)
    hostile = listener(6666, owner("/tmp/x", pid=902))
    monitor = Monitor(probe, None, watch("3653"), judge=TrustJudge(TrustList()))
    seen: list[PortEvent] = []
    for listeners in [(UNTRUSTED,), (UNTRUSTED, hidden), (hostile, hidden), (), (hostile,)]:
        probe.listeners = listeners
        result = monitor.tick()
        seen += result.events
        # Unwatched listeners are neither judged nor alarming: a neutral status.
        assert {v.status for v in result.views} <= {Status.UNWATCHED}
        assert result.alerts == ()
    assert seen, "the listeners' own events are still reported"
    assert all(not e.watched and e.status is Status.UNWATCHED for e in seen)
    assert [e for e in seen if e.kind in ALERTING_KINDS] == []


def test_unchanged_listeners_are_not_judged_again(probe: SetProbe) -> None:
    class CountingJudge(TrustJudge):
        calls = 0

        def judge(self, item: Listener):  # type: ignore[no-untyped-def]
            CountingJudge.calls += 1
            return super().judge(item)

    judge = CountingJudge(TrustList())
    probe.listeners = tuple(listener(3000 + n, owner("/tmp/x", pid=1000 + n)) for n in range(50))
    monitor = Monitor(probe, None, watch("3000-3100"), judge=judge)
    monitor.tick()
    assert CountingJudge.calls == 50
    for _ in range(5):
        monitor.tick()
    assert CountingJudge.calls == 50
    probe.listeners = (*probe.listeners, listener(3099, owner("/tmp/y", pid=2000)))
    monitor.tick()
    assert CountingJudge.calls == 51
    judge.set_trust_list(TrustList())
    monitor.tick()
    assert CountingJudge.calls == 102


def test_a_new_exposure_reaches_the_views_without_an_event() -> None:
    """A probe that builds listeners anew each poll (psutil): a listener equal but for
    its exposure (a new address, a new firewall reading) keeps its judgement and raises
    no event, and its view carries the new exposure."""
    from dataclasses import replace

    from portwatch.core.exposure import Exposure

    probe = SetProbe(fresh=True)
    first = Exposure("network", addresses=("192.168.1.5",), everywhere=True)
    later = replace(first, firewall="no firewall rules loaded")
    many = [listener(5000 + n, owner(f"/usr/bin/p{n}", pid=1000 + n)) for n in range(4)]
    probe.listeners = tuple(replace(item, exposure=first) for item in many)
    monitor = Monitor(probe, None, watch("5000-5003"), judge=TrustJudge(TrustList()))
    monitor.tick()
    probe.listeners = tuple(replace(item, exposure=later) for item in many)
    result = monitor.tick()
    assert result.events == ()
    assert {view.listener.exposure for view in result.views} == {later}
