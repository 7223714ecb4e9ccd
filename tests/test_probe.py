"""The psutil probe against real sockets held by child processes, and its fault handling."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from childsockets import ChildSockets, wait_for
from platforms import needs_linux, needs_posix, wine_gives_pid_0

from portwatch.core.types import Family, Proto, Sample
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.probe.identity import FileHasher, OwnerReader
from portwatch.probe.psutil_probe import PsutilProbe

PYTHON = os.path.realpath(sys.executable)


def sha256_file(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def watch(*ports: int) -> WatchList:
    return WatchList(tuple(parse_spec(str(p)) for p in ports))


def mine(sample: Sample, pid: int) -> list[Any]:
    return [item for item in sample.listeners if item.owner and item.owner.pid == pid]


@wine_gives_pid_0
def test_sees_tcp_and_udp_listeners_on_ipv4_and_ipv6_with_owner(child_sockets: list) -> None:
    child = ChildSockets.start(
        [
            ("tcp", "127.0.0.1", 0, "listen"),
            ("udp", "127.0.0.1", 0, "listen"),
            ("tcp", "::1", 0, "listen"),
            ("udp", "::1", 0, "listen"),
        ],
        registry=child_sockets,
    )
    probe = PsutilProbe()
    sample = wait_for(
        lambda: (s := probe.poll(watch(*child.ports))) and len(mine(s, child.pid)) == 4 and s
    )
    found = {
        (item.endpoint.proto, item.endpoint.family, item.endpoint.address, item.port)
        for item in mine(sample, child.pid)
    }
    assert found == {
        (Proto.TCP, Family.IPV4, "127.0.0.1", child.ports[0]),
        (Proto.UDP, Family.IPV4, "127.0.0.1", child.ports[1]),
        (Proto.TCP, Family.IPV6, "::1", child.ports[2]),
        (Proto.UDP, Family.IPV6, "::1", child.ports[3]),
    }
    owner = mine(sample, child.pid)[0].owner
    assert owner.exe == PYTHON
    assert owner.sha256 == sha256_file(PYTHON)
    assert owner.create_time == pytest.approx(psutil.Process(child.pid).create_time())
    assert owner.user == psutil.Process(child.pid).username()
    assert all(item.attributed for item in mine(sample, child.pid))
    assert sample.probe_name == "psutil"
    assert not sample.partial


def test_counts_listeners_and_established_connections_on_watched_ports(child_sockets: list) -> None:
    server = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    port = server.ports[0]
    ChildSockets.start(
        [("tcp", "127.0.0.1", port, "connect"), ("tcp", "127.0.0.1", port, "connect")],
        registry=child_sockets,
    )
    probe = PsutilProbe()

    def activity() -> Any:
        for item in probe.poll(watch(port)).activity:
            if item.port == port and item.proto is Proto.TCP and item.established >= 2:
                return item
        return None

    item = wait_for(activity)
    assert item.listeners == 1
    # Both ends of each loopback connection sit on the machine (client side and accepted
    # side, completed into the backlog); each connection still counts once.
    assert item.established == 2


@wine_gives_pid_0
def test_connected_udp_socket_is_not_a_listener(child_sockets: list) -> None:
    server = ChildSockets.start([("udp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    client = ChildSockets.start(
        [("udp", "127.0.0.1", server.ports[0], "connect")], registry=child_sockets
    )
    probe = PsutilProbe()
    wait_for(lambda: mine(probe.poll(watch(server.ports[0])), server.pid))
    assert mine(probe.poll(watch(server.ports[0])), client.pid) == []


@needs_linux  # reads the child's executable through /proc
def test_hash_cache_reads_each_executable_once(child_sockets: list) -> None:
    child = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    read: list[tuple[int, int]] = []

    class CountingHasher(FileHasher):
        def hash_open_file(self, handle: Any) -> str:
            before = self.hashed
            value = super().hash_open_file(handle)
            if self.hashed > before:
                st = os.fstat(handle.fileno())
                read.append((st.st_dev, st.st_ino))
            return value

    probe = PsutilProbe(owners=OwnerReader(hasher=CountingHasher()))
    wait_for(lambda: mine(probe.poll(watch()), child.pid))
    st = os.stat(f"/proc/{child.pid}/exe")
    ours = (st.st_dev, st.st_ino)
    assert read.count(ours) == 1
    # Other programs on this machine may start meanwhile and be hashed; ours never again.
    for _ in range(5):
        probe.poll(watch())
    assert read.count(ours) == 1


@needs_posix  # copies the interpreter, which on Windows needs its DLLs beside it
def test_executable_replaced_on_disk_is_judged_by_what_runs(
    tmp_path: Path, child_sockets: list
) -> None:
    exe = tmp_path / "server"
    shutil.copy(PYTHON, exe)
    original = sha256_file(str(exe))
    child = ChildSockets.start(
        [("tcp", "127.0.0.1", 0, "listen")], executable=str(exe), registry=child_sockets
    )
    exe.unlink()
    exe.write_bytes(b"#!/bin/sh\necho replaced\n")
    probe = PsutilProbe()
    listener = wait_for(lambda: mine(probe.poll(watch()), child.pid))[0]
    assert listener.owner.sha256 == original
    assert listener.owner.exe == str(exe)
    assert "replaced" in (listener.owner.note or "")


class FlakyPsutil:
    """psutil with faults injected per pid: the probe's own seam."""

    def __init__(
        self, vanish: set[int] = frozenset(), deny: set[int] = frozenset(), deny_table: bool = False
    ) -> None:
        self.vanish, self.deny, self.deny_table = set(vanish), set(deny), deny_table
        self.NoSuchProcess = psutil.NoSuchProcess
        self.ZombieProcess = psutil.ZombieProcess
        self.AccessDenied = psutil.AccessDenied
        self.Error = psutil.Error
        self.CONN_LISTEN = psutil.CONN_LISTEN
        self.CONN_ESTABLISHED = psutil.CONN_ESTABLISHED

    def net_connections(self, kind: str) -> list[Any]:
        if self.deny_table:
            raise psutil.AccessDenied()
        return psutil.net_connections(kind)

    def Process(self, pid: int) -> Any:
        if pid in self.vanish:
            raise psutil.NoSuchProcess(pid)
        proc = psutil.Process(pid)
        if pid in self.deny:
            return SimpleNamespace(
                create_time=proc.create_time,
                name=lambda: (_ for _ in ()).throw(psutil.AccessDenied(pid)),
                username=lambda: (_ for _ in ()).throw(psutil.AccessDenied(pid)),
                exe=lambda: (_ for _ in ()).throw(psutil.AccessDenied(pid)),
            )
        return proc

    def process_iter(self) -> Any:
        for proc in psutil.process_iter():
            if proc.pid in self.deny:
                yield SimpleNamespace(
                    pid=proc.pid,
                    net_connections=lambda kind: (_ for _ in ()).throw(psutil.AccessDenied()),
                )
            else:
                yield proc


@wine_gives_pid_0
def test_vanished_process_is_not_attributed_and_other_rows_survive(child_sockets: list) -> None:
    gone = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    kept = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    probe = PsutilProbe(ps=FlakyPsutil(vanish={gone.pid}), platform="linux")
    sample = wait_for(lambda: (s := probe.poll(watch())) and mine(s, kept.pid) and s)
    # The vanished process's socket is not attributed to anyone (nor shown as a new,
    # unattributed owner, which would raise a false alert); the other rows are kept.
    assert [item for item in sample.listeners if item.port == gone.ports[0]] == []
    assert mine(sample, kept.pid)[0].attributed


@wine_gives_pid_0
def test_access_denied_owner_is_unattributed_with_the_reason(child_sockets: list) -> None:
    child = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    # On Linux the exe comes from /proc directly; deny at that seam by using the
    # non-Linux path of the reader, which asks the (denying) process object.
    probe = PsutilProbe(ps=FlakyPsutil(deny={child.pid}), platform="darwin")
    listener = wait_for(lambda: mine(probe.poll(watch()), child.pid))[0]
    assert listener.owner.exe is None
    assert listener.owner.sha256 is None
    assert not listener.attributed
    assert "hidden" in listener.owner.note


@wine_gives_pid_0
def test_denied_system_table_walks_processes_and_says_partial(child_sockets: list) -> None:
    visible = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    hidden = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    probe = PsutilProbe(ps=FlakyPsutil(deny={hidden.pid}, deny_table=True))
    sample = wait_for(lambda: (s := probe.poll(watch())) and mine(s, visible.pid) and s)
    assert sample.partial
    assert "administrator" in sample.partial_reason
    assert "could not be inspected" in sample.partial_reason
    assert not [item for item in sample.listeners if item.port == hidden.ports[0]]


@needs_posix  # uids
def test_other_users_sockets_show_as_unattributed_to_an_unprivileged_probe(
    child_sockets: list,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    root_child = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    # The interpreter lives in a folder only root may enter, so the child loads everything
    # first and then gives up root before it polls: the probe runs as uid 65534.
    code = (
        "import json, os\n"
        "from portwatch.probe.psutil_probe import PsutilProbe\n"
        "from portwatch.core.watchlist import WatchList\n"
        "probe = PsutilProbe()\n"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "s = probe.poll(WatchList())\n"
        "rows = [[x.port, x.owner.pid if x.owner else None, x.attributed] for x in s.listeners]\n"
        "print(json.dumps(rows))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    mine_rows = [r for r in rows if r[0] == root_child.ports[0]]
    assert mine_rows, rows
    assert mine_rows[0][1] is None
    assert mine_rows[0][2] is False


def test_hash_cache_notices_an_edit_whose_mtime_was_put_back(tmp_path: Path) -> None:
    target = tmp_path / "daemon"
    target.write_bytes(b"A" * 4096)
    hasher = FileHasher()
    first = hasher.hash_path(str(target))
    st = target.stat()
    with open(target, "r+b") as handle:  # same inode, same size
        handle.write(b"B")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_mtime_ns == st.st_mtime_ns
    assert hasher.hash_path(str(target)) != first


@needs_posix  # uids
def test_owner_cache_sees_a_process_drop_to_another_user(child_sockets: list) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to change user")
    code = (
        "import os, socket, sys\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True)\n"
        "sys.stdin.readline()\n"
        "os.setuid(65534)\n"
        "print('dropped', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [PYTHON, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(proc.stdout.readline())
        probe = PsutilProbe()

        def user() -> str | None:
            found = [i for i in probe.poll(watch()).listeners if i.port == port and i.owner]
            return found[0].owner.user if found else None

        assert wait_for(user) == "root"
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "dropped"
        assert wait_for(lambda: user() not in (None, "root"))
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
        proc.stdout.close()


@needs_posix  # FIFOs and /dev/zero
def test_hashing_a_script_path_swapped_for_a_fifo_device_or_huge_file_returns_none(
    tmp_path: Path,
) -> None:
    """A process's owner may put any of these at its script's path after it started:
    the open waited for a writer for ever, /dev/zero was read for ever."""
    import threading

    fifo = tmp_path / "script.py"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.py"
    zero.symlink_to("/dev/zero")
    huge = tmp_path / "huge.py"
    with open(huge, "wb") as handle:
        handle.truncate(1 << 40)  # sparse: a terabyte of nothing
    hasher = FileHasher()
    results: list[str | None] = []

    def hash_all() -> None:
        results.extend(hasher.hash_path(str(p)) for p in (fifo, zero, huge))

    worker = threading.Thread(target=hash_all, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():
        with open(fifo, "wb"):  # unblock the thread before failing
            pass
        pytest.fail("hashing a script path blocked or read for ever")
    assert results == [None, None, None]
    real = tmp_path / "real.py"
    real.write_bytes(b"print(1)\n")
    assert hasher.hash_path(str(real)) == hashlib.sha256(b"print(1)\n").hexdigest()


@needs_linux
def test_the_package_check_of_a_script_swapped_for_a_fifo_does_not_wait(tmp_path: Path) -> None:
    from portwatch.probe.packages import DpkgDatabase, PackageVerifier

    if not os.path.isdir("/var/lib/dpkg/info"):
        pytest.skip("no dpkg database here")
    import threading

    fifo = tmp_path / "script.py"
    os.mkfifo(fifo)
    verifier = PackageVerifier([DpkgDatabase()])
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(verifier.check(str(fifo))))
    worker.daemon = True
    worker.start()
    worker.join(10)
    if worker.is_alive():
        with open(fifo, "wb"):  # unblock the thread before failing
            pass
        pytest.fail("the package check waited on a FIFO")
    assert results and getattr(results[0], "package", None) is None
