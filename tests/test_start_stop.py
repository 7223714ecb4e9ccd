"""Starting and stopping the desktop app as a user does: with no display, and Ctrl+C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runner import portwatch_cmd

from portwatch.display import NO_DISPLAY_MESSAGE, missing_display

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="X11/Wayland displays are a Linux matter"
)


def _env_without_display() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    return env


@linux_only
def test_no_display_is_one_clear_line_and_status_1(tmp_path: Path) -> None:
    done = subprocess.run(
        [*portwatch_cmd(), "--data-dir", str(tmp_path / "data")],
        env=_env_without_display(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [NO_DISPLAY_MESSAGE]
    assert "qt.qpa" not in done.stderr


@linux_only
def test_a_local_display_without_its_x_server_counts_as_missing(tmp_path: Path) -> None:
    # :97531 has no socket in an empty folder; nothing listens on it in the abstract space.
    assert missing_display({"DISPLAY": ":97531"}, "linux", tmp_path)
    (tmp_path / "X97531").touch()
    assert not missing_display({"DISPLAY": ":97531"}, "linux", tmp_path)


def test_display_rules() -> None:
    assert missing_display({}, "linux")
    assert not missing_display({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not missing_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    # Wayland is there, but Qt was told to use X11 and there is none.
    assert missing_display({"WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "xcb"}, "linux")
    # A forwarded display cannot be checked without connecting: Qt gets to try.
    assert not missing_display({"DISPLAY": "remotehost:10.0"}, "linux")
    assert not missing_display({}, "win32")
    assert not missing_display({}, "darwin")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT from another process is POSIX")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_quit_the_desktop_app_cleanly(
    tmp_path: Path, signum: signal.Signals
) -> None:
    data = tmp_path / "data"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    app = subprocess.Popen(
        [*portwatch_cmd(), "--data-dir", str(data)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Up and polling: the first tick writes the history database.
        deadline = time.monotonic() + 30
        while not any(data.rglob("history*")) and time.monotonic() < deadline:
            assert app.poll() is None, app.communicate()
            time.sleep(0.1)
        assert any(data.rglob("history*")), "the app never started polling"
        app.send_signal(signum)
        _out, err = app.communicate(timeout=20)
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
    assert app.returncode == 0, err
    assert "Traceback" not in err
