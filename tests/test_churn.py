"""Short-lived sockets are not false alerts: a socket closed (or whose process exited)
between the socket dump and the owner lookup is gone, not "unattributed"."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="both probes exist on Linux")
@pytest.mark.parametrize("kind", ["psutil", "netlink"])
def test_churning_sockets_are_never_unattributed(kind: str) -> None:
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
