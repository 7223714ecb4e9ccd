"""What the desktop app must tell Windows and macOS about itself, in one place.

Each function takes the platform as an argument (default: this one), so its choices can be
checked anywhere; the Windows calls go through ctypes and do nothing elsewhere.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication

from portwatch import APP_ID

log = logging.getLogger(__name__)

# The AppUserModelID Windows files portwatch's notifications under; the installer registers
# the same ID (HKCU\Software\Classes\AppUserModelId) with the display name and icon.
APP_USER_MODEL_ID = APP_ID
_ASFW_ANY = -1
# How long a tray message stays up. macOS: Qt removes a delivered notification from
# Notification Center once this many milliseconds pass, so an alert that arrives while the
# user is away would be gone when they come back; 0 keeps it there.
_MESSAGE_MS = 15_000


def message_timeout_ms(platform: str = sys.platform) -> int:
    """The ``msecs`` for ``QSystemTrayIcon.showMessage`` on ``platform``."""
    return 0 if platform == "darwin" else _MESSAGE_MS


def uses_native_menu_bar(platform: str = sys.platform) -> bool:
    """Whether the window's menus go to the system's global menu bar.

    Not on macOS: portwatch is an accessory app there (LSUIElement: no Dock icon), and an
    accessory app has no menu bar, so File, Monitor, View and Help would be unreachable.
    Inside the window they always are.
    """
    return platform != "darwin"


def set_app_user_model_id(platform: str = sys.platform) -> bool:
    """Windows: name this process's notifications and taskbar button as portwatch's.

    Without it a ``pythonw -m portwatch`` install shows "Python" as the sender. True when set.
    """
    if platform != "win32":
        return False
    try:
        shell32 = ctypes.WinDLL("shell32")  # type: ignore[attr-defined]
        app_id = ctypes.c_wchar_p(APP_USER_MODEL_ID)
        result = shell32.SetCurrentProcessExplicitAppUserModelID(app_id)
    except (AttributeError, OSError) as exc:
        log.debug("cannot set the AppUserModelID: %s", exc)
        return False
    return bool(result == 0)  # S_OK


def allow_foreground_activation(platform: str = sys.platform) -> bool:
    """Windows: let the running instance take the foreground when this launch asks it to.

    Windows' foreground lock stops a background process from raising its window; the
    process the user just started holds the right and can pass it on. True when granted.
    """
    if platform != "win32":
        return False
    try:
        user32 = ctypes.WinDLL("user32")  # type: ignore[attr-defined]
        return bool(user32.AllowSetForegroundWindow(_ASFW_ANY))
    except (AttributeError, OSError) as exc:
        log.debug("cannot pass on the foreground: %s", exc)
        return False


class ReopenWatcher(QObject):
    """macOS: double-clicking the running app must show its window.

    LaunchServices does not start a second process for a running bundle; it sends the
    running one a "reopen" event, which Qt turns into an application-state change to Active.
    ``reopen_requested`` fires for that while the window is hidden.
    """

    reopen_requested = Signal()

    def __init__(
        self,
        app: QGuiApplication,
        window_visible: Callable[[], bool],
        platform: str = sys.platform,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._window_visible = window_visible
        self.active = platform == "darwin"
        if self.active:
            app.applicationStateChanged.connect(self._state_changed)

    @Slot(Qt.ApplicationState)
    def _state_changed(self, state: Qt.ApplicationState) -> None:
        if state == Qt.ApplicationState.ApplicationActive and not self._window_visible():
            self.reopen_requested.emit()
