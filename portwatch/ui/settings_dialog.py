"""The settings dialog: poll interval, notifications, start minimized, start at login,
alert cooldown."""

from __future__ import annotations

import dataclasses

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from portwatch.services.login_start import LoginStart
from portwatch.services.settings import Settings, bounds, setting


def _seconds_box(name: str, value: float, decimals: int) -> QDoubleSpinBox:
    """A spin box with the declared range of the number setting ``name``."""
    box = QDoubleSpinBox()
    limits = bounds(name)
    box.setRange(limits.lo, limits.hi)
    box.setDecimals(decimals)
    box.setSuffix(" s")
    box.setValue(value)
    return box


def _minutes_box(name: str, seconds: float) -> QDoubleSpinBox:
    """A duration of minutes or more, shown in minutes (the setting stays in seconds)."""
    box = QDoubleSpinBox()
    limits = bounds(name)
    box.setRange(limits.lo / 60, limits.hi / 60)
    box.setDecimals(0)
    box.setSuffix(" min")
    box.setValue(seconds / 60)
    return box


def _label(name: str) -> str:
    text: str = setting(name).metadata["label"]
    return text


class SettingsDialog(QDialog):
    """Edits a :class:`Settings`; :meth:`result_settings` gives the edited copy."""

    def __init__(
        self,
        current: Settings,
        parent: QWidget | None = None,
        login_start: LoginStart | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("portwatch settings")
        self._current = current
        self.interval = _seconds_box("poll_interval_s", current.poll_interval_s, 1)
        self.notifications = QCheckBox(_label("notifications"))
        self.notifications.setChecked(current.notifications)
        self.minimized = QCheckBox(_label("start_minimized"))
        self.minimized.setChecked(current.start_minimized)
        # Start at login lives in the OS (Run key, LaunchAgent, XDG autostart), not in our
        # settings file: the box shows what the OS has now, so a removal elsewhere shows too.
        self.login = QCheckBox("Start portwatch when I &log in (hidden in the tray)")
        self.login_was = False
        if login_start is None or not login_start.supported:
            self.login.setEnabled(False)
            self.login.setToolTip("Starting at login is not available here.")
        else:
            try:
                self.login_was = login_start.is_enabled()
            except OSError as exc:
                self.login.setEnabled(False)
                self.login.setToolTip(f"Cannot read {login_start.location}: {exc.strerror or exc}")
            else:
                self.login.setToolTip(f"Written to {login_start.location}")
        self.login.setChecked(self.login_was)
        self.cooldown = _minutes_box("alert_cooldown_s", current.alert_cooldown_s)
        self.reverse_dns = QCheckBox(_label("reverse_dns"))
        self.reverse_dns.setChecked(current.reverse_dns)
        self.reverse_dns.setToolTip(
            "Names of the remote addresses in the Connections tab, looked up in the "
            "background. Each lookup tells your DNS server an address this computer talks to."
        )

        form = QFormLayout()
        form.addRow(f"&{_label('poll_interval_s')}:", self.interval)
        form.addRow("", self.notifications)
        form.addRow("", self.minimized)
        form.addRow("", self.login)
        form.addRow(f"{_label('alert_cooldown_s')}:", self.cooldown)
        form.addRow("", self.reverse_dns)
        note = QLabel("The alert log in the window always keeps every alert.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def start_at_login_change(self) -> bool | None:
        """True/False when the user switched start-at-login on/off; None when unchanged."""
        if not self.login.isEnabled() or self.login.isChecked() == self.login_was:
            return None
        return self.login.isChecked()

    def result_settings(self) -> Settings:
        # Settings kept elsewhere (the table's hidden columns) pass through unchanged.
        return dataclasses.replace(
            self._current,
            poll_interval_s=float(self.interval.value()),
            notifications=self.notifications.isChecked(),
            start_minimized=self.minimized.isChecked(),
            alert_cooldown_s=float(self.cooldown.value()) * 60,
            reverse_dns=self.reverse_dns.isChecked(),
        )
