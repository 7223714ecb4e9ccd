"""Work-arounds for defects in the Qt binding that would otherwise crash portwatch.

pyproject.toml keeps Python 3.11 installs on PySide6 6.11, which is free of this; the
guard is the second line of defence for an environment that has 6.12 anyway.

PySide6 6.12 on Python 3.11: ``SignalInstance.emit()`` and ``.disconnect()`` return
``True`` without taking a reference to it, so every call from Python steals one
reference. After a few thousand signals (pyqtgraph emits several per redraw) the
interpreter aborts with "Fatal Python error: bool_dealloc". Python 3.12 made ``True``
immortal, which hides the defect. The guard detects the defect at run time and, only
when present, gives ``True`` enough extra references to outlive any session; it
disables itself once the binding is fixed.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

# 2**40 stolen references is decades of emitting at thousands of signals a second.
_RESERVE = 1 << 40
_state = {"guarded": False}


class _Probe(QObject):
    ping = Signal()


def emit_steals_true() -> bool:
    """True when emitting a signal from Python loses a reference to ``True``."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    return sys.getrefcount(True) < before


def guard_signal_refcounts() -> bool:
    """Apply the work-around if this binding needs it; True when it was applied."""
    if _state["guarded"] or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return _state["guarded"]
    if not emit_steals_true():
        return False
    # ob_refcnt is the first field of every CPython object. The same binding also loses
    # references to None (QLabel.setText, QObject.property, QTimer.singleShot), so the
    # three singletons get the reserve together.
    for singleton in (True, False, None):
        ctypes.c_ssize_t.from_address(id(singleton)).value += _RESERVE
    _state["guarded"] = True
    log.debug("applied the PySide signal reference-count guard")
    return True
