"""Fixtures for the desktop app: a fully wired app in a throw-away data folder."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from portwatch.config.autostart import XdgAutostart

sys.path.insert(0, str(Path(__file__).parent))

from guikit import RecordingBackend, prepare_data_dir

from portwatch.app import DesktopApp
from portwatch.services.background import JobRunner
from portwatch.services.settings import Settings


@pytest.fixture
def recording_backend() -> RecordingBackend:
    return RecordingBackend()


@pytest.fixture
def make_desktop(
    qtbot: Any, data_dir: Path, recording_backend: RecordingBackend
) -> Iterator[Callable[..., DesktopApp]]:
    """Build and start the desktop app (no tray, a recording notifier); shut down after."""
    created: list[DesktopApp] = []

    def make(
        specs: Sequence[str] | None = None,
        *,
        folder: Path | None = None,
        factory: Any = None,
        start: bool = True,
        settings: Settings | None = None,
        autostart: Any = None,
        resolver: Any = None,
        clock: Any = None,
    ) -> DesktopApp:
        paths = prepare_data_dir(folder or data_dir, specs, settings)
        desktop = DesktopApp(
            paths,
            factory=factory,
            use_tray=False,
            jobs=JobRunner(),
            notification_backend=recording_backend,
            # Edits of the trust file by the CLI are noticed within a tenth of a second.
            trust_reload_ms=100,
            # Never the real ~/.config/autostart from a test.
            autostart=autostart or XdgAutostart(paths.config_dir / "xdg-config"),
            # Reverse DNS at its seam (None: the system's resolver; the setting is off).
            resolver=resolver,
            # The alert service's clock and timers (None: the real ones).
            clock=clock,
        )
        created.append(desktop)
        if start:
            desktop.start()
            qtbot.waitExposed(desktop.window)
        return desktop

    yield make
    for desktop in created:
        desktop.shutdown()
