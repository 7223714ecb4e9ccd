"""Code a process was told to load besides its own program.

A trusted executable or script says nothing about what else the process runs:
``LD_PRELOAD=/tmp/x.so /usr/sbin/trusted``, ``PYTHONPATH=/tmp/x python3 trusted.py``
(which can shadow any module the script imports), ``node -r /tmp/x.js trusted.js`` or
a ``usercustomize.py`` in the user's site-packages all run other code inside the
trusted program. Such a process is described here, in words for people, and never
judged known (see :mod:`portwatch.core.trust`).

Only what the process started with is read (its command line and its initial
environment through ``/proc/<pid>/environ``): the point is what it was told to load.
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Mapping, Sequence

from portwatch.core.text import clean
from portwatch.files import raise_if_short
from portwatch.probe import procfs
from portwatch.probe.interpreter import interpreter_family, script_argument

# For every program: the dynamic loader's variables.
_LOADER_ENV = ("LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH")
_FAMILY_ENV: dict[str, tuple[str, ...]] = {
    "python": ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE"),
    "node": ("NODE_OPTIONS", "NODE_PATH"),
    "perl": ("PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB"),
    "ruby": ("RUBYOPT", "RUBYLIB"),
    "java": ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH"),
    "shell": ("BASH_ENV", "ENV"),
    "php": ("PHPRC", "PHP_INI_SCAN_DIR"),
}
# Options (before the script) that load code: exact names that take the next argument
# or an attached value, and prefixes of self-contained options.
_FAMILY_OPTIONS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "node": (
        frozenset({"-r", "--require", "--import", "--loader", "--experimental-loader"}),
        ("--require=", "--import=", "--loader=", "--experimental-loader=", "--env-file"),
    ),
    "ruby": (frozenset({"-r", "-I"}), ("-r", "-I")),
    "perl": (frozenset({"-I", "-d"}), ("-I", "-d:")),
    "php": (frozenset({"-c"}), ("-dauto_prepend_file", "-dauto_append_file")),
    "java": (
        frozenset({"--patch-module"}),
        ("-javaagent:", "-agentlib:", "-agentpath:", "-Xbootclasspath", "-Djava.system."),
    ),
}
_MAX_VALUE = 200
# Variables whose value is a list of files or folders. Where every one of them is
# controlled by root alone (a system library folder, a jemalloc preload), the setting is
# the administrator's, not a way for a user to slip code in, so it is not reported.
_PATH_ENV = frozenset(
    {
        "LD_PRELOAD",
        "LD_AUDIT",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "NODE_PATH",
        "PERL5LIB",
        "PERLLIB",
        "RUBYLIB",
        "CLASSPATH",
    }
)
# Every environment variable looked at, for tools and tests that start clean children.
CODE_LOADING_ENV = frozenset(_LOADER_ENV).union(*_FAMILY_ENV.values())


def _shown(value: str) -> str:
    text = clean(value) or ""
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE] + "…"


def extra_code(
    exe: str,
    argv: Sequence[str] | None,
    environ: Mapping[str, str],
    root: str = "",
    cwd: str | None = None,
) -> str | None:
    """What else the process was told to load, or None.

    ``root`` is where the process's files are seen from (``/proc/<pid>/root``) and
    ``cwd`` its working folder inside it, for the Python checks (user site-packages,
    a module shadowed from the working folder).
    """
    found: list[str] = []
    family = interpreter_family(exe)
    for name in (*_LOADER_ENV, *_FAMILY_ENV.get(family or "", ())):
        value = environ.get(name, "")
        if value.strip() and not (name in _PATH_ENV and _only_system_paths(value, root)):
            found.append(f"{name}={_shown(value)}")
    if family == "php":
        found.extend(_php_ini_options(argv or ()))
    if family is not None and argv:
        found.extend(_options(family, exe, argv))
    if family == "python" and argv and not _python_skips_user_site(argv, environ):
        found.extend(_python_user_site(environ, root))
    if family == "python" and argv:
        found.extend(_python_shadowed_module(exe, argv, environ, root, cwd))
    return "; ".join(dict.fromkeys(found)) or None


def _only_system_paths(value: str, root: str) -> bool:
    """True when every entry of a path list (``:``, or spaces for LD_PRELOAD) is an
    absolute path that only root can change: it and every folder above it owned by
    root and not writable by group or others."""
    entries = [item for item in value.replace(" ", ":").split(":") if item]
    if not entries:
        return False
    for entry in entries:
        canonical = procfs.resolve_in_root(root, entry) if entry.startswith("/") else None
        if canonical is None:
            return False
        parts = [p for p in canonical.split("/") if p]
        for depth in range(len(parts), -1, -1):
            here = root + "/" + "/".join(parts[:depth])
            try:
                info = os.stat(here)
            except OSError:
                return False
            if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return False
    return True


def _script_index(exe: str, argv: Sequence[str]) -> int:
    """Where the script (or inline code or module) starts: options before it are the
    interpreter's, arguments after it the script's own."""
    ref = script_argument(exe, argv)
    args = list(argv[1:])
    if ref is not None and ref.written is not None and ref.written in args:
        return args.index(ref.written)
    return len(args)


def _options(family: str, exe: str, argv: Sequence[str]) -> list[str]:
    exact, prefixes = _FAMILY_OPTIONS.get(family, (frozenset(), ()))
    if not exact and not prefixes:
        return []
    args = list(argv[1:])[: _script_index(exe, argv)]
    out: list[str] = []
    for index, arg in enumerate(args):
        if arg in exact:
            value = args[index + 1] if index + 1 < len(args) else ""
            out.append(f"{arg} {_shown(value)}".strip())
        elif arg.startswith(prefixes):
            out.append(_shown(arg))
    return out


def _php_ini_options(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "-d" and index + 1 < len(argv):
            setting = argv[index + 1]
            if setting.startswith(("auto_prepend_file", "auto_append_file")):
                out.append(f"-d {_shown(setting)}")
    return out


def _python_skips_user_site(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    if environ.get("PYTHONNOUSERSITE"):
        return True
    for arg in argv[1:]:
        if not arg.startswith("-") or arg.startswith("--"):
            break
        flags = arg[1:]
        if set(flags) <= set("bBdEhiIOPqsSuvVx") and ("s" in flags or "I" in flags):
            return True
        if arg[1:2] in ("c", "m"):
            break
    return False


def _python_user_site(environ: Mapping[str, str], root: str) -> list[str]:
    """``.pth`` files and ``usercustomize.py`` in the user's site-packages run at every
    interpreter start, inside whatever script it then runs."""
    home = environ.get("HOME", "")
    if not home.startswith("/"):
        return []
    out: list[str] = []
    pattern = f"{glob.escape(root + home)}/.local/lib/python*/site-packages"
    for site in sorted(glob.glob(pattern))[:8]:
        hooks = sorted(glob.glob(glob.escape(site) + "/*.pth"))
        hooks += glob.glob(glob.escape(site) + "/usercustomize.py")
        for hook in hooks[:4]:
            out.append(f"{_shown(hook[len(root) :])} (run at start)")
    return out


def _python_shadowed_module(
    exe: str,
    argv: Sequence[str],
    environ: Mapping[str, str],
    root: str,
    cwd: str | None,
) -> list[str]:
    """For ``python -m NAME``: a module of that name in the working folder (searched
    first) or the user's site-packages is what runs, not the installed one."""
    ref = script_argument(exe, argv)
    if ref is None or not ref.script.startswith("-m "):
        return []
    top = ref.script[3:].split(".", 1)[0]
    if not top or "/" in top:
        return []
    folders: list[str] = []
    if cwd:
        folders.append(cwd)
    home = environ.get("HOME", "")
    if home.startswith("/") and not _python_skips_user_site(argv, environ):
        pattern = f"{glob.escape(root + home)}/.local/lib/python*/site-packages"
        folders.extend(site[len(root) :] for site in sorted(glob.glob(pattern))[:8])
    out: list[str] = []
    for folder in folders:
        base = f"{root}{folder}/{glob.escape(top)}"
        hits = glob.glob(base) + glob.glob(base + ".py") + glob.glob(base + ".*.so")
        if hits:
            out.append(f"module {_shown(top)} from {_shown(folder)}")
    return out


def read_environ(pid: int, proc: str = "/proc") -> dict[str, str]:
    """The environment ``pid`` started with; empty when it cannot be read."""
    try:
        with open(f"{proc}/{pid}/environ", "rb") as handle:
            raw = handle.read(1 << 20)
    except OSError as exc:
        # Read as "no environment", a shortage would hide an LD_PRELOAD.
        raise_if_short(exc)
        return {}
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep and name:
            env[name.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
    return env
