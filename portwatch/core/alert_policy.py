"""Which events become notifications: one per program and port, few per minute.

The engine records every event in history and shows it in the in-app alert log; this
policy only decides what interrupts a person. All decisions use the monotonic clock
value passed in (``now_mono``), so a wall-clock jump or a sleep/resume cannot cause a
burst: after resume the catch-up poll is held to the same limits as any other.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace

from portwatch.core.alerts import ALERTING_KINDS, Alert, Urgency, describe_event
from portwatch.core.identity import Identity, short_hash
from portwatch.core.types import EventKind, PortEvent, Proto
from portwatch.core.watchlist import WatchSpec

DEFAULT_COOLDOWN_S = 30 * 60.0
DEFAULT_MAX_PER_WINDOW = 3
DEFAULT_WINDOW_S = 60.0
SNOOZE_HOUR_S = 3600.0


@dataclass(frozen=True)
class PolicySettings:
    """The knobs people may change (settings file), with their defaults."""

    cooldown_s: float = DEFAULT_COOLDOWN_S
    max_per_window: int = DEFAULT_MAX_PER_WINDOW
    window_s: float = DEFAULT_WINDOW_S

    def __post_init__(self) -> None:
        if self.cooldown_s < 0 or self.window_s <= 0 or self.max_per_window < 1:
            raise ValueError(f"invalid alert policy settings: {self}")


def seconds_until_tomorrow(now: dt.datetime) -> float:
    """Seconds from ``now`` (local wall time) to the next local midnight: "until tomorrow".

    The tray converts this into a monotonic deadline (``now_mono + seconds``) so a later
    clock change does not shorten or stretch the snooze in a surprising way.
    """
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(0.0, (tomorrow - now).total_seconds())


class RateLimitedPolicy:
    """One alert per (identity, protocol, port) per cooldown; at most ``max_per_window``
    alerts per ``window_s``; what is over the limit is folded into a single
    "and N more" summary (itself at most one per window).

    Unattributed owners get their own low-urgency alert, once per port per cooldown.
    ``snooze(spec, until_mono)`` silences a port or range; ``pause()`` silences all.
    """

    def __init__(self, settings: PolicySettings | None = None) -> None:
        self.settings = settings or PolicySettings()
        self._last_alert: dict[Hashable, float] = {}
        self._sent: deque[float] = deque()
        self._last_summary: float | None = None
        self._pending_folded: list[PortEvent] = []
        self._snoozed: dict[WatchSpec, float] = {}
        self._paused_until: float | None = None
        self._paused = False
        self._latest = float("-inf")

    # --- controls (tray, side panel) -------------------------------------------------

    def set_cooldown(self, cooldown_s: float) -> None:
        """Change the per-program-and-port cooldown (the settings dialog)."""
        self.settings = replace(self.settings, cooldown_s=cooldown_s)

    # The controls and the decision run on one thread (the alert service's); the snooze
    # map is still replaced rather than mutated, so handing out ``snoozed()`` is safe.

    def snooze(self, spec: WatchSpec, until_mono: float) -> None:
        """Silence alerts for ``spec`` until the monotonic time ``until_mono``."""
        self._snoozed = {**self._snoozed, spec: until_mono}

    def unsnooze(self, spec: WatchSpec) -> None:
        self._snoozed = {s: t for s, t in self._snoozed.items() if s != spec}

    def snoozed(self, now_mono: float) -> dict[WatchSpec, float]:
        """Specs still snoozed at ``now_mono`` with their deadlines."""
        return {s: t for s, t in self._snoozed.items() if t > now_mono}

    def pause(self, until_mono: float | None = None) -> None:
        """Stop all notifications (until ``until_mono`` if given, else until resume)."""
        self._paused = True
        self._paused_until = until_mono

    def resume(self) -> None:
        self._paused = False
        self._paused_until = None

    def is_paused(self, now_mono: float) -> bool:
        if self._paused and self._paused_until is not None and now_mono >= self._paused_until:
            self.resume()
        return self._paused

    # --- the decision ----------------------------------------------------------------

    def alerts_for(self, events: Sequence[PortEvent], now_mono: float) -> list[Alert]:
        """The notifications for one tick's events (call every tick, even with none,
        so a held-back summary can go out when the window allows)."""
        # A monotonic clock never goes back; a fake or restored one might. Never let
        # that re-open a cooldown or a rate window.
        now = max(now_mono, self._latest)
        self._latest = now
        self._forget_old(now)
        paused = self.is_paused(now)
        alerts: list[Alert] = []
        for event in events:
            if event.kind not in ALERTING_KINDS or not event.watched:
                continue
            if paused or self._is_snoozed(event, now):
                continue
            key = _key(event)
            last = self._last_alert.get(key)
            if last is not None and now - last < self.settings.cooldown_s:
                continue
            # Folded events count as notified too: the summary told the person about them.
            self._last_alert[key] = now
            if len(self._sent) < self.settings.max_per_window:
                self._sent.append(now)
                alerts.append(_alert_for(event))
            else:
                self._pending_folded.append(event)
        if self._pending_folded and not paused and self._summary_allowed(now):
            alerts.append(_summary(self._pending_folded))
            self._pending_folded = []
            self._last_summary = now
        return alerts

    def has_pending_summary(self) -> bool:
        """True while alerts over the limit wait for their summary."""
        return bool(self._pending_folded)

    def _summary_allowed(self, now: float) -> bool:
        return self._last_summary is None or now - self._last_summary >= self.settings.window_s

    def _is_snoozed(self, event: PortEvent, now: float) -> bool:
        port, proto = event.listener.port, event.listener.proto
        snoozed = self._snoozed
        return any(until > now and spec.contains(port, proto) for spec, until in snoozed.items())

    def _forget_old(self, now: float) -> None:
        # Bounded memory on a long-running monitor: drop what can no longer matter.
        window = self.settings.window_s
        while self._sent and now - self._sent[0] >= window:
            self._sent.popleft()
        cooldown = self.settings.cooldown_s
        if len(self._last_alert) > 256:
            self._last_alert = {k: t for k, t in self._last_alert.items() if now - t < cooldown}
        self._snoozed = {s: t for s, t in self._snoozed.items() if t > now}


def _key(event: PortEvent) -> Hashable:
    listener = event.listener
    where = (listener.proto, listener.port)
    identity = Identity.of(listener.owner)
    if event.kind is EventKind.UNATTRIBUTED_OWNER or identity is None:
        return ("unattributed", *where)
    return ("identity", identity.key, *where)


def _alert_for(event: PortEvent) -> Alert:
    alert = describe_event(event)
    if event.kind is not EventKind.BINARY_CHANGED:
        return alert
    # The person must see that the file changed and both hashes, whatever the engine
    # put in the event's detail.
    owner = event.listener.owner
    old = event.extra.get("previous_sha256") if event.extra else None
    new = owner.sha256 if owner else None
    text = alert.text
    if old and old not in text:
        text += f" The binary changed: trusted sha256 {short_hash(old)}…, now {short_hash(new)}…."
    elif not old and "changed" not in text:
        text += " The binary changed since it was trusted."
    return Alert(
        title=alert.title,
        text=text,
        port=alert.port,
        proto=alert.proto,
        urgency=alert.urgency,
        events=alert.events,
    )


def _summary(events: Sequence[PortEvent]) -> Alert:
    ports = sorted({(e.listener.port, e.listener.proto) for e in events})
    shown = ", ".join(f"{port}/{proto}" for port, proto in ports[:5])
    if len(ports) > 5:
        shown += ", …"
    count = len(events)
    noun = "alert" if count == 1 else "alerts"
    low_only = all(e.kind is EventKind.UNATTRIBUTED_OWNER for e in events)
    proto: Proto | None = ports[0][1] if len(ports) == 1 else None
    return Alert(
        title=f"…and {count} more {noun} on watched ports",
        text=f"{count} more untrusted or uninspectable listeners ({shown}); "
        "every one is in the alert log.",
        port=ports[0][0] if len(ports) == 1 else None,
        proto=proto,
        urgency=Urgency.LOW if low_only else Urgency.NORMAL,
        events=tuple(events),
        folded=count,
    )
