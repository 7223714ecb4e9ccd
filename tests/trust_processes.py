"""Real listening child processes and the real probe, for the trust tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from portwatch.core.types import Listener, Proto, Sample
from portwatch.core.watchlist import WatchList, WatchSpec
from portwatch.probe.base import Probe

# Opens COUNT TCP listeners on 127.0.0.1 (ephemeral ports), optionally renames itself
# first, prints the ports on one line and holds them until stdin closes.
LISTEN_CODE = """
import socket, sys
count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
rename = sys.argv[2] if len(sys.argv) > 2 else ""
if rename:
    with open("/proc/self/comm", "w") as comm:
        comm.write(rename)
socks = []
for _ in range(count):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks), flush=True)
sys.stdin.read()
"""

REAL_PYTHON = os.path.realpath(sys.executable)


def child_env() -> dict[str, str]:
    """The test's environment without the variables that make a program load other
    code (the test runner's PYTHONPATH among them): a child started with those is,
    rightly, never known."""
    from portwatch.probe.extracode import CODE_LOADING_ENV

    return {k: v for k, v in os.environ.items() if k not in CODE_LOADING_ENV}


def python_copy(target: Path, extra: bytes = b"") -> Path:
    """A copy of the real interpreter at ``target``; ``extra`` bytes appended after the
    ELF image give a different hash while the program still runs the same."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".new")
    shutil.copyfile(REAL_PYTHON, tmp)
    if extra:
        with open(tmp, "ab") as handle:
            handle.write(extra)
    os.chmod(tmp, 0o700)
    os.replace(tmp, target)
    return target


class Child:
    """A listening child process; ``ports`` as it reported them."""

    def __init__(self, proc: subprocess.Popen[str], ports: list[int]) -> None:
        self.proc = proc
        self.ports = ports

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return self.ports[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()


def start(argv: Sequence[str], cwd: Path | None = None) -> Child:
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=child_env(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip():
        proc.kill()
        proc.wait()
        raise AssertionError(f"child {argv!r} did not report its ports")
    return Child(proc, [int(p) for p in line.split()])


@contextmanager
def listening(argv: Sequence[str], cwd: Path | None = None) -> Iterator[Child]:
    child = start(argv, cwd)
    try:
        yield child
    finally:
        child.stop()


def watch(*ports: int) -> WatchList:
    return WatchList(tuple(WatchSpec(p, p, (Proto.TCP,)) for p in ports))


def wait_for(
    probe: Probe,
    watched: WatchList,
    found: Callable[[Sample], bool],
    timeout: float = 10.0,
) -> Sample:
    """Poll the real probe until ``found(sample)``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        sample = probe.poll(watched)
        if found(sample):
            return sample
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last sample {sample}")
        time.sleep(0.02)  # polling interval of a deadline loop, not a timing assumption


def listener_of(probe: Probe, child: Child, port: int | None = None) -> Listener:
    """The child's listener on ``port`` as the real probe reports it."""
    port = child.port if port is None else port

    def mine(sample: Sample) -> bool:
        return any(
            lst.port == port and lst.owner is not None and lst.owner.pid == child.pid
            for lst in sample.listeners
        )

    sample = wait_for(probe, watch(port), mine)
    return next(
        lst
        for lst in sample.listeners
        if lst.port == port and lst.owner is not None and lst.owner.pid == child.pid
    )
