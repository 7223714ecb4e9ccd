"""What the app tells macOS and Windows: reopen, menus, Notification Center, AppUserModelID."""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget

sys.path.insert(0, str(Path(__file__).parent.parent))

from platforms import needs_windows, wine_limit

from portwatch.services.os_integration import (
    APP_USER_MODEL_ID,
    ReopenWatcher,
    allow_foreground_activation,
    message_timeout_ms,
    set_app_user_model_id,
    uses_native_menu_bar,
)


def test_macos_keeps_alerts_in_notification_center() -> None:
    # Qt removes a delivered macOS notification after msecs; 0 leaves it there.
    assert message_timeout_ms("darwin") == 0
    assert message_timeout_ms("win32") > 0
    assert message_timeout_ms("linux") > 0


def test_macos_menus_stay_in_the_window_since_an_accessory_app_has_no_menu_bar() -> None:
    assert uses_native_menu_bar("darwin") is False
    assert uses_native_menu_bar("win32") is True
    assert uses_native_menu_bar("linux") is True


def test_the_window_keeps_its_menus_in_itself_where_the_platform_says_so(
    qtbot: Any, make_desktop: Any, monkeypatch: Any
) -> None:
    from portwatch.ui import main_window

    monkeypatch.setattr(main_window, "uses_native_menu_bar", lambda: False)
    desktop = make_desktop()
    bar = desktop.window.menuBar()
    assert bar.isNativeMenuBar() is False
    assert [a.text() for a in bar.actions()][:1] == ["&File"]


def test_macos_reopen_event_shows_the_hidden_window(qtbot: Any) -> None:
    app = QApplication.instance()
    window = QWidget()
    qtbot.addWidget(window)
    watcher = ReopenWatcher(app, window.isVisible, platform="darwin")  # type: ignore[arg-type]
    window.hide()
    with qtbot.waitSignal(watcher.reopen_requested, timeout=2000):
        # What Qt's applicationShouldHandleReopen: does with a double-click on the running app.
        app.applicationStateChanged.emit(Qt.ApplicationState.ApplicationActive)  # type: ignore[union-attr]
    window.show()
    with qtbot.assertNotEmitted(watcher.reopen_requested):
        app.applicationStateChanged.emit(Qt.ApplicationState.ApplicationActive)  # type: ignore[union-attr]


def test_other_platforms_ignore_activation(qtbot: Any) -> None:
    app = QApplication.instance()
    watcher = ReopenWatcher(app, lambda: False, platform="linux")  # type: ignore[arg-type]
    assert not watcher.active
    with qtbot.assertNotEmitted(watcher.reopen_requested):
        app.applicationStateChanged.emit(Qt.ApplicationState.ApplicationActive)  # type: ignore[union-attr]


def test_windows_calls_do_nothing_elsewhere() -> None:
    assert set_app_user_model_id("linux") is False
    assert allow_foreground_activation("darwin") is False


@needs_windows
def test_windows_accepts_portwatchs_app_user_model_id() -> None:
    assert set_app_user_model_id() is True


@needs_windows
@wine_limit("GetCurrentProcessExplicitAppUserModelID is not implemented")
def test_windows_process_carries_portwatchs_app_user_model_id() -> None:
    assert set_app_user_model_id() is True
    shell32 = ctypes.WinDLL("shell32")  # type: ignore[attr-defined]
    ole32 = ctypes.WinDLL("ole32")  # type: ignore[attr-defined]
    value = ctypes.c_wchar_p()
    assert shell32.GetCurrentProcessExplicitAppUserModelID(ctypes.byref(value)) == 0
    try:
        assert value.value == APP_USER_MODEL_ID
    finally:
        ole32.CoTaskMemFree(value)


@needs_windows
def test_windows_second_launch_passes_on_the_foreground() -> None:
    assert allow_foreground_activation() is True
