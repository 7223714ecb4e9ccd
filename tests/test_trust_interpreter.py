"""Which script an interpreter runs, from its argv: path or module, never the whole line."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from platforms import needs_posix

from portwatch.core.identity import HIDDEN_SCRIPT
from portwatch.probe.identity import FileHasher
from portwatch.probe.interpreter import ScriptReader, interpreter_family, script_of

CWD = "/srv/app"


@pytest.mark.parametrize(
    ("exe", "family"),
    [
        ("/usr/bin/python3.12", "python"),
        ("/usr/bin/python3", "python"),
        ("C:\\Python312\\python.exe", "python"),
        ("C:\\Python312\\pythonw.exe", "python"),
        ("/usr/bin/pypy3", "python"),
        ("/usr/local/bin/node", "node"),
        ("/usr/bin/nodejs", "node"),
        ("/usr/lib/jvm/bin/java", "java"),
        ("/usr/bin/ruby3.1", "ruby"),
        ("/usr/bin/perl5.36.0", "perl"),
        ("/usr/bin/php8.2", "php"),
        ("/bin/bash", "shell"),
        ("/bin/dash", "shell"),
        ("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "powershell"),
        ("/usr/bin/pwsh", "pwsh"),
        ("/home/u/.deno/bin/deno", "deno"),
        ("/home/u/.bun/bin/bun", "bun"),
        ("/usr/sbin/sshd", None),
        ("/usr/bin/python-evil-helper", None),
        ("/opt/app/server", None),
    ],
)
def test_interpreter_family(exe: str, family: str | None) -> None:
    assert interpreter_family(exe) == family


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@pytest.mark.parametrize(
    ("exe", "argv", "script"),
    [
        ("/usr/bin/python3", ["python3", "app.py", "--password", "hunter2"], f"{CWD}/app.py"),
        ("/usr/bin/python3", ["python3", "/opt/x/run.py"], "/opt/x/run.py"),
        ("/usr/bin/python3", ["python3", "-u", "-W", "ignore", "srv.py"], f"{CWD}/srv.py"),
        ("/usr/bin/python3", ["python3", "-Wignore", "-X", "dev", "srv.py"], f"{CWD}/srv.py"),
        ("/usr/bin/python3", ["python3", "-m", "http.server", "3653"], "-m http.server"),
        ("/usr/bin/python3", ["python3", "-Bm", "http.server"], "-m http.server"),
        ("/usr/bin/python3", ["python3", "-mhttp.server"], "-m http.server"),
        ("/usr/bin/python3", ["python3", "-c", "print(1)", "secret"], "-c"),
        ("/usr/bin/python3", ["python3", "-"], "-"),
        ("/usr/bin/python3", ["python3", "--", "../x.py"], "/srv/x.py"),
        # No script: the program comes from standard input (or a person at a REPL).
        ("/usr/bin/python3", ["python3"], "-"),
        ("/usr/bin/python3", ["python3", "-i"], "-"),
        (
            "/usr/bin/node",
            ["node", "--inspect", "-r", "dotenv/config", "server.js"],
            f"{CWD}/server.js",
        ),
        (
            "/usr/bin/node",
            ["node", "--max-old-space-size=4096", "dist/main.js"],
            f"{CWD}/dist/main.js",
        ),
        ("/usr/bin/node", ["node", "-e", "require('http')"], "-c"),
        ("/usr/bin/deno", ["deno", "run", "--allow-net", "main.ts"], f"{CWD}/main.ts"),
        ("/usr/bin/bun", ["bun", "run", "index.ts"], f"{CWD}/index.ts"),
        ("/usr/bin/bun", ["bun", "index.ts"], f"{CWD}/index.ts"),
        ("/usr/bin/java", ["java", "-Xmx1g", "-jar", "app.jar", "--pw=x"], f"{CWD}/app.jar"),
        ("/usr/bin/java", ["java", "-cp", "lib/*", "com.example.Main"], "class com.example.Main"),
        ("/usr/bin/java", ["java", "-m", "com.app/com.app.Main"], "-m com.app"),
        ("/usr/bin/ruby", ["ruby", "-I", "lib", "bin/server"], f"{CWD}/bin/server"),
        ("/usr/bin/ruby", ["ruby", "-e", "puts 1"], "-c"),
        ("/usr/bin/perl", ["perl", "-w", "daemon.pl"], f"{CWD}/daemon.pl"),
        ("/usr/bin/php", ["php", "-S", "127.0.0.1:3653", "router.php"], f"{CWD}/router.php"),
        ("/usr/bin/php", ["php", "-S", "127.0.0.1:3653", "-t", "public"], f"{CWD}/public"),
        ("/usr/bin/php", ["php", "-f", "worker.php"], f"{CWD}/worker.php"),
        ("/bin/bash", ["bash", "-x", "start.sh"], f"{CWD}/start.sh"),
        ("/bin/bash", ["bash", "-o", "pipefail", "start.sh"], f"{CWD}/start.sh"),
        ("/bin/sh", ["sh", "-c", "nc -l 3653", "sh"], "-c"),
        ("/usr/bin/pwsh", ["pwsh", "-NoProfile", "-File", "C:\\s\\serve.ps1"], "C:\\s\\serve.ps1"),
        ("/usr/bin/pwsh", ["pwsh", "-ExecutionPolicy", "Bypass", "/s/serve.ps1"], "/s/serve.ps1"),
        ("powershell.exe", ["powershell", "-NoProfile", "-Command", "Start-X"], "-c"),
        ("powershell.exe", ["powershell", "-enc", "SQBFAFgA"], "-c"),
        ("/usr/sbin/sshd", ["sshd", "-D", "script.py"], None),
    ],
)
@needs_posix  # the expected paths are POSIX paths
def test_script_of(exe: str, argv: list[str], script: str | None) -> None:
    ref = script_of(exe, argv, CWD)
    assert (ref.script if ref else None) == script


def test_whole_command_line_is_never_kept() -> None:
    argv = ["python3", "-c", "connect(password='hunter2')", "--token", "abc"]
    ref = script_of("/usr/bin/python3", argv, CWD)
    assert ref is not None
    assert "hunter2" not in repr(ref)
    assert "abc" not in repr(ref)
    assert ref.inline_sha256 == code_hash("connect(password='hunter2')")


def test_relative_script_without_cwd_is_left_unresolved() -> None:
    ref = script_of("/usr/bin/python3", ["python3", "app.py"], None)
    assert ref is not None
    assert ref.script == "app.py"
    assert ref.path is None


@needs_posix  # symbolic links need a privilege on Windows
def test_symlinked_script_resolves_to_the_real_file(tmp_path: Path) -> None:
    real = tmp_path / "real.py"
    real.write_text("print(1)\n")
    link = tmp_path / "link.py"
    link.symlink_to(real)
    ref = script_of("/usr/bin/python3", ["python3", "link.py"], str(tmp_path))
    assert ref is not None
    assert ref.script == str(real)
    assert ref.path == str(real)


class FakeProc:
    """The two psutil.Process methods the reader uses, answering or refusing."""

    def __init__(self, cmdline: Any, cwd: Any) -> None:
        self._cmdline = cmdline
        self._cwd = cwd

    def cmdline(self) -> list[str]:
        if isinstance(self._cmdline, Exception):
            raise self._cmdline
        return list(self._cmdline)

    def cwd(self) -> str:
        if isinstance(self._cwd, Exception):
            raise self._cwd
        return str(self._cwd)


def test_script_reader_hashes_the_script_through_the_cache(tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_bytes(b"print('serve')\n")
    hasher = FileHasher()
    reader = ScriptReader(hasher, via_proc=False)
    proc = FakeProc(["python3", "serve.py"], tmp_path)
    first = reader(proc, "/usr/bin/python3")
    assert first == (str(script), hashlib.sha256(script.read_bytes()).hexdigest())
    assert reader(proc, "/usr/bin/python3") == first
    assert hasher.hashed == 1  # the second read came from the cache
    assert reader(proc, "/usr/sbin/sshd") == (None, None)
    assert reader(FakeProc(["python3"], tmp_path), "/usr/bin/python3") == ("-", None)


def test_script_reader_when_the_os_hides_details(tmp_path: Path) -> None:
    reader = ScriptReader(FileHasher(), via_proc=False)
    denied = psutil.AccessDenied(pid=1)
    # No command line: the program is not known (never the bare interpreter).
    assert reader(FakeProc(denied, tmp_path), "/usr/bin/python3") == (HIDDEN_SCRIPT, None)
    # No working folder: an absolute script is still found, a relative one stays as given.
    (tmp_path / "a.py").write_text("x = 1\n")
    abs_result = reader(FakeProc(["python3", str(tmp_path / "a.py")], denied), "/usr/bin/python3")
    assert abs_result[0] == str(tmp_path / "a.py")
    assert abs_result[1] is not None
    assert reader(FakeProc(["python3", "a.py"], denied), "/usr/bin/python3") == ("a.py", None)
    # A script that is gone or unreadable: the path without a hash.
    gone = str(tmp_path / "gone.py")
    assert reader(FakeProc(["python3", gone], tmp_path), "/usr/bin/python3") == (gone, None)


def test_script_reader_ps_stand_in_is_used_for_errors() -> None:
    class Denied(Exception):
        pass

    reader = ScriptReader(FileHasher(), ps=SimpleNamespace(AccessDenied=Denied), via_proc=False)
    assert reader(FakeProc(Denied(), os.getcwd()), "/usr/bin/node") == (HIDDEN_SCRIPT, None)
