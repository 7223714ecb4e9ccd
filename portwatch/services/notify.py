"""Desktop notifications for alerts, with platform back-ends and an in-app log.

Every alert goes to the :class:`Notifier`'s log (shown in the window's alert log) whether
or not a desktop notification could be shown: Qt's docs warn tray messages may not appear
at all. Back-ends: the tray message (``ui.tray``, it needs QtWidgets), a D-Bus
notification on Linux when there is no tray, and a null back-end.
"""

from __future__ import annotations

import collections
import logging
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import SLOT, QObject, QProcess, QTimer, Signal, Slot

from portwatch import APP_ID, APP_NAME
from portwatch.core.alert_policy import RateLimitedPolicy
from portwatch.core.alerts import Alert, Urgency
from portwatch.core.watchlist import WatchSpec
from portwatch.services.plain_text import escaped, shorten, visible

log = logging.getLogger(__name__)

# Limits Windows applies to toast text; used everywhere so no back-end cuts mid-word.
TITLE_LIMIT = 64
TEXT_LIMIT = 256
# How many alerts the in-app log keeps for this session.
LOG_LIMIT = 500
# How often summaries held back by the alert policy's rate limit are offered again.
SUMMARY_FLUSH_MS = 5000


@dataclass(frozen=True)
class LoggedAlert:
    """One alert as the log shows it: when it came and which back-end showed it."""

    token: int
    wall: float
    alert: Alert
    shown_by: str


class NotificationBackend(QObject):
    """Shows one notification; emits ``clicked(token)`` when the user activates it."""

    clicked = Signal(int)
    name = "none"

    def available(self) -> bool:
        """True when this back-end can show something right now."""
        return False

    def show(self, token: int, title: str, text: str, urgency: Urgency) -> None:
        """Show a notification; ``title``/``text`` are plain text, already shortened."""


class NullBackend(NotificationBackend):
    """Shows nothing (no tray and no notification service): the alert log still has it."""

    name = "in-app log only"


def gvariant_string(text: str) -> str:
    """A GVariant text-format string literal for ``text`` (for ``gdbus call``)."""
    body = text.replace("\\", "\\\\").replace('"', '\\"')
    body = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", body)
    return f'"{body}"'


class DBusNotificationBackend(NotificationBackend):
    """``org.freedesktop.Notifications`` on the session bus (Linux without a tray).

    The server renders a little markup, so ``<``, ``>`` and ``&`` are escaped. Clicks and
    closes arrive as the ``ActionInvoked``/``NotificationClosed`` signals through QtDBus.
    ``Notify`` itself is sent with ``gdbus``: PySide6 cannot marshal the D-Bus ``uint32``
    its ``replaces_id`` needs (the only integer overload it exposes is 16-bit).
    """

    name = "desktop notification"
    SERVICE = "org.freedesktop.Notifications"
    PATH = "/org/freedesktop/Notifications"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._gdbus = shutil.which("gdbus")
        self._server_ids: dict[int, int] = {}  # server id -> our token
        self._pending: set[QProcess] = set()
        self._connected = False
        self._bus = None
        if sys.platform.startswith("linux"):
            try:
                from PySide6.QtDBus import QDBusConnection

                self._bus = QDBusConnection.sessionBus()
            except ImportError:
                self._bus = None
        if self._bus is not None and self._bus.isConnected():
            self._connected = bool(
                self._bus.connect(
                    self.SERVICE,
                    self.PATH,
                    self.SERVICE,
                    "ActionInvoked",
                    self,
                    SLOT("_on_action(uint,QString)"),
                )
            ) and bool(
                self._bus.connect(
                    self.SERVICE,
                    self.PATH,
                    self.SERVICE,
                    "NotificationClosed",
                    self,
                    SLOT("_on_closed(uint,uint)"),
                )
            )

    def available(self) -> bool:
        if self._bus is None or not self._bus.isConnected() or not self._gdbus:
            return False
        interface = self._bus.interface()
        if interface is None:
            return False
        reply = interface.isServiceRegistered(self.SERVICE)
        registered = bool(reply.value()) if reply.isValid() else False
        if registered:
            return True
        activatable = interface.activatableServiceNames()
        return activatable.isValid() and self.SERVICE in (activatable.value() or [])

    def show(self, token: int, title: str, text: str, urgency: Urgency) -> None:
        if not self._gdbus:
            return
        level = 1 if urgency is Urgency.NORMAL else 0
        args = [
            "call",
            "--session",
            "--dest",
            self.SERVICE,
            "--object-path",
            self.PATH,
            "--method",
            f"{self.SERVICE}.Notify",
            "--",  # the arguments follow; "-1" must not be read as an option
            gvariant_string(APP_NAME),
            "uint32 0",  # typed: without introspection gdbus would send an int32
            gvariant_string("portwatch"),
            gvariant_string(escaped(title)),
            gvariant_string(escaped(text)),
            '["default", "Open portwatch"]',
            f'{{"urgency": <byte {level}>, "desktop-entry": <"{APP_ID}">}}',
            "int32 -1",
        ]
        process = QProcess(self)
        self._pending.add(process)
        process.finished.connect(lambda *_: self._sent(process, token))
        process.start(self._gdbus, args)

    def _sent(self, process: QProcess, token: int) -> None:
        self._pending.discard(process)
        output = bytes(process.readAllStandardOutput().data()).decode("utf-8", "replace")
        match = re.search(r"uint32 (\d+)", output)
        if process.exitCode() != 0 or match is None:
            error = bytes(process.readAllStandardError().data()).decode("utf-8", "replace")
            log.warning("the notification service refused a notification: %s", error.strip())
        else:
            self._server_ids[int(match.group(1))] = token
        process.deleteLater()

    @Slot("uint", "QString")
    def _on_action(self, server_id: int, action: str) -> None:
        token = self._server_ids.get(server_id)
        if token is not None and action == "default":
            self.clicked.emit(token)

    @Slot("uint", "uint")
    def _on_closed(self, server_id: int, reason: int) -> None:
        self._server_ids.pop(server_id, None)


class Notifier(QObject):
    """Logs every alert and shows it through the chosen back-end when enabled."""

    alert_logged = Signal(object)
    """A :class:`LoggedAlert`, for the alert log and the tray's recent-alerts menu."""
    open_requested = Signal(object)
    """The user clicked a notification: open the window on this :class:`Alert`'s port."""
    alerts_paused_changed = Signal(bool)
    """Desktop alerts were paused (True) or resumed (False); the log keeps every alert."""

    def __init__(
        self,
        backend: NotificationBackend | None = None,
        *,
        enabled: bool = True,
        cooldown_s: float = 0.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        policy: RateLimitedPolicy | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        # With a policy, it decides what reaches the desktop (one alert per program and
        # port per cooldown, a few a minute, one "and N more" summary); without one, the
        # plain (title, port) cooldown below does.
        self._policy = policy
        if policy is not None:
            policy.set_cooldown(cooldown_s)
            # Summaries held back by the rate limit go out when the window allows, even
            # if no new alert arrives to carry them.
            self._flush_timer = QTimer(self)
            self._flush_timer.setInterval(SUMMARY_FLUSH_MS)
            self._flush_timer.timeout.connect(self._flush_summaries)
            self._flush_timer.start()
            # The window hands over one tick's alerts one by one, in one go: they are
            # judged together, so a burst gives three alerts and one summary.
            self._batch: list[Alert] = []
            self._batch_timer = QTimer(self)
            self._batch_timer.setSingleShot(True)
            self._batch_timer.setInterval(0)
            self._batch_timer.timeout.connect(self._judge_batch)
        self._clock = clock
        self._monotonic = monotonic
        self._enabled = enabled
        self._alerts_paused = False
        self._cooldown_s = cooldown_s
        # (title, port, proto) -> when it last reached the desktop (monotonic clock).
        self._last_shown: dict[tuple[str, object, object], float] = {}
        self._next_token = 1
        self._log: collections.deque[LoggedAlert] = collections.deque(maxlen=LOG_LIMIT)
        self._backend: NotificationBackend = NullBackend(self)
        self._backend_wired = False
        self.set_backend(backend or NullBackend(self))

    @property
    def backend(self) -> NotificationBackend:
        return self._backend

    def set_backend(self, backend: NotificationBackend) -> None:
        """Use another back-end (e.g. when a tray appears); clicks are rewired."""
        if self._backend_wired:
            self._backend.clicked.disconnect(self._on_clicked)
        self._backend = backend
        self._backend_wired = True
        backend.clicked.connect(self._on_clicked)

    def set_enabled(self, enabled: bool) -> None:
        """Turn desktop notifications on or off; the in-app log keeps every alert."""
        self._enabled = enabled

    def set_cooldown(self, cooldown_s: float) -> None:
        """Show the same alert for the same port on the desktop at most once per
        ``cooldown_s`` seconds (the in-app log keeps every repeat)."""
        self._cooldown_s = cooldown_s
        if self._policy is not None:
            self._policy.set_cooldown(cooldown_s)

    def snooze(self, spec: WatchSpec, seconds: float) -> bool:
        """No desktop alerts for ``spec`` for ``seconds`` (1 hour, or
        ``core.alert_policy.seconds_until_tomorrow``); the log keeps every alert.
        Returns False when there is no policy to snooze with."""
        if self._policy is None:
            return False
        self._policy.snooze(spec, self._monotonic() + seconds)
        return True

    def unsnooze(self, spec: WatchSpec) -> None:
        if self._policy is not None:
            self._policy.unsnooze(spec)

    @property
    def alerts_paused(self) -> bool:
        return self._alerts_paused

    @Slot(bool)
    def set_alerts_paused(self, paused: bool) -> None:
        """Pause every desktop alert until resumed (monitoring and the log go on)."""
        if paused == self._alerts_paused:
            return
        self._alerts_paused = paused
        if self._policy is not None:
            if paused:
                self._policy.pause()
            else:
                self._policy.resume()
        self.alerts_paused_changed.emit(paused)

    def _repeat(self, alert: Alert) -> bool:
        key = (alert.title, alert.port, alert.proto)
        now = self._monotonic()
        last = self._last_shown.get(key)
        if last is not None and now - last < self._cooldown_s:
            return True
        self._last_shown[key] = now
        return False

    def recent(self) -> list[LoggedAlert]:
        """The logged alerts, newest last."""
        return list(self._log)

    @Slot(object)
    def notify(self, alert: Alert) -> None:
        """Log ``alert`` and show it as a desktop notification when possible.

        With a policy the decision is made a moment later (same event-loop turn, after
        the rest of the tick's alerts arrived); the log still gets every alert."""
        if self._policy is not None and alert.events:
            self._batch.append(alert)
            self._batch_timer.start()
            return
        if not self._enabled:
            self._log_and_show(alert, None, "in-app log only (notifications are off)")
        elif self._repeat(alert):
            self._log_and_show(alert, None, "in-app log only (repeat within the cooldown)")
        else:
            self._log_and_show(alert, alert, "in-app log only")

    @Slot()
    def _judge_batch(self) -> None:
        batch, self._batch = self._batch, []
        if not batch or self._policy is None:
            return
        if not self._enabled:
            for alert in batch:
                self._log_and_show(alert, None, "in-app log only (notifications are off)")
            return
        events = [event for alert in batch for event in alert.events]
        gated = self._policy.alerts_for(events, self._monotonic())
        singles = [g for g in gated if not g.folded]
        for alert in batch:
            # The policy's own wording (it adds the old and new hash for a changed binary).
            own = next((g for g in singles if g.events == alert.events), None)
            why = (
                "in-app log only"
                if own is not None
                else "in-app log only (limited: one alert per program and port per "
                "cooldown, a few a minute)"
            )
            self._log_and_show(alert, own, why)
        for summary in gated:
            if summary.folded:
                self._log_and_show(summary, summary, "in-app log only")

    def _log_and_show(self, alert: Alert, show: Alert | None, shown_by: str) -> None:
        token = self._next_token
        self._next_token += 1
        if show is not None and self._backend.available():
            title = shorten(visible(show.title), TITLE_LIMIT)
            text = shorten(visible(show.text), TEXT_LIMIT)
            try:
                self._backend.show(token, title, text, show.urgency)
                shown_by = self._backend.name
            except Exception:
                log.exception("showing a notification failed")
        entry = LoggedAlert(token, self._clock(), show or alert, shown_by)
        self._log.append(entry)
        self.alert_logged.emit(entry)

    @Slot()
    def _flush_summaries(self) -> None:
        if self._policy is None or not self._enabled:
            return
        for summary in self._policy.alerts_for((), self._monotonic()):
            self._log_and_show(summary, summary, "in-app log only")

    @Slot(int)
    def _on_clicked(self, token: int) -> None:
        for entry in self._log:
            if entry.token == token:
                self.open_requested.emit(entry.alert)
                return
