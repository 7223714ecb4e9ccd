"""The netlink probe patches the last poll's listeners when few sockets changed.

A real child opens, closes, shares and forks sockets between polls; after every step
the patched listeners must be what a probe that never saw the earlier polls reads
(and, as in every test, each patch is checked against a full pass over the same rows:
see ``verify_netlink_patches`` in conftest.py).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from portwatch.core.types import Listener, Proto
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.probe.netlink import NetlinkProbe

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_NETLINK"), reason="Linux only")

CHILD = r"""
import os, signal, socket, sys
held, forks = {}, []
def fam(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET
for n in range(40):  # a crowd the changes happen among
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4); held[f"base{n}"] = s
print("ready", flush=True)
for line in sys.stdin:
    words = line.split()
    if words[0] in ("tcp", "udp"):
        kind = socket.SOCK_STREAM if words[0] == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(fam(words[1]), kind)
        if "reuse" in words:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((words[1], int(words[2])))
        if kind == socket.SOCK_STREAM:
            s.listen(4)
        key = f"{words[0]}{len(held)}"
        held[key] = s
        print(key, s.getsockname()[1], flush=True)
    elif words[0] == "close":
        held.pop(words[1]).close()
        print("ok", flush=True)
    elif words[0] == "fork":
        pid = os.fork()
        if pid == 0:
            signal.pause()
            os._exit(0)
        forks.append(pid)
        print(pid, flush=True)
    elif words[0] == "unfork":
        pid = forks.pop()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print("ok", flush=True)
"""


class Child:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.ask_raw(None) == "ready"

    def ask_raw(self, command: str | None) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def open(self, proto: str, host: str, port: int = 0, reuse: bool = False) -> tuple[str, int]:
        key, got = self.ask_raw(f"{proto} {host} {port}{' reuse' if reuse else ''}").split()
        return key, int(got)

    def stop(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture
def child() -> Iterator[Child]:
    running = Child()
    yield running
    running.stop()


def _mine(listeners: tuple[Listener, ...], pids: set[int]) -> list[tuple[object, ...]]:
    return sorted(
        (
            str(lst.endpoint),
            lst.owner.pid if lst.owner else None,
            tuple(sorted(o.pid for o in lst.shared_with)),
            lst.exposure,
        )
        for lst in listeners
        if lst.owner is not None and lst.owner.pid in pids
    )


def test_patched_listeners_match_a_fresh_reading_through_opens_closes_shares_and_forks(
    child: Child,
) -> None:
    every_port = WatchList(
        tuple(parse_spec(f"{low}-{min(low + 4095, 65535)}") for low in range(1, 65536, 4096))
    )
    probe = NetlinkProbe(cpu=lambda: 0.0)
    pids = {child.proc.pid}
    try:
        probe.poll(every_port)
        probe.poll(every_port)

        def check() -> None:
            patched = probe.poll(every_port)
            fresh_probe = NetlinkProbe(cpu=lambda: 0.0)
            try:
                fresh = fresh_probe.poll(every_port)
            finally:
                fresh_probe.close()
            assert _mine(patched.listeners, pids) == _mine(fresh.listeners, pids)
            counts = {(a.port, a.proto): a.listeners for a in patched.activity}
            fresh_counts = {(a.port, a.proto): a.listeners for a in fresh.activity}
            for port, proto in {(p, pr) for p, pr in counts if p in ports}:
                assert counts[(port, proto)] == fresh_counts.get((port, proto)), port

        ports: set[int] = set()
        patches = probe.listeners_patched
        key, port = child.open("tcp", "127.0.0.1")  # a new listener
        ports.add(port)
        check()
        udp_key, udp_port = child.open("udp", "::1")  # a new UDP socket
        ports.add(udp_port)
        check()
        assert probe.listeners_patched >= patches + 2
        assert child.ask_raw(f"close {key}") == "ok"  # one goes
        check()
        # The same port again at once, by the same process: a new socket, same place.
        key, _ = child.open("tcp", "127.0.0.1", port)
        check()
        # Twins on one address and port (SO_REUSEPORT): a full pass decides.
        twin_a, twin_port = child.open("tcp", "127.0.0.1", 0, reuse=True)
        ports.add(twin_port)
        check()
        twin_b, _ = child.open("tcp", "127.0.0.1", twin_port, reuse=True)
        check()
        assert child.ask_raw(f"close {twin_a}") == "ok"
        check()
        # A forked child holds every socket: each listener gains a holder.
        forked = int(child.ask_raw("fork"))
        pids.add(forked)
        check()
        assert child.ask_raw("unfork") == "ok"
        pids.discard(forked)
        check()
        for closing in (twin_b, udp_key, key):
            assert child.ask_raw(f"close {closing}") == "ok"
            check()
        assert probe.listeners_patched >= patches + 5
        assert {p for p in ports} & {
            lst.port
            for lst in probe.poll(every_port).listeners
            if lst.owner
            and lst.owner.pid == child.proc.pid
            and lst.endpoint.proto in (Proto.TCP, Proto.UDP)
        } == set()
    finally:
        probe.close()
