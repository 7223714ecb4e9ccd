"""A child process that moves a known number of bytes through one loopback connection.

The child listens on a port (0: any free one) and prints ``{"port": N}``. Each line
``send N [M]`` written to its stdin makes it open one connection to itself (the first
time) and send N bytes to the server and M (default N) back, at once; when both sides
have read everything it prints ``{"sent": N, "client_port": P}``. The connection stays
open until stdin closes, so a poll can still see it. Used by the CLI, history and chart tests alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from types import TracebackType
from typing import Any

TEN_MB = 10_000_000

CHILD = r"""
import json, socket, sys, threading
lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("127.0.0.1", int(sys.argv[1])))
lst.listen(4)
print(json.dumps({"port": lst.getsockname()[1]}), flush=True)
cli = srv = None
def pump(sock, n):
    chunk = b"x" * (1 << 16)
    left = n
    while left > 0:
        left -= sock.send(chunk[:left] if left < len(chunk) else chunk)
def drain(sock, n):
    got = 0
    while got < n:
        data = sock.recv(1 << 20)
        if not data:
            raise SystemExit("peer closed early")
        got += len(data)
for line in sys.stdin:
    words = line.split()
    if not words or words[0] != "send":
        continue
    n = int(words[1])
    back = int(words[2]) if len(words) > 2 else n
    if cli is None:
        cli = socket.create_connection(lst.getsockname())
        srv, _ = lst.accept()
    jobs = [threading.Thread(target=f, args=a) for f, a in (
        (pump, (cli, n)), (pump, (srv, back)), (drain, (cli, back)), (drain, (srv, n)))]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    print(json.dumps({"sent": n, "client_port": cli.getsockname()[1]}), flush=True)
"""


class LoopbackTraffic:
    """The traffic child; use as a context manager so it is always stopped."""

    def __init__(self, port: int = 0, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        self.port = int(self._reply()["port"])
        self.client_port: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def _reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        timer = threading.Timer(self.timeout_s, self.process.kill)  # never hang on a stuck child
        timer.start()
        try:
            line = self.process.stdout.readline()
        finally:
            timer.cancel()
        if not line:
            raise RuntimeError("the traffic child ended without answering")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def send(self, count: int = TEN_MB, back: int | None = None) -> None:
        """Move ``count`` bytes to the server and ``back`` (default: as many) from it
        through the connection; returns when both sides have read everything."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"send {count} {count if back is None else back}\n")
        self.process.stdin.flush()
        reply = self._reply()
        assert reply["sent"] == count
        self.client_port = int(reply["client_port"])

    def stop(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> LoopbackTraffic:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
