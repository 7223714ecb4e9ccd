"""Ending a process through the probe: a real child, a stubborn child, another user's process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from platforms import needs_posix

from portwatch.probe.process_control import EndOutcome, end_process

ROOT = Path(__file__).resolve().parent.parent
# The unprivileged user cannot enter root's home, where the venv's interpreter may live:
# the system's Python of the same version runs the probe with the venv's packages.


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


@needs_posix  # Windows has no SIGTERM to ignore: its polite stop is TerminateProcess
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


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root")
def test_another_users_process_is_access_denied_with_a_clear_message() -> None:
    victim = _start("import time; print('ready', flush=True); time.sleep(60)")
    try:
        # The child imports portwatch as root (the venv may be private to root), then
        # drops to uid 65534 for good before it asks to end root's process.
        code = (
            "import json, os, sys; from portwatch.probe.process_control import end_process;"
            " os.setgroups([]); os.setgid(65534); os.setuid(65534);"
            " r = end_process(int(sys.argv[1]), grace_s=0.5);"
            " print(json.dumps([r.outcome.value, r.message]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(victim.pid)],
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
