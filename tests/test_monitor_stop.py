"""Stopping ``portwatch monitor`` the ways a user or the system stops it.

Every way ends the same: at once (not after the poll interval), exit status 0 where the OS
lets the program choose it, and the final flush written: the metrics file's closing
``portwatch_up 0`` and the history file closed (its write-ahead log folded in and removed).
POSIX stops with SIGINT and SIGTERM; Windows with console control events (Ctrl+C, Ctrl+Break,
a closed console, shutdown), never SIGTERM. The handler routine itself is tested through its
seam, :class:`portwatch.stop_requests.StopRequests`, on every OS.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import console_events
import pytest
from childsockets import free_port, wait_for
from cli_runner import portwatch_cmd, run
from platforms import WINDOWS, needs_posix, needs_windows, wine_limit

from portwatch import stop_requests
from portwatch.stop_requests import StopRequests

# A stop that waited out the poll interval would take this long; a prompt one takes seconds.
INTERVAL_S = 60
PROMPT_S = 15
# What Windows makes the exit status of a process it ends after its handler for a closed
# console (or a shutdown) returned.
STATUS_CONTROL_C_EXIT = 0xC000013A


class Started:
    """``portwatch monitor --textfile`` polled once, with a listener of ours on a watched port."""

    def __init__(self, data_dir: Path, creationflags: int = 0) -> None:
        self.data_dir = data_dir
        port = free_port()
        assert run(data_dir, "watch", "add", f"{port}/tcp").returncode == 0
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = port
        self.metrics = data_dir / "metrics" / "portwatch.prom"
        self.metrics.parent.mkdir()
        self.process = subprocess.Popen(
            [
                *portwatch_cmd(),
                "--data-dir",
                str(data_dir),
                "monitor",
                "--interval",
                str(INTERVAL_S),
                "--textfile",
                str(self.metrics.parent),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            creationflags=creationflags,
        )
        # The first poll is done (and the stop handlers set up before it).
        wait_for(lambda: self.metrics.exists() or self.process.poll() is not None, timeout=90)
        assert self.process.poll() is None, self.stderr()

    def stderr(self) -> str:
        return self.process.stderr.read() if self.process.stderr else ""

    def stopped(self) -> tuple[int, float, str]:
        """Exit status, seconds it took, stderr; the process is killed if it did not end."""
        asked = time.monotonic()
        try:
            code = self.process.wait(timeout=PROMPT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"monitor did not stop within {PROMPT_S} s") from None
        finally:
            self.listener.close()
        took = time.monotonic() - asked
        return code, took, self.stderr()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.listener.close()

    def assert_flushed(self) -> None:
        metrics = self.metrics.read_text(encoding="utf-8").splitlines()
        assert "portwatch_up 0" in metrics, "the metrics file still says portwatch is up"
        history = self.data_dir / "history.sqlite3"
        # SQLite folds the write-ahead log into the file and removes it when the last
        # connection closes; a process ended without its flush leaves it behind.
        assert not Path(f"{history}-wal").exists(), "the history file was not closed"
        with sqlite3.connect(f"{history.as_uri()}?mode=ro", uri=True) as conn:
            (polls,) = conn.execute("SELECT COALESCE(SUM(samples), 0) FROM polls").fetchone()
            (mine,) = conn.execute(
                "SELECT COUNT(*) FROM listeners WHERE port = ? AND watched = 1", (self.port,)
            ).fetchone()
        conn.close()
        assert polls >= 1
        assert mine >= 1, "our watched listener is not in the history"


@pytest.fixture
def started() -> Iterator[list[Started]]:
    """Monitors appended here are killed afterwards if a test left them running."""
    holder: list[Started] = []
    yield holder
    for item in holder:
        item.close()


@needs_posix
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signals_end_monitor_at_once_with_its_final_flush(
    data_dir: Path, started: list[Started], signum: int
) -> None:
    monitor = Started(data_dir)
    started.append(monitor)
    monitor.process.send_signal(signum)
    code, took, err = monitor.stopped()
    assert code == 0, err
    assert took < PROMPT_S
    monitor.assert_flushed()


@needs_windows
@wine_limit(
    "GenerateConsoleCtrlEvent cannot deliver CTRL_BREAK_EVENT (it fails with"
    " ERROR_INVALID_ACCESS; Wine 8's console server implements Ctrl+C only); the same"
    " handler is reached under Wine by the CtrlRoutine test below"
)
def test_ctrl_break_ends_monitor_at_once_with_its_final_flush(
    data_dir: Path, started: list[Started]
) -> None:
    # A process group of its own, so that Ctrl+Break reaches the monitor and not pytest.
    monitor = Started(data_dir, creationflags=subprocess.CREATE_NEW_PROCESS_GROUP)
    started.append(monitor)
    os.kill(monitor.process.pid, signal.CTRL_BREAK_EVENT)
    code, took, err = monitor.stopped()
    assert code == 0, err
    assert took < PROMPT_S
    monitor.assert_flushed()


@needs_windows
@pytest.mark.parametrize(
    "event",
    [
        console_events.CTRL_C_EVENT,
        console_events.CTRL_BREAK_EVENT,
        console_events.CTRL_CLOSE_EVENT,
        console_events.CTRL_SHUTDOWN_EVENT,
    ],
    ids=["ctrl-c", "ctrl-break", "console-closed", "shutdown"],
)
def test_console_control_events_end_monitor_with_its_final_flush(
    data_dir: Path, started: list[Started], event: int
) -> None:
    monitor = Started(data_dir)
    started.append(monitor)
    console_events.deliver(monitor.process.pid, event)
    code, took, err = monitor.stopped()
    if event in (console_events.CTRL_C_EVENT, console_events.CTRL_BREAK_EVENT):
        assert code == 0, err
    else:
        # Windows ends the process once the handler returns: after the flush.
        assert code in (0, STATUS_CONTROL_C_EXIT), err
    assert took < PROMPT_S
    assert "Traceback" not in err
    monitor.assert_flushed()


# The seam, on every OS: what the handler routine does with each event.


def test_which_console_events_stop() -> None:
    for event in (
        stop_requests.CTRL_C_EVENT,
        stop_requests.CTRL_BREAK_EVENT,
        stop_requests.CTRL_CLOSE_EVENT,
        stop_requests.CTRL_SHUTDOWN_EVENT,
    ):
        assert stop_requests.stops_for(event, service_session=False)
        assert stop_requests.stops_for(event, service_session=True)
    # Logoff: the user's own session ends; in session 0 it is any user's logoff.
    assert stop_requests.stops_for(stop_requests.CTRL_LOGOFF_EVENT, service_session=False)
    assert not stop_requests.stops_for(stop_requests.CTRL_LOGOFF_EVENT, service_session=True)
    assert not stop_requests.stops_for(3, service_session=False)


def test_ctrl_break_sets_stop_and_returns_at_once() -> None:
    stop = threading.Event()
    with StopRequests(stop, service_session=False) as requests:
        assert requests.control_event(stop_requests.CTRL_BREAK_EVENT) is True
        assert stop.is_set()


def test_a_closing_console_is_held_until_the_flush_is_done() -> None:
    stop = threading.Event()
    answers: list[bool] = []
    with StopRequests(stop, grace_s=60, service_session=False) as requests:
        # Windows calls the routine on a thread of its own.
        handler = threading.Thread(
            target=lambda: answers.append(requests.control_event(stop_requests.CTRL_CLOSE_EVENT))
        )
        handler.start()
        assert stop.wait(10)
        # The main thread now writes its flush; the routine must not return before it ends.
        handler.join(timeout=0.3)
        assert handler.is_alive() and not answers
    handler.join(timeout=10)
    assert answers == [True]


def test_a_closing_console_waits_no_longer_than_the_grace() -> None:
    stop = threading.Event()
    with StopRequests(stop, grace_s=0.2, service_session=False) as requests:
        started = time.monotonic()
        assert requests.control_event(stop_requests.CTRL_SHUTDOWN_EVENT) is True
        assert 0.15 < time.monotonic() - started < 10
        assert stop.is_set()


def test_a_logoff_in_session_0_is_handled_without_stopping() -> None:
    stop = threading.Event()
    with StopRequests(stop, service_session=True) as requests:
        # True: handled, so Windows' default handler does not end a system-wide monitor.
        assert requests.control_event(stop_requests.CTRL_LOGOFF_EVENT) is True
        assert not stop.is_set()


@pytest.mark.parametrize(
    "name", ["SIGINT", "SIGTERM", "SIGBREAK"] if WINDOWS else ["SIGINT", "SIGTERM"]
)
def test_signals_set_stop_and_the_old_handlers_come_back(name: str) -> None:
    signum = getattr(signal, name)
    before = signal.getsignal(signum)
    stop = threading.Event()
    with StopRequests(stop):
        signal.raise_signal(signum)
        assert stop.wait(10)
    assert signal.getsignal(signum) is before
