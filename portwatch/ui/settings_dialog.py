"""The settings dialog: poll interval, notifications, start minimized, start at login,
alert cooldown."""

from __future__ import annotations

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

from portwatch.config.autostart import Autostart
from portwatch.services import settings as settings_file
from portwatch.services.settings import Settings


class SettingsDialog(QDialog):
    """Edits a :class:`Settings`; :meth:`result_settings` gives the edited copy."""

    def __init__(
        self,
        current: Settings,
        parent: QWidget | None = None,
        autostart: Autostart | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("portwatch settings")
        self.interval = QDoubleSpinBox()
        self.interval.setRange(settings_file.MIN_POLL_INTERVAL_S, settings_file.MAX_POLL_INTERVAL_S)
        self.interval.setDecimals(1)
        self.interval.setSuffix(" s")
        self.interval.setValue(current.poll_interval_s)
        self.notifications = QCheckBox("Show desktop notifications for alerts")
        self.notifications.setChecked(current.notifications)
        self.minimized = QCheckBox("Start hidden in the tray")
        self.minimized.setChecked(current.start_minimized)
        # Start at login lives in the OS (Run key, LaunchAgent, XDG autostart), not in our
        # settings file: the box shows what the OS has now, so a removal elsewhere shows too.
        self.login = QCheckBox("Start portwatch when I &log in (hidden in the tray)")
        self.login_was = False
        if autostart is None:
            self.login.setEnabled(False)
            self.login.setToolTip("Starting at login is not available here.")
        else:
            try:
                self.login_was = autostart.is_enabled()
            except OSError as exc:
                self.login.setEnabled(False)
                self.login.setToolTip(f"Cannot read {autostart.location}: {exc.strerror or exc}")
            else:
                self.login.setToolTip(f"Written to {autostart.location}")
        self.login.setChecked(self.login_was)
        self.cooldown = QDoubleSpinBox()
        self.cooldown.setRange(0, settings_file.MAX_ALERT_COOLDOWN_S)
        self.cooldown.setDecimals(0)
        self.cooldown.setSuffix(" s")
        self.cooldown.setValue(current.alert_cooldown_s)

        form = QFormLayout()
        form.addRow("&Check ports every:", self.interval)
        form.addRow("", self.notifications)
        form.addRow("", self.minimized)
        form.addRow("", self.login)
        form.addRow("Repeat an alert for the same port after:", self.cooldown)
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
        return Settings(
            poll_interval_s=float(self.interval.value()),
            notifications=self.notifications.isChecked(),
            start_minimized=self.minimized.isChecked(),
            alert_cooldown_s=float(self.cooldown.value()),
        )
