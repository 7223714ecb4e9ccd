"""A real TCP connection between two child processes: a server that accepts one client and
reports how the connection ended, and a client that connects and holds it.

The server prints ``{"port": P}`` once listening and ``ready`` once it has accepted; when
the connection ends it prints ``{"ended": "reset"|"eof"|"<error name>", "received": N}``.
The client prints ``{"local_port": L}`` once connected and then waits for stdin to close.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

SERVER_CODE = r"""
import json, socket, sys
srv = socket.socket()
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(1)
print(json.dumps({"port": srv.getsockname()[1]}), flush=True)
conn, _ = srv.accept()
print("ready", flush=True)
received = 0
ended = "eof"
try:
    while True:
        data = conn.recv(65536)
        if not data:
            break
        received += len(data)
except ConnectionResetError:
    ended = "reset"
except OSError as exc:
    ended = type(exc).__name__
print(json.dumps({"ended": ended, "received": received}), flush=True)
sys.stdin.read()
"""

CLIENT_CODE = r"""
import json, socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
send = int(sys.argv[2])
if send:
    c.sendall(b"x" * send)
print(json.dumps({"local_port": c.getsockname()[1]}), flush=True)
sys.stdin.read()
"""


def _child(code: str, *args: str, user: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [os.path.realpath(sys.executable), "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        user=user,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )


def _line(process: subprocess.Popen[str]) -> Any:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("the child ended before it answered")
    return json.loads(line) if line.startswith("{") else line.strip()


@dataclass
class Peers:
    """The two children of one connection (``server_port`` ← ``client_port``)."""

    server: subprocess.Popen[str]
    client: subprocess.Popen[str]
    server_port: int
    client_port: int

    @classmethod
    def start(cls, port: int = 0, send: int = 0) -> Peers:
        server = _child(SERVER_CODE, str(port))
        server_port = int(_line(server)["port"])
        client = _child(CLIENT_CODE, str(server_port), str(send))
        client_port = int(_line(client)["local_port"])
        assert _line(server) == "ready"
        return cls(server, client, server_port, client_port)

    def server_outcome(self) -> dict[str, Any]:
        """What the server saw when the connection ended (blocks until it ends)."""
        result: dict[str, Any] = _line(self.server)
        return result

    def stop(self) -> None:
        for process in (self.client, self.server):
            if process.stdin:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()
