"""Which process holds a socket: socket inode → pids, from ``/proc/<pid>/fd``.

The kernel's socket diagnostics name a socket's inode but not its process; the only
way to find the owner is to read the fd links of processes. Doing that every poll
costs as much as psutil does, so the resolver keeps, per process (a pid and its start
time, so a reused pid is a new process), what its descriptors were when last read,
and an index socket inode → pids over all of them. A socket's holders are then an
index lookup, and the work of a poll follows what changed:

- a steady poll (no new listening socket) lists ``/proc`` and checks the start time
  of the processes holding sockets: no descriptor table is read;
- a new process is noted; if its parent holds a socket it is read at once (a forked
  worker or a socket-activated service inherits its parent's sockets);
- when a listening socket appears (and every ``check_every`` polls, for a descriptor
  passed to a running process), the processes whose tables may have changed are read:
  those never read, those that held a socket that has gone (the number may have been
  re-used), and those whose descriptor count changed since they were read. The count
  is one ``stat`` per process where the kernel reports it (Linux 6.2+); elsewhere every
  table is listed, but only descriptors not seen before are resolved;
- a new socket still not found that way is searched for in every descriptor of every
  process (the old full pass), and remembered as missing if nobody visible holds it
  (another user's, when not root), so it is not searched for again every poll.

The trade-off: a process that, within one poll interval, closed one descriptor and
received a socket under the same number (fd passing) keeps its count and its numbers,
so it is not re-read; it is found by the full re-read every ``rescan_every`` polls
(less often on a machine with so many descriptors that the re-read would cost more
than ``RESCAN_BUDGET_S`` a poll, and at least every ``MAX_RESCAN_EVERY`` polls),
which also catches anything else the counts hide. The socket's creator is never
missed this way (if it is not found among the changed tables, the full pass runs), and
neither is a process forked after bind (it is new). Each holder matters because each
can accept connections: a socket is only as trusted as its least trusted holder.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from portwatch.probe.netlink.fdtables import FdTables

_SOCKET_PREFIX = "socket:["

# The periodic full re-read costs as many link reads as the machine has descriptors
# (a busy server's 12,000 connections: tens of ms). Spread over the polls until the
# next one, it may cost this much CPU per poll; where it costs more, it runs less often
# than ``rescan_every`` polls, but at least every MAX_RESCAN_EVERY polls.
RESCAN_BUDGET_S = 0.0004
MAX_RESCAN_EVERY = 600


@dataclass
class _Process:
    """What the last read learnt about a process."""

    start: int  # start time in clock ticks since boot; tells a reused pid apart
    readable: bool = True
    listed: bool = False  # its descriptors were read at least once
    count: int = -1  # how many descriptors it had then
    fds: dict[str, int] = field(default_factory=dict)  # fd name → socket inode (0: not a socket)


@dataclass
class ScanStats:
    """Counters for benchmarks and tests: how much work the resolver did."""

    scans: int = 0  # full passes over every process
    new_processes: int = 0
    processes_listed: int = 0  # processes read by full passes
    links_read: int = 0
    tables_read: int = 0  # /proc/<pid>/fd directories listed


class InodeResolver:
    """Maps socket inodes to the pids holding them, reading ``/proc`` as little as it can."""

    def __init__(
        self,
        proc_root: str = "/proc",
        rescan_every: int = 60,
        check_every: int = 5,
        tables: FdTables | None = None,
        cpu: Callable[[], float] = time.thread_time,
    ) -> None:
        self._tables = tables if tables is not None else FdTables(proc_root)
        self._rescan_every = max(1, rescan_every)
        self._check_every = max(1, check_every)
        self._cpu = cpu
        self._updates = 0
        self._until_rescan = self._rescan_every  # updates left before the periodic pass
        self._processes: dict[int, _Process] = {}
        # Every socket inode in the tables read → the pids holding it (listening or not:
        # a socket bound earlier may start listening later).
        self._index: dict[int, set[int]] = {}
        self._owners: dict[int, tuple[int, ...]] = {}  # live inode → holders, ascending
        self._holding: set[int] = set()  # pids holding a live inode
        self._missing: set[int] = set()
        self._live: set[int] = set()
        self._suspect: set[int] = set()  # pids to read whole: a socket they held has gone
        self._dirty: set[int] = set()  # inodes whose holders may have changed
        # Bumped whenever any inode's holders change: equal generations, equal answers.
        self.generation = 0
        # The inodes whose holders changed since take_changes() was last called, for a
        # caller that updates its own results instead of rebuilding them; None after
        # forget() (everything may have changed).
        self._changed: set[int] | None = None
        self.stats = ScanStats()

    @property
    def holders(self) -> Mapping[int, tuple[int, ...]]:
        """inode → pids holding it, ascending, for the inodes of the last update."""
        return self._owners

    def resolve(self, inodes: Collection[int]) -> dict[int, tuple[int, ...]]:
        """Pids holding each of ``inodes`` (the live sockets of this poll), ascending.

        An inode no visible process holds (or inode 0) maps to ``()``. Errors reading
        one process never fail the call: that process is skipped.
        """
        self.update(inodes)
        return {inode: self._owners.get(inode, ()) for inode in inodes}

    def update(self, inodes: Collection[int] | None) -> None:
        """Bring :attr:`holders` up to date for ``inodes`` (None: the same as last time)."""
        added: set[int] = set()
        if inodes is not None:
            live = set(inodes)
            live.discard(0)
            gone = self._live - live
            for inode in gone:
                # Its holders closed a descriptor: that number may now name a new socket.
                self._suspect.update(self._index.get(inode, ()))
                if self._owners.pop(inode, None) is not None:
                    self._note_changed(inode)
            if gone or self._missing - live:
                self.generation += 1
            self._missing &= live
            added = live - self._live
            self._live = live
            self._dirty |= added
        pids = self._tables.pids()
        self._drop_changed_processes(pids)
        self._note_new_processes(pids)
        self._updates += 1
        self._until_rescan -= 1
        if self._until_rescan <= 0:
            started = self._cpu()
            self._read_all(pids)
            cost = self._cpu() - started
            wanted = math.ceil(cost / RESCAN_BUDGET_S) if cost > 0 else 0
            self._until_rescan = max(self._rescan_every, min(MAX_RESCAN_EVERY, wanted))
            self._settle(found_all=True)
            return
        changed = self._settle(found_all=False)
        # A new socket, a periodic check, or a socket whose holders all exited (a
        # reused pid may hold it now): read the tables that may have changed.
        if added or self._updates % self._check_every == 0 or (changed and self._unknown()):
            self._read_changed(pids)
            self._settle(found_all=False)
            if self._unknown():
                self._read_all(pids)
                self._settle(found_all=True)

    def _unknown(self) -> set[int]:
        """Live inodes with no holder known that were not searched for in vain."""
        return self._live - self._owners.keys() - self._missing

    def take_changes(self) -> set[int] | None:
        """The inodes whose holders changed since the last call (None: anything may
        have, the caches were dropped); the next call starts counting afresh."""
        changed, self._changed = self._changed, set()
        return changed

    def _note_changed(self, inode: int) -> None:
        if self._changed is not None:
            self._changed.add(inode)

    def forget(self) -> None:
        """Drop every cache (the next resolve scans from scratch)."""
        self._changed = None
        self._processes.clear()
        self._index.clear()
        self._owners.clear()
        self._holding.clear()
        self._missing.clear()
        self._suspect.clear()
        self._dirty.clear()
        self._live = set()
        self.generation += 1

    # --- internals ------------------------------------------------------------------

    def _drop(self, pid: int) -> None:
        """Forget a process that exited (or whose pid now names another process)."""
        proc = self._processes.pop(pid, None)
        self._suspect.discard(pid)
        if proc is not None:
            self._unindex(pid, {inode for inode in proc.fds.values() if inode})

    def _unindex(self, pid: int, inodes: Iterable[int]) -> None:
        for inode in inodes:
            pids = self._index.get(inode)
            if pids is not None:
                pids.discard(pid)
                if not pids:
                    del self._index[inode]
            self._dirty.add(inode)

    def _drop_changed_processes(self, pids: list[int]) -> None:
        """Forget processes that exited, and holders whose pid now names another process."""
        present = set(pids)
        for pid in self._processes.keys() - present:
            self._drop(pid)
        for pid in self._holding & present:
            known = self._processes.get(pid)
            stat = self._tables.stat(pid)
            if known is not None and (stat is None or stat[0] != known.start):
                self._drop(pid)

    def _note_new_processes(self, pids: list[int]) -> None:
        """Note processes not seen before; read at once those a holder started (and
        every process on the first update)."""
        first = not self._processes
        for pid in pids:
            if pid in self._processes:
                continue
            stat = self._tables.stat(pid)
            if stat is None:
                continue  # gone already
            self.stats.new_processes += 1
            start, parent = stat
            proc = self._processes[pid] = _Process(start)
            if first or parent in self._holding:
                self._read(pid, proc, whole=True)

    def _read_changed(self, pids: list[int]) -> None:
        """Read the tables that may have changed since they were read (see the module
        docstring): never read, suspect, or a different descriptor count."""
        for pid in pids:
            proc = self._processes.get(pid)
            if proc is None or not proc.readable:
                continue
            suspect = pid in self._suspect
            if proc.listed and not suspect:
                count = self._tables.fd_count(pid)
                if count is not None and count == proc.count:
                    continue
            self._read(pid, proc, whole=suspect)

    def _read_all(self, pids: list[int]) -> None:
        """Read every descriptor of every process."""
        self.stats.scans += 1
        self.stats.processes_listed += len(pids)
        for pid in pids:
            proc = self._processes.get(pid)
            if proc is not None and proc.readable:
                self._read(pid, proc, whole=True)

    def _read(self, pid: int, proc: _Process, *, whole: bool) -> None:
        """Read ``pid``'s table: every descriptor, or (``whole`` False, and it was read
        before) only the numbers not seen last time; keep the index in step."""
        try:
            names = self._tables.fd_names(pid)
        except PermissionError:
            proc.readable = False
            return
        except OSError:
            return  # exited, or a kernel thread with no descriptor table
        self.stats.tables_read += 1
        old = proc.fds
        if whole or not proc.listed:
            fresh: dict[str, int] = {}
            to_read: Iterable[str] = names
        else:
            fresh = {name: old[name] for name in names if name in old}
            to_read = [name for name in names if name not in old]
        for name, target in self._tables.fd_targets(pid, to_read) if to_read else ():
            self.stats.links_read += 1
            fresh[name] = (
                int(target[len(_SOCKET_PREFIX) : -1]) if target.startswith(_SOCKET_PREFIX) else 0
            )
        proc.fds = fresh
        proc.listed = True
        proc.count = len(names)
        self._suspect.discard(pid)
        if fresh == old:
            return
        before = {inode for inode in old.values() if inode}
        after = {inode for inode in fresh.values() if inode}
        self._unindex(pid, before - after)
        for inode in after - before:
            self._index.setdefault(inode, set()).add(pid)
            self._dirty.add(inode)

    def _settle(self, *, found_all: bool) -> bool:
        """Bring the live inodes' holders in line with the index. ``found_all``: every
        table was just read, so a live inode nobody holds is missing (not searched for
        again until the next full pass). Returns whether any holders changed."""
        dirty, self._dirty = self._dirty, set()
        changed = False
        for inode in dirty & self._live:
            pids = self._index.get(inode)
            holders = tuple(sorted(pids)) if pids else ()
            if holders:
                self._missing.discard(inode)
                if self._owners.get(inode) != holders:
                    self._owners[inode] = holders
                    self._note_changed(inode)
                    changed = True
            elif self._owners.pop(inode, None) is not None:
                self._note_changed(inode)
                changed = True
        if found_all:
            missing = self._live - self._owners.keys()
            if missing != self._missing:
                changed = True
            self._missing = missing
        if changed:
            self.generation += 1
            self._holding = {pid for pids in self._owners.values() for pid in pids}
        return changed
