"""Runtime data shipped inside the package, loaded through importlib.resources.

Icons live in ``icons/`` (generated from the drawings in the repository's ``icons/`` folder by
``icons/generate.py``; edit the drawings there, not the copies here).
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

APP_ICON = "portwatch.svg"
"""The application icon (window, about box); scalable."""
APP_ICON_PNG = "portwatch-256.png"
"""The application icon as a 256 px PNG, for places that want a bitmap."""
TRAY_ICON = "tray.svg"
"""Tray icon in the normal state, drawn for 16 px."""
TRAY_ALERT_ICON = "tray-alert.svg"
"""Tray icon while an alert is unread: a different shape (warning triangle), not only colour."""
TRAY_MASK_ICON = "tray-mask.svg"
"""macOS menu-bar template of the tray icon; use with ``QIcon.setIsMask(True)``."""
TRAY_ALERT_MASK_ICON = "tray-alert-mask.svg"
"""macOS menu-bar template of the alert tray icon."""

ICON_NAMES = frozenset(
    {APP_ICON, APP_ICON_PNG, TRAY_ICON, TRAY_ALERT_ICON, TRAY_MASK_ICON, TRAY_ALERT_MASK_ICON}
)


def icon_path(name: str) -> Traversable:
    """The packaged icon ``name`` (one of :data:`ICON_NAMES`).

    In a normal or frozen install this is a real file, so ``str(icon_path(...))`` can be given
    to ``QIcon``; code that must also work from a zip should use :func:`read_icon` instead.
    Raises ValueError for a name that is not a packaged icon.
    """
    if name not in ICON_NAMES:
        raise ValueError(f"no packaged icon named {name!r}; known: {', '.join(sorted(ICON_NAMES))}")
    return files(__name__) / "icons" / name


def read_icon(name: str) -> bytes:
    """The bytes of the packaged icon ``name`` (SVG text or PNG data)."""
    data: bytes = icon_path(name).read_bytes()
    return data
