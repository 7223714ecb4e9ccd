"""A listening socket held by several processes is known only when every holder is trusted.

Real processes share real sockets three ways: a child inherits the socket across
fork/exec, a descriptor is passed over a Unix socket to an unrelated running process,
and two processes join one SO_REUSEPORT group. Both probes are checked.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from trust_processes import REAL_PYTHON, child_env, python_copy, wait_for, watch

from portwatch.core.alert_policy import RateLimitedPolicy
from portwatch.core.trust import TrustEntry, TrustJudge, TrustList
from portwatch.core.types import EventKind, Listener, Proto, Sample, Status
from portwatch.core.watchlist import WatchSpec
from portwatch.engine.monitor import Monitor
from portwatch.probe.base import Probe
from portwatch.probe.netlink import NetlinkProbe
from portwatch.probe.psutil_probe import PsutilProbe

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="uses /proc, fd passing and SO_REUSEPORT"
)

# The trusted program: holds the socket it is given (an inherited fd number, or one
# received over a Unix socket), says so, and keeps it until stdin closes.
HOLDER_SCRIPT = """
import socket, sys
how, where = sys.argv[1], sys.argv[2]
if how == "fd":
    held = socket.socket(fileno=int(where))
elif how == "unix":
    link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    link.connect(where)
    _msg, fds, _flags, _addr = socket.recv_fds(link, 16, 1)
    held = socket.socket(fileno=fds[0])
else:
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind(("127.0.0.1", int(where)))
    held.listen()
print(held.getsockname()[1], flush=True)
sys.stdin.read()
"""

# The untrusted program: binds, then either starts the trusted holder with the socket
# inherited, or waits for it on a Unix socket and passes the descriptor over.
BINDER_CODE = """
import os, socket, subprocess, sys
how, holder_exe, holder_script, unix_path = sys.argv[1:5]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", 0))
s.listen()
child = None
if how == "fork":
    child = subprocess.Popen([holder_exe, holder_script, "fd", str(s.fileno())],
                             pass_fds=[s.fileno()], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    child.stdout.readline()
elif how == "unix":
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(unix_path)
    server.listen()
    print("ready", flush=True)
    conn, _ = server.accept()
    socket.send_fds(conn, [b"x"], [s.fileno()])
print(s.getsockname()[1], flush=True)
sys.stdin.read()
if child is not None:
    child.stdin.close()
    child.wait()
"""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Processes:
    """Started processes, all stopped at the end of the test."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def start(self, argv: list[str]) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env()
        )
        self.started.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                assert proc.stdin is not None
                proc.stdin.close()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None and not stream.closed:
                    stream.close()


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    yield procs
    procs.stop()


@pytest.fixture
def trusted(tmp_path: Path) -> tuple[Path, Path]:
    """The trusted program: an interpreter copy with its own hash, and its script."""
    exe = python_copy(tmp_path / "trusted" / "portd", extra=b"\0portd shared")
    script = tmp_path / "trusted" / "holder.py"
    script.write_text(HOLDER_SCRIPT)
    return exe, script


def trust_for(port: int, exe: Path, script: Path) -> TrustList:
    # "portd" is not an interpreter's name, so its identity is the file alone.
    del script
    entry = TrustEntry(
        spec=WatchSpec(port, port, (Proto.TCP,)),
        exe=str(exe),
        sha256=_sha(exe),
    )
    return TrustList((entry,))


PROBES: dict[str, Callable[[], Probe]] = {"psutil": PsutilProbe, "netlink": NetlinkProbe}


@pytest.fixture(params=sorted(PROBES))
def probe(request: pytest.FixtureRequest) -> Iterator[Probe]:
    made = PROBES[request.param]()
    yield made
    made.close()


def listeners_on(sample: Sample, port: int) -> list[Listener]:
    return [item for item in sample.listeners if item.port == port]


def held_by(pids: set[int], port: int) -> Callable[[Sample], bool]:
    """Every pid in ``pids`` is seen holding the port's socket."""

    def seen(sample: Sample) -> bool:
        found = {
            holder.pid
            for item in listeners_on(sample, port)
            for holder in item.holders
            if holder is not None
        }
        return pids <= found

    return seen


def _children(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return {int(p) for p in handle.read().split()}
    except OSError:
        return set()


def test_socket_inherited_by_a_trusted_child_is_not_known(
    probe: Probe, processes: Processes, trusted: tuple[Path, Path]
) -> None:
    exe, script = trusted
    binder = processes.start([REAL_PYTHON, "-c", BINDER_CODE, "fork", str(exe), str(script), "-"])
    assert binder.stdout is not None
    port = int(binder.stdout.readline())
    child_pids = _children(binder.pid)
    assert len(child_pids) == 1
    sample = wait_for(probe, watch(port), held_by({binder.pid, *child_pids}, port))
    judge = TrustJudge(trust_for(port, exe, script))
    for listener in listeners_on(sample, port):
        verdict = judge.judge(listener)
        assert verdict.status is Status.UNKNOWN, verdict.reason
        if listener.owner is not None and listener.owner.pid != binder.pid:
            # The trusted child is reported as the owner: the untrusted parent is named.
            assert f"(pid {binder.pid})" in (verdict.reason or "")


def test_trusted_child_alone_is_known(
    probe: Probe, processes: Processes, trusted: tuple[Path, Path]
) -> None:
    """The control: the same trusted program holding its own socket is known."""
    exe, script = trusted
    holder = processes.start([str(exe), str(script), "bind", "0"])
    assert holder.stdout is not None
    port = int(holder.stdout.readline())
    sample = wait_for(probe, watch(port), held_by({holder.pid}, port))
    (listener,) = listeners_on(sample, port)
    assert listener.shared_with == ()
    verdict = TrustJudge(trust_for(port, exe, script)).judge(listener)
    assert verdict.status is Status.KNOWN, verdict.reason


def test_descriptor_passed_to_a_running_trusted_program_is_not_known(
    probe: Probe, processes: Processes, trusted: tuple[Path, Path], tmp_path: Path
) -> None:
    exe, script = trusted
    unix_path = str(tmp_path / "pass.sock")
    binder = processes.start([REAL_PYTHON, "-c", BINDER_CODE, "unix", "-", "-", unix_path])
    assert binder.stdout is not None
    assert binder.stdout.readline().strip() == "ready"
    # The trusted program starts after the binder, so it has the higher pid: the one
    # psutil and the old resolver reported the socket under.
    receiver = processes.start([str(exe), str(script), "unix", unix_path])
    assert receiver.stdout is not None
    port = int(receiver.stdout.readline())
    assert int(binder.stdout.readline()) == port
    sample = wait_for(probe, watch(port), held_by({binder.pid, receiver.pid}, port))
    judge = TrustJudge(trust_for(port, exe, script))
    verdicts = [judge.judge(item) for item in listeners_on(sample, port)]
    assert verdicts and all(v.status is Status.UNKNOWN for v in verdicts), verdicts
    assert any(f"(pid {binder.pid})" in (v.reason or "") for v in verdicts) or all(
        item.owner is not None and item.owner.pid == binder.pid
        for item in listeners_on(sample, port)
    )


def test_reuseport_group_with_an_untrusted_member_is_not_known(
    probe: Probe, processes: Processes, trusted: tuple[Path, Path]
) -> None:
    exe, script = trusted
    first = processes.start([str(exe), str(script), "bind", "0"])
    assert first.stdout is not None
    port = int(first.stdout.readline())
    joiner = processes.start([REAL_PYTHON, str(script), "bind", str(port)])
    assert joiner.stdout is not None
    assert int(joiner.stdout.readline()) == port
    sample = wait_for(probe, watch(port), held_by({first.pid, joiner.pid}, port))
    judge = TrustJudge(trust_for(port, exe, script))
    rows = listeners_on(sample, port)
    assert len(rows) == 2
    for listener in rows:
        verdict = judge.judge(listener)
        assert verdict.status is Status.UNKNOWN, (listener.owner, verdict.reason)
    trusted_row = next(r for r in rows if r.owner is not None and r.owner.pid == first.pid)
    assert f"(pid {joiner.pid})" in (judge.judge(trusted_row).reason or "")


def test_monitor_alert_names_the_untrusted_holder(
    processes: Processes, trusted: tuple[Path, Path]
) -> None:
    exe, script = trusted
    binder = processes.start([REAL_PYTHON, "-c", BINDER_CODE, "fork", str(exe), str(script), "-"])
    assert binder.stdout is not None
    port = int(binder.stdout.readline())
    (child_pid,) = _children(binder.pid)
    probe = PsutilProbe()
    wait_for(probe, watch(port), held_by({binder.pid, child_pid}, port))
    monitor = Monitor(
        probe,
        None,
        watch(port),
        judge=TrustJudge(trust_for(port, exe, script)),
        alert_policy=RateLimitedPolicy(),
    )
    result = monitor.tick()
    alerting = [e for e in result.events if e.kind is EventKind.UNKNOWN_OWNER]
    assert alerting, result.events
    texts = " ".join(alert.text for alert in result.alerts)
    assert str(binder.pid) in texts, texts
    assert os.path.basename(REAL_PYTHON) in texts
