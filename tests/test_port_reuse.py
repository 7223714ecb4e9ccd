"""A port released and taken again at once, between two polls, by another process.

psutil's rows carry no socket inode, so the only thing that tells the two sockets
apart is their owner: the engine must see a new listener with a new owner, judge it,
and alert once if it is not trusted; never keep the old owner (or its trust) for it.
Real child processes, the real probes, the real engine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from childsockets import free_port
from platforms import wine_gives_pid_0
from trust_processes import REAL_PYTHON, listener_of, listening, python_copy, watch

from portwatch.core.trust import TrustJudge, TrustList, entry_for_listener
from portwatch.core.types import EventKind, ListenerView, Proto, Status
from portwatch.core.watchlist import WatchSpec
from portwatch.engine.monitor import Monitor, TickResult
from portwatch.probe import ProbeError, create
from portwatch.probe.base import Probe

# Listens on the port given, reports it, holds it until stdin closes.
BIND_CODE = """
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"""


# Every test waits for the listener of a child it started, found by its pid.
pytestmark = wine_gives_pid_0


@pytest.fixture(params=["psutil", "netlink"])
def probe(request: pytest.FixtureRequest) -> Iterator[Probe]:
    try:
        made = create(request.param)
    except ProbeError as exc:
        pytest.skip(f"the {request.param} probe cannot run here: {exc}")
    yield made
    made.close()


def on_port(result: TickResult, port: int) -> list[EventKind]:
    return [e.kind for e in result.events if e.listener.port == port]


def view_on(result: TickResult, port: int) -> ListenerView:
    (view,) = [v for v in result.views if v.listener.port == port]
    return view


def program(port: int, exe: str = REAL_PYTHON) -> list[str]:
    return [exe, "-c", BIND_CODE, str(port)]


def test_untrusted_program_taking_a_trusted_port_at_once_is_alerted_once(
    probe: Probe, tmp_path: Path
) -> None:
    port = free_port()
    intruder_exe = str(python_copy(tmp_path / "other" / "python3"))
    with listening(program(port)) as trusted:
        spec = WatchSpec(port, port, (Proto.TCP,))
        entry = entry_for_listener(listener_of(probe, trusted), spec, time.time())
        monitor = Monitor(probe, None, watch(port), judge=TrustJudge(TrustList((entry,))))
        first = monitor.tick()
        assert view_on(first, port).status is Status.KNOWN
        assert EventKind.UNKNOWN_OWNER not in on_port(first, port)
    # The trusted process has exited; another program binds the port before the next poll.
    with listening(program(port, intruder_exe)) as intruder:
        taken = monitor.tick()
        view = view_on(taken, port)
        assert view.listener.owner is not None
        assert view.listener.owner.pid == intruder.pid
        assert view.status is Status.UNKNOWN
        assert on_port(taken, port) == [EventKind.OWNER_CHANGED, EventKind.UNKNOWN_OWNER]
        changed = next(e for e in taken.events if e.kind is EventKind.OWNER_CHANGED)
        assert changed.previous is not None and changed.previous.pid == trusted.pid
        # Once: the next polls see the same listener and say nothing more.
        for _ in range(3):
            assert on_port(monitor.tick(), port) == []


def test_another_untrusted_program_on_the_same_port_is_news(probe: Probe, tmp_path: Path) -> None:
    port = free_port()
    second_exe = str(python_copy(tmp_path / "second" / "python3"))
    monitor = Monitor(probe, None, watch(port), judge=TrustJudge(TrustList()))
    with listening(program(port)) as first_child:
        listener_of(probe, first_child)
        first = monitor.tick()
        assert on_port(first, port) == [EventKind.OPENED, EventKind.UNKNOWN_OWNER]
    with listening(program(port, second_exe)) as second_child:
        taken = monitor.tick()
        assert view_on(taken, port).listener.owner.pid == second_child.pid  # type: ignore[union-attr]
        assert on_port(taken, port) == [EventKind.OWNER_CHANGED, EventKind.UNKNOWN_OWNER]
        unknown = next(e for e in taken.events if e.kind is EventKind.UNKNOWN_OWNER)
        assert unknown.listener.owner is not None
        assert unknown.listener.owner.exe == second_exe
        for _ in range(3):
            assert on_port(monitor.tick(), port) == []


def test_the_trusted_program_restarting_on_its_port_stays_known(probe: Probe) -> None:
    port = free_port()
    with listening(program(port)) as before:
        spec = WatchSpec(port, port, (Proto.TCP,))
        entry = entry_for_listener(listener_of(probe, before), spec, time.time())
        monitor = Monitor(probe, None, watch(port), judge=TrustJudge(TrustList((entry,))))
        monitor.tick()
    with listening(program(port)) as after:
        restarted = monitor.tick()
        view = view_on(restarted, port)
        assert view.listener.owner is not None and view.listener.owner.pid == after.pid
        assert view.status is Status.KNOWN
        assert on_port(restarted, port) == [EventKind.CLOSED, EventKind.OPENED]
