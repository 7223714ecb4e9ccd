"""The probe's Windows branch: what it must not trust, and what it must not fail on.

These run everywhere through the reader's seams (platform="win32", file times, a psutil
stand-in); the last ones run for real under Windows Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from platforms import needs_windows

from portwatch.core.identity import Identity
from portwatch.probe.identity import FileHasher, OwnerReader
from portwatch.probe.signature import verifier_for


class _Psutil:
    """psutil's surface for one process whose calls behave as told."""

    Error = psutil.Error
    NoSuchProcess = psutil.NoSuchProcess
    ZombieProcess = psutil.ZombieProcess
    AccessDenied = psutil.AccessDenied

    def __init__(self, exe: str, started: float, fail: Exception | None = None) -> None:
        self.exe, self.started, self.fail = exe, started, fail

    def Process(self, pid: int) -> Any:
        def exe() -> str:
            if self.fail is not None:
                raise self.fail
            return self.exe

        return SimpleNamespace(
            pid=pid,
            create_time=lambda: self.started,
            name=lambda: "daemon.exe",
            username=lambda: "HOST\\user",
            exe=exe,
            cmdline=lambda: [self.exe],
        )


def _no_script(proc: Any, exe: str | None) -> tuple[None, None]:
    return None, None


@pytest.mark.parametrize(
    "error",
    [
        OSError(22, "[WinError 87] The parameter is incorrect"),
        OSError(299, "[WinError 299] Only part of a ReadProcessMemory request was completed"),
        psutil.Error("unmapped"),
    ],
)
def test_one_processs_os_error_leaves_that_owner_unattributed_not_the_poll_failed(
    tmp_path: Path, error: Exception
) -> None:
    exe = tmp_path / "daemon.exe"
    exe.write_bytes(b"MZ")
    reader = OwnerReader(
        ps=_Psutil(str(exe), time.time(), fail=error), platform="win32", script_of=_no_script
    )
    owner = reader.owner(1234)
    assert owner is not None
    assert owner.pid == 1234
    assert not owner.identified
    assert "details unreadable" in (owner.note or "")


def test_an_executable_replaced_after_the_process_started_is_not_its_identity(
    tmp_path: Path,
) -> None:
    # Windows lets a running .exe be renamed and a trusted copy be put at its path: the
    # file there now was created (or changed) after the process started.
    exe = tmp_path / "daemon.exe"
    exe.write_bytes(b"MZ trusted program")
    started = time.time() - 600
    now_ns = time.time_ns()
    reader = OwnerReader(
        ps=_Psutil(str(exe), started),
        platform="win32",
        script_of=_no_script,
        file_times=lambda fd: (now_ns, now_ns),
    )
    owner = reader.owner(1234)
    assert owner is not None
    assert owner.exe == str(exe)
    assert owner.sha256 is None
    assert not owner.identified
    assert "replaced on disk after start" in (owner.note or "")


def test_an_executable_older_than_its_process_is_hashed(tmp_path: Path) -> None:
    exe = tmp_path / "daemon.exe"
    exe.write_bytes(b"MZ program")
    started = time.time()
    old_ns = int((started - 3600) * 1e9)
    reader = OwnerReader(
        ps=_Psutil(str(exe), started),
        platform="win32",
        script_of=_no_script,
        file_times=lambda fd: (old_ns, old_ns),
    )
    owner = reader.owner(1234)
    assert owner is not None
    assert owner.sha256 is not None
    assert owner.identified


def test_the_hash_cache_is_keyed_on_the_change_time_it_is_given(tmp_path: Path) -> None:
    # On Windows st_ctime is the creation time, which a write does not move: the cache must
    # use the change time its reader gives (NTFS ChangeTime there), not st_ctime.
    change = [1]
    hasher = FileHasher(change_time=lambda fd, st: change[0])
    target = tmp_path / "daemon.exe"
    target.write_bytes(b"A" * 4096)
    first = hasher.hash_path(str(target))
    st = target.stat()
    with open(target, "r+b") as handle:
        handle.write(b"B")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    # Same change time: the cache answers (POSIX st_ctime moved, and is not what it uses).
    assert hasher.hash_path(str(target)) == first
    change[0] = 2
    assert hasher.hash_path(str(target)) != first


@needs_windows
def test_windows_change_time_moves_on_an_in_place_write(tmp_path: Path) -> None:
    from portwatch.probe import winfile

    target = tmp_path / "daemon.exe"
    target.write_bytes(b"A" * 4096)
    with open(target, "rb") as handle:
        before = winfile.file_times_ns(handle.fileno())
    assert before is not None
    created, changed = before
    assert abs(created - target.stat().st_ctime_ns) < 10_000_000  # st_ctime is creation
    time.sleep(0.05)
    st = target.stat()
    with open(target, "r+b") as handle:
        handle.write(b"B")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    with open(target, "rb") as handle:
        after = winfile.file_times_ns(handle.fileno())
    assert after is not None
    assert after[1] > changed


@needs_windows
def test_the_running_python_is_identified_by_its_own_image() -> None:
    owner = OwnerReader().owner(os.getpid())
    assert owner is not None
    assert owner.sha256 is not None, owner.note
    assert os.path.normcase(owner.exe or "") == os.path.normcase(sys.executable)


class _Recorder:
    """A subprocess.run stand-in that records every program started."""

    def __init__(self) -> None:
        self.started: list[list[str]] = []

    def __call__(self, argv: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        self.started.append(list(argv))
        return subprocess.CompletedProcess(argv, 1, "", "")


def test_windows_signature_checks_start_no_program_so_no_console_flashes(tmp_path: Path) -> None:
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    run = _Recorder()
    verifier_for("win32", run).check(str(exe))
    assert run.started == []


class _Service:
    def __init__(self, name: str, pid: int) -> None:
        self._name, self._pid = name, pid

    def name(self) -> str:
        return self._name

    def pid(self) -> int:
        return self._pid


class _HostPsutil(_Psutil):
    """A host process with a command line, and the Service Control Manager's list."""

    def __init__(self, exe: str, argv: list[str], services: list[_Service]) -> None:
        super().__init__(exe, time.time())
        self.argv, self.services = argv, services

    def Process(self, pid: int) -> Any:
        proc = super().Process(pid)
        proc.cmdline = lambda: self.argv
        proc.cwd = lambda: "C:\\Windows\\System32"
        return proc

    def win_service_iter(self) -> Any:
        return iter(self.services)


def _owner_of(tmp_path: Path, name: str, argv: list[str], services: list[_Service]) -> Any:
    exe = tmp_path / name
    exe.write_bytes(b"MZ host")
    argv = [str(exe), *argv]
    ps = _HostPsutil(str(exe), argv, services)
    return OwnerReader(ps=ps, platform="win32", file_times=lambda fd: None).owner(900)


def test_svchost_is_identified_by_the_services_it_hosts_never_by_itself(tmp_path: Path) -> None:
    one = _owner_of(tmp_path, "svchost.exe", ["-k", "netsvcs", "-p", "-s", "WinRM"], [])
    assert one.script == "service WinRM"
    shared = _owner_of(
        tmp_path,
        "svchost.exe",
        ["-k", "LocalServiceNetworkRestricted"],
        [_Service("Dhcp", 900), _Service("EventLog", 900), _Service("Other", 7)],
    )
    assert shared.script == "service Dhcp, EventLog"
    unknown = _owner_of(tmp_path, "SVCHOST.EXE", ["-k", "netsvcs"], [])
    assert Identity.of(unknown) is None
    assert Identity.of(one) != Identity.of(shared)


def test_rundll32_and_dllhost_are_identified_by_what_they_load(tmp_path: Path) -> None:
    dll = tmp_path / "evil.dll"
    dll.write_bytes(b"MZ dll")
    loaded = _owner_of(tmp_path, "rundll32.exe", [f"{dll},Start"], [])
    assert loaded.script == str(dll)
    assert loaded.script_sha256 is not None
    com = _owner_of(
        tmp_path, "dllhost.exe", ["/Processid:{AB8902B4-09CA-4BB6-B78D-A8F59079A8D5}"], []
    )
    assert com.script == "clsid {AB8902B4-09CA-4BB6-B78D-A8F59079A8D5}"
    bare = _owner_of(tmp_path, "rundll32.exe", [], [])
    assert Identity.of(bare) is None


def test_pid_4_is_the_windows_kernel_and_never_one_program() -> None:
    reader = OwnerReader(ps=_Psutil("", time.time()), platform="win32")
    owner = reader.owner(4)
    assert owner is not None
    assert owner.name == "System"
    assert not owner.identified
    assert "HTTP.sys" in (owner.note or "")
    assert Identity.of(owner) is None
