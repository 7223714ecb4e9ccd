"""Code signers through a recorded command runner (the tools exist only on macOS/Windows)."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Sequence
from typing import Any

from portwatch.core.types import Owner
from portwatch.probe.signature import (
    AuthenticodeReader,
    CodesignReader,
    NoSignatureReader,
    reader_for,
    signer_lookup,
)

SHA = "a" * 64


class Runner:
    """Answers commands from a table and records every call."""

    def __init__(self, answers: dict[str, tuple[int, str, str]] | Exception) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        assert kwargs["timeout"] > 0
        if isinstance(self.answers, Exception):
            raise self.answers
        code, out, err = self.answers[argv[1]]
        return subprocess.CompletedProcess(list(argv), code, out, err)


CODESIGN_DV = (
    "Executable=/Applications/Tool.app/Contents/MacOS/tool\n"
    "Identifier=com.tool\n"
    "Authority=Developer ID Application: Tool Co (ABCDE12345)\n"
    "Authority=Developer ID Certification Authority\n"
    "Authority=Apple Root CA\n"
    "TeamIdentifier=ABCDE12345\n"
)


def test_codesign_reads_the_leaf_authority_after_verifying() -> None:
    run = Runner({"--verify": (0, "", ""), "-dv": (0, "", CODESIGN_DV)})
    reader = CodesignReader(run)
    exe = "/Applications/Tool.app/Contents/MacOS/tool"
    assert reader.signer(exe, SHA) == "Developer ID Application: Tool Co (ABCDE12345)"
    assert run.calls[0][:2] == ["codesign", "--verify"]
    # Cached by (path, hash): no second run.
    assert reader.signer(exe, SHA) == "Developer ID Application: Tool Co (ABCDE12345)"
    assert len(run.calls) == 2


def test_codesign_tampered_or_unsigned_file_has_no_signer() -> None:
    run = Runner({"--verify": (1, "", "invalid signature"), "-dv": (0, "", CODESIGN_DV)})
    assert CodesignReader(run).signer("/x", SHA) is None
    assert len(run.calls) == 1


def test_missing_or_hanging_tool_means_no_signer() -> None:
    assert CodesignReader(Runner(FileNotFoundError(2, "no codesign"))).signer("/x", SHA) is None
    hung = Runner(subprocess.TimeoutExpired(["codesign"], 5))
    assert AuthenticodeReader(hung).signer("C:\\x.exe", SHA) is None


def test_authenticode_passes_the_path_safely_and_reads_the_subject() -> None:
    run = Runner({"-NoProfile": (0, "CN=Tool Co, O=Tool Co, C=US\r\n", "")})
    path = "C:\\Program Files\\It's\\tool.exe"
    assert AuthenticodeReader(run).signer(path, SHA) == "CN=Tool Co, O=Tool Co, C=US"
    argv = run.calls[0]
    assert argv[-2] == "-EncodedCommand"
    script = base64.b64decode(argv[-1]).decode("utf-16-le")
    assert "-LiteralPath 'C:\\Program Files\\It''s\\tool.exe'" in script
    assert path not in " ".join(argv)  # never on the command line as text
    assert AuthenticodeReader(Runner({"-NoProfile": (0, "\n", "")})).signer(path, SHA) is None


def test_platforms_and_the_judge_adapter() -> None:
    assert isinstance(reader_for("linux"), NoSignatureReader)
    assert isinstance(reader_for("darwin", Runner({})), CodesignReader)
    assert isinstance(reader_for("win32", Runner({})), AuthenticodeReader)
    lookup = signer_lookup(reader_for("linux"))
    assert lookup(Owner(pid=1, exe="/usr/bin/x", sha256=SHA)) is None
    run = Runner({"--verify": (0, "", ""), "-dv": (0, "", CODESIGN_DV)})
    mac = signer_lookup(CodesignReader(run))
    assert mac(Owner(pid=1)) is None
    assert run.calls == []
    assert mac(Owner(pid=1, exe="/x", sha256=SHA)) is not None
