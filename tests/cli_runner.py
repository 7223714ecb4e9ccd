"""The portwatch command as a user runs it, for tests that start it as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def portwatch_cmd() -> list[str]:
    """The installed ``portwatch`` command when there is one (CI), else the module."""
    script = Path(sys.executable).with_name("portwatch")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "portwatch"]


def run(data_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``portwatch --data-dir DATA_DIR ARGS``, its output captured, never raising on failure."""
    return subprocess.run(
        [*portwatch_cmd(), "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
