"""What started a listener: control-group paths as real hosts write them, and parents."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from childsockets import ChildSockets
from platforms import wine_gives_pid_0

from portwatch.core.startedby import cgroup_path, started_by
from portwatch.probe.identity import OwnerReader
from portwatch.probe.origin import parent_chain, started_by_of

# 64-hex container ids as the engines write them.
ID1 = "3f4e8a1b2c3d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef"
ID2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
ID3 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
ID4 = "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899"
ID5 = "1122334455667788990011223344556677889900112233445566778899001122"
# /proc/<pid>/cgroup contents as written on real hosts (cgroup v2 unless said).
CGROUPS = {
    # Debian 12, nginx from its package.
    "0::/system.slice/nginx.service\n": "systemd unit nginx.service",
    # A templated unit inside its slice.
    "0::/system.slice/system-postgresql.slice/postgresql@15-main.service\n": (
        "systemd unit postgresql@15-main.service"
    ),
    # sshd started per connection by sshd.socket (Accept=yes).
    "0::/system.slice/system-sshd.slice/sshd@3-192.168.1.5:22-192.168.1.20:51234.service\n": (
        "systemd socket sshd.socket (unit sshd@3-192.168.1.5:22-192.168.1.20:51234.service)"
    ),
    # A job run by cron.
    "0::/system.slice/cron.service\n": "cron (systemd unit cron.service)",
    # A program started from a desktop or ssh login.
    "0::/user.slice/user-1000.slice/session-3.scope\n": "user session 3 (uid 1000)",
    # A user service (systemctl --user).
    "0::/user.slice/user-1000.slice/user@1000.service/app.slice/syncthing.service\n": (
        "user unit syncthing.service (uid 1000)"
    ),
    # Docker with the systemd cgroup driver.
    "0::/system.slice/docker-" + ID1 + ".scope\n": ("docker container 3f4e8a1b2c3d"),
    # Docker with the cgroupfs driver (cgroup v1, named systemd hierarchy).
    "12:pids:/docker/9a8b7c6d5e4f30211223344556677889900aabbccddeeff00112233445566778\n"
    "1:name=systemd:/docker/9a8b7c6d5e4f30211223344556677889900aabbccddeeff00112233445566778\n"
    "0::/\n": "docker container 9a8b7c6d5e4f",
    # Rootful podman.
    "0::/machine.slice/libpod-" + ID2 + ".scope/container\n": ("podman container 0123456789ab"),
    # Rootless podman, inside the user's manager.
    "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-"
    + ID3
    + ".scope/container\n": ("podman container fedcba987654"),
    # Kubernetes (kubelet with the systemd driver, containerd).
    "0::/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-pod5c0a6f2e_8d3b_4c1a_9f0e_2b7d6c5a4e3f.slice/"
    "cri-containerd-" + ID4 + ".scope\n": (
        "Kubernetes pod 5c0a6f2e-8d3b-4c1a-9f0e-2b7d6c5a4e3f (container aabbccddeeff)"
    ),
    # Kubernetes with the cgroupfs driver.
    "0::/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/" + ID5 + "\n": (
        "Kubernetes pod 0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b (container 112233445566)"
    ),
    # PID 1 itself; and a process in a cgroup namespace that names nothing.
    "0::/init.scope\n": "systemd (init)",
    "0::/\n": None,
}


@pytest.mark.parametrize(("text", "expected"), list(CGROUPS.items()))
def test_started_by_from_recorded_cgroup_files(text: str, expected: str | None) -> None:
    assert started_by(text) == expected


def test_the_unified_hierarchy_wins_over_v1_controllers() -> None:
    text = "4:memory:/other\n1:name=systemd:/system.slice/a.service\n0::/system.slice/b.service\n"
    assert cgroup_path(text) == "/system.slice/b.service"
    assert started_by("") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
def test_started_by_reads_this_machines_cgroup_file(tmp_path: Path) -> None:
    fake = tmp_path / "42"
    fake.mkdir()
    (fake / "cgroup").write_text("0::/system.slice/redis-server.service\n")
    assert started_by_of(42, proc=str(tmp_path)) == "systemd unit redis-server.service"
    own = Path(f"/proc/{os.getpid()}/cgroup").read_text()
    assert started_by_of(os.getpid()) == started_by(own)


class _Proc:
    def __init__(self, table: dict[int, tuple[str, int, float]], pid: int) -> None:
        self.pid = pid
        self._name, self._ppid, self._start = table[pid]

    def name(self) -> str:
        return self._name

    def ppid(self) -> int:
        return self._ppid

    def create_time(self) -> float:
        return self._start


class _FakePs:
    Error = psutil.Error

    def __init__(self, table: dict[int, tuple[str, int, float]]) -> None:
        self.table = table

    def Process(self, pid: int) -> Any:
        if pid not in self.table:
            raise psutil.NoSuchProcess(pid)
        return _Proc(self.table, pid)


def test_parent_chain_stops_at_a_reused_pid() -> None:
    # 300's real parent (pid 200) exited; a later process took pid 200.
    table = {
        300: ("server", 200, 1000.0),
        200: ("unrelated", 1, 2000.0),
        1: ("systemd", 0, 1.0),
    }
    ps = _FakePs(table)
    assert parent_chain(ps, ps.Process(300)) == ()
    table[200] = ("launcher", 1, 900.0)
    assert parent_chain(ps, ps.Process(300)) == (("launcher", 200), ("systemd", 1))


def test_parent_chain_is_five_levels_at_most() -> None:
    table = {pid: (f"p{pid}", pid - 1, float(pid)) for pid in range(2, 20)}
    ps = _FakePs(table)
    chain = parent_chain(ps, ps.Process(19))
    assert [pid for _name, pid in chain] == [18, 17, 16, 15, 14]


def test_a_real_listener_has_its_parent_chain(children: list[ChildSockets]) -> None:
    child = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=children)
    owner = OwnerReader().owner(child.pid)
    assert owner is not None
    assert owner.parents[0] == (psutil.Process().name(), os.getpid())
    assert 1 <= len(owner.parents) <= 5


@pytest.fixture
def children() -> Any:
    started: list[ChildSockets] = []
    yield started
    for child in started:
        child.stop()


@wine_gives_pid_0
def test_scan_json_carries_started_by_and_parents(
    tmp_path: Path, children: list[ChildSockets]
) -> None:
    from cli_runner import run

    child = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=children)
    rows = json.loads(run(tmp_path, "scan", "--json", "--all").stdout)
    (row,) = [r for r in rows if r["pid"] == child.pid]
    assert row["parents"][0] == {"process": psutil.Process().name(), "pid": os.getpid()}
    own = Path(f"/proc/{child.pid}/cgroup").read_text()
    assert row["started_by"] == started_by(own)
    # Loopback: the firewall does not matter, and the JSON says so rather than guess.
    assert row["exposure"]["firewall"] == "firewall not relevant: only this computer can connect"
    assert row["exposure"]["bypasses_firewall"] is False
