"""One-off heavy jobs (CSV export) on a thread pool, with the result back on the GUI thread."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)


class _Relay(QObject):
    """Lives in the caller's thread; its signals, emitted by the worker, are queued to
    its own slots, so the callbacks run in the caller's thread."""

    done = Signal(object)
    failed = Signal(object)

    def __init__(
        self,
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        finished: Callable[[_Relay], None],
        parent: QObject,
    ) -> None:
        super().__init__(parent)
        self._on_done = on_done
        self._on_error = on_error
        self._finished = finished
        self.done.connect(self._deliver_done)
        self.failed.connect(self._deliver_error)

    @Slot(object)
    def _deliver_done(self, result: object) -> None:
        self._finished(self)
        self._on_done(result)

    @Slot(object)
    def _deliver_error(self, exc: object) -> None:
        self._finished(self)
        self._on_error(exc)  # type: ignore[arg-type]


class _Job(QRunnable):
    def __init__(self, work: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self._work = work
        self._relay = relay

    def run(self) -> None:
        try:
            result = self._work()
        except Exception as exc:  # delivered to the GUI, which shows the reason
            log.warning("background job failed: %s", exc)
            self._relay.failed.emit(exc)
        else:
            self._relay.done.emit(result)


class JobRunner(QObject):
    """Runs callables on a ``QThreadPool``; callbacks run in the thread that owns this object.

    Tests pass ``pool=None`` with ``inline=True`` to run jobs synchronously.
    """

    def __init__(
        self,
        pool: QThreadPool | None = None,
        *,
        inline: bool = False,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._pool = pool or QThreadPool.globalInstance()
        self._inline = inline
        self._relays: set[_Relay] = set()

    def submit(
        self,
        work: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Run ``work()`` off the GUI thread; then ``on_done(result)`` or ``on_error(exc)``."""
        relay = _Relay(on_done, on_error, self._drop, self)
        self._relays.add(relay)
        job = _Job(work, relay)
        if self._inline:
            job.run()
        else:
            self._pool.start(job)

    def _drop(self, relay: _Relay) -> None:
        self._relays.discard(relay)
        relay.deleteLater()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Wait for running jobs (at quit)."""
        return bool(self._pool.waitForDone(timeout_ms))
