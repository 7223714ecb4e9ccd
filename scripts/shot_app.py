"""What every screenshot script sets up the same way: the application, waiting on the
event loop, and saving a widget's picture."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QWidget


def start_app() -> QApplication:
    """The application the scripts draw with: Fusion, so pictures match on every host."""
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName("portwatch")
    app.setStyle("Fusion")
    return app


def wait_until(condition: Callable[[], object], timeout_s: float = 30.0) -> None:
    """Run the event loop until ``condition()`` holds; give up after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the app")
        QTimer.singleShot(50, loop.quit)
        loop.exec()


def pause(seconds: float) -> None:
    """Run the event loop for ``seconds`` (timers fire, widgets lay out and paint)."""
    end = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() >= end, seconds + 5)


def grabber(out: Path, *, whole_window: bool = True) -> Callable[[QWidget, str], None]:
    """A ``grab(widget, name)`` saving ``widget``'s picture as ``out/name`` after
    repainting its window (or, with ``whole_window=False``, only the widget)."""

    def grab(widget: QWidget, name: str) -> None:
        (widget.window() if whole_window else widget).repaint()
        path = out / name
        if not widget.grab().save(str(path)):
            raise SystemExit(f"could not save {path}")
        print(f"saved {path}", flush=True)

    return grab
