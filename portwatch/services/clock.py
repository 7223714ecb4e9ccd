"""Time as a seam: the clocks and timers services use, passed in rather than reached for.

Services that schedule or rate-limit (the alert service's pacing, summaries and snooze
ends) take a :class:`Clock`. The real one reads the system clocks and makes ``QTimer``s;
tests pass a fake that advances time by hand, so a rule such as "one summary a minute"
is checked without waiting a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QObject, QTimer


class Timer(Protocol):
    """A timer that calls back once (single-shot) or every interval until stopped."""

    def start(self, interval_s: float) -> None:
        """(Re)start: the callback runs ``interval_s`` seconds from now."""
        ...

    def stop(self) -> None: ...

    def is_active(self) -> bool: ...


class Clock(Protocol):
    """Monotonic time for deciding, wall time for people, and timers."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    def timer(self, callback: Callable[[], None], *, single_shot: bool) -> Timer: ...


class _QtTimer:
    def __init__(self, callback: Callable[[], None], single_shot: bool, parent: QObject) -> None:
        self._timer = QTimer(parent)
        self._timer.setSingleShot(single_shot)
        self._timer.timeout.connect(callback)

    def start(self, interval_s: float) -> None:
        self._timer.start(max(0, round(interval_s * 1000)))

    def stop(self) -> None:
        self._timer.stop()

    def is_active(self) -> bool:
        return self._timer.isActive()


class SystemClock:
    """The real clocks; timers are ``QTimer``s owned by ``parent`` (and its thread)."""

    def __init__(self, parent: QObject | None = None) -> None:
        self._parent = parent

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def timer(self, callback: Callable[[], None], *, single_shot: bool) -> Timer:
        if self._parent is None:
            # Without an owner the timer would be collected with its wrapper; keep one.
            self._parent = QObject()
        return _QtTimer(callback, single_shot, self._parent)
