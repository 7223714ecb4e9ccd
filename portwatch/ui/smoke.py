"""``--smoke PNG``: show the window, wait for the first tick on screen, save a screenshot."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)

# A frozen build that never shows a tick is broken; fail rather than hang.
SMOKE_TIMEOUT_MS = 60_000


class SmokeShot(QObject):
    """Saves ``window.grab()`` after the first tick is shown; ``done(status)`` ends the app."""

    done = Signal(int)

    def __init__(self, window: QWidget, target: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._window = window
        self._target = target
        self.status = 1
        self._finished = False
        self._timeout = QTimer(self)
        self._timeout.setSingleShot(True)
        self._timeout.timeout.connect(self._give_up)
        self._timeout.start(SMOKE_TIMEOUT_MS)

    @Slot(int)
    def on_tick(self, count: int) -> None:
        if self._finished:
            return
        self._finished = True
        # Let the chart's redraw and layouts settle before grabbing.
        QTimer.singleShot(300, self._grab)

    @Slot()
    def _grab(self) -> None:
        if hasattr(self._window, "chart"):
            self._window.chart.redraw()
        try:
            self._target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.error("cannot create %s: %s", self._target.parent, exc)
        saved = self._window.grab().save(str(self._target))
        if not saved:
            log.error("could not save the smoke screenshot to %s", self._target)
        self.status = 0 if saved else 1
        self.done.emit(self.status)

    @Slot()
    def _give_up(self) -> None:
        if not self._finished:
            log.error("no tick was shown within %d s", SMOKE_TIMEOUT_MS // 1000)
            self._finished = True
            self.status = 1
            self.done.emit(1)
