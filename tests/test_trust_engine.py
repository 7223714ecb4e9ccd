"""Trust and alert limits through the engine with a real history file.

Samples are recorded from the real probe while real children listen, then replayed
(a probe we own) so that a port can be bound and released fifty times in a test.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from trust_fixtures import listener, owner
from trust_processes import LISTEN_CODE, REAL_PYTHON, listening, wait_for, watch

from portwatch.core.alert_policy import RateLimitedPolicy
from portwatch.core.alerts import Alert
from portwatch.core.trust import TrustJudge, TrustList, trust_listener
from portwatch.core.types import EventKind, Owner, Sample
from portwatch.core.watchlist import WatchList, WatchSpec
from portwatch.engine.monitor import Monitor
from portwatch.probe.psutil_probe import PsutilProbe
from portwatch.store.history import HistoryStore


class ReplayProbe:
    """Plays back recorded samples, restamped one second apart on both clocks."""

    name = "replay"

    def __init__(self, samples: list[Sample], start_mono: float = 5000.0) -> None:
        self._samples = samples
        self._index = 0
        self._mono = start_mono
        # Real wall time: history retention would drop events stamped months ago.
        self._wall = time.time()

    def poll(self, watched: WatchList) -> Sample:
        sample = self._samples[self._index % len(self._samples)]
        self._index += 1
        self._mono += 1.0
        self._wall += 1.0
        return replace(sample, mono=self._mono, wall=self._wall)

    def jump(self, seconds: float) -> None:
        """Sleep/resume: both clocks move on without polls in between."""
        self._mono += seconds
        self._wall += seconds

    def close(self) -> None:
        pass


def only(sample: Sample, ports: set[int]) -> Sample:
    """The recorded sample without the machine's other listeners (counts stay exact)."""
    return replace(sample, listeners=tuple(x for x in sample.listeners if x.port in ports))


def run_ticks(monitor: Monitor, count: int) -> tuple[list[Alert], Counter[EventKind]]:
    alerts: list[Alert] = []
    kinds: Counter[EventKind] = Counter()
    for _ in range(count):
        result = monitor.tick()
        alerts += result.alerts
        kinds.update(e.kind for e in result.events)
    return alerts, kinds


def stored_kinds(path: Path) -> Counter[str]:
    reader = HistoryStore.open_readonly(path)
    try:
        return Counter(e.kind for e in reader.recent_events(limit=100_000))
    finally:
        reader.close()


linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="children rename through /proc"
)


@linux_only
def test_port_bound_and_released_fifty_times(tmp_path: Path) -> None:
    probe = PsutilProbe()
    with listening([REAL_PYTHON, "-c", LISTEN_CODE]) as child:
        port = child.port
        bound = wait_for(probe, watch(port), lambda s: any(x.port == port for x in s.listeners))
    # Released: nothing on the port. (Recorded as such rather than polled again: once the
    # child is gone another program on this machine may take the same ephemeral port.)
    released = replace(bound, listeners=())
    history = tmp_path / "history.sqlite3"
    store = HistoryStore.open(history)
    monitor = Monitor(
        ReplayProbe([only(bound, {port}), only(released, {port})]),
        store,
        watch(port),
        judge=TrustJudge(TrustList()),
        alert_policy=RateLimitedPolicy(),
    )
    alerts, kinds = run_ticks(monitor, 100)
    monitor.close()
    assert kinds[EventKind.OPENED] == 50
    assert kinds[EventKind.CLOSED] == 50
    assert kinds[EventKind.UNKNOWN_OWNER] == 50
    assert len(alerts) == 1
    assert str(port) in alerts[0].title
    # Every event is in history, not just the ones that were notified.
    stored = stored_kinds(history)
    assert stored["listener-opened"] == 50
    assert stored["listener-closed"] == 50
    assert stored["unknown-owner"] == 50


@linux_only
def test_hundred_unknown_listeners_at_once(tmp_path: Path) -> None:
    probe = PsutilProbe()
    with listening([REAL_PYTHON, "-c", LISTEN_CODE, "100"]) as child:
        watched = watch(*child.ports)
        ports = set(child.ports)

        def all_up(sample: Sample) -> bool:
            return ports <= {x.port for x in sample.listeners if x.owner is not None}

        sample = wait_for(probe, watched, all_up)
    history = tmp_path / "history.sqlite3"
    store = HistoryStore.open(history)
    monitor = Monitor(
        ReplayProbe([only(sample, ports)]),
        store,
        watched,
        judge=TrustJudge(TrustList()),
        alert_policy=RateLimitedPolicy(),
    )
    alerts, kinds = run_ticks(monitor, 5)
    monitor.close()
    assert kinds[EventKind.UNKNOWN_OWNER] == 100
    singles = [a for a in alerts if not a.folded]
    summaries = [a for a in alerts if a.folded]
    assert len(singles) == 3
    assert [s.folded for s in summaries] == [97]
    assert "97 more" in summaries[0].title
    assert stored_kinds(history)["unknown-owner"] == 100


@linux_only
def test_catch_up_poll_after_sleep_stays_within_limits(tmp_path: Path) -> None:
    probe = PsutilProbe()
    with listening([REAL_PYTHON, "-c", LISTEN_CODE, "20"]) as child:
        watched = watch(*child.ports)
        ports = set(child.ports)
        busy = wait_for(probe, watched, lambda s: ports <= {x.port for x in s.listeners if x.owner})
    quiet = replace(busy, listeners=())
    replay = ReplayProbe([only(quiet, ports), only(quiet, ports), only(busy, ports)])
    monitor = Monitor(
        replay,
        HistoryStore.open(tmp_path / "history.sqlite3"),
        watched,
        judge=TrustJudge(TrustList()),
        alert_policy=RateLimitedPolicy(),
    )
    alerts, _ = run_ticks(monitor, 2)
    assert alerts == []
    replay.jump(8 * 3600)  # the laptop slept through the night
    alerts, kinds = run_ticks(monitor, 1)
    monitor.close()
    assert kinds[EventKind.UNKNOWN_OWNER] == 20
    assert len([a for a in alerts if not a.folded]) == 3
    assert [a.folded for a in alerts if a.folded] == [17]


def test_pid_reuse_through_the_engine(tmp_path: Path) -> None:
    good = owner("/usr/bin/good", pid=777, create_time=100.0)
    spec = WatchSpec(3653, 3653)
    trust_list = trust_listener(TrustList(), listener(3653, good), spec, added_wall=1.0)
    reused = owner("/usr/bin/evil", pid=777, create_time=250.0, name="good")
    hidden = Owner(pid=777, create_time=400.0, name="good", note="access denied")
    back = owner("/usr/bin/good", pid=777, create_time=500.0)
    samples = [
        Sample(wall=0, mono=0, listeners=(listener(3653, who),))
        for who in (good, reused, hidden, back)
    ]
    store = HistoryStore.open(tmp_path / "history.sqlite3")
    monitor = Monitor(
        ReplayProbe(samples),
        store,
        WatchList((spec,)),
        judge=TrustJudge(trust_list),
        alert_policy=RateLimitedPolicy(),
    )
    results = [monitor.tick() for _ in samples]
    monitor.close()
    statuses = [[v.status.value for v in r.views] for r in results]
    assert statuses == [["known"], ["unknown"], ["unattributed"], ["known"]]
    alert_kinds = [[e.kind for a in r.alerts for e in a.events] for r in results]
    assert alert_kinds == [
        [],
        [EventKind.UNKNOWN_OWNER],
        [EventKind.UNATTRIBUTED_OWNER],
        [],
    ]
