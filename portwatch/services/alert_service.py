"""The one place that decides which alerts reach the desktop, and when.

The engine says what is worth an alert (each tick's ``alerts``); this service takes every
tick straight from the sampler, keeps every alert in its log, and lets through to the
desktop only what the rules allow:

- nothing while alerts are paused, nothing for a snoozed port or range;
- nothing for what already listened at first start while the first-run review is
  pending: that goes to the review, and only what appears afterwards alerts;
- one alert per program and port per cooldown, a few a minute, then one summary for the
  rest (``core.alert_policy.RateLimitedPolicy``);
- shown one after another with the back-end's spacing, so a tray balloon (one message at
  a time) shows each of the first alerts and then the summary.

The window and the tray only show this service's log and :class:`AlertState`. Time comes
from a :class:`~portwatch.services.clock.Clock`, so the rules are tested without waiting.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import QObject, Signal, Slot

from portwatch.core.alert_policy import RateLimitedPolicy
from portwatch.core.alerts import Alert
from portwatch.core.types import ListenerView, PortEvent, Status
from portwatch.core.watchlist import WatchSpec
from portwatch.services.clock import Clock, SystemClock
from portwatch.services.notify import (
    LOG_LIMIT,
    TEXT_LIMIT,
    TITLE_LIMIT,
    LoggedAlert,
    NotificationBackend,
    NullBackend,
)
from portwatch.services.plain_text import shorten_utf16, visible

log = logging.getLogger(__name__)

# How often a summary held back by the rate limit is offered again while one is pending.
SUMMARY_RETRY_S = 5.0

LOG_ONLY = "alert log only"
OFF = f"{LOG_ONLY} (notifications off)"
PAUSED = f"{LOG_ONLY} (alerts paused)"
SNOOZED = f"{LOG_ONLY} (port snoozed)"
LIMITED = f"{LOG_ONLY} (rate limit)"

# What each "shown as" means, for the alert log's tooltip.
SHOWN_AS_HELP = {
    OFF: "Desktop notifications are switched off in the settings.",
    PAUSED: "All desktop alerts are paused (Monitor \u25b8 Alerts or the tray menu).",
    SNOOZED: "Desktop alerts for this port are snoozed.",
    LIMITED: "Held back by the rate limit: one alert per program and port per cooldown "
    "and a few a minute; the summary that follows counts it.",
    LOG_ONLY: "No notification service or tray could show it.",
}


class TickAlerts(Protocol):
    """What the service reads from a tick (the engine's ``TickResult``)."""

    @property
    def alerts(self) -> tuple[Alert, ...]: ...

    @property
    def views(self) -> tuple[ListenerView, ...]: ...


@dataclass(frozen=True)
class AlertState:
    """What the person should be able to see about alerting right now."""

    paused: bool = False
    snoozed: tuple[tuple[WatchSpec, float], ...] = ()
    """Snoozed specs with the wall time their snooze ends."""
    review_pending: bool = False

    def snoozed_until(self, spec: WatchSpec) -> float | None:
        return next((until for s, until in self.snoozed if s == spec), None)


def _listener_key(event: PortEvent) -> Hashable:
    listener = event.listener
    owner = listener.owner
    return (listener.endpoint, owner.pid if owner else None, owner.create_time if owner else None)


class AlertService(QObject):
    """Logs every alert; shows on the desktop what the rules let through."""

    alert_logged = Signal(object)
    """A :class:`LoggedAlert`, for the alert log and the tray's recent alerts."""
    open_requested = Signal(object)
    """The person clicked a notification: the :class:`Alert` (a summary opens the log)."""
    state_changed = Signal(object)
    """The new :class:`AlertState` (pause, snoozes, review pending)."""
    alarm_changed = Signal(bool, str)
    """(an unknown owner holds a watched port, which one) for the tray icon."""

    def __init__(
        self,
        backend: NotificationBackend | None = None,
        *,
        policy: RateLimitedPolicy | None = None,
        clock: Clock | None = None,
        enabled: bool = True,
        review_pending: bool = False,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._policy = policy or RateLimitedPolicy()
        self._clock: Clock = clock or SystemClock(self)
        self._enabled = enabled
        self._paused = False
        self._review_pending = review_pending
        # Listeners found by the first tick while the review is pending: the review's.
        self._first_start: set[Hashable] | None = None
        self._alarm: tuple[bool, str] = (False, "")
        self._next_token = 1
        self._log: collections.deque[LoggedAlert] = collections.deque(maxlen=LOG_LIMIT)
        self._queue: collections.deque[tuple[int, Alert]] = collections.deque()
        self._pacer = self._clock.timer(self._show_next, single_shot=True)
        self._summary_retry = self._clock.timer(self._offer_summary, single_shot=True)
        self._snooze_end = self._clock.timer(self._snoozes_ended, single_shot=True)
        self._backend: NotificationBackend = NullBackend(self)
        self._backend.clicked.connect(self._on_clicked)
        if backend is not None:
            self.set_backend(backend)

    # -- back-end ---------------------------------------------------------------------
    @property
    def backend(self) -> NotificationBackend:
        return self._backend

    def set_backend(self, backend: NotificationBackend) -> None:
        """Show notifications through ``backend`` from now on; clicks are rewired."""
        self._backend.clicked.disconnect(self._on_clicked)
        self._backend = backend
        backend.clicked.connect(self._on_clicked)

    # -- controls ---------------------------------------------------------------------
    @Slot(bool)
    def set_enabled(self, enabled: bool) -> None:
        """Desktop notifications on or off (the settings); the log keeps every alert."""
        self._enabled = enabled

    @Slot(float)
    def set_cooldown(self, cooldown_s: float) -> None:
        """At most one desktop alert per program and port per ``cooldown_s``."""
        self._policy.set_cooldown(cooldown_s)

    @property
    def alerts_paused(self) -> bool:
        return self._paused

    @Slot(bool)
    def set_alerts_paused(self, paused: bool) -> None:
        """Pause every desktop alert until resumed (monitoring and the log go on)."""
        if paused == self._paused:
            return
        self._paused = paused
        if paused:
            self._policy.pause()
            self._queue.clear()
        else:
            self._policy.resume()
        self._state_changed()

    def snooze(self, spec: WatchSpec, seconds: float) -> None:
        """No desktop alerts for ``spec`` for ``seconds``; 0 (or less) ends a snooze."""
        if seconds <= 0:
            self._policy.unsnooze(spec)
        else:
            self._policy.snooze(spec, self._clock.monotonic() + seconds)
        self._state_changed()

    def set_review_pending(self, pending: bool) -> None:
        """The first-run review is open (True) or done (False)."""
        if pending == self._review_pending:
            return
        self._review_pending = pending
        if not pending:
            self._first_start = None
        self._state_changed()

    @property
    def state(self) -> AlertState:
        mono, wall = self._clock.monotonic(), self._clock.wall()
        snoozed = tuple(
            sorted(
                ((spec, wall + until - mono) for spec, until in self._policy.snoozed(mono).items()),
                key=lambda item: (item[0].lo, item[0].hi),
            )
        )
        return AlertState(self._paused, snoozed, self._review_pending)

    def _state_changed(self) -> None:
        now = self._clock.monotonic()
        ends = list(self._policy.snoozed(now).values())
        if ends:
            self._snooze_end.start(max(0.0, min(ends) - now))
        else:
            self._snooze_end.stop()
        self.state_changed.emit(self.state)

    def _snoozes_ended(self) -> None:
        self._state_changed()

    def recent(self) -> list[LoggedAlert]:
        """The logged alerts, oldest first."""
        return list(self._log)

    # -- ticks ------------------------------------------------------------------------
    @Slot(object)
    def on_tick(self, result: TickAlerts) -> None:
        """One tick from the sampler: its alerts and the alarm state of its views."""
        self._update_alarm(result.views)
        self.submit(result.alerts)

    def submit(self, alerts: Sequence[Alert]) -> None:
        """Judge one tick's alerts together (a burst is one call)."""
        alerts = self._without_first_start(alerts)
        if not alerts:
            return
        if not self._enabled:
            for alert in alerts:
                self._log_entry(alert, OFF)
            return
        now = self._clock.monotonic()
        events = [event for alert in alerts for event in alert.events]
        gated = self._policy.alerts_for(events, now)
        singles = [g for g in gated if not g.folded]
        for alert in alerts:
            # The policy's own wording (it adds both hashes for a changed binary).
            own = next((g for g in singles if g.events == alert.events), None)
            if own is not None:
                self._log_and_queue(own)
            else:
                self._log_entry(alert, self._why_not_shown(alert, now))
        for summary in gated:
            if summary.folded:
                self._log_and_queue(summary)
        self._retry_summary_if_held()

    def _without_first_start(self, alerts: Sequence[Alert]) -> list[Alert]:
        if not self._review_pending:
            return list(alerts)
        if self._first_start is None:
            # The first tick of a first start: all of it is listed in the review.
            self._first_start = {_listener_key(e) for a in alerts for e in a.events}
            return []
        first = self._first_start
        return [a for a in alerts if not all(_listener_key(e) in first for e in a.events)]

    def _why_not_shown(self, alert: Alert, now: float) -> str:
        if self._paused:
            return PAUSED
        snoozed = self._policy.snoozed(now)
        for event in alert.events:
            port, proto = event.listener.port, event.listener.proto
            if any(spec.contains(port, proto) for spec in snoozed):
                return SNOOZED
        return LIMITED

    def _retry_summary_if_held(self) -> None:
        if self._policy.has_pending_summary() and not self._summary_retry.is_active():
            self._summary_retry.start(SUMMARY_RETRY_S)

    def _offer_summary(self) -> None:
        if not self._enabled:
            return
        for summary in self._policy.alerts_for((), self._clock.monotonic()):
            self._log_and_queue(summary)
        self._retry_summary_if_held()

    def _update_alarm(self, views: Iterable[ListenerView]) -> None:
        unknown = [v for v in views if v.watched and v.status is Status.UNKNOWN]
        why = ""
        if unknown:
            first = unknown[0].listener
            who = first.owner.name if first.owner is not None and first.owner.name else "?"
            why = f"unknown owner {who} on {first.port}/{first.proto}"
            if len(unknown) > 1:
                why += f" and {len(unknown) - 1} more"
        alarm = (bool(unknown), why)
        if alarm != self._alarm:
            self._alarm = alarm
            self.alarm_changed.emit(*alarm)

    # -- delivery ---------------------------------------------------------------------
    def _log_entry(self, alert: Alert, shown_by: str) -> LoggedAlert:
        token = self._next_token
        self._next_token += 1
        entry = LoggedAlert(token, self._clock.wall(), alert, shown_by)
        self._log.append(entry)
        self.alert_logged.emit(entry)
        return entry

    def _log_and_queue(self, alert: Alert) -> None:
        if not self._backend.available():
            self._log_entry(alert, LOG_ONLY)
            return
        entry = self._log_entry(alert, self._backend.name)
        self._queue.append((entry.token, alert))
        if not self._pacer.is_active():
            self._show_next()

    def _show_next(self) -> None:
        while self._queue:
            token, alert = self._queue.popleft()
            title = shorten_utf16(visible(alert.title), TITLE_LIMIT)
            text = shorten_utf16(visible(alert.text), TEXT_LIMIT)
            try:
                self._backend.show(token, title, text, alert.urgency)
            except Exception:  # a back-end failing must never stop monitoring
                log.exception("showing a notification failed")
            spacing = self._backend.spacing_s
            if spacing > 0:
                # The next one waits until this one could be read (a tray balloon
                # replaces the last one); servers that stack notifications need no wait.
                self._pacer.start(spacing)
                return

    @Slot(int)
    def _on_clicked(self, token: int) -> None:
        for entry in self._log:
            if entry.token == token:
                self.open_requested.emit(entry.alert)
                return
