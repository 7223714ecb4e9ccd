"""The sampler thread: runs one monitoring tick per interval away from the GUI thread.

The :class:`Sampler` lives in its own ``QThread``. Its monitor (probe + history writer)
is built *inside* that thread by a factory, so the SQLite connection and the probe's
caches belong to the thread that uses them. Control comes in by queued signals only,
and results go out as immutable tick results by signal. A single-shot timer re-armed
after each tick means ticks never overlap; when it fires is the engine's one
scheduling rule (:class:`~portwatch.engine.schedule.TickSchedule`, shared with
``portwatch monitor``): a tick slower than the interval is logged and the next one
simply starts right away. Time is a seam: a :class:`~portwatch.services.clock.Clock`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from portwatch.core.watchlist import WatchList
from portwatch.engine.schedule import TickSchedule
from portwatch.services.clock import Clock, SystemClock, Timer

log = logging.getLogger(__name__)


class TickSource(Protocol):
    """What the sampler drives: the engine's ``Monitor``."""

    def tick(self) -> Any:
        """Probe, diff, record history and return an immutable tick result."""
        ...

    def set_watchlist(self, watchlist: WatchList) -> None:
        """Watch another set of ports from the next tick on."""
        ...

    def close(self) -> None:
        """Flush history and release the probe."""
        ...


class ConnectionSource(Protocol):
    """Lists connections for the window (the engine's ``ConnectionTracker``)."""

    def poll(self, all_ports: bool) -> Any:
        """This moment's connections (watched ports only unless ``all_ports``)."""
        ...

    def stop_following(self) -> None:
        """Polls stop for a while."""
        ...


# Builds the monitor inside the sampler thread; returns it with any notices for the
# user (e.g. "the history file was damaged and moved aside").
MonitorFactory = Callable[[], "tuple[TickSource, Sequence[str]]"]


class Sampler(QObject):
    """Runs ``monitor.tick()`` every ``interval_s`` seconds in the thread it lives in."""

    result_ready = Signal(object)
    """One tick's immutable result (the engine's ``TickResult``)."""
    failed = Signal(str)
    """A tick raised; the message is for the user, the traceback goes to the log."""
    notices = Signal(list)
    """Messages from opening the monitor (store notices), sent once at start."""
    paused_changed = Signal(bool)
    stopped = Signal()
    connections_ready = Signal(object)
    """One poll of the connections (a ``ConnectionsSnapshot``), while they are wanted."""

    def __init__(
        self,
        factory: MonitorFactory,
        interval_s: float,
        clock: Clock | None = None,
        connections: ConnectionSource | None = None,
    ) -> None:
        super().__init__()
        self._connections = connections
        # Connections are listed only while someone looks at them: listing every socket
        # of the machine each tick would cost an idle window more than everything else.
        self._want_connections = False
        self._all_ports = False
        self._factory = factory
        self._clock = clock
        self._interval_s = interval_s
        self._schedule: TickSchedule | None = None
        self._monitor: TickSource | None = None
        self._timer: Timer | None = None
        self._paused = False
        self._stopping = False

    @Slot()
    def start(self) -> None:
        """Build the monitor and the timer in this thread, then tick at once."""
        try:
            monitor, notices = self._factory()
        except Exception as exc:
            log.exception("cannot start monitoring")
            self.failed.emit(f"cannot start monitoring: {exc}")
            return
        self._monitor = monitor
        if notices:
            self.notices.emit(list(notices))
        # Created here so the timer belongs to (and fires in) the sampler thread.
        clock = self._clock or SystemClock(self)
        self._schedule = TickSchedule(self._interval_s, clock.monotonic)
        self._timer = clock.timer(self._tick, single_shot=True)
        self._tick()

    @Slot()
    def _tick(self) -> None:
        schedule = self._schedule
        if self._monitor is None or schedule is None or self._paused or self._stopping:
            return
        started = schedule.clock()
        try:
            result = self._monitor.tick()
        except Exception as exc:
            log.exception("monitoring tick failed")
            self.failed.emit(f"reading the connection tables failed: {exc}")
        else:
            self.result_ready.emit(result)
            self._poll_connections()
        overran = schedule.overran(started)
        if overran is not None:
            log.warning(
                "a tick took %.2f s, longer than the %.2f s interval",
                overran,
                schedule.interval_s,
            )
        self._arm(schedule.delay_after(started))

    def _poll_connections(self) -> None:
        if self._connections is None or not self._want_connections:
            return
        try:
            snapshot = self._connections.poll(self._all_ports)
        except Exception:
            log.exception("listing connections failed")
            return
        self.connections_ready.emit(snapshot)

    @Slot(bool, bool)
    def set_connections_wanted(self, wanted: bool, all_ports: bool) -> None:
        """List connections each tick while ``wanted`` (every port with ``all_ports``);
        a change is answered at once, not at the next tick."""
        changed = (wanted, all_ports) != (self._want_connections, self._all_ports)
        self._want_connections, self._all_ports = wanted, all_ports
        if not wanted and self._connections is not None:
            self._connections.stop_following()
        if (
            wanted
            and changed
            and self._monitor is not None
            and not self._paused
            and not self._stopping
        ):
            self._poll_connections()

    def _arm(self, delay_s: float) -> None:
        if self._timer is not None and not self._paused and not self._stopping:
            self._timer.start(delay_s)

    @Slot(float)
    def set_interval(self, interval_s: float) -> None:
        """Use a new poll interval from the next tick on."""
        self._interval_s = interval_s
        if self._schedule is not None:
            self._schedule.interval_s = interval_s
        if self._timer is not None and self._timer.is_active():
            self._timer.start(interval_s)

    @Slot(object)
    def set_watchlist(self, watchlist: WatchList) -> None:
        """Hand a new watch list to the monitor and tick at once so the screen follows."""
        if self._monitor is None:
            return
        self._monitor.set_watchlist(watchlist)
        if not self._paused and not self._stopping and self._timer is not None:
            self._timer.start(0.0)

    @Slot()
    def pause(self) -> None:
        self._paused = True
        if self._timer is not None:
            self._timer.stop()
        self.paused_changed.emit(True)

    @Slot()
    def resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        self.paused_changed.emit(False)
        self._arm(0.0)

    @Slot()
    def stop(self) -> None:
        """Stop ticking, close the monitor (history written) and end the thread's loop."""
        self._stopping = True
        if self._timer is not None:
            self._timer.stop()
        if self._monitor is not None:
            try:
                self._monitor.close()
            except Exception:
                log.exception("closing the monitor failed")
            self._monitor = None
        self.stopped.emit()
        # Hand ourselves (and the timer) back to the main thread before this one ends, so
        # they are destroyed where they will be garbage-collected, not from a dead thread.
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())
        thread = QThread.currentThread()
        if thread is not None:
            thread.quit()


class SamplerThread(QObject):
    """Owns the sampler's ``QThread``: start, control by queued signals, clean stop.

    Its own signals relay the sampler's into the thread that owns this object (the GUI
    thread), so whoever listens runs there, whatever kind of callable it is.
    """

    result_ready = Signal(object)
    failed = Signal(str)
    notices = Signal(list)
    paused_changed = Signal(bool)
    connections_ready = Signal(object)

    _interval_requested = Signal(float)
    _connections_requested = Signal(bool, bool)
    _watchlist_requested = Signal(object)
    _pause_requested = Signal()
    _resume_requested = Signal()
    _stop_requested = Signal()

    def __init__(
        self,
        factory: MonitorFactory,
        interval_s: float,
        parent: QObject | None = None,
        clock: Clock | None = None,
        connections: ConnectionSource | None = None,
    ) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("portwatch-sampler")
        self.sampler = Sampler(factory, interval_s, clock, connections)
        self.sampler.moveToThread(self._thread)
        self._thread.started.connect(self.sampler.start)
        # Cross-thread connections are queued: the slots run in the sampler thread.
        self._interval_requested.connect(self.sampler.set_interval)
        self._watchlist_requested.connect(self.sampler.set_watchlist)
        self._pause_requested.connect(self.sampler.pause)
        self._resume_requested.connect(self.sampler.resume)
        self._stop_requested.connect(self.sampler.stop)
        self._connections_requested.connect(self.sampler.set_connections_wanted)
        self._paused = False
        self.sampler.paused_changed.connect(self._remember_paused)
        # Signal-to-signal connections across threads are queued into this object's thread.
        self.sampler.result_ready.connect(self.result_ready)
        self.sampler.failed.connect(self.failed)
        self.sampler.notices.connect(self.notices)
        self.sampler.paused_changed.connect(self.paused_changed)
        self.sampler.connections_ready.connect(self.connections_ready)

    @Slot(bool)
    def _remember_paused(self, paused: bool) -> None:
        self._paused = paused

    @property
    def paused(self) -> bool:
        return self._paused

    def start(self) -> None:
        self._thread.start()

    def set_interval(self, interval_s: float) -> None:
        self._interval_requested.emit(interval_s)

    def set_watchlist(self, watchlist: WatchList) -> None:
        self._watchlist_requested.emit(watchlist)

    def set_connections_wanted(self, wanted: bool, all_ports: bool) -> None:
        """List connections with each tick (from the sampler thread) while ``wanted``."""
        self._connections_requested.emit(wanted, all_ports)

    def pause(self) -> None:
        self._pause_requested.emit()

    def resume(self) -> None:
        self._resume_requested.emit()

    def stop(self, timeout_ms: int | None = 10_000) -> bool:
        """Ask the sampler to stop and wait for its thread (``None``: for as long as it
        takes); True when it ended in time."""
        if not self._thread.isRunning():
            return True
        self._stop_requested.emit()
        finished = self._thread.wait() if timeout_ms is None else self._thread.wait(timeout_ms)
        if not finished:
            log.error("the sampler thread did not stop within %d ms", timeout_ms)
        return bool(finished)
