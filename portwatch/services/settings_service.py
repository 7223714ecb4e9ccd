"""The desktop app's current settings: saved when changed, and each change announced once.

Who cares about a setting connects to its signal (the sampler to the interval, the alert
service to notifications and the cooldown); the window only opens the dialog.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from portwatch.services import settings as settings_file
from portwatch.services.settings import Settings


class SettingsService(QObject):
    """Holds the settings in use; :meth:`apply` saves new ones and tells who cares."""

    changed = Signal(object)
    """The new :class:`Settings`, already saved."""
    interval_changed = Signal(float)
    notifications_toggled = Signal(bool)
    cooldown_changed = Signal(float)
    failed = Signal(str, str)
    """(title, reason) when the settings could not be saved."""

    def __init__(self, path: Path, current: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._path = path
        self._current = current

    @property
    def current(self) -> Settings:
        return self._current

    def apply(self, new: Settings) -> bool:
        """Save ``new`` and announce what changed; False (and ``failed``) if not saved."""
        try:
            settings_file.save(self._path, new)
        except OSError as exc:
            self.failed.emit(
                "Settings not saved", f"Could not write {self._path}:\n{exc.strerror or exc}"
            )
            return False
        old, self._current = self._current, new
        if new.poll_interval_s != old.poll_interval_s:
            self.interval_changed.emit(new.poll_interval_s)
        if new.notifications != old.notifications:
            self.notifications_toggled.emit(new.notifications)
        if new.alert_cooldown_s != old.alert_cooldown_s:
            self.cooldown_changed.emit(new.alert_cooldown_s)
        self.changed.emit(new)
        return True
