"""A listener whose executable was deleted or replaced on disk since it started."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from childsockets import ChildSockets
from cli_runner import run
from trust_processes import python_copy

from portwatch.probe.identity import OwnerReader
from portwatch.probe.replaced import DELETED, REPLACED

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")


@pytest.fixture
def children() -> Iterator[list[ChildSockets]]:
    started: list[ChildSockets] = []
    yield started
    for child in started:
        child.stop()


def _listen(exe: Path, registry: list[ChildSockets]) -> ChildSockets:
    return ChildSockets.start(
        [("tcp", "127.0.0.1", 0, "listen")], executable=str(exe), registry=registry
    )


def test_unchanged_executable_is_not_flagged(tmp_path: Path, children: list) -> None:
    child = _listen(python_copy(tmp_path / "server"), children)
    owner = OwnerReader().owner(child.pid)
    assert owner is not None and owner.replaced is None


def test_deleted_executable_is_flagged(tmp_path: Path, children: list) -> None:
    exe = python_copy(tmp_path / "server")
    child = _listen(exe, children)
    exe.unlink()
    owner = OwnerReader().owner(child.pid)
    assert owner is not None and owner.replaced == DELETED
    assert owner.exe == str(exe)


def test_executable_replaced_by_another_file_is_flagged(tmp_path: Path, children: list) -> None:
    exe = python_copy(tmp_path / "server")
    child = _listen(exe, children)
    reader = OwnerReader()
    first = reader.owner(child.pid)
    assert first is not None and first.replaced is None
    python_copy(exe, extra=b"upgraded")  # a new file renamed over the old path
    owner = reader.owner(child.pid)  # the cached owner must not hide the change
    assert owner is not None and owner.replaced == REPLACED


def test_scan_carries_the_flag_and_its_reason(tmp_path: Path, children: list) -> None:
    exe = python_copy(tmp_path / "server")
    child = _listen(exe, children)
    exe.unlink()
    data = tmp_path / "data"
    rows = json.loads(run(data, "scan", "--json", "--all").stdout)
    (row,) = [r for r in rows if r["pid"] == child.pid]
    assert row["replaced"] == DELETED
    text = run(data, "scan", "--all").stdout
    (line,) = [ln for ln in text.splitlines() if f"pid {child.pid}" in ln]
    assert f"REPLACED: {DELETED}" in line
