"""Files and console output as Windows and Excel see them: BOM, line ends, code pages, holds."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portwatch import files
from portwatch.engine.export import export_csv
from portwatch.store.history import ObservedListener


class _Reader:
    """A history with one listener whose names are not ASCII (a user folder like Jürgen's)."""

    def observed(self, watched_only: bool = False) -> list[ObservedListener]:
        return [
            ObservedListener(
                first_seen=1_700_000_000.0,
                last_seen=1_700_000_060.0,
                proto="tcp",
                family="ipv4",
                address="127.0.0.1",
                port=8123,
                watched=True,
                pid=4242,
                process="srv\u00e9-\u5bb6",
                exe="C:\\Users\\J\u00fcrgen\\srv.exe",
                sha256="ab" * 32,
                user="J\u00fcrgen",
                script=None,
                status="unknown",
                times_seen=3,
            )
        ]


def test_an_exported_file_starts_with_a_utf8_bom_so_excel_reads_it_as_utf8(
    tmp_path: Path,
) -> None:
    target = tmp_path / "listeners.csv"
    assert export_csv(_Reader(), target) == 1  # type: ignore[arg-type]
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert "J\u00fcrgen".encode() in data
    assert data.count(b"\r\n") == data.count(b"\n") == 2


def test_csv_on_a_windows_text_mode_stdout_has_crlf_not_cr_cr_lf_and_no_bom() -> None:
    # Windows' sys.stdout: a text wrapper that turns every "\n" into "\r\n", in a code page.
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="cp1252", newline="\r\n")
    export_csv(_Reader(), stdout)  # type: ignore[arg-type]
    data = raw.getvalue()
    assert b"\r\r\n" not in data
    assert data.count(b"\r\n") == data.count(b"\n") == 2
    assert not data.startswith(b"\xef\xbb\xbf")
    # UTF-8 whatever the console's code page: the names survive instead of turning into "?".
    assert "srv\u00e9-\u5bb6".encode() in data


def _portwatch(data_dir: Path, *args: str, encoding: str) -> subprocess.CompletedProcess[bytes]:
    script = Path(sys.executable).with_name("portwatch")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "portwatch"]
    env = dict(os.environ, PYTHONIOENCODING=encoding, PYTHONUTF8="0")
    return subprocess.run(
        [*cmd, "--data-dir", str(data_dir), *args],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("encoding", ["cp1252", "cp437", "ascii", "cp1252:surrogateescape"])
def test_describe_through_a_pipe_in_a_code_page_never_crashes(
    data_dir: Path, encoding: str
) -> None:
    # A pipe on Windows gets the ANSI code page; the user's own description has an arrow and
    # a CJK character none of these can encode, and portwatch's own texts use dashes.
    (data_dir / "ports.toml").write_text(
        '[[entry]]\nport = 8123\nprotocols = ["tcp"]\nname = "home-assistant"\n'
        'title = "Home Assistant \u2192 \u5bb6"\nsummary = "A user description \u2014 arrow."\n',
        encoding="utf-8",
    )
    result = _portwatch(data_dir, "describe", "8123", encoding=encoding)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"Traceback" not in result.stderr
    out = result.stdout.decode(encoding.split(":", maxsplit=1)[0])
    assert "Home Assistant \\u2192 \\u5bb6" in out


def _held(winerror: int) -> OSError:
    exc = PermissionError(13, "Access is denied")
    exc.winerror = winerror  # type: ignore[attr-defined]
    return exc


def test_replacing_a_file_another_program_holds_retries_until_it_is_let_go(
    tmp_path: Path,
) -> None:
    target = tmp_path / "settings.json"
    target.write_text("old")
    failures = [_held(32), _held(5)]
    sleeps: list[float] = []

    def replace(source: str | Path, dest: str | Path) -> None:
        if failures:
            raise failures.pop(0)
        os.replace(source, dest)

    source = tmp_path / "new"
    source.write_text("new")
    files.replace_with_retry(source, target, replace=replace, sleep=sleeps.append)
    assert target.read_text() == "new"
    assert len(sleeps) == 2


def test_a_file_held_for_good_fails_with_the_reason_and_leaves_the_old_file(
    tmp_path: Path,
) -> None:
    target = tmp_path / "listeners.csv"
    target.write_text("old")
    source = tmp_path / "new"
    source.write_text("new")
    sleeps: list[float] = []

    def replace(source: str | Path, dest: str | Path) -> None:
        raise _held(32)

    with pytest.raises(files.FileHeldError) as caught:
        files.replace_with_retry(source, target, replace=replace, sleep=sleeps.append)
    assert "another program has the file open" in str(caught.value)
    assert "Excel" in str(caught.value)
    assert target.read_text() == "old"
    assert 1.0 < sum(sleeps) < 5.0


def test_other_replace_errors_are_not_retried(tmp_path: Path) -> None:
    sleeps: list[float] = []

    def replace(source: str | Path, dest: str | Path) -> None:
        raise PermissionError(13, "Permission denied")  # no winerror: a real refusal

    with pytest.raises(PermissionError) as caught:
        files.replace_with_retry("a", "b", replace=replace, sleep=sleeps.append)
    assert not isinstance(caught.value, files.FileHeldError)
    assert sleeps == []


@pytest.mark.skipif(sys.platform != "win32", reason="Windows file sharing rules")
def test_an_export_over_a_file_open_in_another_program_names_the_cause(tmp_path: Path) -> None:
    from portwatch.engine.export import ExportError

    target = tmp_path / "listeners.csv"
    target.write_text("old")
    with open(target, "rb"), pytest.raises(ExportError) as caught:
        # Python's open() shares read and write but not delete, as Excel does.
        export_csv(_Reader(), target)  # type: ignore[arg-type]
    assert "another program has the file open" in str(caught.value)
    assert target.read_text() == "old"


@pytest.mark.skipif(sys.platform != "win32", reason="Windows file sharing rules")
def test_a_settings_write_waits_out_a_brief_hold_by_another_program(tmp_path: Path) -> None:
    import threading

    target = tmp_path / "settings.json"
    target.write_text("old")
    holder = open(target, "rb")  # noqa: SIM115 (closed by the timer, as an antivirus would)
    timer = threading.Timer(0.3, holder.close)
    timer.start()
    try:
        files.write_text(target, "new")
    finally:
        timer.join()
        holder.close()
    assert target.read_text() == "new"
