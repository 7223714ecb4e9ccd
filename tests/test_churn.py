"""Short-lived sockets are not false alerts: a socket closed (or whose process exited)
between the socket dump and the owner lookup is gone, not "unattributed"."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections import namedtuple

import psutil
import pytest
from childsockets import free_port

from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.probe import ProbeError, create

CHURN = textwrap.dedent(
    """
    import socket, sys, time
    ports = [int(p) for p in sys.argv[1].split(",")]
    steady = socket.socket()
    steady.bind(("127.0.0.1", int(sys.argv[3])))
    steady.listen()
    end = time.monotonic() + float(sys.argv[2])
    print("ready", flush=True)
    while time.monotonic() < end:
        held = []
        for port in ports:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                s.listen()
            except OSError:
                pass
            held.append(s)
        time.sleep(0.002)  # open just long enough for a dump to see them
        for s in held:
            s.close()
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the netlink probe is Linux's")
def test_churning_sockets_are_never_unattributed() -> None:
    # The netlink probe ties each socket to its inode, so a socket reopened on the same
    # port at once is still told apart. (psutil's rows carry no inode: its check is by
    # endpoint, below, through the probe's seam.)
    kind = "netlink"
    try:
        probe = create(kind)
    except ProbeError as exc:
        pytest.skip(f"the {kind} probe cannot run here: {exc}")
    ports = [free_port() for _ in range(10)]
    steady = free_port()
    watched = WatchList(tuple(parse_spec(f"{p}/tcp") for p in (*ports, steady)))
    child = subprocess.Popen(
        [sys.executable, "-c", CHURN, ",".join(map(str, ports)), "6", str(steady)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        seen = unattributed = polls = steady_seen = 0
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            polls += 1
            for listener in probe.poll(watched).listeners:
                if listener.port in ports:
                    seen += 1
                    unattributed += listener.owner is None
                elif listener.port == steady and listener.owner is not None:
                    steady_seen += 1
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
        probe.close()
    assert unattributed == 0, f"{unattributed} of {seen} sockets shown as unattributed"
    # A socket that stays is still seen, with its owner, at every poll.
    assert steady_seen == polls


Addr = namedtuple("Addr", "ip port")
Row = namedtuple("Row", "fd family type laddr raddr status pid")


class ScriptedPsutil:
    """psutil whose socket table is given per call: the psutil probe's own seam."""

    def __init__(self, tables: list[list[Row]]) -> None:
        self.tables = tables
        self.calls = 0
        self.NoSuchProcess = psutil.NoSuchProcess
        self.ZombieProcess = psutil.ZombieProcess
        self.AccessDenied = psutil.AccessDenied
        self.Error = psutil.Error
        self.CONN_LISTEN = psutil.CONN_LISTEN
        self.CONN_ESTABLISHED = psutil.CONN_ESTABLISHED
        self.Process = psutil.Process
        self.process_iter = psutil.process_iter

    def net_connections(self, kind: str) -> list[Row]:
        table = self.tables[min(self.calls, len(self.tables) - 1)]
        self.calls += 1
        return table


def listen_row(port: int, pid: int | None) -> Row:
    return Row(
        -1 if pid is None else 3,
        socket.AF_INET,
        socket.SOCK_STREAM,
        Addr("127.0.0.1", port),
        (),
        psutil.CONN_LISTEN,
        pid,
    )


def test_psutil_an_unowned_socket_gone_at_the_second_look_is_dropped() -> None:
    from portwatch.probe.psutil_probe import PsutilProbe

    fake = ScriptedPsutil(
        [[listen_row(4001, None), listen_row(4002, None)], [listen_row(4002, None)]]
    )
    probe = PsutilProbe(ps=fake, platform="other")
    watched = WatchList((parse_spec("4001-4002/tcp"),))
    first = probe.poll(watched)
    assert [(li.port, li.owner) for li in first.listeners] == [(4002, None)]
    calls = fake.calls
    again = probe.poll(watched)  # 4002 was checked: no second look this time
    assert [(li.port, li.owner) for li in again.listeners] == [(4002, None)]
    assert fake.calls == calls + 1


def test_psutil_an_unowned_socket_named_at_the_second_look_is_attributed() -> None:
    from portwatch.probe.psutil_probe import PsutilProbe

    me = os.getpid()
    fake = ScriptedPsutil([[listen_row(4003, None)], [listen_row(4003, me)]])
    probe = PsutilProbe(ps=fake, platform="other")
    sample = probe.poll(WatchList((parse_spec("4003/tcp"),)))
    [listener] = sample.listeners
    assert listener.owner is not None and listener.owner.pid == me
