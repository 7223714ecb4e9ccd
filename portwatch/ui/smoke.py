"""``--smoke PNG``: show the window, wait for the first tick on screen, save a screenshot."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QWidget

from portwatch import files
from portwatch.engine.export import EXPORT_MODE, ExportError, check_target

log = logging.getLogger(__name__)

# A frozen build that never shows a tick is broken; fail rather than hang.
SMOKE_TIMEOUT_MS = 60_000


class SmokeShot(QObject):
    """Saves ``window.grab()`` after the first tick is shown; ``done(status)`` ends the app."""

    done = Signal(int)

    def __init__(
        self,
        window: QWidget,
        target: Path,
        keep: Sequence[Path] = (),
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._window = window
        self._target = target
        self._keep = tuple(keep)
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
        saved = False
        png = QByteArray()
        buffer = QBuffer(png)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not self._window.grab().save(buffer, "PNG"):
            log.error("could not render the smoke screenshot")
        else:
            # Written like an export (never through a link, over a device or one of
            # portwatch's own files): Qt's own save opens the path as given.
            try:
                self._target.parent.mkdir(parents=True, exist_ok=True)
                check_target(self._target, self._keep)
                files.write_bytes(self._target, bytes(png.data()), EXPORT_MODE)
                saved = True
            except (OSError, ExportError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                log.error("could not save the smoke screenshot to %s: %s", self._target, reason)
        self.status = 0 if saved else 1
        self.done.emit(self.status)

    @Slot()
    def _give_up(self) -> None:
        if not self._finished:
            log.error("no tick was shown within %d s", SMOKE_TIMEOUT_MS // 1000)
            self._finished = True
            self.status = 1
            self.done.emit(1)
