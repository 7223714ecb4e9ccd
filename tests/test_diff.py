"""Turning consecutive samples into events."""

from __future__ import annotations

from portwatch.core.diff import diff
from portwatch.core.types import Endpoint, EventKind, Family, Listener, Owner, Proto, Sample

EP = Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", 3653)


def owner(pid: int, start: float, exe: str = "/usr/bin/a", sha: str = "aa") -> Owner:
    return Owner(pid=pid, create_time=start, name="a", exe=exe, sha256=sha)


def sample(*listeners: Listener, wall: float = 1.0) -> Sample:
    return Sample(wall=wall, mono=wall, listeners=listeners)


def kinds(events) -> list[EventKind]:
    return [e.kind for e in events]


def test_first_sample_opens_everything() -> None:
    assert kinds(diff(None, sample(Listener(EP, owner(1, 1.0))))) == [EventKind.OPENED]


def test_nothing_changes_nothing_reported() -> None:
    s = sample(Listener(EP, owner(1, 1.0)))
    assert diff(s, sample(Listener(EP, owner(1, 1.0)), wall=2.0)) == []


def test_close() -> None:
    assert kinds(diff(sample(Listener(EP, owner(1, 1.0))), sample())) == [EventKind.CLOSED]


def test_another_program_taking_the_endpoint_is_an_owner_change() -> None:
    before = sample(Listener(EP, owner(1, 1.0)))
    after = sample(Listener(EP, owner(2, 5.0, exe="/tmp/evil", sha="ee")), wall=2.0)
    (event,) = diff(before, after)
    assert event.kind is EventKind.OWNER_CHANGED
    assert event.previous == owner(1, 1.0)


def test_same_program_restarting_is_close_and_open() -> None:
    before = sample(Listener(EP, owner(1, 1.0)))
    after = sample(Listener(EP, owner(2, 5.0)), wall=2.0)
    assert sorted(kinds(diff(before, after))) == sorted([EventKind.CLOSED, EventKind.OPENED])


def test_pid_reused_by_another_program_is_not_the_same_listener() -> None:
    before = sample(Listener(EP, owner(7, 1.0)))
    after = sample(Listener(EP, owner(7, 9.0, exe="/tmp/other", sha="bb")), wall=2.0)
    (event,) = diff(before, after)
    assert event.kind is EventKind.OWNER_CHANGED
    assert event.listener.owner.exe == "/tmp/other"


def test_exec_in_place_is_an_owner_change() -> None:
    before = sample(Listener(EP, owner(7, 1.0)))
    after = sample(Listener(EP, owner(7, 1.0, exe="/tmp/other", sha="bb")), wall=2.0)
    assert kinds(diff(before, after)) == [EventKind.OWNER_CHANGED]


def test_unattributed_listener_comes_and_goes() -> None:
    anon = Listener(EP, None)
    assert kinds(diff(None, sample(anon))) == [EventKind.OPENED]
    assert kinds(diff(sample(anon), sample())) == [EventKind.CLOSED]
