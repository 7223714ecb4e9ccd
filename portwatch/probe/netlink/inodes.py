"""Which process holds a socket: socket inode → pids, from ``/proc/<pid>/fd``.

The kernel's socket diagnostics name a socket's inode but not its process; the only
way to find the owner is to read the fd links of processes. Doing that every poll
costs as much as psutil does, so this resolver remembers:

- inode → pids for sockets already found (kept while the socket is alive and each
  pid is still the same process: same start time in ``/proc/<pid>/stat``);
- per process, the fd numbers already read, so a rescan reads only new fds;
- inodes searched for and not found (another user's process when not root, or a
  process that exited), so they are not searched for again every poll;
- processes whose fds cannot be read (permission), skipped until their pid is reused.

Each poll lists ``/proc`` (one directory read). A process that appeared since the
previous poll is noted, and its fds are read at once only if its parent holds a
socket: a forked worker or a socket-activated service inherits its parent's
sockets, which no new inode would reveal. When an inode it has not seen appears,
every process's fds are read: a socket may be held by several processes (fork after
bind, a descriptor passed over a Unix socket) and each holder matters, because each
can accept connections, so the search never stops at the first holder found.

A holder that joins later without a new inode or a new process (a descriptor passed
to a process that was already running) is found by a full re-read every
``rescan_every`` updates, which also drops holders that closed their copy. A socket
no visible process holds (another user's, when not root) costs one full pass when it
appears, then nothing until the next full re-read.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from portwatch.files import raise_if_short

_SOCKET_PREFIX = "socket:["


@dataclass
class _Process:
    """What one scan learnt about a process."""

    start: int  # start time in clock ticks since boot; tells a reused pid apart
    readable: bool = True
    fds: dict[str, int] = field(default_factory=dict)  # fd name → socket inode (0: not a socket)


@dataclass
class ScanStats:
    """Counters for benchmarks and tests: how much work the resolver did."""

    scans: int = 0
    new_processes: int = 0
    processes_listed: int = 0
    links_read: int = 0


class InodeResolver:
    """Maps socket inodes to the pids holding them, reading ``/proc`` as little as it can."""

    def __init__(self, proc_root: str = "/proc", rescan_every: int = 5) -> None:
        self._proc = proc_root
        self._rescan_every = max(1, rescan_every)
        self._updates = 0
        self._owners: dict[int, tuple[int, ...]] = {}
        self._by_pid: dict[int, set[int]] = {}
        self._missing: set[int] = set()
        self._processes: dict[int, _Process] = {}
        self._live: set[int] = set()
        # Bumped whenever any inode's holders change: equal generations, equal answers.
        self.generation = 0
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
        if inodes is not None:
            live = set(inodes)
            live.discard(0)
            # Forget sockets that are gone so the caches stay the size of the live set.
            gone = self._owners.keys() - live
            for inode in gone:
                self._forget_inode(inode)
            if gone or self._missing - live:
                self.generation += 1
            self._missing &= live
            self._live = live
        live = self._live
        pids = self._list_pids()
        self._drop_changed_processes(pids)
        self._read_new_processes(pids, live)
        self._updates += 1
        if self._updates % self._rescan_every == 0:
            self._rescan(pids)
            return
        unknown = live - self._owners.keys() - self._missing
        if unknown:
            self._scan(pids, unknown)

    def forget(self) -> None:
        """Drop every cache (the next resolve scans from scratch)."""
        self._owners.clear()
        self._by_pid.clear()
        self._missing.clear()
        self._processes.clear()
        self._live = set()
        self.generation += 1

    # --- internals ------------------------------------------------------------------

    def _forget_inode(self, inode: int) -> None:
        for pid in self._owners.pop(inode, ()):
            inodes = self._by_pid.get(pid)
            if inodes is not None:
                inodes.discard(inode)
                if not inodes:
                    del self._by_pid[pid]

    def _stat(self, pid: int) -> tuple[int, int] | None:
        """(start time, parent pid) from ``/proc/<pid>/stat``; None if it cannot be read."""
        try:
            with open(f"{self._proc}/{pid}/stat", "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise_if_short(exc)  # else the process would be taken for gone
            return None
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        fields = raw[raw.rfind(b")") + 2 :].split()
        try:
            return int(fields[19]), int(fields[1])  # fields 22 (starttime) and 4 (ppid)
        except (IndexError, ValueError):
            return None

    def _start_time(self, pid: int) -> int | None:
        stat = self._stat(pid)
        return None if stat is None else stat[0]

    def _drop_changed_processes(self, pids: list[int]) -> None:
        """Forget processes that exited, and owners whose pid now names another process."""
        present = set(pids)
        changed = self._processes.keys() - present
        for pid in changed:
            del self._processes[pid]
        for pid in self._by_pid.keys() - changed:
            known = self._processes.get(pid)
            if known is None or self._start_time(pid) != known.start:
                changed.add(pid)
                self._processes.pop(pid, None)
        for pid in changed:
            inodes = self._by_pid.pop(pid, None)
            if not inodes:
                continue
            self.generation += 1
            for inode in inodes:
                kept = tuple(p for p in self._owners.get(inode, ()) if p != pid)
                if kept:
                    self._owners[inode] = kept
                else:
                    self._owners.pop(inode, None)

    def _read_new_processes(self, pids: list[int], live: set[int]) -> None:
        """Note processes not seen before; read the fds of those a holder started.

        A child inherits its parent's sockets (pre-fork workers, socket activation), so
        it may be one more holder of a known socket, which no new inode would reveal.
        Other new processes are only noted: their fds are read by the next scan, which
        any socket they open themselves triggers.
        """
        new = [pid for pid in pids if pid not in self._processes]
        if not new:
            return
        found: dict[int, list[int]] = {}
        self.stats.new_processes += len(new)
        first = not self._processes
        for pid in new:
            stat = self._stat(pid)
            if stat is None:
                continue  # gone already
            start, parent = stat
            self._processes[pid] = _Process(start)
            if first or parent in self._by_pid:
                self._read_process(pid, True, live, found, stop_when_found=False)
        self._record(found)

    def _list_pids(self) -> list[int]:
        try:
            names = os.listdir(self._proc)
        except OSError as exc:
            raise_if_short(exc)
            return []
        return sorted(int(name) for name in names if name.isdigit())

    def _record(self, found: dict[int, list[int]]) -> None:
        for inode, pids in found.items():
            before = self._owners.get(inode, ())
            after = tuple(sorted(set(before) | set(pids)))
            if after == before:
                continue
            self._owners[inode] = after
            for pid in pids:
                self._by_pid.setdefault(pid, set()).add(inode)
            self._missing.discard(inode)
            self.generation += 1

    def _scan(self, pids: list[int], unknown: set[int]) -> None:
        """Find every holder of the ``unknown`` inodes: all fds of all processes are
        read, because a fd number read before may now hold one of them and a socket
        may have several holders."""
        self.stats.scans += 1
        self.stats.processes_listed += len(pids)
        found: dict[int, list[int]] = {}
        for pid in pids:
            self._read_process(pid, True, set(unknown), found, stop_when_found=False)
        self._record(found)
        remaining = unknown - found.keys()
        if remaining - self._missing:
            self._missing |= remaining
            self.generation += 1

    def _rescan(self, pids: list[int]) -> None:
        """Re-read every process and rebuild the holders of all live inodes."""
        self.stats.scans += 1
        self.stats.processes_listed += len(pids)
        found: dict[int, list[int]] = {}
        for pid in pids:
            self._read_process(pid, True, set(self._live), found, stop_when_found=False)
        owners = {inode: tuple(sorted(set(holders))) for inode, holders in found.items()}
        missing = self._live - owners.keys()
        if owners != self._owners or missing != self._missing:
            self.generation += 1
        self._owners = owners
        self._missing = missing
        self._by_pid = {}
        for inode, holders in owners.items():
            for pid in holders:
                self._by_pid.setdefault(pid, set()).add(inode)

    def _read_process(
        self,
        pid: int,
        full: bool,
        remaining: set[int],
        found: dict[int, list[int]],
        *,
        stop_when_found: bool = True,
    ) -> None:
        proc = self._processes.get(pid)
        start = self._start_time(pid)
        if start is None:
            self._processes.pop(pid, None)
            return  # exited
        if proc is None or proc.start != start:
            proc = _Process(start)
            self._processes[pid] = proc
        if not proc.readable:
            return
        fd_dir = f"{self._proc}/{pid}/fd"
        try:
            names = os.listdir(fd_dir)
        except PermissionError:
            proc.readable = False
            return
        except OSError as exc:
            # Out of descriptors: its sockets would look ownerless.
            raise_if_short(exc)
            return  # exited or a kernel thread with no fd table
        fds = proc.fds
        if full:
            fresh = dict.fromkeys(names, 0)
            to_read: Iterable[str] = names
        else:
            fresh = {name: fds.get(name, 0) for name in names}
            to_read = [name for name in names if name not in fds]
        for name in to_read:
            try:
                target = os.readlink(f"{fd_dir}/{name}")
            except OSError:
                fresh.pop(name, None)  # closed meanwhile
                continue
            self.stats.links_read += 1
            if target.startswith(_SOCKET_PREFIX):
                fresh[name] = int(target[len(_SOCKET_PREFIX) : -1])
        proc.fds = fresh
        live = self._live
        for inode in fresh.values():
            # Every live socket this process holds is recorded, not only the ones
            # searched for: it may be one more holder of a known socket.
            if inode in live:
                holders = found.setdefault(inode, [])
                if pid not in holders:
                    holders.append(pid)
                if stop_when_found:
                    remaining.discard(inode)
