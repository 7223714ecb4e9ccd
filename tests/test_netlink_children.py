"""Child processes holding real loopback sockets, for the probe tests (no tests here).

A child opens the sockets described by a JSON list (``fork`` starts a worker process
holding every socket opened before it), prints one JSON line describing
what it opened, then obeys one-line commands on stdin (``send I N``: push N bytes
over connection I and wait until the peer has read them) until stdin closes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

import psutil

CHILD = r"""
import json, socket, sys

def fam(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET

def where(host, port):
    # A scoped link-local address ("fe80::1%eth0") binds with its device's index.
    if "%" in host:
        address, _, scope = host.partition("%")
        return (address, port, 0, socket.if_nametoindex(scope))
    return (host, port)

def options(s, spec):
    # Optional: bind to a device (SO_BINDTODEVICE), set IPV6_V6ONLY, join an
    # SO_REUSEPORT group or share the port with SO_REUSEADDR before binding.
    if spec.get("reuseport"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if spec.get("reuseaddr"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if "device" in spec:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, spec["device"].encode())
    if "v6only" in spec:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, spec["v6only"])
    return s

keep, out, pairs = [], [], []
for spec in json.loads(sys.argv[1]):
    kind, host = spec["kind"], spec["host"]
    if kind == "tcp-listen":
        s = options(socket.socket(fam(host), socket.SOCK_STREAM), spec)
        s.bind(where(host, spec.get("port", 0)))
        s.listen(16)
        keep.append(s)
        out.append({"kind": kind, "host": host, "port": s.getsockname()[1]})
    elif kind == "udp":
        s = options(socket.socket(fam(host), socket.SOCK_DGRAM), spec)
        s.bind((host, spec.get("port", 0)))
        keep.append(s)
        out.append({"kind": kind, "host": host, "port": s.getsockname()[1]})
    elif kind == "udp-connected":
        peer = socket.socket(fam(host), socket.SOCK_DGRAM)
        peer.bind((host, spec.get("port", 0)))
        s = socket.socket(fam(host), socket.SOCK_DGRAM)
        s.connect(peer.getsockname()[:2])
        peer.connect(s.getsockname()[:2])  # both ends connected: neither is a listener
        keep += [peer, s]
        out.append({"kind": kind, "host": host, "port": peer.getsockname()[1],
                    "client_port": s.getsockname()[1]})
    elif kind == "tcp-pair":
        lst = socket.socket(fam(host), socket.SOCK_STREAM)
        lst.bind((host, spec.get("port", 0)))
        lst.listen(16)
        cli = socket.create_connection(lst.getsockname()[:2])
        srv, _ = lst.accept()
        keep += [lst, cli, srv]
        pairs.append((cli, srv))
        out.append({"kind": kind, "host": host, "port": lst.getsockname()[1],
                    "client_port": cli.getsockname()[1], "pair": len(pairs) - 1})
    elif kind == "fork":
        # A worker that inherits every socket opened so far, as pre-fork servers do.
        import os
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(w)
            os.read(r, 1)  # returns when the parent exits and the pipe closes
            os._exit(0)
        os.close(r)
        keep.append(w)
        out.append({"kind": kind, "host": host, "pid": pid})
    else:
        raise SystemExit("unknown kind " + kind)
print(json.dumps(out), flush=True)
for line in sys.stdin:
    words = line.split()
    if words and words[0] == "send":
        cli, srv = pairs[int(words[1])]
        n = int(words[2])
        cli.sendall(b"x" * n)
        got = 0
        while got < n:
            got += len(srv.recv(n - got))
        print("ok", flush=True)
    elif words and words[0] == "listen":
        s = socket.socket(fam(words[1]), socket.SOCK_STREAM)
        s.bind((words[1], 0))
        s.listen(16)
        keep.append(s)
        print(s.getsockname()[1], flush=True)
"""


@dataclass
class SocketChild:
    """A running child process holding sockets; ``opened`` is what it reported."""

    proc: subprocess.Popen[str]
    opened: list[dict[str, Any]]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, pair: int, nbytes: int) -> None:
        """Move ``nbytes`` over connection ``pair`` and wait until the peer read them."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"send {pair} {nbytes}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def listen(self, host: str) -> int:
        """Open one more TCP listener in this (already running) child; its port."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"listen {host}\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def stop(self) -> None:
        """Close stdin (the child exits) and reap it."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def other_device() -> tuple[str, str | None] | None:
    """A device besides ``lo`` with an IPv4 address, and its IPv6 link-local address
    (for sockets bound to a device, or to an address only that device has)."""
    for name, addresses in sorted(psutil.net_if_addrs().items()):
        if name == "lo":
            continue
        ipv4 = [a for a in addresses if a.family == socket.AF_INET]
        local6 = [
            a.address.partition("%")[0]
            for a in addresses
            if a.family == socket.AF_INET6 and a.address.lower().startswith("fe80")
        ]
        if ipv4:
            return name, (local6[0] if local6 else None)
    return None


def python_for(user: int | None) -> str | None:
    """An interpreter that ``user`` may run (the venv may live under root's home)."""
    if user is None:
        return sys.executable
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if not candidate:
            continue
        try:
            check = subprocess.run(
                [candidate, "-c", "pass"], user=user, capture_output=True, check=False, cwd="/"
            )
        except OSError:  # not executable for that user
            continue
        if check.returncode == 0:
            return candidate
    return None


def start_child(
    specs: list[dict[str, Any]],
    user: int | None = None,
    stderr: IO[Any] | None = None,
    prefix: Sequence[str] = (),
    group: int | None = None,
) -> SocketChild:
    """Start a child holding ``specs`` sockets (as ``user`` if given) and read its report.

    ``stderr``: an open file for the child's standard error (a daemon's log), else ours;
    ``prefix``: a command that runs the child (``unshare -n``: in a network namespace);
    ``group``: its group, alone (else it keeps ours, and only that group may inspect it).
    """
    python = python_for(user)
    assert python is not None, f"no interpreter runnable as uid {user}"
    proc = subprocess.Popen(
        [*prefix, python, "-c", CHILD, json.dumps(specs)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        user=user,
        group=group,
        extra_groups=None if group is None else [],
        cwd="/",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError(f"socket child exited with {proc.returncode}")
    return SocketChild(proc, json.loads(line))
