"""A process's identity is what it runs, read once per process instance and kept.

Real interpreter processes: exec() of the same interpreter with another script, a
chdir or a re-pointed symlink after start, a process in another mount namespace, an
executable really named ``x (deleted)``, and an edited trusted script.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from trust_processes import python_copy, wait_for, watch

from portwatch.core.trust import TrustEntry, TrustJudge, TrustList
from portwatch.core.types import EventKind, Listener, Proto, Sample, Status
from portwatch.core.watchlist import WatchSpec
from portwatch.engine.monitor import Monitor
from portwatch.probe.identity import OwnerReader
from portwatch.probe.psutil_probe import PsutilProbe

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")

# Binds, prints its port, then obeys one command per stdin line: "exec PATH" replaces
# the program (same pid, same start time) keeping the socket; "cd DIR" changes folder;
# "ok" is printed after each command.
SERVER = """
import os, socket, sys
if len(sys.argv) > 1 and sys.argv[1].isdigit():
    s = socket.socket(fileno=int(sys.argv[1]))
else:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
print(s.getsockname()[1], flush=True)
for line in sys.stdin:
    command, _, arg = line.strip().partition(" ")
    if command == "exec":
        os.set_inheritable(s.fileno(), True)
        os.execv(sys.executable, [sys.executable, arg, str(s.fileno())])
    if command == "cd":
        os.chdir(arg)
    print("ok", flush=True)
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Server:
    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.port = int(self.readline())

    def readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the server exited"
        return line

    def command(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def python3(tmp_path: Path) -> Path:
    """An interpreter copy with an interpreter's name, so its script is its identity."""
    return python_copy(tmp_path / "bin" / "python3", extra=b"\0identity tests")


def script(path: Path, marker: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SERVER + f"# {marker}\n")
    return path


def trust_for(port: int, exe: Path, script_path: Path) -> TrustList:
    entry = TrustEntry(
        spec=WatchSpec(port, port, (Proto.TCP,)),
        exe=str(exe),
        sha256=sha(exe),
        script=str(script_path),
        script_sha256=sha(script_path),
    )
    return TrustList((entry,))


def mine(sample: Sample, server: Server) -> Listener | None:
    return next(
        (
            item
            for item in sample.listeners
            if item.port == server.port and item.owner and item.owner.pid == server.proc.pid
        ),
        None,
    )


def test_exec_of_the_same_interpreter_with_another_script_re_identifies(
    tmp_path: Path, python3: Path, servers: list[Server]
) -> None:
    trusted = script(tmp_path / "srv" / "trusted.py", "trusted")
    other = script(tmp_path / "srv" / "other.py", "other")
    server = Server([str(python3), str(trusted)], tmp_path)
    servers.append(server)
    probe = PsutilProbe()
    monitor = Monitor(
        probe, None, watch(server.port), judge=TrustJudge(trust_for(server.port, python3, trusted))
    )
    first = monitor.tick()
    (view,) = [v for v in first.views if v.listener.port == server.port]
    assert view.status is Status.KNOWN, view.reason
    server.command(f"exec {other}")
    assert int(server.readline()) == server.port  # same socket, same pid, new program

    def re_identified(sample: Sample) -> bool:
        found = mine(sample, server)
        return found is not None and found.owner is not None and found.owner.script == str(other)

    wait_for(probe, watch(server.port), re_identified)
    result = monitor.tick()
    (view,) = [v for v in result.views if v.listener.port == server.port]
    assert view.status is Status.UNKNOWN, view.reason


def test_chdir_after_start_does_not_change_the_script(
    tmp_path: Path, python3: Path, servers: list[Server]
) -> None:
    evil = script(tmp_path / "evil" / "app.py", "evil")
    good = script(tmp_path / "good" / "app.py", "good")
    server = Server([str(python3), "app.py"], evil.parent)
    servers.append(server)
    reader = OwnerReader()
    owner = reader.owner(server.proc.pid)
    assert owner is not None and owner.script == str(evil)
    server.command(f"cd {good.parent}")
    assert server.readline().strip() == "ok"
    # The process is forgotten between polls (its listener gone for one poll), then
    # read again: the script is still the one it started with.
    reader.forget_unused()
    reader.forget_unused()
    again = reader.owner(server.proc.pid)
    assert again is not None
    assert (again.script, again.script_sha256) == (str(evil), sha(evil))


def test_repointed_symlink_does_not_change_the_script(
    tmp_path: Path, python3: Path, servers: list[Server]
) -> None:
    evil = script(tmp_path / "evil.py", "evil")
    good = script(tmp_path / "good.py", "good")
    link = tmp_path / "run.py"
    link.symlink_to(evil)
    server = Server([str(python3), str(link)], tmp_path)
    servers.append(server)
    reader = OwnerReader()
    owner = reader.owner(server.proc.pid)
    assert owner is not None and owner.script == str(evil)
    link.unlink()
    link.symlink_to(good)
    reader.forget_unused()
    reader.forget_unused()
    again = reader.owner(server.proc.pid)
    assert again is not None
    assert (again.script, again.script_sha256) == (str(evil), sha(evil))


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"
)
def test_process_in_another_mount_namespace_is_hashed_through_its_root(
    tmp_path: Path, python3: Path, servers: list[Server]
) -> None:
    host_dir = tmp_path / "app"
    inside_dir = tmp_path / "container-app"
    trusted = script(host_dir / "server.py", "trusted on the host")
    script(inside_dir / "server.py", "what the container really runs")
    # Inside its own mount namespace the same path holds other contents.
    server = Server(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f'mount --bind "{inside_dir}" "{host_dir}" && exec "{python3}" "{trusted}"',
        ],
        tmp_path,
    )
    servers.append(server)
    probe = PsutilProbe()
    sample = wait_for(probe, watch(server.port), lambda s: mine(s, server) is not None)
    found = mine(sample, server)
    assert found is not None and found.owner is not None
    assert found.owner.script == str(trusted)
    assert found.owner.script_sha256 == sha(inside_dir / "server.py")
    verdict = TrustJudge(trust_for(server.port, python3, trusted)).judge(found)
    assert verdict.status is Status.UNKNOWN, verdict.reason


def test_an_executable_really_named_deleted_is_not_a_deleted_file(
    tmp_path: Path, servers: list[Server]
) -> None:
    exe = python_copy(tmp_path / "bin" / "x (deleted)")
    server = Server([str(exe), "-c", SERVER], tmp_path)
    servers.append(server)
    owner = OwnerReader().owner(server.proc.pid)
    assert owner is not None
    assert owner.exe == str(exe)
    assert owner.note is None


def test_a_really_deleted_executable_is_noted(tmp_path: Path, servers: list[Server]) -> None:
    exe = python_copy(tmp_path / "bin" / "gone")
    server = Server([str(exe), "-c", SERVER], tmp_path)
    servers.append(server)
    exe.unlink()
    owner = OwnerReader().owner(server.proc.pid)
    assert owner is not None
    assert owner.exe == str(exe)
    assert owner.note is not None and "deleted" in owner.note


def test_binary_changed_for_an_edited_script_reports_the_script_hash(
    tmp_path: Path, python3: Path, servers: list[Server]
) -> None:
    app = script(tmp_path / "srv" / "app.py", "version 1")
    trusted_sha = sha(app)
    server = Server([str(python3), str(app)], tmp_path)
    servers.append(server)
    trust_list = trust_for(server.port, python3, app)
    assert trust_list.entries[0].script_sha256 == trusted_sha
    app.write_text(app.read_text() + "# version 2\n")
    new_sha = sha(app)
    monitor = Monitor(PsutilProbe(), None, watch(server.port), judge=TrustJudge(trust_list))
    result = monitor.tick()
    changed = [e for e in result.events if e.kind is EventKind.BINARY_CHANGED]
    assert changed, result.events
    detail = changed[0].detail or ""
    assert new_sha in detail and trusted_sha in detail
    assert sha(python3) not in detail


def test_absolute_symlinks_resolve_inside_the_process_root(tmp_path: Path) -> None:
    from portwatch.probe.procfs import resolve_in_root

    root = tmp_path / "root"
    (root / "srv").mkdir(parents=True)
    (root / "opt").mkdir()
    (root / "opt" / "real.py").write_text("x = 1\n")
    (root / "srv" / "app.py").symlink_to("/opt/real.py")  # absolute: means root/opt
    (root / "srv" / "up.py").symlink_to("../opt/real.py")
    (root / "srv" / "loop").symlink_to("loop")
    assert resolve_in_root(str(root), "/srv/app.py") == "/opt/real.py"
    assert resolve_in_root(str(root), "/srv/../srv/up.py") == "/opt/real.py"
    assert resolve_in_root(str(root), "/srv/missing/x.py") == "/srv/missing/x.py"
    assert resolve_in_root(str(root), "/srv/loop") is None
    assert resolve_in_root(str(root), "relative.py") is None


@pytest.mark.parametrize(
    ("path", "absolute"),
    [
        ("/srv/app.py", True),
        ("C:\\app\\x.py", True),
        ("c:/app/x.py", True),
        ("\\\\server\\share\\x.py", True),
        ("\\app\\x.py", False),  # relative to the current drive
        ("app.py", False),
        ("C:app.py", False),
        ("-m http.server", False),
        ("", False),
    ],
)
def test_one_absolute_path_rule(path: str, absolute: bool) -> None:
    from portwatch.core.identity import is_absolute_path, script_is_file
    from portwatch.probe.interpreter import script_of

    assert is_absolute_path(path) is absolute
    assert script_is_file(path) is absolute
    if path and not path.startswith("-"):
        ref = script_of("/usr/bin/python3", ["python3", path], None)
        assert ref is not None
        assert (ref.path is not None) is absolute
