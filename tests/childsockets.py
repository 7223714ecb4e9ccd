"""Real sockets held open by a child process, for tests that need a real owner.

The child opens the sockets it is asked for, prints their ports as one JSON line, and
keeps them open until its stdin is closed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

CHILD_CODE = r"""
import json, socket, sys
# The specs come on the first line of stdin: thousands of them exceed Windows' 32767-character
# command line.
given = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1].startswith("[") else None
specs = json.loads(given or sys.stdin.readline())
held = []
ports = []
for proto, host, port, mode in specs:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(family, kind)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if mode == "listen":
        s.bind((host, port))
        if kind == socket.SOCK_STREAM:
            s.listen(16)
    elif mode == "connect":
        s.connect((host, port))
    held.append(s)
    ports.append(s.getsockname()[1])
print(json.dumps(ports), flush=True)
sys.stdin.read()
"""


@dataclass
class ChildSockets:
    """A child process holding sockets; ``ports`` are the bound local ports in order."""

    process: subprocess.Popen[str]
    ports: list[int] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        specs: Sequence[tuple[str, str, int, str]],
        executable: str | None = None,
        user: int | None = None,
        registry: list[ChildSockets] | None = None,
        args: Sequence[str] = (),
    ) -> ChildSockets:
        """Open ``(proto, host, port, "listen"|"connect")`` sockets in a new process.

        ``executable`` runs the child with another interpreter file (a renamed copy of
        Python, say); ``user`` runs it as another uid; ``args`` go on its command line
        (after the code, so a command line can look like another program's).
        """
        exe = executable or os.path.realpath(sys.executable)
        process = subprocess.Popen(
            [exe, "-c", CHILD_CODE, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            user=user,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        child = cls(process)
        if registry is not None:
            registry.append(child)
        if process.stdin:
            # (OSError: the child died at once; its stderr says why, below.)
            with contextlib.suppress(OSError):
                process.stdin.write(json.dumps([list(s) for s in specs]) + "\n")
                process.stdin.flush()
        line = process.stdout.readline() if process.stdout else ""
        if not line:
            err = process.stderr.read() if process.stderr else ""
            child.stop()
            raise RuntimeError(f"child failed to open sockets: {err}")
        child.ports = json.loads(line)
        return child

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.stdin:
            # (OSError: the child already exited and the pipe is broken.)
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()


def wait_for(condition: Callable[[], object], timeout: float = 15.0, step: float = 0.05) -> object:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)


def free_port(proto: str = "tcp", host: str = "127.0.0.1", also: tuple[str, ...] = ()) -> int:
    """A port that is free right now for both TCP and UDP on ``host`` and on each
    address in ``also`` (a test that listens on 127.0.0.1 and ::1 needs both free)."""
    import socket

    def free_on(address: str, port: int) -> bool:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(family, kind) as probe:
                    probe.bind((address, port))
        except OSError:
            return False
        return True

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_STREAM) as probe_tcp:
            probe_tcp.bind((host, 0))
            port = probe_tcp.getsockname()[1]
        if free_on(host, port) and all(free_on(address, port) for address in also):
            return port
    raise RuntimeError("no free port")
