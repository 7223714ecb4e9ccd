"""The tray icon: a menu for the common actions, an alert state drawn on the icon itself,
and the tray-message notification back-end."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from portwatch.core.alerts import Urgency
from portwatch.services.notify import LoggedAlert, NotificationBackend
from portwatch.services.os_integration import message_timeout_ms
from portwatch.services.plain_text import escaped, shorten, tooltip, visible
from portwatch.ui.icons import tray_icon

RECENT_IN_MENU = 8


class TrayMessageBackend(NotificationBackend):
    """Notifications as tray messages (balloons, toasts or SNI notifications)."""

    name = "tray message"

    def __init__(self, tray: QSystemTrayIcon, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tray = tray
        self._last_token: int | None = None
        tray.messageClicked.connect(self._clicked)

    def available(self) -> bool:
        # showMessage does nothing unless the icon is shown.
        return QSystemTrayIcon.isSystemTrayAvailable() and self._tray.isVisible()

    def show(self, token: int, title: str, text: str, urgency: Urgency) -> None:
        if sys.platform.startswith("linux"):
            # Linux tray hosts render markup (SNI notifications, Qt's own balloon label).
            title, text = escaped(title), escaped(text)
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


class Tray(QObject):
    """The tray icon and its menu; emits what the user asked for."""

    open_window = Signal()
    pause_toggled = Signal()
    export_requested = Signal()
    quit_requested = Signal()
    alert_chosen = Signal(object)
    alerts_pause_toggled = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.icon = QSystemTrayIcon(tray_icon(alert=False), self)
        self.icon.setToolTip("portwatch")
        self.menu = QMenu()
        self.open_action = self.menu.addAction("&Open portwatch")
        self.open_action.triggered.connect(self.open_window)
        self.pause_action = self.menu.addAction("&Pause monitoring")
        self.pause_action.triggered.connect(self.pause_toggled)
        self.alerts_pause_action = self.menu.addAction("Pause &alerts")
        self.alerts_pause_action.setCheckable(True)
        self.alerts_pause_action.toggled.connect(self.alerts_pause_toggled)
        self.recent_menu = self.menu.addMenu("&Recent alerts")
        self._no_alerts = self.recent_menu.addAction("No alerts yet")
        self._no_alerts.setEnabled(False)
        self.export_action = self.menu.addAction("&Export CSV\u2026")
        self.export_action.triggered.connect(self.export_requested)
        self.menu.addSeparator()
        self.quit_action = self.menu.addAction("&Quit")
        self.quit_action.triggered.connect(self.quit_requested)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self._alerting = False
        self.backend = TrayMessageBackend(self.icon, self)

    @staticmethod
    def available() -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    @property
    def alerting(self) -> bool:
        return self._alerting

    def set_alerting(self, alerting: bool, why: str = "") -> None:
        """Swap to the alert icon (a different shape) while an unknown owner holds a port."""
        if alerting == self._alerting and not why:
            return
        self._alerting = alerting
        self.icon.setIcon(tray_icon(alert=alerting))
        tip = "portwatch: " + (why if alerting and why else "all watched ports fine")
        # Where Qt draws the tooltip itself (Linux trays) it guesses at rich text, so the
        # process-supplied part is escaped; Windows and macOS show tray tooltips as plain text.
        tip = shorten(tip, 120)
        self.icon.setToolTip(tooltip(tip) if sys.platform.startswith("linux") else visible(tip))

    @Slot(bool)
    def set_alerts_paused(self, paused: bool) -> None:
        """Reflect the alert pause (set from the window or the tray) without re-emitting."""
        if self.alerts_pause_action.isChecked() != paused:
            self.alerts_pause_action.blockSignals(True)
            self.alerts_pause_action.setChecked(paused)
            self.alerts_pause_action.blockSignals(False)

    def set_paused(self, paused: bool) -> None:
        self.pause_action.setText("&Resume monitoring" if paused else "&Pause monitoring")

    @Slot(object)
    def add_recent(self, entry: LoggedAlert) -> None:
        """Keep the latest alerts in the tray menu; choosing one opens its port."""
        if self._no_alerts is not None:
            self.recent_menu.removeAction(self._no_alerts)
            self._no_alerts = None
        action = QAction(shorten(visible(entry.alert.title), 80), self.recent_menu)
        action.triggered.connect(lambda _checked=False, a=entry.alert: self.alert_chosen.emit(a))
        actions = self.recent_menu.actions()
        self.recent_menu.insertAction(actions[0] if actions else None, action)
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
