"""Ending a process through the probe: a real child, a stubborn child, another user's process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from portwatch.probe.process_control import EndOutcome, end_process

ROOT = Path(__file__).resolve().parent.parent
# The unprivileged user cannot enter root's home, where the venv's interpreter may live:
# the system's Python of the same version runs the probe with the venv's packages.
SYSTEM_PYTHON = Path("/usr/bin/python3")
SITE_PACKAGES = Path(psutil.__file__).resolve().parent.parent


def _start(code: str, **kwargs: Any) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, **kwargs
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.stdout.close()
    return child


def test_a_child_that_listens_to_sigterm_is_terminated() -> None:
    child = _start("import time; print('ready', flush=True); time.sleep(60)")
    result = end_process(child.pid, grace_s=5.0)
    assert result.outcome is EndOutcome.TERMINATED, result.message
    # psutil reaped the child already, so only its absence is checked.
    child.wait(timeout=5)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('ready', flush=True); time.sleep(60)"
    )
    child = _start(code)
    started = time.monotonic()
    result = end_process(child.pid, grace_s=0.5)
    assert result.outcome is EndOutcome.KILLED, result.message
    child.wait(timeout=5)
    assert time.monotonic() - started >= 0.5


def test_a_reused_pid_is_left_alone() -> None:
    child = _start("import time; print('ready', flush=True); time.sleep(60)")
    try:
        # A start time far from the real one: the pid now names another program.
        result = end_process(child.pid, create_time=1.0, grace_s=0.5)
        assert result.outcome is EndOutcome.REPLACED
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_an_exited_process_is_reported_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert end_process(child.pid).outcome is EndOutcome.GONE


def _same_python() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    version = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return version == str(sys.version_info[:2])


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root")
@pytest.mark.skipif(not _same_python(), reason="needs a system Python like the venv's")
def test_another_users_process_is_access_denied_with_a_clear_message() -> None:
    victim = _start("import time; print('ready', flush=True); time.sleep(60)")
    try:
        code = (
            "import json, sys; from portwatch.probe.process_control import end_process;"
            " r = end_process(int(sys.argv[1]), grace_s=0.5);"
            " print(json.dumps([r.outcome.value, r.message]))"
        )
        env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{SITE_PACKAGES}")
        out = subprocess.run(
            [str(SYSTEM_PYTHON), "-c", code, str(victim.pid)],
            user=65534,
            group=65534,
            extra_groups=[],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            cwd="/",
        )
        assert out.returncode == 0, out.stderr
        outcome, message = json.loads(out.stdout)
        assert outcome == "denied"
        assert "Access denied" in message and str(victim.pid) in message
        assert victim.poll() is None  # root's process is untouched
    finally:
        victim.kill()
        victim.wait()
