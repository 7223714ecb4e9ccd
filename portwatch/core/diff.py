"""Turn two consecutive samples into the events a person cares about."""

from __future__ import annotations

from collections import defaultdict

from portwatch.core.types import Endpoint, EventKind, Listener, Owner, PortEvent, Sample

ListenerKey = tuple[Endpoint, int | None, float | None]


def listener_key(listener: Listener) -> ListenerKey:
    """A listener's row identity: where it listens and which process instance holds it.

    (pid, create_time) rather than pid alone, because pids are reused.
    """
    owner = listener.owner
    if owner is None:
        return (listener.endpoint, None, None)
    return (listener.endpoint, owner.pid, owner.create_time)


def program(owner: Owner | None) -> tuple[str | None, ...]:
    """What an owner runs: another value here is another program."""
    if owner is None:
        return (None, None, None, None)
    return (owner.exe, owner.sha256, owner.script, owner.script_sha256)


def diff(previous: Sample | None, current: Sample) -> list[PortEvent]:
    """Events from ``previous`` to ``current``: opened, closed, owner changed.

    An endpoint that loses one owner and gains another in the same poll is reported
    as one ``owner-changed`` event, not a close and an open. A process that exec()s
    another program keeps its pid and start time; that is an owner change too.
    """
    before_all = previous.listeners if previous else ()
    # A listener object found in both samples is unchanged (probes re-use the objects of
    # unchanged listeners): only the others are keyed and compared, so the cost follows
    # what changed. Both samples are alive here, so an id means one object.
    current_ids = {id(item) for item in current.listeners}
    before_ids = {id(item) for item in before_all}
    old = {listener_key(item): item for item in before_all if id(item) not in current_ids}
    new = {listener_key(item): item for item in current.listeners if id(item) not in before_ids}
    wall, mono = current.wall, current.mono
    events: list[PortEvent] = []

    closed = [old[key] for key in old.keys() - new.keys()]
    opened = [new[key] for key in new.keys() - old.keys()]
    for key in old.keys() & new.keys():
        before, after = old[key], new[key]
        if program(before.owner) != program(after.owner):
            events.append(
                PortEvent(EventKind.OWNER_CHANGED, after, wall, mono, previous=before.owner)
            )

    closed_by_endpoint: dict[Endpoint, list[Listener]] = defaultdict(list)
    for item in closed:
        closed_by_endpoint[item.endpoint].append(item)
    for item in sorted(opened, key=listener_key_sort):
        candidates = closed_by_endpoint.get(item.endpoint)
        if candidates:
            before = candidates.pop(0)
            if program(before.owner) == program(item.owner):
                # The same program restarted: a close and an open, not a new owner.
                events.append(PortEvent(EventKind.CLOSED, before, wall, mono))
                events.append(PortEvent(EventKind.OPENED, item, wall, mono))
            else:
                events.append(
                    PortEvent(EventKind.OWNER_CHANGED, item, wall, mono, previous=before.owner)
                )
        else:
            events.append(PortEvent(EventKind.OPENED, item, wall, mono))
    for remaining in closed_by_endpoint.values():
        for item in remaining:
            events.append(PortEvent(EventKind.CLOSED, item, wall, mono))
    return events


def listener_key_sort(listener: Listener) -> tuple[Endpoint, int, float]:
    owner = listener.owner
    if owner is None:
        return (listener.endpoint, -1, 0.0)
    return (listener.endpoint, owner.pid, owner.create_time or 0.0)
