"""The alert policy with a fake monotonic clock: one alert per program and port, few per
minute, one summary for the rest, snooze and pause, no burst after a clock jump."""

from __future__ import annotations

import datetime as dt

from trust_fixtures import event, listener, owner, sha

from portwatch.core.alert_policy import (
    PolicySettings,
    RateLimitedPolicy,
    seconds_until_tomorrow,
)
from portwatch.core.alerts import Alert, Urgency
from portwatch.core.types import EventKind, Owner, Proto
from portwatch.core.watchlist import parse_spec

UNKNOWN = EventKind.UNKNOWN_OWNER


class FakeClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def singles(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if not a.folded]


def summaries(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.folded]


def test_one_alert_per_identity_and_port_per_cooldown() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy()
    who = owner("/usr/bin/evil")
    first = policy.alerts_for([event(UNKNOWN, listener(3653, who))], clock.now)
    assert len(first) == 1
    assert first[0].urgency is Urgency.NORMAL
    assert "3653/tcp" in first[0].title
    # The same program again (a restart, a new pid) within the cooldown: silent.
    again = owner("/usr/bin/evil", pid=9)
    assert policy.alerts_for([event(UNKNOWN, listener(3653, again))], clock.advance(600)) == []
    # Another port, another protocol or another program: alerts of their own.
    assert len(policy.alerts_for([event(UNKNOWN, listener(3321, who))], clock.advance(1))) == 1
    assert len(policy.alerts_for([event(UNKNOWN, listener(3653, who, Proto.UDP))], clock.now)) == 1
    other = owner("/usr/bin/evil", sha("other build"))
    assert len(policy.alerts_for([event(UNKNOWN, listener(3653, other))], clock.advance(61))) == 1
    # After the cooldown the first program alerts again.
    assert len(policy.alerts_for([event(UNKNOWN, listener(3653, who))], clock.advance(1800))) == 1


def test_cooldown_is_configurable() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy(PolicySettings(cooldown_s=60))
    ev = event(UNKNOWN, listener(3653, owner("/usr/bin/evil")))
    assert len(policy.alerts_for([ev], clock.now)) == 1
    assert policy.alerts_for([ev], clock.advance(59)) == []
    assert len(policy.alerts_for([ev], clock.advance(1))) == 1


def test_unwatched_and_non_alerting_events_never_notify() -> None:
    policy = RateLimitedPolicy()
    lst = listener(8080, owner("/usr/bin/evil"))
    assert policy.alerts_for([event(UNKNOWN, lst, watched=False)], 0.0) == []
    for kind in (EventKind.OPENED, EventKind.CLOSED, EventKind.OWNER_CHANGED):
        assert policy.alerts_for([event(kind, listener(3653, owner()))], 0.0) == []


def test_hundred_unknown_listeners_at_once_give_three_alerts_and_one_summary() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy()
    events = [
        event(UNKNOWN, listener(3224 + i, owner(f"/tmp/x{i}", pid=1000 + i)), clock.now)
        for i in range(100)
    ]
    alerts = policy.alerts_for(events, clock.now)
    assert len(singles(alerts)) == 3
    [summary] = summaries(alerts)
    assert summary.folded == 97
    assert "97 more" in summary.title
    assert len(summary.events) == 97
    # The following ticks bring nothing new: nothing more is shown.
    for _ in range(10):
        assert policy.alerts_for([], clock.advance(2)) == []


def test_summary_is_single_per_window_and_flushed_later() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy()
    burst = [
        event(UNKNOWN, listener(4000 + i, owner(f"/tmp/a{i}", pid=i + 10)), clock.now)
        for i in range(5)
    ]
    first = policy.alerts_for(burst, clock.now)
    assert len(singles(first)) == 3
    assert [s.folded for s in summaries(first)] == [2]
    # More arrive ten seconds later: over the limit, and a summary was just shown.
    later = [
        event(UNKNOWN, listener(5000 + i, owner(f"/tmp/b{i}", pid=i + 50)), clock.now)
        for i in range(4)
    ]
    assert policy.alerts_for(later, clock.advance(10)) == []
    assert policy.alerts_for([], clock.advance(10)) == []
    # Once the window has passed, one summary carries what was held back.
    flushed = policy.alerts_for([], clock.advance(41))
    assert [a.folded for a in flushed] == [4]


def test_port_bound_and_released_fifty_times_alerts_once() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy()
    shown: list[Alert] = []
    for i in range(50):
        # Each bind is a new process instance of the same program.
        who = owner("/usr/bin/flappy", pid=2000 + i, create_time=float(i))
        shown += policy.alerts_for(
            [event(EventKind.OPENED, listener(3653, who)), event(UNKNOWN, listener(3653, who))],
            clock.advance(1),
        )
        shown += policy.alerts_for([event(EventKind.CLOSED, listener(3653, who))], clock.advance(1))
    assert len(shown) == 1


def test_unattributed_owner_gets_one_low_urgency_alert_per_port() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy()
    hidden = [Owner(pid=p, note="access denied") for p in (11, 12)]
    alerts = policy.alerts_for(
        [
            event(EventKind.UNATTRIBUTED_OWNER, listener(3653, hidden[0])),
            event(EventKind.UNATTRIBUTED_OWNER, listener(3653, hidden[1], address="::1")),
            event(EventKind.UNATTRIBUTED_OWNER, listener(3653, None)),
        ],
        clock.now,
    )
    [alert] = alerts
    assert alert.urgency is Urgency.LOW
    assert "may not inspect" in alert.title
    assert "3653/tcp" in alert.title
    assert (
        policy.alerts_for(
            [event(EventKind.UNATTRIBUTED_OWNER, listener(3653, None))], clock.advance(900)
        )
        == []
    )
    assert (
        len(
            policy.alerts_for(
                [event(EventKind.UNATTRIBUTED_OWNER, listener(3653, None))], clock.advance(901)
            )
        )
        == 1
    )


def test_binary_changed_alert_names_both_hashes() -> None:
    policy = RateLimitedPolicy()
    new = owner("/opt/app/server", sha("v2"))
    ev = event(
        EventKind.BINARY_CHANGED,
        listener(3653, new),
        extra={"previous_sha256": sha("v1")},
    )
    [alert] = policy.alerts_for([ev], 0.0)
    assert "changed" in alert.title
    assert sha("v1")[:12] in alert.text
    assert sha("v2")[:12] in alert.text


def test_snooze_one_port_until_a_deadline() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy()
    policy.snooze(parse_spec("3653"), until_mono=clock.now + 3600)
    snoozed = event(UNKNOWN, listener(3653, owner("/usr/bin/a")))
    other = event(UNKNOWN, listener(3321, owner("/usr/bin/a")))
    alerts = policy.alerts_for([snoozed, other], clock.now)
    assert [a.port for a in alerts] == [3321]
    assert parse_spec("3653") in policy.snoozed(clock.now)
    # After the hour, the port alerts again (a new event for it).
    late = event(UNKNOWN, listener(3653, owner("/usr/bin/b")))
    assert [a.port for a in policy.alerts_for([late], clock.advance(3601))] == [3653]
    assert policy.snoozed(clock.now) == {}
    policy.snooze(parse_spec("3653"), until_mono=clock.now + 10)
    policy.unsnooze(parse_spec("3653"))
    assert policy.alerts_for([event(UNKNOWN, listener(3653, owner("/x/c")))], clock.now)


def test_pause_and_resume() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy()
    policy.pause()
    assert policy.is_paused(clock.now)
    assert policy.alerts_for([event(UNKNOWN, listener(3653, owner("/a/b")))], clock.now) == []
    policy.resume()
    assert len(policy.alerts_for([event(UNKNOWN, listener(3653, owner("/c/d")))], clock.now)) == 1
    policy.pause(until_mono=clock.now + 100)
    assert policy.alerts_for([event(UNKNOWN, listener(3653, owner("/e/f")))], clock.now) == []
    assert (
        len(policy.alerts_for([event(UNKNOWN, listener(3653, owner("/g/h")))], clock.advance(100)))
        == 1
    )


def test_clock_jump_catch_up_poll_stays_within_limits() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy()
    assert len(policy.alerts_for([event(UNKNOWN, listener(3653, owner("/a")))], clock.now)) == 1
    # Asleep for ten hours: the catch-up poll sees many changes at once.
    clock.advance(10 * 3600)
    catch_up = [event(UNKNOWN, listener(6000 + i, owner(f"/n{i}"))) for i in range(20)]
    catch_up.append(event(UNKNOWN, listener(3653, owner("/a"))))
    alerts = policy.alerts_for(catch_up, clock.now)
    assert len(singles(alerts)) == 3
    assert [s.folded for s in summaries(alerts)] == [18]
    # A clock that runs backwards (a restored or faked one) never reopens a cooldown
    # or the rate window.
    back = policy.alerts_for(
        [event(UNKNOWN, listener(7000 + i, owner(f"/m{i}"))) for i in range(5)], clock.now - 5000
    )
    assert singles(back) == []


def test_rate_window_counts_across_ticks() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy()
    shown = 0
    for i in range(6):
        alerts = policy.alerts_for(
            [event(UNKNOWN, listener(3653, owner(f"/p{i}")))], clock.advance(5)
        )
        shown += len(singles(alerts))
    assert shown == 3
    # A minute later there is room again.
    alerts = policy.alerts_for([event(UNKNOWN, listener(3653, owner("/q")))], clock.advance(60))
    assert len(singles(alerts)) == 1


def test_seconds_until_tomorrow_uses_local_wall_time() -> None:
    assert seconds_until_tomorrow(dt.datetime(2026, 11, 21, 23, 0, 0)) == 3600
    assert seconds_until_tomorrow(dt.datetime(2026, 11, 21, 0, 0, 0)) == 86400


def test_by_default_one_alert_per_program_and_port_per_half_hour_and_three_a_minute() -> None:
    # The defaults people are told about: the settings' cooldown is this one.
    clock = FakeClock()
    policy = RateLimitedPolicy()
    ev = event(UNKNOWN, listener(3653, owner("/usr/bin/evil")))
    assert len(policy.alerts_for([ev], clock.now)) == 1
    assert policy.alerts_for([ev], clock.advance(30 * 60 - 1)) == []
    assert len(policy.alerts_for([ev], clock.advance(1))) == 1
    clock.advance(60)
    burst = [event(UNKNOWN, listener(5000 + i, owner(f"/tmp/d{i}"))) for i in range(4)]
    alerts = policy.alerts_for(burst, clock.now)
    assert len(singles(alerts)) == 3
    assert [s.folded for s in summaries(alerts)] == [1]


def test_alerts_folded_into_a_summary_are_not_alerted_again_within_the_cooldown() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy()
    burst = [event(UNKNOWN, listener(4000 + i, owner(f"/tmp/f{i}"))) for i in range(5)]
    first = policy.alerts_for(burst, clock.now)
    assert len(singles(first)) == 3
    assert [s.folded for s in summaries(first)] == [2]
    # The same five still there a few minutes later: the summary told about the two it
    # counted, so none of the five comes back on its own.
    assert policy.alerts_for(burst, clock.advance(300)) == []


def test_a_summary_held_back_waits_while_alerts_are_paused() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy()
    policy.alerts_for(
        [event(UNKNOWN, listener(4000 + i, owner(f"/tmp/g{i}"))) for i in range(4)], clock.now
    )
    # More than the limit ten seconds later: folded, its summary held for the window.
    held = [event(UNKNOWN, listener(4100 + i, owner(f"/tmp/h{i}"))) for i in range(3)]
    assert policy.alerts_for(held, clock.advance(10)) == []
    assert policy.has_pending_summary()
    policy.pause()
    assert policy.alerts_for([], clock.advance(120)) == []
    policy.resume()
    assert [a.folded for a in policy.alerts_for([], clock.advance(1))] == [3]


def test_a_clock_that_went_back_does_not_shorten_cooldowns_measured_from_later_times() -> None:
    clock = FakeClock()
    policy = RateLimitedPolicy()
    # Three alerts and a summary of one: the rate window and the summary's are in use.
    policy.alerts_for(
        [event(UNKNOWN, listener(3000 + i, owner(f"/tmp/k{i}"))) for i in range(4)], clock.now
    )
    latest = clock.now
    # The clock goes back an hour and a half, then runs on for half an hour: still earlier
    # than the latest time seen. The same five events in both ticks are folded once.
    again = [event(UNKNOWN, listener(7000 + i, owner(f"/m{i}"))) for i in range(5)]
    assert policy.alerts_for(again, latest - 5400) == []
    assert policy.alerts_for(again, latest - 5400 + 1800) == []
    assert [a.folded for a in policy.alerts_for([], latest + 61)] == [5]


def test_a_long_running_monitor_with_many_programs_keeps_their_cooldowns() -> None:
    # Past 256 remembered programs the old ones are forgotten, but only once their
    # cooldown is over.
    clock = FakeClock()
    policy = RateLimitedPolicy()
    first = event(UNKNOWN, listener(3653, owner("/usr/bin/first")))
    assert len(policy.alerts_for([first], clock.now)) == 1
    for i in range(300):
        policy.alerts_for([event(UNKNOWN, listener(10000 + i, owner(f"/opt/p{i}")))], clock.now)
    clock.advance(120)  # the rate window is free again
    assert singles(policy.alerts_for([first], clock.now)) == []
    assert len(singles(policy.alerts_for([first], clock.advance(30 * 60)))) == 1
