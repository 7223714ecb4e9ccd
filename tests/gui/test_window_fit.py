"""The window fits the screen, says once where it went, and shows durations in minutes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QRect

from portwatch.app import DesktopApp
from portwatch.services.settings import Settings
from portwatch.ui.main_window import fit_to_screen
from portwatch.ui.settings_dialog import SettingsDialog


def test_window_opens_inside_the_screen(make_desktop: Callable[..., DesktopApp]) -> None:
    window = make_desktop([]).window
    free = window.screen().availableGeometry()
    assert window.width() <= free.width()
    assert window.height() <= free.height()
    assert free.contains(window.frameGeometry().topLeft())


def test_fit_to_screen_shrinks_only_what_does_not_fit() -> None:
    assert fit_to_screen(1000, 600, QRect(0, 0, 1920, 1080)) == (1000, 600)
    # 1.5x scaling on a 1366x768 laptop: a font-based 2300x1275 must shrink.
    assert fit_to_screen(2300, 1275, QRect(0, 0, 1366, 728)) == (1229, 655)


def test_first_close_to_the_tray_is_told_once(
    qtbot: Any, make_desktop: Callable[..., DesktopApp]
) -> None:
    window = make_desktop([]).window
    window.hide_to_tray = True
    told: list[bool] = []
    window.hidden_to_tray.connect(lambda: told.append(True))
    for _ in range(2):
        window.show()
        window.close()
        assert not window.isVisible()
    assert told == [True]


def test_cooldown_is_shown_in_minutes(qtbot: Any) -> None:
    dialog = SettingsDialog(Settings(alert_cooldown_s=1800.0))
    qtbot.addWidget(dialog)
    assert dialog.cooldown.suffix() == " min"
    assert dialog.cooldown.value() == 30
    dialog.cooldown.setValue(45)
    assert dialog.result_settings().alert_cooldown_s == 2700.0


def test_the_dialog_offers_exactly_the_declared_ranges(qtbot: Any) -> None:
    from portwatch.services.settings import bounds

    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    interval = bounds("poll_interval_s")
    assert (dialog.interval.minimum(), dialog.interval.maximum()) == (interval.lo, interval.hi)
    cooldown = bounds("alert_cooldown_s")
    assert (dialog.cooldown.minimum(), dialog.cooldown.maximum()) == (
        cooldown.lo / 60,
        cooldown.hi / 60,
    )
    # The defaults are shown as they are declared.
    assert dialog.interval.value() == Settings().poll_interval_s
    assert dialog.cooldown.value() * 60 == Settings().alert_cooldown_s
