"""The documented osquery configuration and the service examples stay valid."""

from __future__ import annotations

import json
import plistlib
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from portwatch.__main__ import build_parser
from portwatch.store import views

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SERVICE = ROOT / "resources" / "service"

pytestmark = pytest.mark.skipif(
    not SERVICE.is_dir(), reason="examples are in the source tree, not in the installed package"
)


def _section(title: str) -> str:
    return README.read_text(encoding="utf-8").split(title, 1)[1].split("\n### ", 1)[0]


def test_the_documented_atc_tables_select_the_views_columns() -> None:
    blocks = re.findall(r"```json\n(.*?)```", _section("### osquery"), re.DOTALL)
    assert len(blocks) == 3
    platforms = set()
    expected = {views.LISTENERS: views.LISTENER_COLUMNS, views.EVENTS: views.EVENT_COLUMNS}
    for block in blocks:
        tables = json.loads(block)["auto_table_construction"]
        for table in tables.values():
            platforms.add(table["platform"])
            assert table["path"].endswith("history.sqlite3")
            match = re.fullmatch(r"SELECT (.+) FROM (\w+)", table["query"])
            assert match, table["query"]
            columns = tuple(c.strip() for c in match.group(1).split(","))
            assert columns == tuple(table["columns"]) == expected[match.group(2)]
    assert platforms == {"linux", "darwin", "windows"}


def test_the_documented_atc_query_runs_against_a_real_history(tmp_path: Path) -> None:
    import sqlite3

    from portwatch.store.history import HistoryStore

    db = tmp_path / "history.sqlite3"
    HistoryStore.open(db).close()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    tables = json.loads(re.findall(r"```json\n(.*?)```", _section("### osquery"), re.DOTALL)[0])
    for table in tables["auto_table_construction"].values():
        cursor = conn.execute(table["query"])
        assert [d[0] for d in cursor.description] == table["columns"]
    conn.close()


def _monitor_args(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.command == "monitor"
    assert args.data_dir, "a system monitor keeps its own data folder"


def test_systemd_unit_is_valid_and_runs_monitor_with_its_own_data_folder(tmp_path: Path) -> None:
    text = (SERVICE / "portwatch-monitor.service").read_text(encoding="utf-8")
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", text, re.MULTILINE)
    argv = shlex.split(exec_start)
    assert argv[0] == "/usr/local/bin/portwatch"
    _monitor_args(argv[1:])
    assert "RestrictAddressFamilies=AF_UNIX AF_NETLINK" in text
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "portwatch-monitor.service"
    unit.write_text(text.replace("/usr/local/bin/portwatch", "/bin/true"), encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "portwatch-monitor.service" not in result.stderr, result.stderr


def test_launch_daemon_runs_monitor_with_its_own_data_folder() -> None:
    with (SERVICE / "org.portwatch.monitor.plist").open("rb") as handle:
        plist = plistlib.load(handle)
    assert plist["Label"] == "org.portwatch.monitor"
    assert plist["RunAtLoad"] is True
    _monitor_args(plist["ProgramArguments"][1:])
    assert "/Library/Application Support/portwatch" in plist["ProgramArguments"]


def test_windows_task_command_line_runs_monitor() -> None:
    note = _section("### As a system service")
    match = re.search(r'/TR "(.*?)"`', note.replace("\n  ", " "), re.DOTALL)
    assert match, "the schtasks example is missing"
    command = match.group(1).replace('\\"', '"')
    argv = shlex.split(command, posix=False)
    assert argv[0].strip('"').endswith("portwatch.exe")
    _monitor_args(argv[1:])
