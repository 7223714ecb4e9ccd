"""Notification back-ends: how one alert is put on the desktop.

Which alerts are shown, and when, is decided by ``services.alert_service``; a back-end
only shows what it is given and escapes it for the renderer it talks to. Back-ends: a
D-Bus notification on Linux, the tray message (``ui.tray``, it needs QtWidgets) as the
fallback, and a null back-end (the alert log still has every alert).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from portwatch.core.alerts import Alert, Urgency

log = logging.getLogger(__name__)

# Limits Windows applies to toast text, in UTF-16 units: Qt copies at most 63 and 255 of
# them (the NOTIFYICONDATA fields of 64 and 256 hold the terminating NUL). Used everywhere, so
# no back-end cuts the text, and its ellipsis, off itself.
TITLE_LIMIT = 63
TEXT_LIMIT = 255
# How many alerts the in-app log keeps for this session.
LOG_LIMIT = 500


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
    spacing_s = 0.0
    """How long to leave one notification before showing the next (0: they stack)."""

    def available(self) -> bool:
        """True when this back-end can show something right now."""
        return False

    def show(self, token: int, title: str, text: str, urgency: Urgency) -> None:
        """Show a notification; ``title``/``text`` are plain text, already shortened."""


class NullBackend(NotificationBackend):
    """Shows nothing (no tray and no notification service): the alert log still has it."""

    name = "alert log only"


class FirstAvailable(NotificationBackend):
    """The first of several back-ends that can show something now, asked at each alert.

    The desktop's notification service comes first whenever it runs (it stacks a burst
    and keeps a history), the tray's balloon is the fallback; a service that starts or
    stops while portwatch runs is followed without a restart.
    """

    def __init__(self, *backends: NotificationBackend, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backends = backends
        for backend in backends:
            backend.clicked.connect(self.clicked)

    def current(self) -> NotificationBackend | None:
        return next((b for b in self.backends if b.available()), None)

    def available(self) -> bool:
        # The name and spacing are those of the back-end that would show it now.
        chosen = self.current()
        self.name = chosen.name if chosen is not None else NullBackend.name
        self.spacing_s = chosen.spacing_s if chosen is not None else 0.0
        return chosen is not None

    def show(self, token: int, title: str, text: str, urgency: Urgency) -> None:
        chosen = self.current()
        if chosen is not None:
            chosen.show(token, title, text, urgency)
