"""The script an interpreter runs: part of the identity of python, node, java, … processes.

``python a.py`` and ``python b.py`` run the same executable but are different
programs, so for interpreters the script (or module) is part of what is trusted.
Only the script's path or module name is kept, never the whole command line, which
can carry passwords. Inline code (``python -c CODE``, ``node -e CODE``) is kept as
``-c`` plus the SHA-256 of the code, so two different snippets are still told apart
without storing their text.
"""

from __future__ import annotations

import hashlib
import ntpath
import os
import re
import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psutil

from portwatch.core.identity import HIDDEN_SCRIPT, STDIN_SCRIPT, is_absolute_path
from portwatch.core.text import clean
from portwatch.probe import procfs, service_hosts

_HOST_CACHE = 256
INLINE = "-c"
STDIN = STDIN_SCRIPT

# Interpreter families, keyed by executable name without version digits or ".exe".
_FAMILY = {
    "python": "python",
    "pythonw": "python",
    "pypy": "python",
    "node": "node",
    "nodejs": "node",
    "deno": "deno",
    "bun": "bun",
    "java": "java",
    "javaw": "java",
    "ruby": "ruby",
    "perl": "perl",
    "php": "php",
    "php-cgi": "php",
    "bash": "shell",
    "sh": "shell",
    "dash": "shell",
    "zsh": "shell",
    "ksh": "shell",
    "mksh": "shell",
    "fish": "shell",
    "busybox": "shell",
    "powershell": "powershell",
    "pwsh": "pwsh",
    "lua": "lua",
    "luajit": "lua",
    "rscript": "lua",  # same surface: -e CODE, then the script
    "tclsh": "tcl",
    "wish": "tcl",
    "osascript": "osascript",
    "cscript": "wsh",
    "wscript": "wsh",
}

# Process instances whose script resolution is kept (one small tuple each).
_MAX_RESOLVED = 4096

_VERSION_SUFFIX = re.compile(r"[-_]?[\d.]+[a-z]?$")


@dataclass(frozen=True)
class ScriptRef:
    """What an interpreter runs.

    ``script`` is an absolute path, ``-m NAME`` for a module, ``class NAME`` for a Java
    main class, ``-c`` for inline code or ``-`` for standard input. ``path`` is the
    file to hash (when there is one); ``inline_sha256`` the hash of inline code.
    """

    script: str
    path: str | None = None
    inline_sha256: str | None = None
    # A script file's path exactly as the command line gives it (not yet resolved).
    written: str | None = None


def interpreter_family(exe_or_name: str) -> str | None:
    """``python`` for ``/usr/bin/python3.12``, ``node`` for ``node.exe``; None otherwise."""
    base = ntpath.basename(exe_or_name.replace("\\", "/").rsplit("/", 1)[-1]).lower()
    if base.endswith(".exe"):
        base = base[:-4]
    if base in _FAMILY:
        return _FAMILY[base]
    stripped = _VERSION_SUFFIX.sub("", base)
    return _FAMILY.get(stripped)


def script_of(exe: str, argv: Sequence[str], cwd: str | None) -> ScriptRef | None:
    """The script or module the interpreter ``exe`` runs with ``argv`` in ``cwd``.

    Returns None when ``exe`` is not an interpreter; ``-`` when it names no script
    (the interpreter then reads its program from standard input, or is a REPL).
    Relative paths are made absolute against ``cwd``; with no ``cwd`` they are kept
    as given (and will not match a trusted absolute path). Paths are resolved on this
    machine's file system; :class:`ScriptReader` resolves them as the process sees
    them instead, where ``/proc`` allows.
    """
    ref = script_argument(exe, argv)
    if ref is None or ref.written is None:
        return ref
    return _file_ref(ref.written, cwd)


def script_argument(exe: str, argv: Sequence[str]) -> ScriptRef | None:
    """What ``argv`` asks the interpreter ``exe`` to run, before any path is resolved:
    a script file comes back with ``written`` set to the path as given."""
    family = interpreter_family(exe)
    if family is None or not argv:
        return None
    args = list(argv[1:])
    parser = _PARSERS.get(family, _parse_generic)
    found = parser(args)
    if found is None:
        # No script, module or code given: the interpreter reads its program from
        # standard input (``python3 < file``), which nothing on disk pins.
        return ScriptRef(STDIN)
    kind, value = found
    if kind == "inline":
        return ScriptRef(INLINE, inline_sha256=_sha256_text(value))
    if kind == "stdin":
        return ScriptRef(STDIN)
    if kind == "module":
        return ScriptRef(f"-m {value}")
    if kind == "class":
        return ScriptRef(f"class {value}")
    return ScriptRef(value, written=value)


def _file_ref(value: str, cwd: str | None) -> ScriptRef:
    if is_absolute_path(value):
        path = value
    elif cwd:
        path = os.path.join(cwd, value)
    else:
        return ScriptRef(value)
    resolved = os.path.realpath(path) if os.path.exists(path) else os.path.normpath(path)
    return ScriptRef(resolved, path=resolved)


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogateescape")).hexdigest()


Found = tuple[str, str] | None


def _parse_options(
    args: list[str],
    *,
    inline: frozenset[str] = frozenset(),
    module: frozenset[str] = frozenset(),
    file_opts: frozenset[str] = frozenset(),
    valued: frozenset[str] = frozenset(),
    short_clusters: bool = False,
    plus_valued: frozenset[str] = frozenset(),
) -> Found:
    """A small getopt: find inline code, a module, a file option, or the first positional."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return ("file", args[i + 1]) if i + 1 < len(args) else None
        if arg == "-":
            return ("stdin", "")
        if arg in plus_valued:
            i += 2
            continue
        if not arg.startswith("-") or arg == "-":
            return ("file", arg)
        name, eq, attached = arg.partition("=")
        if arg.startswith("--") or not short_clusters:
            value = attached if eq else (args[i + 1] if i + 1 < len(args) else None)
            step = 1 if eq else 2
            if name in inline:
                return ("inline", value) if value is not None else None
            if name in module:
                return ("module", value) if value is not None else None
            if name in file_opts:
                return ("file", value) if value is not None else None
            i += step if name in valued else 1
            continue
        # A cluster of short flags such as -Bc or -uW ignore: the first flag that takes a
        # value consumes the rest of the cluster or the next argument.
        consumed_next = False
        for pos in range(1, len(arg)):
            flag = "-" + arg[pos]
            if flag in inline or flag in module or flag in file_opts or flag in valued:
                rest = arg[pos + 1 :]
                value = rest if rest else (args[i + 1] if i + 1 < len(args) else None)
                consumed_next = not rest
                if flag in inline:
                    return ("inline", value) if value is not None else None
                if flag in module:
                    return ("module", value) if value is not None else None
                if flag in file_opts:
                    return ("file", value) if value is not None else None
                break
        i += 2 if consumed_next else 1
    return None


def _parse_python(args: list[str]) -> Found:
    return _parse_options(
        args,
        inline=frozenset({"-c"}),
        module=frozenset({"-m"}),
        valued=frozenset({"-W", "-X", "-Q", "--check-hash-based-pycs"}),
        short_clusters=True,
    )


def _parse_node(args: list[str]) -> Found:
    return _parse_options(
        args,
        inline=frozenset({"-e", "--eval", "-p", "--print"}),
        valued=frozenset(
            {
                "-r",
                "--require",
                "--import",
                "--loader",
                "--experimental-loader",
                "--input-type",
                "--title",
                "-C",
                "--conditions",
                "--env-file",
                "--inspect-port",
                "--stack-size",
                "--max-old-space-size",
            }
        ),
    )


def _parse_deno_bun(args: list[str]) -> Found:
    # `deno run [flags] main.ts`, `deno eval CODE`, `bun run app.ts`, `bun app.ts`.
    if args and args[0] in ("eval", "-e", "--eval"):
        return ("inline", " ".join(args[1:])) if len(args) > 1 else None
    if args and args[0] in ("run", "serve", "start", "test", "x", "task"):
        args = args[1:]
    return _parse_options(
        args,
        inline=frozenset({"-e", "--eval", "-p", "--print"}),
        valued=frozenset({"--config", "-c", "--import-map", "--cwd", "--env-file", "--port"}),
    )


def _parse_java(args: list[str]) -> Found:
    i = 0
    valued = {
        "-cp",
        "-classpath",
        "--class-path",
        "-p",
        "--module-path",
        "--add-modules",
        "--add-opens",
        "--add-exports",
        "--add-reads",
        "--upgrade-module-path",
        "--limit-modules",
        "--patch-module",
    }
    while i < len(args):
        arg = args[i]
        if arg == "-jar":
            return ("file", args[i + 1]) if i + 1 < len(args) else None
        if arg in ("-m", "--module"):
            return ("module", args[i + 1].split("/", 1)[0]) if i + 1 < len(args) else None
        if arg.startswith("--module="):
            return ("module", arg.split("=", 1)[1].split("/", 1)[0])
        if arg in valued:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        # `java Main.java` runs a source file; `java com.example.Main` a class.
        if arg.endswith(".java"):
            return ("file", arg)
        return ("class", arg)
    return None


def _parse_ruby(args: list[str]) -> Found:
    return _parse_options(
        args,
        inline=frozenset({"-e"}),
        valued=frozenset({"-I", "-r", "-C", "-E"}),
        short_clusters=True,
    )


def _parse_perl(args: list[str]) -> Found:
    return _parse_options(
        args,
        inline=frozenset({"-e", "-E"}),
        valued=frozenset({"-I"}),
        short_clusters=True,
    )


def _parse_php(args: list[str]) -> Found:
    found = _parse_options(
        args,
        inline=frozenset({"-r"}),
        file_opts=frozenset({"-f"}),
        valued=frozenset({"-c", "-d", "-z", "-t", "-S"}),
        short_clusters=True,
    )
    if found is None and "-S" in args and "-t" in args[:-1]:
        # The built-in web server with no router script: its document root is the program.
        return ("file", args[args.index("-t") + 1])
    return found


def _parse_shell(args: list[str]) -> Found:
    return _parse_options(
        args,
        inline=frozenset({"-c"}),
        valued=frozenset({"-o", "-O", "--rcfile", "--init-file"}),
        plus_valued=frozenset({"+o", "+O"}),
        short_clusters=True,
    )


_PS_VALUED = {
    "-executionpolicy",
    "-ep",
    "-ex",
    "-windowstyle",
    "-w",
    "-configurationname",
    "-config",
    "-workingdirectory",
    "-wd",
    "-outputformat",
    "-o",
    "-of",
    "-inputformat",
    "-if",
    "-in",
    "-version",
    "-v",
    "-psconsolefile",
    "-custompipename",
    "-settingsfile",
    "-settings",
}
_PS_FILE = {"-file", "-f", "-fi", "-fil"}
_PS_COMMAND = {"-command", "-c", "-co", "-com", "-comm", "-comma", "-comman"}
_PS_ENCODED = {"-encodedcommand", "-e", "-ec", "-enc", "-encoded"}


def _parse_powershell(args: list[str], positional_is_file: bool) -> Found:
    # Windows PowerShell also takes /Option; pwsh (also on Unix, where paths start
    # with "/") only -Option.
    prefixes = ("-",) if positional_is_file else ("-", "/")
    i = 0
    while i < len(args):
        arg = args[i]
        low = "-" + arg[1:].lower() if arg[:1] in prefixes else arg
        if low in _PS_FILE:
            return ("file", args[i + 1]) if i + 1 < len(args) else None
        if low in _PS_COMMAND or low in _PS_ENCODED:
            return ("inline", " ".join(args[i + 1 :]))
        if low in _PS_VALUED:
            i += 2
            continue
        if arg[:1] in prefixes:
            i += 1
            continue
        if positional_is_file:
            return ("file", arg)
        return ("inline", " ".join(args[i:]))
    return None


def _parse_wsh(args: list[str]) -> Found:
    for arg in args:
        if not arg.startswith("//"):
            return ("file", arg)
    return None


def _parse_generic(args: list[str]) -> Found:
    return _parse_options(args, inline=frozenset({"-e"}), short_clusters=True)


_PARSERS = {
    "python": _parse_python,
    "node": _parse_node,
    "deno": _parse_deno_bun,
    "bun": _parse_deno_bun,
    "java": _parse_java,
    "ruby": _parse_ruby,
    "perl": _parse_perl,
    "php": _parse_php,
    "shell": _parse_shell,
    "powershell": lambda args: _parse_powershell(args, positional_is_file=False),
    "pwsh": lambda args: _parse_powershell(args, positional_is_file=True),
    "wsh": _parse_wsh,
    "lua": _parse_generic,
    "tcl": _parse_generic,
    "osascript": _parse_generic,
}


class FileHashing(Protocol):
    """What the reader needs from :class:`portwatch.probe.identity.FileHasher`."""

    def hash_path(self, path: str) -> str | None: ...


class ScriptReader:
    """The ``script_of`` seam of :class:`~portwatch.probe.identity.OwnerReader`:
    ``(process, exe) -> (script, script_sha256)``, hashing script files through the
    same cache as executables.

    On Linux (``via_proc``) a script path is resolved as the process sees it: a
    relative path against ``/proc/<pid>/cwd``, symlinks inside ``/proc/<pid>/root``
    (a container's files are not the host's), once per process instance (pid, start
    time and exec), and kept: a later ``chdir`` or a re-pointed symlink does not
    change which file the process is judged by. The file is hashed through its
    root. Elsewhere the process's working folder from ``ps`` is used.

    ``ps`` is the psutil module or a stand-in with the same surface.
    """

    def __init__(self, hasher: FileHashing, ps: Any = psutil, via_proc: bool | None = None) -> None:
        self._hasher = hasher
        self._ps = ps
        self._via_proc = sys.platform.startswith("linux") if via_proc is None else via_proc
        # pid -> ((start time, exec token), (script, file to hash, inline hash)).
        self._resolved: OrderedDict[
            int, tuple[tuple[object, ...], tuple[str | None, str | None, str | None]]
        ] = OrderedDict()
        # (pid, start time) -> what a Windows host process runs: asking the Service Control
        # Manager which services a svchost holds is too slow to repeat every poll.
        self._hosts: dict[tuple[int, float], tuple[str | None, str | None]] = {}

    def __call__(self, proc: Any, exe: str | None) -> tuple[str | None, str | None]:
        kind = service_hosts.host_kind(exe) if exe else None
        if kind is not None:
            return self._hosted(proc, kind)
        if not exe or interpreter_family(exe) is None:
            return None, None
        if self._via_proc:
            script, path, sha = self._resolve_once(proc, exe)
        else:
            script, path, sha = self._resolve_here(proc, exe)
        if path is not None and os.path.isfile(path):
            sha = self._hasher.hash_path(path)
        return clean(script), sha

    def _argv(self, proc: Any) -> list[str] | None:
        try:
            return [a for a in proc.cmdline() if isinstance(a, str)]
        except self._ps.AccessDenied:
            return None

    def _resolve_here(self, proc: Any, exe: str) -> tuple[str | None, str | None, str | None]:
        argv = self._argv(proc)
        if argv is None:
            # Without the command line the program is not known: never fall back to
            # the bare interpreter's identity, which may be trusted.
            return HIDDEN_SCRIPT, None, None
        cwd: str | None
        try:
            cwd = proc.cwd()
        except self._ps.AccessDenied:
            # Only matters for a relative script path, which then stays unresolved.
            cwd = None
        ref = script_of(exe, argv, cwd)
        if ref is None:
            return None, None, None
        return ref.script, ref.path, ref.inline_sha256

    def _resolve_once(self, proc: Any, exe: str) -> tuple[str | None, str | None, str | None]:
        pid = int(proc.pid)
        instance = (proc.create_time(), procfs.exec_token(pid))
        cached = self._resolved.get(pid)
        if cached is not None and cached[0] == instance:
            self._resolved.move_to_end(pid)
            return cached[1]
        argv = self._argv(proc)
        if argv is None:
            return HIDDEN_SCRIPT, None, None  # not cached: it may be readable later
        resolved = self._resolve_in_process(pid, script_argument(exe, argv))
        self._resolved[pid] = (instance, resolved)
        if len(self._resolved) > _MAX_RESOLVED:
            self._resolved.popitem(last=False)
        return resolved

    @staticmethod
    def _resolve_in_process(
        pid: int, ref: ScriptRef | None
    ) -> tuple[str | None, str | None, str | None]:
        if ref is None:
            return None, None, None
        if ref.written is None:
            return ref.script, None, ref.inline_sha256
        written = ref.written
        full: str | None = written
        if not written.startswith("/"):
            cwd = procfs.cwd_of(pid)
            full = f"{cwd.rstrip('/')}/{written}" if cwd else None
        root = procfs.root_of(pid)
        try:
            canonical = (
                procfs.resolve_in_root(root, full, procfs.started_wall(pid)) if full else None
            )
        except procfs.LinkChanged as exc:
            # Seen after the link was re-pointed: the file it names now may not be
            # the one the process opened, so it is not hashed at all.
            return f"{written} (through {exc}, changed after start)", None, None
        if canonical is None or canonical.startswith(("/proc/", "/dev/")):
            # Not resolvable as the process sees it (or a descriptor such as /dev/stdin
            # or /proc/self/fd/N, which names no file on disk, and "self" would be
            # portwatch): kept as written, with no hash, so it never matches.
            return written, None, None
        return canonical, root + canonical, None

    def _hosted(self, proc: Any, kind: str) -> tuple[str | None, str | None]:
        key = (int(proc.pid), float(proc.create_time()))
        cached = self._hosts.get(key)
        if cached is not None:
            return cached
        try:
            argv = [a for a in proc.cmdline() if isinstance(a, str)]
        except self._ps.AccessDenied:
            return HIDDEN_SCRIPT, None
        label, path = service_hosts.hosted(kind, argv, int(proc.pid), self._ps)
        sha = self._hasher.hash_path(path) if path and os.path.isfile(path) else None
        result = (clean(label), sha)
        if len(self._hosts) >= _HOST_CACHE:
            self._hosts.clear()
        self._hosts[key] = result
        return result
