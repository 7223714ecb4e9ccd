"""Code signers: what matches, what never matches and what is cached, with recorded
verifier answers (the real Windows and macOS calls run on those systems)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from trust_fixtures import listener, owner

from portwatch.core.trust import (
    TrustEntry,
    TrustError,
    TrustJudge,
    TrustList,
    entry_for_listener,
    review_legacy_signers,
    signer_matches,
)
from portwatch.core.types import Owner, SignerInfo, Status
from portwatch.core.watchlist import parse_spec
from portwatch.probe import authenticode
from portwatch.probe.signature import (
    FAILED,
    INVALID,
    UNSIGNED,
    UNSUPPORTED,
    VALID,
    CodesignBackend,
    SignatureCheck,
    SignatureVerifier,
    signer_lookup,
    verifier_for,
)

SPEC = parse_spec("3653/tcp")
CONTOSO = SignerInfo(
    "windows",
    subject="CN=Contoso Ltd, O=Contoso Ltd, C=US",
    issuer="CN=Contoso Code Signing CA, O=Contoso Ltd",
    thumbprint="AB" * 20,
)
TEAM = SignerInfo("macos", team_id="ABCDE12345")


@pytest.mark.parametrize(
    ("seen", "matches"),
    [
        (CONTOSO, True),
        # Re-issued certificate from the same authority: same subject and issuer.
        (SignerInfo("windows", CONTOSO.subject, CONTOSO.issuer, "CD" * 20), True),
        # Same certificate seen with another issuer text: the thumbprint pins it.
        (SignerInfo("windows", CONTOSO.subject, "CN=Other", "ab" * 20), True),
        # Anyone can buy a certificate with that subject from another authority.
        (SignerInfo("windows", CONTOSO.subject, "CN=Cheap CA", "EF" * 20), False),
        (SignerInfo("windows", "CN=Contoso Ltd", CONTOSO.issuer, CONTOSO.thumbprint), False),
        (SignerInfo("macos", team_id="ABCDE12345"), False),
        (None, False),
    ],
)
def test_windows_signer_needs_subject_and_issuer_or_thumbprint(
    seen: SignerInfo | None, matches: bool
) -> None:
    assert signer_matches(CONTOSO, seen) is matches


def test_macos_signer_is_the_team_id_never_the_name() -> None:
    assert signer_matches(TEAM, SignerInfo("macos", team_id="ABCDE12345"))
    assert not signer_matches(TEAM, SignerInfo("macos", team_id="ZZZZZ99999"))
    assert not signer_matches(TEAM, SignerInfo("macos", apple=True))
    apple = SignerInfo("macos", apple=True)
    assert signer_matches(apple, SignerInfo("macos", apple=True))
    assert not signer_matches(apple, TEAM)


def _signed(exe: str, signer: SignerInfo | None, digest: str = "1") -> Owner:
    base = owner(exe, digest * 64)
    return Owner(
        pid=base.pid, create_time=base.create_time, name=base.name, exe=exe,
        sha256=base.sha256, signer=signer,
    )  # fmt: skip


def test_judge_trusts_any_verified_build_of_the_signer_at_that_path() -> None:
    exe = "C:\\Program Files\\Contoso\\svc.exe"
    v1 = _signed(exe, CONTOSO, "1")
    entry = entry_for_listener(listener(3653, v1), SPEC, 1.0)
    assert entry.kind == "signer" and entry.signer_id == CONTOSO
    judge = TrustJudge(TrustList().with_entry(entry))
    update = _signed(exe, CONTOSO, "2")
    verdict = judge.judge(listener(3653, update))
    assert verdict.status is Status.KNOWN and "Contoso Ltd" in (verdict.reason or "")
    for other in (
        _signed(exe, None, "2"),  # unsigned, invalid, timed out: never a match
        _signed(exe, SignerInfo("windows", CONTOSO.subject, "CN=Cheap CA", "EF" * 20), "2"),
        _signed("C:\\Temp\\svc.exe", CONTOSO, "2"),  # another path
    ):
        assert judge.judge(listener(3653, other)).status is Status.UNKNOWN


def test_judge_asks_the_lookup_only_for_owners_without_a_signer() -> None:
    exe = "/Applications/Tool.app/Contents/MacOS/tool"
    entry = TrustEntry(SPEC, exe, signer=TEAM.label(), signer_id=TEAM)
    asked: list[int] = []

    def signer_of(who: Owner) -> SignerInfo | None:
        asked.append(who.pid)
        return TEAM

    judge = TrustJudge(TrustList().with_entry(entry), signer_of)
    assert judge.judge(listener(3653, _signed(exe, None))).status is Status.KNOWN
    assert asked == [4242]
    judge.judge(listener(3321, _signed(exe, None)))  # no signer entry on that port
    assert asked == [4242]


def test_trusting_by_signer_needs_a_verified_signature() -> None:
    with pytest.raises(TrustError, match="no valid code signature"):
        entry_for_listener(listener(3653, _signed("/x", None)), SPEC, 1.0, by="signer")
    # Without --by: the signer wins over a hash when there is no package.
    assert entry_for_listener(listener(3653, _signed("/x", TEAM)), SPEC, 1.0).kind == "signer"
    assert entry_for_listener(listener(3653, _signed("/x", None)), SPEC, 1.0).kind == "hash"


def test_legacy_name_only_entries_are_upgraded_or_flagged() -> None:
    exe = "C:\\Program Files\\Contoso\\svc.exe"
    old = TrustList(
        (
            TrustEntry(SPEC, exe, signer="Contoso Ltd"),
            TrustEntry(parse_spec("80/tcp"), exe, signer="Fabrikam"),
            TrustEntry(parse_spec("81/tcp"), None, signer="Contoso Ltd"),
        )
    )
    updated, messages = review_legacy_signers(old, lambda path: CONTOSO)
    assert updated.entries[0].signer_id == CONTOSO and not updated.entries[0].needs_review
    assert updated.entries[1].needs_review and updated.entries[2].needs_review
    assert messages[0].startswith("re-verified and upgraded")
    assert "signed by Contoso Ltd" in messages[1] and "needs review" in messages[1]
    assert "no executable" in messages[2]
    # Where nothing can be verified (Linux), every one is flagged and none upgraded.
    same, flagged = review_legacy_signers(old, None)
    assert same == old and all("needs review" in m for m in flagged)


class Backend:
    """Recorded answers, one per call, and a count of calls."""

    def __init__(self, *answers: SignatureCheck | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, path: str) -> SignatureCheck:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_verdicts_are_cached_by_file_identity_failures_are_not(tmp_path: Path) -> None:
    exe = tmp_path / "tool"
    exe.write_bytes(b"v1")
    backend = Backend(SignatureCheck(VALID, TEAM))
    verifier = SignatureVerifier(backend)
    for _ in range(5):
        assert verifier.signer(str(exe)) == TEAM
    assert backend.calls == 1
    # The file changes: it is checked again.
    exe.write_bytes(b"v2 and longer")
    os.utime(exe, ns=(1, 1))
    verifier.signer(str(exe))
    assert backend.calls == 2

    flaky = Backend(
        SignatureCheck(FAILED, detail="timed out"),
        subprocess.TimeoutExpired("codesign", 5),
        SignatureCheck(VALID, TEAM),
    )
    verifier = SignatureVerifier(flaky)
    assert verifier.signer(str(exe)) is None
    assert verifier.signer(str(exe)) is None  # an exception is a failure, not a verdict
    assert verifier.signer(str(exe)) == TEAM
    assert verifier.signer(str(exe)) == TEAM
    assert flaky.calls == 3

    for state in (INVALID, UNSIGNED):
        bad = Backend(SignatureCheck(state, TEAM))
        verifier = SignatureVerifier(bad)
        assert verifier.signer(str(exe)) is None
        assert verifier.signer(str(exe)) is None
        assert bad.calls == 1
    # "Valid" without a readable signer is no verdict either.
    odd = SignatureVerifier(Backend(SignatureCheck(VALID)))
    assert odd.check(str(exe)).state == FAILED
    assert SignatureVerifier(None).check(str(exe)).state == UNSUPPORTED
    assert SignatureVerifier(backend).check(str(tmp_path / "missing")).state == FAILED


class Runner:
    """Answers codesign calls from a table keyed by the first option; records calls."""

    def __init__(self, answers: dict[str, tuple[int, str, str] | Exception]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        assert kwargs["timeout"] > 0
        answer = self.answers[argv[1]]
        if isinstance(answer, Exception):
            raise answer
        code, out, err = answer
        return subprocess.CompletedProcess(list(argv), code, out, err)


CODESIGN_DV = (
    "Executable=/Applications/Tool.app/Contents/MacOS/tool\n"
    "Authority=Developer ID Application: Tool Co (ABCDE12345)\n"
    "Authority=Developer ID Certification Authority\n"
    "Authority=Apple Root CA\n"
    "TeamIdentifier=ABCDE12345\n"
)


def test_codesign_verifies_against_an_anchored_requirement_with_the_team_id() -> None:
    run = Runner({"-dv": (0, "", CODESIGN_DV), "--verify": (0, "", "")})
    answer = CodesignBackend(run)("/Applications/Tool.app/Contents/MacOS/tool")
    assert answer == SignatureCheck(VALID, TEAM)
    requirement = run.calls[1][run.calls[1].index("-R") + 1]
    assert requirement == '=anchor apple generic and certificate leaf[subject.OU] = "ABCDE12345"'
    assert run.calls[1][-2:] == ["--", "/Applications/Tool.app/Contents/MacOS/tool"]


def test_self_signed_certificate_named_like_a_vendor_is_invalid() -> None:
    # codesign -dv happily prints whatever names the certificate claims; only the
    # anchored requirement decides, and it fails for a chain not anchored at Apple.
    forged = CODESIGN_DV.replace("Apple Root CA", "Tool Co Root")
    run = Runner({"-dv": (0, "", forged), "--verify": (3, "", "test-requirement: code failed")})
    assert CodesignBackend(run)("/x").state == INVALID


def test_codesign_system_binary_unsigned_and_failures() -> None:
    apple = Runner({"-dv": (0, "", "Authority=Software Signing\nTeamIdentifier=not set\n"),
                    "--verify": (0, "", "")})  # fmt: skip
    assert CodesignBackend(apple)("/usr/sbin/sshd") == SignatureCheck(
        VALID, SignerInfo("macos", apple=True)
    )
    assert apple.calls[1][apple.calls[1].index("-R") + 1] == "=anchor apple"
    unsigned = Runner({"-dv": (1, "", "/x: code object is not signed at all\n")})
    assert CodesignBackend(unsigned)("/x").state == UNSIGNED
    hung = Runner({"-dv": subprocess.TimeoutExpired("codesign", 5)})
    assert CodesignBackend(hung)("/x").state == FAILED
    missing = Runner({"-dv": FileNotFoundError(2, "no codesign")})
    assert CodesignBackend(missing)("/x").state == FAILED


def test_authenticode_decisions_and_import_safety() -> None:
    assert authenticode.state_for(0) == VALID
    assert authenticode.state_for(authenticode.TRUST_E_NOSIGNATURE) == UNSIGNED
    assert authenticode.state_for(-2146762496) == UNSIGNED  # the same HRESULT, signed
    assert authenticode.state_for(0x80096010) == INVALID  # TRUST_E_BAD_DIGEST: tampered
    assert authenticode.state_for(0x800B0109) == INVALID  # untrusted root (self-signed)
    if os.name != "nt":
        # Off Windows the call answers "failed" (no verdict, never cached), not an error.
        assert authenticode.authenticode_check(__file__).state == FAILED


def test_platforms_and_the_judge_adapter() -> None:
    assert not verifier_for("linux").supported
    assert verifier_for("darwin", Runner({})).supported
    assert verifier_for("win32").supported
    lookup = signer_lookup(verifier_for("linux"))
    assert lookup(Owner(pid=1, exe="/usr/bin/x", sha256="a" * 64)) is None
    assert lookup(Owner(pid=1, exe="/usr/bin/x", sha256="a" * 64, signer=TEAM)) == TEAM
