"""Files as a Linux process sees them, read through ``/proc/<pid>``.

A process may live in another mount namespace (a container) or a chroot, where
``/srv/app.py`` is not the host's ``/srv/app.py``, and a relative path means
something only against the directory it started in. Paths are therefore resolved
inside ``/proc/<pid>/root``, one component at a time, so that an absolute symlink
is followed within the process's root rather than the host's.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time

from portwatch.files import raise_if_short

_MAX_LINKS = 40  # as the kernel's own limit on symlinks followed in one lookup
_DELETED = " (deleted)"


def root_of(pid: int, proc: str = "/proc") -> str:
    """The host path through which ``pid``'s root directory is reached."""
    return f"{proc}/{pid}/root"


class LinkChanged(ValueError):
    """A symlink on the path was made after the process started: what it points to
    now is not necessarily what the process opened."""


def resolve_in_root(root: str, path: str, started_before: float | None = None) -> str | None:
    """``path`` (absolute, as the process sees it) with every symlink resolved
    inside ``root``; None when it loops or a component cannot be read.

    With ``started_before`` (the process's start as a wall-clock time), raises
    :class:`LinkChanged` when a symlink followed is newer than that: re-pointing a
    link makes a new one, so such a link may not be the one the process followed.

    A missing component ends the resolution: the rest is kept as written, so the
    result names the file that would be opened, and hashing it fails cleanly.
    """
    if not path.startswith("/"):
        return None
    pending = [part for part in path.split("/") if part not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = [*resolved, part]
        host = root + "/" + "/".join(candidate)
        try:
            info = os.lstat(host)
        except FileNotFoundError:
            resolved = candidate + [p for p in pending if p != ".."]
            break
        except OSError:
            return None
        if not stat.S_ISLNK(info.st_mode):
            resolved = candidate
            continue
        links += 1
        if links > _MAX_LINKS:
            return None
        if started_before is not None and info.st_ctime > started_before:
            raise LinkChanged(host[len(root) :])
        try:
            target = os.readlink(host)
        except OSError:
            return None
        if target.startswith("/"):
            resolved = []
        pending = [p for p in target.split("/") if p not in ("", ".")] + pending
    return "/" + "/".join(resolved)


def cwd_of(pid: int, proc: str = "/proc") -> str | None:
    """``pid``'s current directory as a path inside its own root; None when it
    cannot be told (unreadable, deleted, or not reachable from that root)."""
    link = f"{proc}/{pid}/cwd"
    try:
        text = os.readlink(link)
        real = os.stat(link)
    except OSError:
        return None
    if not text.startswith("/") or text.endswith(_DELETED):
        return None
    # In a chroot inside our own mount namespace the link reads as the host's path:
    # only a path that leads to the same directory from the process's root is used.
    try:
        seen = os.stat(root_of(pid, proc) + text)
    except OSError:
        return None
    if (seen.st_dev, seen.st_ino) != (real.st_dev, real.st_ino):
        return None
    return text


def started_wall(pid: int, proc: str = "/proc") -> float | None:
    """When ``pid`` started, as a wall-clock time precise to a clock tick.

    Computed from how long ago it started (its start in ticks since boot against the
    boot-time clock now), not from the boot time the kernel rounds to a second.
    """
    try:
        with open(f"{proc}/{pid}/stat", "rb") as handle:
            raw = handle.read()
        ticks = int(raw[raw.rfind(b")") + 2 :].split()[19])
        hertz = os.sysconf("SC_CLK_TCK")
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / hertz
    except (OSError, ValueError, IndexError) as exc:
        raise_if_short(exc)
        return None
    # One tick of slack: the start is only known to the tick.
    return time.time() - age + 1.0 / hertz


def exec_token(pid: int, proc: str = "/proc") -> bytes | None:
    """Something that changes whenever ``pid`` calls exec(), and not otherwise.

    The auxiliary vector is written by the kernel at exec (with the stack and
    ``AT_RANDOM`` addresses, randomised per exec) and cannot be changed by the
    process afterwards, unlike its command line. None when it cannot be read.
    """
    try:
        with open(f"{proc}/{pid}/auxv", "rb") as handle:
            data = handle.read(4096)
    except OSError as exc:
        raise_if_short(exc)
        return None
    return hashlib.sha256(data).digest() if data else None


def real_name(pid: int, target: str, proc: str = "/proc") -> bool:
    """True when ``target`` (read from ``/proc/<pid>/exe``) is the executable's real
    path, even if it ends in `` (deleted)``: a file can really be named that way."""
    try:
        running = os.stat(f"{proc}/{pid}/exe")
        named = os.stat(root_of(pid, proc) + target)
    except OSError:
        return False
    return (running.st_dev, running.st_ino) == (named.st_dev, named.st_ino)
