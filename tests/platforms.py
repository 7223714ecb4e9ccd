"""Which OS the tests run on, and the skips that say why a test cannot run there.

The same test files run on Linux, on a real Windows runner and in the Windows lane (Windows
Python under Wine, scripts/windows-lane.sh). A test that needs something one of them lacks
skips with the reason; it never fails for it.
"""

from __future__ import annotations

import ctypes
import sys

import pytest

WINDOWS = sys.platform == "win32"
LINUX = sys.platform.startswith("linux")


def _under_wine() -> bool:
    if not WINDOWS:
        return False
    try:
        ntdll = ctypes.WinDLL("ntdll")  # type: ignore[attr-defined]
    except OSError:
        return False
    return hasattr(ntdll, "wine_get_version")


UNDER_WINE = _under_wine()

# Popen.terminate() is SIGTERM on POSIX, which portwatch handles and exits 0 after its final
# flush; on Windows it is TerminateProcess, which ends the process at once with exit code 1.
TERMINATED_EXIT_CODE = 1 if WINDOWS else 0

needs_posix = pytest.mark.skipif(
    WINDOWS, reason="POSIX only (signals, resource limits, uids or POSIX paths)"
)
needs_linux = pytest.mark.skipif(not LINUX, reason="Linux only (/proc, netlink or ss)")
needs_windows = pytest.mark.skipif(not WINDOWS, reason="Windows only")
# Wine is a smoke test, not Windows: these hold on a real Windows, not under Wine 8.
wine_gives_pid_0 = pytest.mark.skipif(
    UNDER_WINE,
    reason="Wine reports every socket's owner as pid 0: attribution needs a real Windows",
)


def wine_limit(reason: str) -> pytest.MarkDecorator:
    """Skip under Wine only, for a limit of Wine's that a real Windows does not have."""
    return pytest.mark.skipif(UNDER_WINE, reason=f"Wine limit: {reason}")


# What only POSIX has: a test module or test that reaches for one of these on Windows needs
# POSIX, and is skipped with that reason instead of failing (new tests stay portable even
# when their author only ran them on Linux).
POSIX_ONLY_NAMES = (
    "resource",
    "pwd",
    "grp",
    "fcntl",
    "termios",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "setuid",
    "setgid",
    "setgroups",
    "fork",
    "mkfifo",
    "SIGKILL",
    "SIGUSR1",
    "SIGHUP",
    "O_NOFOLLOW",
    "AF_UNIX",
    "UnixStreamServer",
    "UnixDatagramServer",
    "ThreadingUnixStreamServer",
)


def posix_only_reason(text: str) -> str | None:
    """The skip reason when ``text`` (an error) is Windows lacking a POSIX-only name."""
    if not WINDOWS:
        return None
    for name in POSIX_ONLY_NAMES:
        if f"No module named '{name}'" in text or f"has no attribute '{name}'" in text:
            return f"needs POSIX ({name} does not exist on Windows)"
    return None
