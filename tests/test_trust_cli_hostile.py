"""``portwatch trust`` where the decision is made: hostile names shown escaped, and
entries that would trust more than the person meant refused or marked."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

from test_trust_cli import cli
from trust_fixtures import listener, owner, sha
from trust_processes import REAL_PYTHON

from portwatch.cli.trust import review
from portwatch.core.trust import TrustList
from portwatch.core.watchlist import WatchList, parse_spec

# Escape sequences, CR, a C1 control (CSI), a right-to-left override and a newline
# that would forge a second candidate line.
HOSTILE = (
    "/opt/evil\x1b[2K\x1b]0;owned\x07\r\x9b31m\u202egnp.exe\n2. tcp 127.0.0.1:22  watched as 22"
)
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class TtyInput(io.StringIO):
    def isatty(self) -> bool:
        return True


def assert_safe(text: str) -> None:
    assert not RAW.search(text), repr(text)
    # Only the real candidate lines start with a number.
    numbered = [line for line in text.splitlines() if re.match(r"^\d+\. ", line)]
    assert all(not line.startswith("2. tcp 127.0.0.1:22") for line in numbered), text


def test_review_shows_process_written_text_escaped() -> None:
    out = io.StringIO()
    hostile = owner(HOSTILE, script="/srv/\x1b[31mapp.py\r", script_sha256=sha("app"))
    review(
        TrustList(),
        [listener(3653, hostile)],
        WatchList((parse_spec("3653"),)),
        accept="none",
        stdin=io.StringIO(),
        out=out,
        now_wall=1.0,
    )
    text = out.getvalue()
    assert_safe(text)
    assert "\\x1b" in text and "\\u202e" in text and "\\x0a" in text


def test_trust_list_shows_the_file_escaped(data_dir: Path) -> None:
    (data_dir / "trust.json").write_text(
        json.dumps(
            {
                "version": 1,
                "entries": [
                    {
                        "port": "3653/tcp",
                        "exe": HOSTILE,
                        "sha256": sha("x"),
                        "script": "/srv/a\rpp.py\x1b[8m",
                        "script_sha256": sha("y"),
                        "note": "fine\u202e\n2. 22/tcp /usr/sbin/sshd",
                    }
                ],
            }
        )
    )
    listed = cli(data_dir, "trust", "list")
    assert listed.returncode == 0, listed.stderr
    assert_safe(listed.stdout)
    assert "\\x1b" in listed.stdout


def test_a_typo_at_the_review_prompt_asks_again() -> None:
    out = io.StringIO()
    updated = review(
        TrustList(),
        [listener(3653, owner("/usr/bin/a")), listener(3653, owner("/usr/bin/b"))],
        WatchList((parse_spec("3653"),)),
        accept=None,
        stdin=TtyInput("2x\n7\n2\n"),
        out=out,
        now_wall=1.0,
    )
    assert updated is not None
    assert [e.exe for e in updated.entries] == ["/usr/bin/b"]
    text = out.getvalue()
    assert text.count("Trust which?") == 3
    assert "--accept" not in text.split("Trust which?", 1)[1]


def test_trusting_an_interpreter_needs_what_it_runs(data_dir: Path) -> None:
    bare = cli(data_dir, "trust", "add", "3653/tcp", "--exe", REAL_PYTHON)
    assert bare.returncode == 2
    assert "--script" in bare.stderr and "interpreter" in bare.stderr
    stdin_code = cli(data_dir, "trust", "add", "3653/tcp", "--exe", REAL_PYTHON, "--script=-")
    assert stdin_code.returncode == 2
    assert "standard input" in stdin_code.stderr
    assert not (data_dir / "trust.json").exists()


def test_module_trust_says_it_is_by_name_only(data_dir: Path) -> None:
    added = cli(
        data_dir, "trust", "add", "3653", "--exe", REAL_PYTHON, "--script", "-m http.server"
    )
    assert added.returncode == 0, added.stderr
    assert "by name only" in added.stdout
    listed = cli(data_dir, "trust", "list")
    assert "-m http.server" in listed.stdout and "by name only" in listed.stdout
    helped = cli(data_dir, "trust", "add", "--help")
    assert "name only" in " ".join(helped.stdout.split())


def test_a_program_read_from_standard_input_cannot_be_trusted() -> None:
    # `python3 < file` names no script: its program is "-", pinned by nothing.
    out = io.StringIO()
    updated = review(
        TrustList(),
        [listener(3653, owner(REAL_PYTHON, script="-"))],
        WatchList((parse_spec("3653"),)),
        accept="1",
        stdin=io.StringIO(),
        out=out,
        now_wall=1.0,
    )
    assert updated is not None and not updated.entries
    assert "standard input" in out.getvalue()


def test_a_module_trusted_by_name_reads_as_weaker_in_the_review() -> None:
    out = io.StringIO()
    review(
        TrustList(),
        [listener(3653, owner(REAL_PYTHON, script="-m http.server"))],
        WatchList((parse_spec("3653"),)),
        accept="none",
        stdin=io.StringIO(),
        out=out,
        now_wall=1.0,
    )
    assert "module -m http.server (by name only" in out.getvalue()


def test_trusting_a_device_or_fifo_is_refused_at_once(data_dir: Path, tmp_path: Path) -> None:
    # Hashing /dev/zero read for ever; a FIFO waited for a writer that never came.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for exe, kind in (("/dev/zero", "character device"), (str(fifo), "FIFO")):
        added = cli(data_dir, "trust", "add", "3653", "--exe", exe)
        assert added.returncode == 1
        assert "Traceback" not in added.stderr
        (line,) = added.stderr.splitlines()
        assert exe in line and kind in line
    assert not (data_dir / "trust.json").exists()


def test_messages_quoting_what_the_user_or_a_file_gave_show_it_escaped(
    data_dir: Path, tmp_path: Path
) -> None:
    # Paths and arguments land in errors and warnings; an escape sequence in one must
    # not reach the terminal (clear the screen, retitle the window, forge a line).
    hostile = "/x\x1b[2J\x1b]0;owned\x07\u202e\n2. forged"
    (data_dir / "ports.toml").write_text(f'[[entry]]\nport = 1\nname = "{hostile[:3]}"\n')
    for args in (
        ("trust", "remove", "3653", "--exe", hostile),
        ("trust", "add", "3653", "--exe", hostile),
        ("export", "-o", str(tmp_path / hostile.lstrip("/")) + "/x.csv"),
        ("monitor", "--jsonl", hostile + "/x"),
        ("monitor", "--interval", hostile),
        ("describe", "3653"),
    ):
        result = cli(data_dir, *args)
        assert result.returncode != 0 or args[0] == "describe", result
        assert not RAW.search(result.stderr.replace("\n", "")), (args, result.stderr)
        assert "\\x1b" in result.stderr or args[0] == "describe", (args, result.stderr)
        assert "\n2. forged" not in result.stderr
