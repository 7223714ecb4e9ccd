"""What started a process on Windows and macOS: the OS's service manager, by pid.

- Windows: the Service Control Manager names the services each process hosts
  (``psutil.win_service_iter``: one pid per running service; an svchost hosts several).
- macOS: ``launchctl list`` prints the pid and label of each job of the domain it is run
  in (the system's as root, otherwise the user's own); ``procinfo`` and ``blame`` would
  say more but need root, so a process not in that listing is simply not named.

Both tables are read only when a new process asks (owners are cached per process
instance) and at most every :data:`REFRESH_S` seconds.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any, Protocol

from portwatch.core.text import clean

log = logging.getLogger(__name__)

REFRESH_S = 60.0
_TIMEOUT_S = 5.0


class ServiceNames(Protocol):
    """Answers "which service or job is this pid?" in words, or None."""

    def started_by(self, pid: int) -> str | None: ...


class _Table:
    """A pid → text table read again only when asked for an unknown pid after
    ``refresh_s`` (a new service has a new pid: it is found on the next read)."""

    def __init__(
        self, read: Callable[[], dict[int, str]], clock: Callable[[], float], refresh_s: float
    ) -> None:
        self._read = read
        self._clock = clock
        self._refresh_s = refresh_s
        self._table: dict[int, str] = {}
        self._read_at: float | None = None
        self.reads = 0

    def get(self, pid: int) -> str | None:
        found = self._table.get(pid)
        if found is not None:
            return found
        now = self._clock()
        if self._read_at is not None and now - self._read_at < self._refresh_s:
            return None
        self._read_at = now
        self.reads += 1
        try:
            self._table = self._read()
        except Exception as exc:
            log.debug("service listing failed: %s", exc)
            self._table = {}
        return self._table.get(pid)


class WindowsServices:
    """Windows: the service(s) a process hosts, from the Service Control Manager."""

    def __init__(
        self, ps: Any, clock: Callable[[], float] = time.monotonic, refresh_s: float = REFRESH_S
    ) -> None:
        self._ps = ps
        self._table = _Table(self._read, clock, refresh_s)

    def _read(self) -> dict[int, str]:
        by_pid: dict[int, list[str]] = {}
        ps = self._ps
        for service in ps.win_service_iter():
            try:
                pid = service.pid()
                name = service.name()
            except (ps.Error, OSError):
                continue
            if pid:
                by_pid.setdefault(int(pid), []).append(str(name))
        return {pid: _windows_words(names) for pid, names in by_pid.items()}

    def started_by(self, pid: int) -> str | None:
        return self._table.get(pid)


def _windows_words(names: list[str]) -> str:
    names = sorted(set(names), key=str.lower)
    if len(names) == 1:
        return clean(f"Windows service {names[0]}") or ""
    return clean(f"Windows services {', '.join(names)}") or ""


def run_launchctl() -> str:
    """``launchctl list`` output ("" where it cannot run)."""
    launchctl = shutil.which("launchctl", path="/bin:/usr/bin")
    if launchctl is None:
        return ""
    done = subprocess.run(
        [launchctl, "list"],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return done.stdout if done.returncode == 0 else ""


def parse_launchctl_list(text: str) -> dict[int, str]:
    """pid → label from ``launchctl list`` ("PID\\tStatus\\tLabel"; "-" when not running)."""
    table: dict[int, str] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        label = parts[2].strip()
        if label:
            table[int(parts[0])] = label
    return table


class LaunchdJobs:
    """macOS: the launchd job label of a process, from ``launchctl list``."""

    def __init__(
        self,
        run: Callable[[], str] = run_launchctl,
        clock: Callable[[], float] = time.monotonic,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self._table = _Table(lambda: parse_launchctl_list(run()), clock, refresh_s)

    def started_by(self, pid: int) -> str | None:
        label = self._table.get(pid)
        return clean(f"launchd job {label}") if label else None


def service_names(ps: Any, platform: str) -> ServiceNames | None:
    """The service manager of this OS, or None where the control group says (Linux)."""
    if platform == "win32" and hasattr(ps, "win_service_iter"):
        return WindowsServices(ps)
    if platform == "darwin":
        return LaunchdJobs()
    return None
