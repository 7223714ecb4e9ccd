"""What a program is, as opposed to what it calls itself.

An identity is the executable's path plus the SHA-256 of the file the process runs,
and for interpreters the script or module they run. A name, a pid or a guessed path
is never part of it: each of those can be chosen by whoever starts the process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portwatch.core.types import Owner

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

# ``Owner.script`` of an interpreter whose command line the OS would not show: the
# program is not fully known, so it has no identity (and can never match the bare
# interpreter's trust entry).
HIDDEN_SCRIPT = "(script hidden)"


# ``Owner.script`` of an interpreter that reads its program from standard input
# (``python3 -``, or no script argument at all, as in ``python3 < file``): nothing on
# disk pins what it runs, so it can never be trusted.
STDIN_SCRIPT = "-"

# Why trust in a module (``-m NAME``) or a Java main class is weaker: only the name is
# compared. The file an interpreter loads for a name depends on that process's search
# path (its working folder comes first for ``python -m``, then PYTHONPATH, .pth files),
# which portwatch cannot reproduce reliably, so a hash of a guessed file would pin
# nothing while looking as if it did.
NAME_ONLY = "by name only: the file the interpreter loads for it is not checked"


def pinned_by_name_only(script: str | None) -> bool:
    """True for a module (``-m NAME``) or a Java main class: trusted by name only."""
    return bool(script) and script is not None and script.startswith(("-m ", "class "))


def is_sha256(value: object) -> bool:
    """True for a SHA-256 hex digest (lower case, as portwatch stores them)."""
    return isinstance(value, str) and _SHA256_RE.match(value) is not None


def is_absolute_path(path: str | None) -> bool:
    """The one rule for "this is an absolute path", POSIX or Windows: ``/srv/app``,
    ``C:\\app`` or ``C:/app``, ``\\\\server\\share``. A Windows path without a drive
    (``\\app``) is relative to the current drive, so it is not absolute."""
    if not path:
        return False
    if path.startswith("/"):
        return True
    if path.startswith(("\\\\", "//")):
        return True
    return len(path) > 2 and path[0].isalpha() and path[1] == ":" and path[2] in "\\/"


def script_is_file(script: str | None) -> bool:
    """True when ``script`` names a file (an absolute path), as opposed to
    ``-m module``, ``class Name``, ``-c`` or ``-``."""
    return is_absolute_path(script)


def _windows_path(path: str) -> bool:
    return is_absolute_path(path) and not path.startswith("/")


def same_path(a: str | None, b: str | None) -> bool:
    """Whether two executable or script paths name the same file.

    Windows paths (``C:\\…``, ``\\\\server\\…``) compare without regard to case or
    slash direction, as the file system does; POSIX paths compare exactly.
    """
    if a is None or b is None:
        return a is b
    if a == b:
        return True
    if _windows_path(a) and _windows_path(b):
        return a.replace("/", "\\").casefold() == b.replace("/", "\\").casefold()
    return False


def path_key(path: str | None) -> str | None:
    """A key equal for paths :func:`same_path` calls the same (Windows: any case, either
    slash), for sets and replacement slots."""
    if path is not None and _windows_path(path):
        return path.replace("/", "\\").casefold()
    return path


def short_hash(value: str | None) -> str:
    """The first 12 hex digits, enough for a person to compare two hashes at a glance."""
    return value[:12] if value else "unknown"


@dataclass(frozen=True)
class Identity:
    """The parts of an owner that decide trust.

    ``script`` is a resolved path for a script file, ``-m NAME`` for a module, or
    ``-c`` for inline code (whose text is never kept, only its hash in
    ``script_sha256``). ``signer`` is the code-signing authority where the OS offers
    one cheaply (macOS, Windows); it is None elsewhere.
    """

    exe: str
    sha256: str
    script: str | None = None
    script_sha256: str | None = None
    signer: str | None = None
    extra_code: str | None = None

    @classmethod
    def of(cls, owner: Owner | None, signer: str | None = None) -> Identity | None:
        """The identity of ``owner``; None when its executable or hash could not be read."""
        if owner is None or not owner.identified or owner.script == HIDDEN_SCRIPT:
            return None
        assert owner.exe is not None and owner.sha256 is not None  # implied by identified
        return cls(
            exe=owner.exe,
            sha256=owner.sha256.lower(),
            script=owner.script or None,
            script_sha256=owner.script_sha256.lower() if owner.script_sha256 else None,
            signer=signer or None,
            extra_code=owner.extra_code or None,
        )

    @property
    def key(self) -> tuple[str, str, str | None, str | None, str | None]:
        """What two processes must share to be the same program (the signer is not part:
        it is derived from the file, which the hash already pins down)."""
        return (self.exe, self.sha256, self.script, self.script_sha256, self.extra_code)

    def describe(self) -> str:
        """``/usr/bin/python3 running /srv/app.py`` for people (plain text, not markup)."""
        text = self.exe
        if self.script:
            text += f" running {self.script}"
        return text
