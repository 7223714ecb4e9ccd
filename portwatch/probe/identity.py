"""Who owns a socket: a process's executable read from the OS, and that file's SHA-256.

The executable is never taken from the command line (a process writes its own argv)
nor from psutil's Linux fallback that guesses from it. On Linux the file is opened
through ``/proc/<pid>/exe``, which is the file the process actually runs, even if the
path was replaced on disk after it started.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import psutil

from portwatch import files
from portwatch.core.identity import script_is_file
from portwatch.core.startedby import socket_activated
from portwatch.core.text import clean
from portwatch.core.types import Owner, SignerInfo
from portwatch.files import raise_if_short
from portwatch.probe import procfs, winfile
from portwatch.probe.extracode import extra_code, read_environ
from portwatch.probe.interpreter import ScriptReader
from portwatch.probe.origin import parent_chain, started_by_of
from portwatch.probe.packages import PackageCheck, PackageVerifier, default_verifier
from portwatch.probe.published import PublishedPorts, running_processes
from portwatch.probe.replaced import replaced_reason
from portwatch.probe.service_manager import ServiceNames, service_names
from portwatch.probe.signature import default_verifier as default_signature_verifier

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
SYSTEM_PID = 4
SYSTEM_NOTE = (
    "Windows kernel (System): HTTP.sys, SMB and NetBIOS listen here for other programs; "
    "`netsh http show servicestate` (as administrator) names who registered the port"
)
_DELETED = " (deleted)"
_EXITED = "process exited"
# (device, inode, size, mtime, change time): the change time too, because utime() can put an
# edited file's mtime back but nothing can set the change time.
FileKey = tuple[int, int, int, int, int]
# How long after a process started its executable may still be written (file systems with
# coarse times, clock steps) before it counts as replaced.
_START_SLACK_NS = 2_000_000_000


def change_time_ns(fd: int, st: os.stat_result) -> int:
    """When the open file last changed, in a clock no one can set back.

    POSIX ``st_ctime``; on Windows, where ``st_ctime`` is the (settable) creation time, NTFS's
    ChangeTime. If Windows will not say, a value that never repeats, so the file is re-hashed
    every time rather than trusted from the cache.
    """
    if sys.platform == "win32":
        times = winfile.file_times_ns(fd)
        return times[1] if times is not None else -time.monotonic_ns()
    return st.st_ctime_ns


# Scripts and service DLLs are far smaller; a file larger than this (a sparse file put
# in a script's place) is not hashed, so the poll cannot be made to read for minutes.
MAX_HASHED_PATH_BYTES = 512 << 20


class FileHasher:
    """SHA-256 of files, cached by (device, inode, size, mtime) so polling stays cheap."""

    def __init__(
        self,
        max_entries: int = 2048,
        change_time: Callable[[int, os.stat_result], int] = change_time_ns,
    ) -> None:
        self._cache: OrderedDict[FileKey, str] = OrderedDict()
        self._change_time = change_time
        self._max = max_entries
        self.hashed = 0  # files actually read, for tests and benchmarks

    def hash_path(self, path: str) -> str | None:
        """Hash the regular file at ``path`` (links followed); None when it cannot be
        read, or is not a regular file of at most :data:`MAX_HASHED_PATH_BYTES`.

        The path is a process's script: its owner may swap it for a FIFO (an open that
        waits for ever), a device such as /dev/zero (a read that never ends) or a huge
        sparse file between any check and this open, so the opened file is what is
        checked.
        """
        try:
            fd = files.open_regular(path, os.O_RDONLY, follow=True)
        except OSError as exc:
            raise_if_short(exc)
            return None
        try:
            with os.fdopen(fd, "rb") as handle:
                if os.fstat(handle.fileno()).st_size > MAX_HASHED_PATH_BYTES:
                    return None
                return self.hash_open_file(handle)
        except OSError as exc:
            raise_if_short(exc)
            return None

    def hash_open_file(self, handle: Any) -> str:
        st = os.fstat(handle.fileno())
        key = (
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            self._change_time(handle.fileno(), st),
        )
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        digest = hashlib.sha256()
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
        value = digest.hexdigest()
        self.hashed += 1
        self._cache[key] = value
        if len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return value


class OwnerReader:
    """Builds :class:`Owner` values for pids, one row's failure never failing the poll.

    ``ps`` is the psutil module or a stand-in with the same surface, the seam tests use
    to inject access errors and vanished processes.
    """

    def __init__(
        self,
        ps: Any = psutil,
        hasher: FileHasher | None = None,
        platform: str = sys.platform,
        script_of: Callable[[Any, str | None], tuple[str | None, str | None]] | None = None,
        packages: PackageVerifier | None = None,
        signer_of: Callable[[str], SignerInfo | None] | None = None,
        file_times: Callable[[int], tuple[int, int] | None] = winfile.file_times_ns,
        published: PublishedPorts | None = None,
        services: ServiceNames | None = None,
    ) -> None:
        self._ps = ps
        # The container a port forwarder (docker-proxy, rootlessport) publishes.
        self.published = published or PublishedPorts(processes=lambda: running_processes(ps))
        # Windows services and macOS launchd jobs by pid (None on Linux: the cgroup says).
        self.services = services if services is not None else service_names(ps, platform)
        # Which installed package the executable and script verifiably came from; the
        # verifier caches by file identity and database stamp, so polls stay cheap.
        self.packages = packages if packages is not None else default_verifier()
        # The verified code signer of an executable (Windows, macOS), cached likewise;
        # none where the OS has no code signatures.
        if signer_of is None:
            verifier = default_signature_verifier()
            signer_of = verifier.signer if verifier.supported else None
        self._signer_of = signer_of
        self.hasher = hasher or FileHasher()
        self._linux = platform.startswith("linux")
        self._windows = platform == "win32"
        # (creation, change) times of an open file, for Windows' replaced-image check.
        self._file_times = file_times
        # (process, exe) -> (script path, script sha256): interpreters are told apart by
        # the script they run, hashed through the same cache; every probe gets this.
        self._script_of = script_of or ScriptReader(self.hasher, ps)
        # pid -> (create_time, executable file key, euid, exec token, package database
        # stamp, owner): a process keeps its identity until it exits or exec()s (or its
        # package is upgraded or removed), so unchanged owners cost a few syscalls per poll.
        self._owners: dict[
            int, tuple[float | None, FileKey | None, int | None, bytes | None, object, Owner]
        ] = {}
        self._used: set[int] = set()

    def forget_unused(self) -> None:
        """Drop cached owners not asked for since the last call (call once per poll)."""
        for pid in set(self._owners) - self._used:
            del self._owners[pid]
        self._used = set()

    def _exe_key(self, pid: int) -> FileKey | None:
        if not self._linux:
            return None
        try:
            st = os.stat(f"/proc/{pid}/exe")
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def owner(self, pid: int | None) -> Owner | None:
        """The owner of ``pid``; None when there is no pid or the process is gone.

        A process that exits while it is being read is gone, not "unattributed": its
        socket is closing with it, and reporting it as a new owner would be a lie.
        """
        if pid is None or pid <= 0:
            return None
        if self._windows and pid == SYSTEM_PID:
            # The kernel: HTTP.sys (IIS, WinRM, WSD, .NET HttpListener), SMB and NetBIOS
            # listen as pid 4 on behalf of programs it hides. Never one program to trust.
            return Owner(pid=pid, name="System", note=SYSTEM_NOTE)
        ps = self._ps
        try:
            proc = ps.Process(pid)
        except (ps.NoSuchProcess, ps.ZombieProcess):
            return None
        except ps.AccessDenied:
            return Owner(pid=pid, note="access denied: the OS hides this process's details")
        except OSError as exc:
            # Out of descriptors or memory: not an answer about this process.
            raise_if_short(exc)
            raise
        self._used.add(pid)
        cached = self._owners.get(pid)
        if cached is not None and cached[1] is not None:
            # Same process (start time), same program (exe file) and same user (a daemon
            # that binds as root and then drops to another user must show the new one).
            try:
                same = proc.create_time() == cached[0] and self._euid(proc) == cached[2]
            except ps.Error:
                same = False
            # exec() of the same interpreter with another script keeps pid, start time
            # and executable: only the exec token tells the new program apart.
            if (
                same
                and self._exe_key(pid) == cached[1]
                and self._exec_token(pid) == cached[3]
                and self.packages.stamp() == cached[4]
            ):
                return cached[5]
        token = self._exec_token(pid)
        stamp = self.packages.stamp()
        try:
            owner = self._read_owner(proc, pid)
        except (ps.Error, OSError) as exc:
            # psutil passes Windows errors it does not map (WinError 87, 299, ...) through
            # as plain OSError: this owner stays unattributed, the rest of the poll goes on.
            # Out of descriptors or memory is no answer about the owner: the poll fails.
            raise_if_short(exc)
            log.debug("reading pid %s failed: %r", pid, exc)
            reason = clean(str(exc)) or type(exc).__name__
            return Owner(pid=pid, note=f"details unreadable ({reason})")
        if owner is not None and owner.identified:
            try:
                euid = self._euid(proc)
            except ps.Error:
                euid = None
            self._owners[pid] = (owner.create_time, self._exe_key(pid), euid, token, stamp, owner)
        return owner

    def _exec_token(self, pid: int) -> bytes | None:
        if not self._linux:
            return None
        token = procfs.exec_token(pid)
        if token is not None:
            return token
        # Without the auxiliary vector, a changed command line is the next best sign.
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                return b"cmdline:" + handle.read(65536)
        except OSError as exc:
            raise_if_short(exc)
            return None

    def _euid(self, proc: Any) -> int | None:
        if not self._linux:
            return None
        return int(proc.uids().effective)

    def _read_owner(self, proc: Any, pid: int) -> Owner | None:
        ps = self._ps
        notes: list[str] = []
        create_time = name = user = None
        try:
            create_time = proc.create_time()
        except (ps.NoSuchProcess, ps.ZombieProcess):
            return None
        except ps.AccessDenied:
            notes.append("start time hidden")
        try:
            name = clean(proc.name())
        except (ps.NoSuchProcess, ps.ZombieProcess):
            return None
        except ps.AccessDenied:
            notes.append("name hidden")
        try:
            user = clean(proc.username())
        except (ps.NoSuchProcess, ps.ZombieProcess):
            return None
        except (ps.AccessDenied, KeyError):
            # KeyError: a uid with no passwd entry (containers); not an error worth failing.
            user = None
        exe, sha256, exe_note = self._exe_and_hash(proc, pid)
        if exe_note == _EXITED:
            return None
        if exe_note:
            notes.append(exe_note)
        script = script_sha = None
        if exe and self._script_of is not None:
            try:
                script, script_sha = self._script_of(proc, exe)
            except (ps.NoSuchProcess, ps.ZombieProcess):
                return None
            except (ps.AccessDenied, OSError) as exc:
                raise_if_short(exc)
                notes.append("script hidden")
        extra = self._extra_code(proc, pid, exe) if exe else None
        exe_check = script_check = PackageCheck()
        signer = None
        if exe and sha256:
            exe_check = self._package_check(exe, f"/proc/{pid}/exe" if self._linux else None)
            if script_is_file(script) and script_sha:
                assert script is not None
                # Read through the process's root: a container's script is its own.
                opened = procfs.root_of(pid) + script if self._linux else None
                script_check = self._package_check(script, opened)
            if self._signer_of is not None:
                signer = self._signer_of(exe)
        problem = exe_check.problem if exe_check.listed_by else None
        if problem is None and script_check.listed_by and not script_check.verified:
            problem = f"{script}: {script_check.problem}"
        return Owner(
            pid=pid,
            create_time=create_time,
            name=name,
            exe=exe,
            sha256=sha256,
            user=user,
            script=script,
            script_sha256=script_sha,
            extra_code=extra,
            package=exe_check.package,
            script_package=script_check.package,
            package_problem=problem,
            signer=signer,
            note="; ".join(notes) or None,
            replaced=self._replaced(pid, exe),
            started_by=self._started_by(proc, pid, exe),
            parents=parent_chain(ps, proc),
        )

    def _started_by(self, proc: Any, pid: int, exe: str | None) -> str | None:
        """What started the process (read once per process instance: owners are cached):
        its control group, the ``.socket`` unit that passed it its sockets, the container
        a port forwarder publishes, or the OS's service or launchd job elsewhere."""
        if not self._linux:
            return self.services.started_by(pid) if self.services is not None else None
        found = started_by_of(pid)
        program = os.path.basename(exe or "")
        if program in ("docker-proxy", "rootlessport", "podman"):
            try:
                argv = [a for a in proc.cmdline() if isinstance(a, str)]
            except (self._ps.Error, OSError):
                argv = []
            if program == "podman":
                # podman re-executes itself as rootlessport (argv[0] names the role).
                program = os.path.basename(argv[0]) if argv else program
            published = self.published.describe(program, argv, pid)
            if published is not None:
                return published
        # A service started by its .socket unit (Accept=no) is told its sockets' names.
        environ = read_environ(pid)
        if environ.get("LISTEN_PID") == str(pid):
            found = socket_activated(found, environ.get("LISTEN_FDNAMES", ""))
        return clean(found) if found else None

    def _replaced(self, pid: int, exe: str | None) -> str | None:
        """Why the running program is not the file at ``exe`` (Linux), else None."""
        if not self._linux or not exe:
            return None
        try:
            target = os.readlink(f"/proc/{pid}/exe")  # the raw path, not the cleaned text
        except OSError:
            return None
        if target.endswith(_DELETED) and not procfs.real_name(pid, target):
            target = target[: -len(_DELETED)]
        return replaced_reason(pid, target)

    def _package_check(self, path: str, open_path: str | None) -> PackageCheck:
        try:
            return self.packages.check(path, open_path)
        except OSError as exc:
            # A database that cannot be read is no verdict: nothing is cached, no package.
            raise_if_short(exc)
            log.debug("package check failed for %s: %s", path, exc)
            return PackageCheck()

    def _extra_code(self, proc: Any, pid: int, exe: str) -> str | None:
        """Code the process was told to load besides its program (Linux: the start
        environment and command line are readable wherever the executable is)."""
        if not self._linux:
            return None
        ps = self._ps
        try:
            argv = [a for a in proc.cmdline() if isinstance(a, str)]
        except (ps.NoSuchProcess, ps.ZombieProcess, ps.AccessDenied, OSError) as exc:
            raise_if_short(exc)
            argv = None
        environ = read_environ(pid)
        return extra_code(exe, argv, environ, procfs.root_of(pid), procfs.cwd_of(pid))

    def _exe_and_hash(self, proc: Any, pid: int) -> tuple[str | None, str | None, str | None]:
        if self._linux:
            link = f"/proc/{pid}/exe"
            try:
                target = os.readlink(link)
            except FileNotFoundError:
                return None, None, _EXITED
            except OSError as exc:
                return None, None, f"executable hidden ({exc.strerror or exc})"
            # The kernel marks a deleted file by appending " (deleted)", but a file may
            # really be named that way: it is deleted only if that name is not it.
            replaced = target.endswith(_DELETED) and not procfs.real_name(pid, target)
            if replaced:
                target = target[: -len(_DELETED)]
            try:
                with open(link, "rb") as handle:
                    sha = self.hasher.hash_open_file(handle)
            except OSError as exc:
                raise_if_short(exc)
                return clean(target), None, f"executable unreadable ({exc.strerror or exc})"
            note = (
                "the executable was replaced or deleted on disk after start" if replaced else None
            )
            return clean(target), sha, note
        ps = self._ps
        try:
            exe = proc.exe()
        except (ps.NoSuchProcess, ps.ZombieProcess):
            return None, None, _EXITED
        except ps.AccessDenied:
            return None, None, "executable hidden (access denied)"
        if not exe:
            return None, None, "executable unknown"
        try:
            with open(exe, "rb") as handle:
                if self._windows and self._replaced_after_start(proc, handle.fileno()):
                    # Windows lets a running .exe be renamed and another file be put at its
                    # path; psutil still names the old path. The file there now is not what
                    # runs, so its hash must not vouch for the process (Linux reads /proc).
                    return (
                        clean(exe),
                        None,
                        "the executable was replaced on disk after start",
                    )
                exe_sha = self.hasher.hash_open_file(handle)
        except OSError as exc:
            raise_if_short(exc)
            return clean(exe), None, "executable unreadable"
        return clean(exe), exe_sha, None

    def _replaced_after_start(self, proc: Any, fd: int) -> bool:
        times = self._file_times(fd)
        if times is None:
            return False
        try:
            started_ns = int(proc.create_time() * 1e9)
        except (self._ps.Error, OSError):
            return False
        return max(times) > started_ns + _START_SLACK_NS
