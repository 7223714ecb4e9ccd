"""Who started a process: its control group (Linux) and its chain of parents."""

from __future__ import annotations

from typing import Any

from portwatch.core.startedby import started_by
from portwatch.core.text import clean
from portwatch.files import raise_if_short

MAX_PARENTS = 5
_MAX_CGROUP = 64 * 1024


def started_by_of(pid: int, proc: str = "/proc") -> str | None:
    """The systemd unit, container, pod or session that started ``pid`` (Linux)."""
    try:
        with open(f"{proc}/{pid}/cgroup", encoding="utf-8", errors="replace") as handle:
            text = handle.read(_MAX_CGROUP)
    except OSError as exc:
        raise_if_short(exc)
        return None
    found = started_by(text)
    return clean(found) if found else None


def parent_chain(ps: Any, process: Any, limit: int = MAX_PARENTS) -> tuple[tuple[str, int], ...]:
    """``(name, pid)`` of the parent, its parent… up to ``limit`` levels or init.

    A pid can be reused: a "parent" that started after its child is another process
    that took the pid of the real, exited parent, so the chain stops there.
    """
    chain: list[tuple[str, int]] = []
    try:
        child = process
        child_start = child.create_time()
        for _ in range(limit):
            ppid = int(child.ppid())
            if ppid <= 0:
                break
            parent = ps.Process(ppid)
            parent_start = parent.create_time()
            if parent_start > child_start:
                break  # not its parent: the pid was reused after the parent exited
            chain.append((clean(parent.name()) or "?", ppid))
            if ppid == 1:
                break
            child, child_start = parent, parent_start
    except (getattr(ps, "Error", OSError), OSError, AttributeError):
        pass  # the chain as far as it could be read (or a stand-in without parents)
    return tuple(chain)
