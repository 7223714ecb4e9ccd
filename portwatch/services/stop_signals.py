"""Ctrl+C and SIGTERM end the desktop app the way Quit does.

Qt's event loop runs in C, so a Python signal handler alone would only run at the next
Python callback, which may be never while the app is idle. The handler therefore writes
to a socket that the event loop watches (``signal.set_wakeup_fd``), and the quit runs on
the GUI thread like any other event.
"""

from __future__ import annotations

import contextlib
import signal
import socket
from types import FrameType

from PySide6.QtCore import QObject, QSocketNotifier, Signal, Slot

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    sig for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if sig is not None
)


class StopSignals(QObject):
    """Emits :attr:`stop_requested` on the GUI thread when SIGINT or SIGTERM arrives."""

    stop_requested = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Runs in the main thread between bytecodes; the wakeup fd already woke Qt.
        # Nothing to do here: the byte the C handler wrote names the signal.
        del signum

    @Slot()
    def _drain(self) -> None:
        try:
            data = self._reader.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        for signum in data:
            if signum in {int(sig) for sig in STOP_SIGNALS}:
                self.stop_requested.emit(signum)
                return

    def close(self) -> None:
        """Give the signals back to their previous handlers."""
        self._notifier.setEnabled(False)
        for sig, handler in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()
