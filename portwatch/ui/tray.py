"""The tray icon: a menu for the common actions, the alert and pause state drawn on the
icon itself and written in its tooltip, and the tray-message notification back-end."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from portwatch.core.alerts import Alert, Urgency
from portwatch.core.types import ListenerView, Status
from portwatch.core.watchlist import WatchList
from portwatch.services.alert_service import AlertState
from portwatch.services.notify import LoggedAlert, NotificationBackend
from portwatch.services.os_integration import message_timeout_ms
from portwatch.services.plain_text import shorten, tooltip, visible
from portwatch.ui.icons import tray_icon, tray_icon_paused
from portwatch.ui.status import silenced

RECENT_IN_MENU = 8


class TrayMessageBackend(NotificationBackend):
    """Notifications as tray messages: the fallback where no notification service runs.

    Qt draws the message itself here (a balloon next to an XEmbed tray icon) and shows
    the text as it is, so nothing is escaped: a program named ``a&b`` reads ``a&b``. A
    balloon replaces the previous one, so messages are spaced for each to be read.
    """

    name = "tray message"
    spacing_s = 6.0

    def __init__(self, tray: QSystemTrayIcon, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tray = tray
        self._last_token: int | None = None
        tray.messageClicked.connect(self._clicked)

    def available(self) -> bool:
        # showMessage does nothing unless the icon is shown.
        return QSystemTrayIcon.isSystemTrayAvailable() and self._tray.isVisible()

    def show(self, token: int, title: str, text: str, urgency: Urgency) -> None:
        icon = (
            QSystemTrayIcon.MessageIcon.Warning
            if urgency is Urgency.NORMAL
            else QSystemTrayIcon.MessageIcon.Information
        )
        self._last_token = token
        self._tray.showMessage(title, text, icon, message_timeout_ms())

    @Slot()
    def _clicked(self) -> None:
        # Qt reports a click without saying which message: it is the latest one shown.
        if self._last_token is not None:
            self.clicked.emit(self._last_token)


def alert_program(alert: Alert) -> str:
    """The program an alert is about (its process name), or "" for a summary."""
    for event in alert.events[:1]:
        owner = event.listener.owner
        if owner is None:
            return "hidden owner"
        return owner.name or owner.exe or f"pid {owner.pid}"
    return ""


def recent_text(entry: LoggedAlert) -> str:
    """A recent-alerts menu entry: its time, the program, then what happened."""
    stamp = time.strftime("%H:%M:%S", time.localtime(entry.wall))
    program = alert_program(entry.alert)
    who = f"{visible(program)} \u2014 " if program else ""
    return shorten(f"{stamp}  {who}{visible(entry.alert.title)}", 90).replace("&", "&&")


def watched_port_count(watchlist: WatchList) -> int:
    """How many distinct port numbers the watch list covers (a range counts each port)."""
    ports: set[int] = set()
    for spec in watchlist.specs:
        ports.update(range(spec.lo, spec.hi + 1))
    return len(ports)


def untrusted_programs(views: Iterable[ListenerView]) -> int:
    """Programs (process instances) no trust entry covers on a watched port."""
    return len(
        {
            v.listener.owner.instance if v.listener.owner is not None else None
            for v in views
            if v.watched and v.status is Status.UNKNOWN
        }
    )


def status_text(watching: int, untrusted: int) -> str:
    """The tray menu's first line, e.g. "Watching 3 ports, 1 untrusted program"."""
    ports = f"Watching {watching} port{'s' if watching != 1 else ''}"
    if not untrusted:
        return f"{ports}, all trusted"
    return f"{ports}, {untrusted} untrusted program{'s' if untrusted != 1 else ''}"


class Tray(QObject):
    """The tray icon and its menu; emits what the user asked for."""

    open_window = Signal()
    pause_toggled = Signal()
    export_requested = Signal()
    quit_requested = Signal()
    alert_chosen = Signal(object)
    alerts_pause_toggled = Signal(bool)
    trusted_requested = Signal()
    settings_requested = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.icon = QSystemTrayIcon(tray_icon(alert=False), self)
        self.icon.setToolTip("portwatch")
        self.menu = QMenu()
        # First, what is going on, in bold. Not greyed out: a disabled entry is drawn in a
        # faint grey that is hard to read; choosing it opens the window, which explains it.
        self.status_action = self.menu.addAction("Waiting for the first check\u2026")
        bold = self.status_action.font()
        bold.setBold(True)
        self.status_action.setFont(bold)
        self.status_action.setToolTip("Open the window to see the watched ports")
        self.status_action.triggered.connect(self.open_window)
        self.menu.addSeparator()
        self.open_action = self.menu.addAction("&Show window")
        self.open_action.triggered.connect(self.open_window)
        self.pause_action = self.menu.addAction("&Pause monitoring")
        self.pause_action.triggered.connect(self.pause_toggled)
        self.alerts_menu = self.menu.addMenu("&Alerts")
        self.alerts_pause_action = self.alerts_menu.addAction("&Pause all alerts")
        self.alerts_pause_action.setCheckable(True)
        self.alerts_pause_action.toggled.connect(self.alerts_pause_toggled)
        self.recent_menu = self.alerts_menu.addMenu("&Recent alerts")
        placeholder = self.recent_menu.addAction("No alerts yet")
        placeholder.setEnabled(False)
        self._no_alerts: QAction | None = placeholder
        self.trusted_action = self.menu.addAction("&Trusted programs\u2026")
        self.trusted_action.triggered.connect(self.trusted_requested)
        self.settings_action = self.menu.addAction("Se&ttings\u2026")
        self.settings_action.triggered.connect(self.settings_requested)
        self.export_action = self.menu.addAction("&Export CSV\u2026")
        self.export_action.triggered.connect(self.export_requested)
        self.menu.addSeparator()
        self.quit_action = self.menu.addAction("&Quit")
        self.quit_action.triggered.connect(self.quit_requested)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self._alerting = False
        self._why = ""
        self._monitoring_paused = False
        self._alert_state = AlertState()
        self.backend = TrayMessageBackend(self.icon, self)
        self._refresh()

    @staticmethod
    def available() -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        self.icon.show()

    def tell_still_running(self) -> None:
        """Say, once, where the window went when its close button hid it."""
        self.icon.showMessage(
            "portwatch is still running",
            "Monitoring goes on in the tray. Choose Quit in this icon's menu to stop it.",
            QSystemTrayIcon.MessageIcon.Information,
            8000,
        )

    def hide(self) -> None:
        self.icon.hide()

    def set_counts(self, watching: int, untrusted: int) -> None:
        """The status line: how many ports are watched, how many programs untrusted."""
        self.status_action.setText(status_text(watching, untrusted))

    @property
    def alerting(self) -> bool:
        return self._alerting

    @Slot(bool, str)
    def set_alerting(self, alerting: bool, why: str = "") -> None:
        """Swap to the alert icon (a different shape) while an unknown owner holds a port."""
        self._alerting, self._why = alerting, why
        self._refresh()

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        """Monitoring paused or resumed: the menu, the icon and the tooltip follow."""
        self._monitoring_paused = paused
        self.pause_action.setText("&Resume monitoring" if paused else "&Pause monitoring")
        self._refresh()

    @Slot(object)
    def set_alert_state(self, state: AlertState) -> None:
        """Reflect the alert service's state (pause, snoozes, review) until it ends."""
        self._alert_state = state
        if self.alerts_pause_action.isChecked() != state.paused:
            self.alerts_pause_action.blockSignals(True)
            self.alerts_pause_action.setChecked(state.paused)
            self.alerts_pause_action.blockSignals(False)
        self._refresh()

    def tooltip_text(self) -> str:
        """The tooltip as plain text: the alarm (or all fine), then what is silenced."""
        alarm = self._why if self._alerting and self._why else "all watched ports fine"
        lines = [f"portwatch: {alarm}", *silenced(self._monitoring_paused, self._alert_state)]
        return "\n".join(shorten(line, 120) for line in lines)

    def _refresh(self) -> None:
        paused = self._monitoring_paused or self._alert_state.paused
        self.icon.setIcon(
            tray_icon_paused(self._alerting) if paused else tray_icon(alert=self._alerting)
        )
        tip = self.tooltip_text()
        # Where Qt draws the tooltip itself (Linux trays) it guesses at rich text, so the
        # process-supplied part is escaped; Windows and macOS show tray tooltips as plain text.
        self.icon.setToolTip(tooltip(tip) if sys.platform.startswith("linux") else visible(tip))

    @Slot(object)
    def add_recent(self, entry: LoggedAlert) -> None:
        """Keep the latest alerts in the tray menu; choosing one opens its port."""
        if self._no_alerts is not None:
            self.recent_menu.removeAction(self._no_alerts)
            self._no_alerts = None
        action = QAction(recent_text(entry), self.recent_menu)
        action.triggered.connect(lambda _checked=False, a=entry.alert: self.alert_chosen.emit(a))
        actions = self.recent_menu.actions()
        if actions:
            self.recent_menu.insertAction(actions[0], action)
        else:
            self.recent_menu.addAction(action)
        for old in self.recent_menu.actions()[RECENT_IN_MENU:]:
            self.recent_menu.removeAction(old)
            old.deleteLater()  # removeAction only unlinks it; the menu still owns it

    @Slot(QSystemTrayIcon.ActivationReason)
    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.open_window.emit()
