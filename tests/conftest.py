"""Shared test set-up: offscreen Qt, and real listening sockets in child processes."""

from __future__ import annotations

import os

# Before any Qt import: widgets render offscreen; no display is needed.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from childsockets import ChildSockets
from platforms import posix_only_reason


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh portwatch data folder."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def child_sockets() -> Iterator[list[ChildSockets]]:
    """Start children with ``ChildSockets.start(...)``; every one is stopped afterwards."""
    started: list[ChildSockets] = []
    yield started
    for child in started:
        child.stop()


@pytest.fixture(autouse=True)
def verify_netlink_patches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every time the netlink probe patches the last poll's listeners instead of going
    through every socket, the patch is checked against a full pass over the same rows
    (in every test that polls with it)."""
    try:
        from portwatch.probe.netlink import probe as netlink_probe
    except (ImportError, AttributeError, OSError):
        return  # no netlink here (Windows, macOS)
    monkeypatch.setattr(netlink_probe, "VERIFY_PATCHES", True)


# -- Windows: what needs POSIX is skipped with the reason, never a failure -----------------


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and isinstance(collector, pytest.Module):
        reason = posix_only_reason(str(report.longrepr))
        if reason:
            report.outcome = "skipped"
            report.longrepr = (str(collector.path), 0, f"Skipped: {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and call.excinfo is not None:
        reason = posix_only_reason(str(call.excinfo.value))
        if reason and isinstance(call.excinfo.value, (AttributeError, ImportError)):
            report.outcome = "skipped"
            report.longrepr = (str(item.path), 0, f"Skipped: {reason}")
