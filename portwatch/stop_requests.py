"""How a console program learns that the user or the system wants it to stop.

POSIX asks with SIGINT (Ctrl+C) and SIGTERM. Windows never sends SIGTERM; it asks a console
program with console control events, delivered by a thread the system starts in the process:

- Ctrl+C and Ctrl+Break: a Python signal handler alone would run only once the main thread
  comes back to Python, and a Windows lock wait (``Event.wait``) is not interrupted, so the
  monitor would sleep out its interval; Ctrl+Break's default even exits without a flush.
- closing the console window, logging off, shutting down: the process is ended as soon as the
  handler returns (or after about 5 seconds), so the handler waits for the final flush.

:class:`StopRequests` turns all of them into one ``threading.Event``. Its
:meth:`~StopRequests.control_event` is the handler routine Windows calls (the seam tests call
it directly). Nothing here imports the rest of portwatch.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

# What ``signal.signal`` hands back: the handler to restore.
_SignalHandler = Callable[[int, FrameType | None], Any] | int | None

# wincon.h
CTRL_C_EVENT = 0
CTRL_BREAK_EVENT = 1
CTRL_CLOSE_EVENT = 2
CTRL_LOGOFF_EVENT = 5
CTRL_SHUTDOWN_EVENT = 6
# The process ends when the handler returns for these: the flush must be done by then.
ENDING_EVENTS = frozenset({CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT})
# Windows ends a process about 5 s after a closing console asks it to stop, whatever its
# handler does; past that a wait only delays nothing.
CLOSE_GRACE_S = 5.0

# Handler routines stay alive for the whole process: Windows may still be running one on its
# own thread after it is unregistered, and freeing its code under that thread would crash.
_KEEP_ALIVE: list[object] = []


def stops_for(event: int, service_session: bool) -> bool:
    """Whether console control ``event`` asks this program to stop.

    Session 0 (a service, or a task run as SYSTEM) receives CTRL_LOGOFF_EVENT whenever any
    user logs off: not a reason for a system-wide monitor to stop.
    """
    if event == CTRL_LOGOFF_EVENT:
        return not service_session
    return event in (CTRL_C_EVENT, CTRL_BREAK_EVENT) or event in ENDING_EVENTS


class StopRequests:
    """Sets ``stop`` when asked to stop: SIGINT and SIGTERM, and on Windows SIGBREAK and the
    console control events. Used as a context manager around the work *and* its final flush;
    leaving it tells a closing console the flush is done, then gives everything back."""

    def __init__(
        self,
        stop: threading.Event,
        grace_s: float = CLOSE_GRACE_S,
        service_session: bool | None = None,
    ) -> None:
        self.stop = stop
        self.grace_s = grace_s
        self._service_session = service_session
        self._finished = threading.Event()
        self._previous: dict[signal.Signals, _SignalHandler] = {}
        self._routine: object | None = None

    def control_event(self, event: int) -> bool:
        """The console control handler routine: True when the event was handled here.

        For the events after which Windows ends the process, it returns only once the
        owner left the ``with`` block (its flush written) or after ``grace_s``.
        """
        service_session = bool(self._service_session)
        if not stops_for(event, service_session):
            # A logoff in session 0 is someone else's: handled (True), so that Windows'
            # default handler does not end the process.
            return event == CTRL_LOGOFF_EVENT
        self.stop.set()
        if event in ENDING_EVENTS:
            self._finished.wait(self.grace_s)
        return True

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()

    def __enter__(self) -> StopRequests:
        signals = [signal.SIGINT, signal.SIGTERM]
        if sys.platform == "win32":
            # Ctrl+Break while the console handler cannot be registered (no console).
            signals.append(signal.SIGBREAK)
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in signals}
        if sys.platform == "win32":
            self._register_console_handler()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # First release a waiting close handler (the flush is done), then unregister it:
        # Wine holds its console lock while a handler runs.
        self._finished.set()
        if sys.platform == "win32":
            self._unregister_console_handler()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    if sys.platform == "win32":

        def _register_console_handler(self) -> None:
            kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
            if self._service_session is None:
                session = ctypes.c_ulong(0)
                known = kernel32.ProcessIdToSessionId(
                    kernel32.GetCurrentProcessId(), ctypes.byref(session)
                )
                self._service_session = bool(known) and session.value == 0
            handler_type = ctypes.WINFUNCTYPE(ctypes.c_int, ctypes.c_uint)
            routine = handler_type(lambda event: 1 if self.control_event(event) else 0)
            _KEEP_ALIVE.append(routine)
            # Registered last, called first: before the C runtime's, which turns Ctrl+C and
            # Ctrl+Break into signals that a waiting main thread would not see in time.
            if kernel32.SetConsoleCtrlHandler(routine, True):
                self._routine = routine

        def _unregister_console_handler(self) -> None:
            if self._routine is not None:
                kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
                kernel32.SetConsoleCtrlHandler(self._routine, False)
                self._routine = None
