"""Code signers where the OS offers them cheaply: macOS ``codesign``, Windows Authenticode.

A signer lets a person trust "any build signed by X" so an auto-updating program
stays known across updates. Where there is no such facility (Linux) the reader
simply answers None; a failing or slow tool also answers None, never an error.
Answers are cached by (path, SHA-256): a file with the same hash has the same
signature.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

from portwatch.core.text import clean
from portwatch.core.types import Owner

log = logging.getLogger(__name__)

# A runner with subprocess.run's surface for the few arguments used: the test seam.
Runner = Callable[..., "subprocess.CompletedProcess[str]"]
_TIMEOUT_S = 5.0


class SignatureReader(Protocol):
    """Answers the signing authority of an executable, or None."""

    def signer(self, exe: str, sha256: str | None) -> str | None: ...


class NoSignatureReader:
    """Platforms without a cheap signature check (Linux): never a signer."""

    def signer(self, exe: str, sha256: str | None) -> str | None:
        return None


class _CachedReader:
    # Windows: a windowed portwatch that starts a console program (PowerShell) would flash
    # a console window on the user's screen at every check; CREATE_NO_WINDOW prevents it.
    _creationflags = 0

    def __init__(self, run: Runner = subprocess.run, max_entries: int = 512) -> None:
        self._run = run
        self._cache: OrderedDict[tuple[str, str | None], str | None] = OrderedDict()
        self._max = max_entries

    def signer(self, exe: str, sha256: str | None) -> str | None:
        key = (exe, sha256)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        try:
            value = self._read(exe)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            # A cold PowerShell or a big bundle can time out: say "no signer" for now, but
            # do not remember it, or a signer-trusted program stays unknown until restart.
            log.debug("no signature for %s: %s", exe, exc)
            return None
        # Only a hashed file can be cached safely: without a hash the file may change.
        if sha256 is not None:
            self._cache[key] = value
            if len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return value

    def _call(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        extra = {"creationflags": self._creationflags} if self._creationflags else {}
        return self._run(
            list(argv), capture_output=True, text=True, timeout=_TIMEOUT_S, check=False, **extra
        )

    def _read(self, exe: str) -> str | None:
        raise NotImplementedError


class CodesignReader(_CachedReader):
    """macOS: ``codesign --verify`` then the first ``Authority=`` line of ``codesign -dv``."""

    def _read(self, exe: str) -> str | None:
        # Verify first: -dv alone prints the authority of a tampered file too.
        if self._call(["codesign", "--verify", "--strict", exe]).returncode != 0:
            return None
        shown = self._call(["codesign", "-dv", "--verbose=2", exe])
        for line in (shown.stderr + "\n" + shown.stdout).splitlines():
            if line.startswith("Authority="):
                return clean(line.split("=", 1)[1].strip()) or None
        return None


class AuthenticodeReader(_CachedReader):
    """Windows: ``Get-AuthenticodeSignature``; the signer's subject when the status is Valid."""

    _creationflags = 0x08000000  # CREATE_NO_WINDOW

    def _read(self, exe: str) -> str | None:
        literal = exe.replace("'", "''")  # a PowerShell single-quoted string
        script = (
            f"$s = Get-AuthenticodeSignature -LiteralPath '{literal}'; "
            "if ($s.Status -eq 'Valid') { $s.SignerCertificate.Subject }"
        )
        # -EncodedCommand: the path never passes through a command-line parser.
        encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
        result = self._call(
            ["powershell", "-NoProfile", "-NonInteractive", "-EncodedCommand", encoded]
        )
        if result.returncode != 0:
            return None
        return clean(result.stdout.strip()) or None


def reader_for(platform: str = sys.platform, run: Runner = subprocess.run) -> SignatureReader:
    """The signature reader for ``platform`` (a null reader where there is none)."""
    if platform == "darwin":
        return CodesignReader(run)
    if platform.startswith("win"):
        return AuthenticodeReader(run)
    return NoSignatureReader()


def signer_lookup(reader: SignatureReader) -> Callable[[Owner], str | None]:
    """Adapter for :class:`portwatch.core.trust.TrustJudge`'s ``signer_of``."""

    def signer_of(owner: Owner) -> str | None:
        if not owner.exe:
            return None
        return reader.signer(owner.exe, owner.sha256)

    return signer_of
