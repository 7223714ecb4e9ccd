"""Verified code signers: Windows Authenticode, macOS code signatures.

A signer lets a person trust "any build signed by X" so an auto-updating program stays
known across updates. Only what the OS *verified* counts, and it is named by what a
signer cannot choose: on Windows the leaf certificate's subject, issuer and thumbprint
(:mod:`portwatch.probe.authenticode`, WinVerifyTrust through ctypes: no PowerShell
window, no subprocess per poll); on macOS the Team ID of an Apple-anchored chain,
checked with ``codesign --verify -R`` against an anchored requirement. A self-signed
certificate named like a vendor therefore never passes.

Where there is no such facility (Linux) the verifier answers "unsupported" at once.
Answers are cached by file identity (device, inode, size, mtime, ctime), so a steady
poll never runs a signature check; a check that failed (tool missing, timed out) is
not cached as a verdict and is tried again later.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from portwatch.core.text import clean
from portwatch.core.types import Owner, SignerInfo

log = logging.getLogger(__name__)

VALID = "valid"
UNSIGNED = "unsigned"
INVALID = "invalid"
FAILED = "failed"  # the check could not be made: no verdict, never cached
UNSUPPORTED = "unsupported"

# A runner with subprocess.run's surface for the few arguments used: the test seam.
Runner = Callable[..., "subprocess.CompletedProcess[str]"]
_TIMEOUT_S = 5.0
_TEAM_ID = re.compile(r"^[A-Z0-9]{10}$")
FileKey = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class SignatureCheck:
    """One verification: ``state`` is VALID (then ``signer`` is set), UNSIGNED, INVALID,
    FAILED (no verdict: tool missing, timed out) or UNSUPPORTED (no facility here)."""

    state: str
    signer: SignerInfo | None = None
    detail: str | None = None

    @property
    def verdict(self) -> bool:
        """Whether this is an answer about the file (and may be cached)."""
        return self.state in (VALID, UNSIGNED, INVALID)


Backend = Callable[[str], SignatureCheck]


class SignatureVerifier:
    """The cached front of one platform's backend (the seam tests fill with recorded
    answers). ``signer(path)`` is the verified signer or None."""

    def __init__(self, backend: Backend | None, max_entries: int = 512) -> None:
        self._backend = backend
        self._cache: OrderedDict[tuple[str, FileKey], SignatureCheck] = OrderedDict()
        self._max = max_entries
        self.checked = 0  # backend calls actually made, for tests and benchmarks

    @property
    def supported(self) -> bool:
        return self._backend is not None

    def check(self, path: str) -> SignatureCheck:
        if self._backend is None:
            return SignatureCheck(UNSUPPORTED, detail="no code signatures on this system")
        before = _file_key(path)
        if before is None:
            return SignatureCheck(FAILED, detail="the file cannot be read")
        cached = self._cache.get((path, before))
        if cached is not None:
            self._cache.move_to_end((path, before))
            return cached
        self.checked += 1
        try:
            answer = self._backend(path)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            log.debug("signature check of %s failed: %s", path, exc)
            answer = SignatureCheck(FAILED, detail=str(exc))
        if answer.state == VALID and answer.signer is None:
            answer = SignatureCheck(FAILED, detail="valid, but the signer could not be read")
        # Cache only a verdict about the file as it was before and after the check.
        if answer.verdict and _file_key(path) == before:
            self._cache[(path, before)] = answer
            if len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return answer

    def signer(self, path: str) -> SignerInfo | None:
        """The verified signer of the file at ``path``; None when unsigned, invalid,
        unchecked or unsupported (none of which may ever match a signer entry)."""
        answer = self.check(path)
        return answer.signer if answer.state == VALID else None


def _file_key(path: str) -> FileKey | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class CodesignBackend:
    """macOS: read the Team ID with ``codesign -dv``, then verify the file against an
    anchored requirement naming it (``anchor apple`` for Apple's own code)."""

    def __init__(self, run: Runner = subprocess.run, timeout_s: float = _TIMEOUT_S) -> None:
        self._run = run
        self._timeout = timeout_s

    def _call(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return self._run(argv, capture_output=True, text=True, timeout=self._timeout, check=False)

    def __call__(self, path: str) -> SignatureCheck:
        try:
            shown = self._call(["codesign", "-dv", "--verbose=2", "--", path])
            text = (shown.stderr or "") + "\n" + (shown.stdout or "")
            if shown.returncode != 0:
                if "not signed at all" in text:
                    return SignatureCheck(UNSIGNED)
                return SignatureCheck(INVALID, detail=clean(text.strip()[:200]))
            team = None
            for line in text.splitlines():
                if line.startswith("TeamIdentifier="):
                    team = line.split("=", 1)[1].strip()
            if team is not None and _TEAM_ID.match(team):
                requirement = f'anchor apple generic and certificate leaf[subject.OU] = "{team}"'
                signer = SignerInfo("macos", team_id=team)
            else:
                # No Team ID: only Apple's own code is acceptable (ad-hoc signatures are
                # not an identity).
                requirement = "anchor apple"
                signer = SignerInfo("macos", apple=True)
            verified = self._call(
                ["codesign", "--verify", "--strict", "-R", f"={requirement}", "--", path]
            )
        except subprocess.TimeoutExpired:
            return SignatureCheck(FAILED, detail="codesign timed out")
        except OSError as exc:
            return SignatureCheck(FAILED, detail=f"codesign could not run: {exc}")
        if verified.returncode != 0:
            return SignatureCheck(INVALID, detail=clean((verified.stderr or "").strip()[:200]))
        return SignatureCheck(VALID, signer)


def verifier_for(platform: str = sys.platform, run: Runner = subprocess.run) -> SignatureVerifier:
    """The signature verifier for ``platform`` (an unsupported one where there is none)."""
    if platform == "darwin":
        return SignatureVerifier(CodesignBackend(run))
    if platform.startswith("win"):
        from portwatch.probe.authenticode import authenticode_check

        return SignatureVerifier(authenticode_check)
    return SignatureVerifier(None)


_shared: list[SignatureVerifier] = []


def default_verifier() -> SignatureVerifier:
    """One shared verifier for this process (its cache is what makes polls cheap)."""
    if not _shared:
        _shared.append(verifier_for())
    return _shared[0]


def signer_lookup(verifier: SignatureVerifier) -> Callable[[Owner], SignerInfo | None]:
    """Adapter for :class:`portwatch.core.trust.TrustJudge`'s ``signer_of``."""

    def signer_of(owner: Owner) -> SignerInfo | None:
        if owner.signer is not None:
            return owner.signer
        if not owner.exe or not verifier.supported:
            return None
        return verifier.signer(owner.exe)

    return signer_of
