"""Few file descriptors, a full disk, little memory: one clear line, and monitoring goes on.

Run against the real command: a monitor whose descriptor limit is lowered while it runs
(``prlimit``), and a data folder on a real, tiny tmpfs. What it must never do: print a
traceback or "--- Logging error ---", say the same thing every poll, or report what it
could not inspect as a fact (an owner "uninspectable", a new owner, a false alert).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from childsockets import ChildSockets, free_port, wait_for
from cli_runner import RunningMonitor, monitoring, portwatch_cmd, run

from portwatch.core.types import Sample
from portwatch.core.watchlist import WatchList
from portwatch.engine.monitor import Monitor
from portwatch.files import ResourceShortage

SLOW_S = 40.0
INTERVAL_S = 0.2
ALERTS = {"unknown-owner", "unattributed-owner", "binary-changed"}

linux_root = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0,
    reason="lowers a running process's limits and mounts a tmpfs: Linux as root",
)


@contextmanager
def listening(port: int) -> Iterator[ChildSockets]:
    child = ChildSockets.start([("tcp", "127.0.0.1", port, "listen")])
    try:
        yield child
    finally:
        child.stop()


def watch(data_dir: Path, *ports: int) -> None:
    for port in ports:
        result = run(data_dir, "watch", "add", f"{port}/tcp")
        assert result.returncode == 0, result.stderr


def assert_no_traceback(monitor: RunningMonitor) -> None:
    text = "".join(monitor.raw)
    assert "Traceback" not in text
    assert "Logging error" not in text


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


# -- few file descriptors -------------------------------------------------------------


@linux_root
@pytest.mark.parametrize("probe", ["netlink", "psutil"])
def test_out_of_descriptors_is_one_line_no_false_verdict_and_monitoring_resumes(
    tmp_path: Path, probe: str
) -> None:
    data = tmp_path / "data"
    seen_port, new_port = free_port(), free_port()
    watch(data, seen_port, new_port)
    with listening(seen_port), monitoring(data, "--probe", probe) as monitor:
        wait_for(lambda: monitor.events_for(seen_port, "unknown-owner"), timeout=SLOW_S)
        # From now on every descriptor the monitor asks for is refused (EMFILE: the
        # lowest free number is above the limit); those it holds stay usable.
        pid = monitor.process.pid
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, hard))
        with listening(new_port):
            # Let several polls run short; the line at the end counts them.
            limited_until = time.monotonic() + 12 * INTERVAL_S
            wait_for(lambda: time.monotonic() > limited_until)
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
            wait_for(
                lambda: [e for e in monitor.events_for(new_port) if e["pid"] is not None],
                timeout=SLOW_S,
            )
    assert_no_traceback(monitor)
    # Nothing that was not inspected became a verdict: the listener seen before kept its
    # owner, and the new one was judged once, when it could be inspected.
    # (The new listener's child exits before the monitor: its close may be seen too.)
    assert [e["event"] for e in monitor.events_for(seen_port)] == [
        "listener-opened",
        "unknown-owner",
    ]
    new_events = monitor.events_for(new_port)
    assert [e["event"] for e in new_events][:2] == ["listener-opened", "unknown-owner"]
    assert [e["event"] for e in new_events][2:] in ([], ["listener-closed"])
    assert all(e["pid"] is not None for e in new_events)
    assert not [
        e
        for e in monitor.events
        if e["event"] == "unattributed-owner" and e["port"] in (seen_port, new_port)
    ]
    # One line for the whole shortage, naming it, and one when it is over.
    assert len(monitor.errors_with("out of file descriptors")) == 1, monitor.errors
    (again,) = monitor.errors_with("polling works again")
    assert int(again.split("after ")[1].split()[0]) >= 3


@linux_root
def test_descriptor_limit_at_start_is_one_line_each_and_no_traceback(tmp_path: Path) -> None:
    """Started with almost no descriptors: each thing that cannot be had says so once
    (the history, the polls); never a traceback, never an owner 'uninspectable'."""
    data = tmp_path / "data"
    port = free_port()
    watch(data, port)

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (6, 6))

    with listening(port):
        result = subprocess.run(
            [*portwatch_cmd(), "--data-dir", str(data), "monitor", "--duration", "2"],
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=limited,  # only setrlimit, before exec
            check=False,
        )
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    assert "Logging error" not in text
    lines = [line for line in result.stderr.splitlines() if "out of file descriptors" in line]
    assert lines, result.stderr
    # Each distinct problem once, not once per poll.
    assert len(lines) == len(set(lines)), result.stderr
    mine = [line for line in result.stdout.splitlines() if f":{port} " in line]
    assert not [line for line in mine if "uninspectable" in line or "unattributed" in line]


@linux_root
@pytest.mark.parametrize(
    ("command", "needs_more"),
    [
        (("scan",), True),
        (("export", "-o", "-"), True),
        # These two need no more than Python itself: they work with the least it takes.
        (("trust", "list"), False),
        (("watch", "list"), False),
    ],
)
def test_commands_short_of_descriptors_say_so_in_one_line(
    tmp_path: Path, command: tuple[str, ...], needs_more: bool
) -> None:
    data = tmp_path / "data"
    watch(data, free_port())
    assert run(data, "monitor", "--duration", "0.3").returncode == 0  # a history to export
    said = 0
    for limit in range(5, 13):

        def limited(limit: int = limit) -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        result = subprocess.run(
            [*portwatch_cmd(), "--data-dir", str(data), *command],
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=limited,  # only setrlimit, before exec
            check=False,
        )
        assert "Traceback" not in result.stderr, (limit, result.stderr)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if "error:" in line]
            assert len(errors) == 1, (limit, result.stderr)
            assert "out of file descriptors" in errors[0], (limit, result.stderr)
            said += 1
    assert bool(said) is needs_more


# -- a full disk ------------------------------------------------------------------------


@linux_root
def test_full_disk_while_monitoring_is_one_line_and_history_catches_up(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "1m") as data:
        port = free_port()
        watch(data, port)
        with monitoring(data, "--probe", "netlink") as monitor:
            wait_for((data / "history.sqlite3-wal").exists, timeout=SLOW_S)
            filler = data / "filler"
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True, check=False
            )
            with listening(port):
                wait_for(lambda: monitor.events_for(port, "unknown-owner"), timeout=SLOW_S)
                wait_for(lambda: monitor.errors_with("history could not be written"))
                failing_until = time.monotonic() + 8 * INTERVAL_S
                wait_for(lambda: time.monotonic() > failing_until)
                filler.unlink()
                wait_for(lambda: monitor.errors_with("history is written again"), timeout=SLOW_S)
        assert_no_traceback(monitor)
        assert len(monitor.errors_with("history could not be written")) == 1, monitor.errors
        # Monitoring went on: the new listener was judged and alerted, and what was
        # kept in memory meanwhile reached the history.
        exported = run(data, "export", "-o", "-")
    assert exported.returncode == 0, exported.stderr
    assert f",{port}," in exported.stdout


@linux_root
@pytest.mark.parametrize("filled", [False, True], ids=["too small", "already full"])
def test_data_folder_too_small_for_the_history_monitors_without_recording(
    tmp_path: Path, filled: bool
) -> None:
    with tmpfs(tmp_path / "tiny", "64k") as data:
        port = free_port()
        watch(data, port)
        if filled:  # not even the history's lock file can be written
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={data / 'filler'}", "bs=4k"],
                capture_output=True,
                check=False,
            )
        with listening(port), monitoring(data, "--probe", "netlink") as monitor:
            wait_for(lambda: monitor.events_for(port, "unknown-owner"), timeout=SLOW_S)
        assert_no_traceback(monitor)
        (line,) = monitor.errors_with("monitoring goes on without recording history")
        assert "full" in line or "No space left" in line


# -- little memory ------------------------------------------------------------------------


class _ShortProbe:
    """A probe that runs out of memory or descriptors for a number of polls (a seam the
    engine owns: the real probe is exercised by the tests above)."""

    name = "short"

    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures

    def poll(self, watched: WatchList) -> Sample:
        if self.failures:
            raise self.failures.pop(0)
        return Sample(wall=time.time(), mono=time.monotonic(), listeners=())

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (MemoryError, "out of memory"),
        (lambda: ResourceShortage("out of file descriptors"), "out of file descriptors"),
    ],
)
def test_a_shortage_in_the_poll_is_told_once_and_the_end_too(
    failure: Callable[[], BaseException], said: str
) -> None:
    monitor = Monitor(_ShortProbe([failure() for _ in range(5)]), None, WatchList.default())
    results = [monitor.tick() for _ in range(6)]
    assert [r.ok for r in results] == [False] * 5 + [True]
    warnings = [w for r in results for w in r.warnings]
    assert len(warnings) == 2
    assert warnings[0].startswith(said)
    assert warnings[1] == "polling works again after 5 failed polls"
    assert all(not r.events and not r.views for r in results[:5])


def test_out_of_memory_while_loading_portwatch_is_one_line() -> None:
    """A memory limit (ulimit -v) reached while portwatch's own modules load ended in
    the traceback of an import. (The limit itself is machine-specific, so the
    MemoryError is raised at the import of a module the entry point needs.)"""
    code = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def short(name, *args, **kwargs):\n"
        "    if name == 'portwatch.cli.common':\n"
        "        raise MemoryError\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = short\n"
        "sys.argv = ['portwatch', 'scan']\n"
        "from portwatch.__main__ import main\n"
        "sys.exit(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stderr == "portwatch: error: out of memory while starting; portwatch stopped\n"
