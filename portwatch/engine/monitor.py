"""One monitoring tick: probe → diff → judge → record → alerts. No Qt; shared by CLI and GUI."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from portwatch.core.alerts import Alert, AlertPolicy, EveryEventPolicy
from portwatch.core.diff import diff
from portwatch.core.types import (
    EventKind,
    Listener,
    ListenerView,
    PortEvent,
    Proto,
    Sample,
    Status,
)
from portwatch.core.verdict import Judge, NoTrustJudge, Verdict
from portwatch.core.watchlist import WatchList
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


_ALERT_KIND_FOR = {
    Status.UNKNOWN: EventKind.UNKNOWN_OWNER,
    Status.UNATTRIBUTED: EventKind.UNATTRIBUTED_OWNER,
}


class Monitor:
    """Runs ticks against a probe, a recorder, a judge and an alert policy.

    Single-threaded by design: whoever owns the Monitor calls :meth:`tick` from one
    thread only (the sampler thread, or the CLI's loop).
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

    def set_watchlist(self, watchlist: WatchList) -> None:
        self.watchlist = watchlist

    def set_judge(self, judge: Judge) -> None:
        self.judge = judge

    def view(self, listener: Listener, verdict: Verdict | None = None) -> ListenerView:
        watched = self.watchlist.contains(listener.port, listener.proto)
        verdict = verdict or self.judge.judge(listener)
        service = self.services.service_name(listener.port, listener.proto) if self.services else ""
        return ListenerView(listener, watched, verdict.status, service, verdict.reason)

    def tick(self) -> TickResult:
        """One poll. A probe that fails entirely yields an empty result with a warning."""
        started = self._clock()
        warnings: list[str] = []
        try:
            sample = self.probe.poll(self.watchlist)
        except ProbeError as exc:
            log.info("poll failed: %s", exc)  # returned as a warning to the caller
            now = time.time()
            empty = Sample(wall=now, mono=started, listeners=(), probe_name=self.probe.name)
            return TickResult(empty, (), (), (), (f"poll failed: {exc}",), self._clock() - started)
        if sample.partial and not self._partial_reported:
            warnings.append(sample.partial_reason or "only part of the system is visible")
            self._partial_reported = True
        # One verdict per listener per tick, shared by its view and its events.
        verdicts = {id(item): self.judge.judge(item) for item in sample.listeners}
        views = tuple(self.view(item, verdicts[id(item)]) for item in sample.listeners)
        events = self._events(self._previous, sample, verdicts)
        alerts = tuple(self.alert_policy.alerts_for(events, sample.mono))
        if self.recorder is not None:
            warnings.extend(self.recorder.record(sample, views, events))
        self._previous = sample
        return TickResult(sample, views, events, alerts, tuple(warnings), self._clock() - started)

    def _events(
        self, previous: Sample | None, sample: Sample, verdicts: dict[int, Verdict]
    ) -> tuple[PortEvent, ...]:
        """The diff's events stamped with watched/status, plus one alerting event for
        each watched listener that appears or changes hands without a trusted owner."""
        out: list[PortEvent] = []
        for event in diff(previous, sample):
            listener = event.listener
            watched = self.watchlist.contains(listener.port, listener.proto)
            # New listeners were judged for their views; closed ones are judged as they were.
            verdict = verdicts.get(id(listener)) or self.judge.judge(listener)
            stamped = replace(event, watched=watched, status=verdict.status)
            out.append(stamped)
            if (
                verdict.upgraded
                and verdict.status is Status.KNOWN
                and event.kind in (EventKind.OPENED, EventKind.OWNER_CHANGED)
            ):
                out.append(
                    replace(stamped, kind=EventKind.PACKAGE_UPGRADED, detail=verdict.upgraded)
                )
            if (
                not watched
                or verdict.status is Status.KNOWN
                or event.kind not in (EventKind.OPENED, EventKind.OWNER_CHANGED)
            ):
                continue
            kind, detail = _ALERT_KIND_FOR[verdict.status], verdict.reason
            if verdict.binary_changed and verdict.status is Status.UNKNOWN:
                kind = EventKind.BINARY_CHANGED
                now_sha = listener.owner.sha256 if listener.owner else "unknown"
                detail = (
                    f"The program at this path changed: trusted SHA-256"
                    f" {verdict.previous_sha256}, now {now_sha}."
                    if verdict.previous_sha256
                    # Trusted by package: the reason says what no longer verifies.
                    else f"The program at this path changed: {verdict.reason}."
                )
            out.append(replace(stamped, kind=kind, detail=detail))
        return tuple(out)

    def close(self) -> None:
        """Write what is pending and release the probe."""
        try:
            if self.recorder is not None:
                self.recorder.close()
        finally:
            self.probe.close()
