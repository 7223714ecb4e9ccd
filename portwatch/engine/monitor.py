"""One monitoring tick: probe → diff → judge → record → alerts. No Qt; shared by CLI and GUI."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from portwatch.core.alerts import Alert, AlertPolicy, EveryEventPolicy
from portwatch.core.diff import ListenerKey, diff, listener_key, program
from portwatch.core.problems import Outage
from portwatch.core.types import (
    EventKind,
    Listener,
    ListenerView,
    PortEvent,
    Proto,
    Sample,
    Status,
)
from portwatch.core.verdict import Judge, NoTrustJudge, Verdict, judge_revision, verdict_for
from portwatch.core.watchlist import WatchList
from portwatch.files import ResourceShortage, shortage
from portwatch.probe.base import Probe, ProbeError

log = logging.getLogger(__name__)


class Recorder(Protocol):
    """Where a tick's results are kept (the history store)."""

    def record(
        self, sample: Sample, views: tuple[ListenerView, ...], events: tuple[PortEvent, ...]
    ) -> list[str]: ...

    def close(self) -> None: ...


class ServiceNames(Protocol):
    def service_name(self, port: int, proto: Proto) -> str: ...


@dataclass(frozen=True)
class TickResult:
    """Everything one tick produced; immutable so it can cross threads by signal."""

    sample: Sample
    views: tuple[ListenerView, ...]
    events: tuple[PortEvent, ...]
    alerts: tuple[Alert, ...]
    warnings: tuple[str, ...]
    duration_s: float = 0.0
    # False when the probe failed entirely (the sample is then empty, not "nothing listens").
    ok: bool = True


_ALERT_KIND_FOR = {
    Status.UNKNOWN: EventKind.UNKNOWN_OWNER,
    Status.UNATTRIBUTED: EventKind.UNATTRIBUTED_OWNER,
}

# What was last reported for a watched listener that is not trusted: the alert kind and
# the program it named. Another program, or another reason, is news; the same is not.
_Reported = tuple[EventKind, tuple[str | None, ...]]
# A listener with its view and the verdict behind it, kept by ``id(listener)``: holding
# the listener keeps its id its own, and probes that re-use unchanged listeners (the
# netlink probe) then cost one dictionary look-up per listener, no hashing of values.
_Judged = tuple[Listener, ListenerView, Verdict]


def _alert_kind(verdict: Verdict) -> EventKind | None:
    """The alerting event a verdict on a watched listener calls for (None: trusted)."""
    if verdict.binary_changed and verdict.status is Status.UNKNOWN:
        return EventKind.BINARY_CHANGED
    return _ALERT_KIND_FOR.get(verdict.status)


def _alert_detail(kind: EventKind, listener: Listener, verdict: Verdict) -> str | None:
    if kind is EventKind.BINARY_CHANGED:
        if verdict.previous_sha256 is None:
            # Trusted by package: the reason says what no longer verifies.
            return f"The program at this path changed: {verdict.reason}."
        # The file that changed may be an interpreter's script: its hash, not the
        # interpreter's, is the new one.
        now_sha = verdict.current_sha256 or "unreadable"
        what = verdict.changed_path or "this path"
        return (
            f"The program at {what} changed: trusted SHA-256"
            f" {verdict.previous_sha256}, now {now_sha}."
        )
    return verdict.reason


class Monitor:
    """Runs ticks against a probe, a recorder, a judge and an alert policy.

    Single-threaded by design: whoever owns the Monitor calls :meth:`tick` from one
    thread only (the sampler thread, or the CLI's loop).

    Cost follows change: a tick whose listeners, watch list and trust list are the
    ones of the previous tick re-uses that tick's views (nothing is judged again, and
    the recorder is handed the very same tuple); otherwise only listeners not seen
    under the same watch list and trust list are judged.
    """

    def __init__(
        self,
        probe: Probe,
        recorder: Recorder | None,
        watchlist: WatchList,
        judge: Judge | None = None,
        alert_policy: AlertPolicy | None = None,
        services: ServiceNames | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe = probe
        self.recorder = recorder
        self.watchlist = watchlist
        self.judge: Judge = judge or NoTrustJudge()
        self.alert_policy: AlertPolicy = alert_policy or EveryEventPolicy()
        self.services = services
        self._clock = clock
        self._previous: Sample | None = None
        self._partial_reported = False
        # Polls that fail the same way each time (no descriptors left): told once.
        self._outage = Outage()
        # The previous tick's views, by listener, under the watch list and judge
        # revision in ``_basis``; reused while none of them is replaced.
        self._views: tuple[ListenerView, ...] = ()
        self._judged: dict[int, _Judged] = {}
        self._basis: tuple[object, ...] = ()
        self._gone: dict[int, _Judged] = {}
        # Per watched, untrusted listener: what was last reported about it.
        self._reported: dict[ListenerKey, _Reported] = {}

    def set_watchlist(self, watchlist: WatchList) -> None:
        self.watchlist = watchlist

    def set_judge(self, judge: Judge) -> None:
        self.judge = judge

    def view(self, listener: Listener, verdict: Verdict | None = None) -> ListenerView:
        """How people see one listener now (judged here unless ``verdict`` is given)."""
        return self._judge(listener, verdict)[1]

    def _judge(self, listener: Listener, verdict: Verdict | None = None) -> _Judged:
        watched = self.watchlist.contains(listener.port, listener.proto)
        verdict = verdict or verdict_for(listener, watched, self.judge)
        service = self.services.service_name(listener.port, listener.proto) if self.services else ""
        view = ListenerView(listener, watched, verdict.status, service, verdict.reason)
        return listener, view, verdict

    def tick(self) -> TickResult:
        """One poll. A probe that fails entirely yields an empty result with a warning."""
        started = self._clock()
        warnings: list[str] = []
        try:
            sample = self.probe.poll(self.watchlist)
        except (ProbeError, ResourceShortage, MemoryError) as exc:
            return self._failed(exc, started)
        skipped = self._outage.ended()
        if skipped:
            s = "" if skipped == 1 else "s"
            warnings.append(f"polling works again after {skipped} failed poll{s}")
        if sample.partial and not self._partial_reported:
            warnings.append(sample.partial_reason or "only part of the system is visible")
            self._partial_reported = True
        basis = (self.watchlist, self.judge, judge_revision(self.judge), self.services)
        same_basis = len(basis) == len(self._basis) and all(
            a is b for a, b in zip(basis, self._basis, strict=True)
        )
        previous = self._previous
        if same_basis and previous is not None and sample.listeners is previous.listeners:
            # Nothing a verdict depends on changed: no judging, no diff, no events.
            views: tuple[ListenerView, ...] = self._views
            events: tuple[PortEvent, ...] = ()
        else:
            views = self._views_for(sample, same_basis)
            events = self._events(previous, sample, views)
        alerts = tuple(self.alert_policy.alerts_for(events, sample.mono))
        if self.recorder is not None:
            warnings.extend(self.recorder.record(sample, views, events))
        self._previous = sample
        return TickResult(sample, views, events, alerts, tuple(warnings), self._clock() - started)

    def _failed(self, exc: BaseException, started: float) -> TickResult:
        """A poll that produced nothing: no verdict, no event, the last good poll stands.

        Out of descriptors or memory, owners would come out "uninspectable" and files
        "unreadable": such a poll is dropped whole rather than judged. The same failure
        poll after poll is told once."""
        reason = shortage(exc)
        if reason is not None:
            line = (
                f"{reason}: polls are skipped, and nothing is judged or recorded, until"
                " that passes; portwatch keeps trying"
            )
        else:
            line = f"poll failed: {exc}"
        news = self._outage.failed(line)
        if news is not None:
            log.info("%s", news)  # returned as a warning to the caller
        now = time.time()
        empty = Sample(wall=now, mono=started, listeners=(), probe_name=self.probe.name)
        warnings = (news,) if news is not None else ()
        return TickResult(empty, (), (), (), warnings, self._clock() - started, ok=False)

    def _views_for(self, sample: Sample, same_basis: bool) -> tuple[ListenerView, ...]:
        """This tick's views; listeners seen last tick under the same basis keep theirs."""
        known = self._judged if same_basis else {}
        judged: dict[int, _Judged] = {}
        misses: list[Listener] = []
        for listener in sample.listeners:
            hit = known.get(id(listener))
            if hit is not None:
                judged[id(listener)] = hit
            else:
                misses.append(listener)
        # A probe that builds every listener anew each poll (psutil): match by value,
        # which costs a hash of each listener, so only when most of them missed.
        by_value: dict[Listener, _Judged] = {}
        if known and len(misses) > len(sample.listeners) // 2:
            by_value = {item[0]: item for item in known.values()}
        for listener in misses:
            hit = by_value.get(listener)
            if hit is None:
                judged[id(listener)] = self._judge(listener)
            elif hit[1].listener.exposure != listener.exposure:
                # Exposure takes no part in equality: the judgement stands, but the view
                # must carry this poll's reach (a new address, a new firewall reading).
                judged[id(listener)] = (listener, replace(hit[1], listener=listener), hit[2])
            else:
                judged[id(listener)] = (listener, hit[1], hit[2])
        # Closed listeners are described as they were last seen.
        self._gone = self._judged
        self._judged = judged
        self._views = tuple(judged[id(item)][1] for item in sample.listeners)
        self._basis = (self.watchlist, self.judge, judge_revision(self.judge), self.services)
        return self._views

    def _events(
        self, previous: Sample | None, sample: Sample, views: tuple[ListenerView, ...]
    ) -> tuple[PortEvent, ...]:
        """The diff's events stamped with watched/status, and one alerting event each
        time a watched listener becomes untrusted, whatever made it so: it appeared or
        changed hands, its port became watched, or its program's trust was removed."""
        alerting = self._verdict_changes(sample, views)
        out: list[PortEvent] = []
        listeners_changed = previous is None or sample.listeners is not previous.listeners
        for event in diff(previous, sample) if listeners_changed else ():
            listener = event.listener
            seen = self._judged.get(id(listener)) or self._gone.get(id(listener))
            same = seen is not None and seen[0] is listener
            view = seen[1] if seen is not None and same else self.view(listener)
            stamped = replace(event, watched=view.watched, status=view.status)
            out.append(stamped)
            upgraded = seen[2].upgraded if seen is not None and same else None
            if upgraded and event.kind in (EventKind.OPENED, EventKind.OWNER_CHANGED):
                # Trusted by package and started from a newer version: recorded plainly.
                out.append(replace(stamped, kind=EventKind.PACKAGE_UPGRADED, detail=upgraded))
            if event.kind in (EventKind.OPENED, EventKind.OWNER_CHANGED):
                follow = alerting.pop(listener_key(listener), None)
                if follow is not None:
                    out.append(follow)
        out.extend(alerting.values())
        return tuple(out)

    def _verdict_changes(
        self, sample: Sample, views: tuple[ListenerView, ...]
    ) -> dict[ListenerKey, PortEvent]:
        """Alerting events for watched listeners whose untrusted verdict is news."""
        reported: dict[ListenerKey, _Reported] = {}
        out: dict[ListenerKey, PortEvent] = {}
        for listener, view in zip(sample.listeners, views, strict=True):
            if not view.watched or view.status is Status.KNOWN:
                continue
            verdict = self._judged[id(listener)][2]
            kind = _alert_kind(verdict)
            if kind is None:
                continue
            key = listener_key(listener)
            now = (kind, program(listener.owner))
            reported[key] = now
            if self._reported.get(key) == now:
                continue
            out[key] = PortEvent(
                kind,
                listener,
                sample.wall,
                sample.mono,
                watched=True,
                status=verdict.status,
                detail=_alert_detail(kind, listener, verdict),
            )
        self._reported = reported
        return out

    def close(self) -> None:
        """Write what is pending and release the probe."""
        try:
            if self.recorder is not None:
                self.recorder.close()
        finally:
            self.probe.close()
