"""Helpers for the desktop-app tests: a recording notifier, data folders, waiting on ticks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from portwatch.config import watchfile
from portwatch.core.alerts import Urgency
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.paths import Paths, rooted
from portwatch.services import settings as settings_file
from portwatch.services.notify import NotificationBackend
from portwatch.services.settings import Settings

# The shortest poll interval the settings accept: keeps the tests quick.
FAST_POLL_S = 0.5


class RecordingBackend(NotificationBackend):
    """A notification back-end that remembers what it was asked to show."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[tuple[int, str, str, Urgency]] = []

    def available(self) -> bool:
        return True

    def show(self, token: int, title: str, text: str, urgency: Urgency) -> None:
        self.shown.append((token, title, text, urgency))


def prepare_data_dir(
    folder: Path, specs: Sequence[str] | None = None, settings: Settings | None = None
) -> Paths:
    """A data folder with a fast poll interval and (optionally) a given watch list."""
    paths = rooted(folder)
    paths.ensure()
    settings_file.save(paths.settings_file, settings or Settings(poll_interval_s=FAST_POLL_S))
    if specs is not None:
        watchfile.save(paths.watchlist_file, WatchList(tuple(parse_spec(s) for s in specs)))
    return paths


def wait_ticks(qtbot: Any, desktop: Any, count: int = 1, timeout: int = 15_000) -> None:
    """Wait until the window has shown ``count`` more ticks."""
    target = desktop.window.ticks_shown + count
    qtbot.waitUntil(lambda: desktop.window.ticks_shown >= target, timeout=timeout)


def shown_default_window(qtbot: Any, make_desktop: Any, ticks: int) -> Any:
    """The app on the three default ports, its window on screen after ``ticks`` ticks."""
    desktop = make_desktop(["3321", "3353", "3653"])
    desktop.window.show()
    qtbot.waitExposed(desktop.window)
    wait_ticks(qtbot, desktop, ticks)
    return desktop
