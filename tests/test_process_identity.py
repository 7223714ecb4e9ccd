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
from trust_processes import child_env, python_copy, wait_for, watch

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
            argv,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
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


def _libm() -> str:
    import ctypes.util

    found = ctypes.util.find_library("m")
    for folder in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib"):
        if found and os.path.exists(f"{folder}/{found}"):
            return f"{folder}/{found}"
    pytest.skip("no shared library to preload")


def _started_with(
    argv: list[str], cwd: Path, servers: list[Server], **env: str
) -> tuple[Server, Listener]:
    server = Server.__new__(Server)
    server.proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**child_env(), **env},
    )
    servers.append(server)
    server.port = int(server.readline())
    probe = PsutilProbe()
    sample = wait_for(probe, watch(server.port), lambda s: mine(s, server) is not None)
    found = mine(sample, server)
    assert found is not None and found.owner is not None
    return server, found


@pytest.mark.parametrize(
    "how", ["LD_PRELOAD", "PYTHONPATH", "user-site", "clean", "system-preload"]
)
def test_code_loaded_besides_the_trusted_program_is_never_known(
    tmp_path: Path, python3: Path, servers: list[Server], how: str
) -> None:
    app = script(tmp_path / "srv" / "app.py", "trusted")
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    if how == "LD_PRELOAD":
        # A library anyone could have written (under /tmp), not the system's.
        copy = tmp_path / "lib" / "libm.so.6"
        copy.parent.mkdir()
        shutil.copyfile(_libm(), copy)
        env["LD_PRELOAD"] = str(copy)
    elif how == "system-preload":
        # Only root can change the system's library: the administrator's choice.
        env["LD_PRELOAD"] = _libm()
    elif how == "PYTHONPATH":
        (tmp_path / "evil").mkdir()
        env["PYTHONPATH"] = str(tmp_path / "evil")
    elif how == "user-site":
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        site = home / ".local" / "lib" / version / "site-packages"
        site.mkdir(parents=True)
        (site / "evil.pth").write_text("import os\n")
    server, found = _started_with([str(python3), str(app)], tmp_path, servers, **env)
    assert found.owner is not None
    verdict = TrustJudge(trust_for(server.port, python3, app)).judge(found)
    if how in ("clean", "system-preload"):
        assert found.owner.extra_code is None
        assert verdict.status is Status.KNOWN, verdict.reason
        return
    assert verdict.status is Status.UNKNOWN, verdict.reason
    marker = {"LD_PRELOAD": "LD_PRELOAD=", "PYTHONPATH": "PYTHONPATH=", "user-site": "evil.pth"}
    assert marker[how] in (verdict.reason or "")
    from portwatch.core.trust import TrustError, entry_for_listener

    with pytest.raises(TrustError, match="loads code"):
        entry_for_listener(found, WatchSpec(server.port, server.port, (Proto.TCP,)), 1.0)


def test_code_loading_options_before_the_script_only() -> None:
    from portwatch.probe.extracode import extra_code

    node = extra_code(
        "/usr/bin/node", ["node", "--require", "/tmp/x.js", "app.js", "-r", "mine"], {}
    )
    assert node == "--require /tmp/x.js"
    java = extra_code(
        "/usr/bin/java", ["java", "-javaagent:/tmp/a.jar", "-jar", "/srv/app.jar"], {}
    )
    assert java == "-javaagent:/tmp/a.jar"
    assert extra_code("/usr/bin/node", ["node", "app.js"], {"NODE_OPTIONS": " "}) is None
    assert extra_code("/usr/sbin/sshd", ["sshd", "-D"], {"PYTHONPATH": "/tmp"}) is None
    assert extra_code("/usr/sbin/sshd", ["sshd"], {"LD_AUDIT": "/tmp/a.so"}) == (
        "LD_AUDIT=/tmp/a.so"
    )


@pytest.mark.parametrize("repointed", [True, False])
def test_a_link_repointed_before_the_first_look_is_not_followed(
    tmp_path: Path, python3: Path, servers: list[Server], repointed: bool
) -> None:
    evil = script(tmp_path / "evil.py", "evil")
    good = script(tmp_path / "good.py", "good")
    link = tmp_path / "run.py"
    link.symlink_to(good if not repointed else evil)
    server = Server([str(python3), str(link)], tmp_path)
    servers.append(server)
    if repointed:
        # After the process opened evil.py, and before portwatch ever looked.
        link.unlink()
        link.symlink_to(good)
    owner = OwnerReader().owner(server.proc.pid)
    assert owner is not None
    found = Listener(
        endpoint=next(
            item.endpoint
            for item in PsutilProbe().poll(watch(server.port)).listeners
            if item.port == server.port
        ),
        owner=owner,
    )
    verdict = TrustJudge(trust_for(server.port, python3, good)).judge(found)
    if repointed:
        assert verdict.status is Status.UNKNOWN, verdict.reason
        assert owner.script_sha256 != sha(good)
    else:
        assert verdict.status is Status.KNOWN, verdict.reason


def test_a_module_shadowed_from_the_working_folder_is_not_the_trusted_module(
    tmp_path: Path, python3: Path, servers: list[Server]
) -> None:
    # `python -m NAME` looks in its working folder first: a NAME.py there runs instead
    # of any installed module, so trust in the name does not cover it.
    work = tmp_path / "work"
    script(work / "srvmod.py", "shadow")
    server, found = _started_with([str(python3), "-m", "srvmod"], work, servers)
    assert found.owner is not None and found.owner.script == "-m srvmod"
    entry = TrustEntry(
        spec=WatchSpec(server.port, server.port, (Proto.TCP,)),
        exe=str(python3),
        sha256=sha(python3),
        script="-m srvmod",
    )
    verdict = TrustJudge(TrustList((entry,))).judge(found)
    assert verdict.status is Status.UNKNOWN, verdict.reason
    assert f"module srvmod from {work}" in (verdict.reason or "")


def test_a_script_read_through_a_descriptor_is_not_hashed(
    tmp_path: Path, python3: Path, servers: list[Server]
) -> None:
    app = script(tmp_path / "app.py", "piped")
    with open(app, "rb") as code:
        server = Server.__new__(Server)
        server.proc = subprocess.Popen(
            [str(python3), "/dev/stdin"],
            cwd=tmp_path,
            stdin=code,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        servers.append(server)
        server.port = int(server.readline())
    owner = OwnerReader().owner(server.proc.pid)
    assert owner is not None
    assert owner.script == "/dev/stdin" and owner.script_sha256 is None
    server.proc.kill()
    server.proc.wait()
