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
