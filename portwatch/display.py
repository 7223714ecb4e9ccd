"""Whether a graphical session is there to open the desktop app in.

Asked before Qt is imported: without a display Qt's platform plugin aborts the process
with a core dump and a message about libraries, which tells the user nothing useful.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

NO_DISPLAY_MESSAGE = (
    "portwatch needs a graphical session; `portwatch scan` and `portwatch monitor` work without one"
)

# Qt platforms that draw without any display server.
_HEADLESS_PLATFORMS = {"offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay"}


def missing_display(
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
    x11_socket_dir: Path = Path("/tmp/.X11-unix"),  # noqa: S108 - the X server's own path
) -> bool:
    """True when the desktop app cannot open a window here (Linux and other X11/Wayland
    systems only; Windows and macOS always have their own window system)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin", "cygwin")):
        return False
    requested = env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip().lower()
    if requested in _HEADLESS_PLATFORMS:
        return False
    if env.get("WAYLAND_DISPLAY") and requested in {"", "wayland", "wayland-egl"}:
        return False
    display = env.get("DISPLAY", "")
    if not display:
        return True
    # A local display (":0", "unix:0") has a socket; a missing one means no X server.
    # A remote one ("host:10.0", SSH forwarding) cannot be checked without connecting.
    local = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if local is None:
        return False
    abstract_only = platform.startswith("linux")  # the server may use the abstract socket
    socket_file = x11_socket_dir / f"X{local.group(1)}"
    return not socket_file.exists() and not (abstract_only and _abstract_x_socket(local.group(1)))


def _abstract_x_socket(number: str) -> bool:
    # Linux X servers also listen on "@/tmp/.X11-unix/X<n>"; /proc/net/unix lists it.
    try:
        with open("/proc/net/unix", encoding="ascii", errors="replace") as table:
            wanted = f"@/tmp/.X11-unix/X{number}"
            return any(line.rstrip().endswith(wanted) for line in table)
    except OSError:
        return True  # cannot tell: let Qt try
