"""Closing a connection through the probe: a real one as root (the peer sees a reset),
the kernel's refusal for an unprivileged user, and the cases where it cannot be done."""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from childsockets import wait_for
from connpeers import Peers

from portwatch.core.types import Proto
from portwatch.probe.connection_control import (
    CloseOutcome,
    close_connection,
    close_refusal,
    has_net_admin,
    mib_tcprow,
)
from portwatch.probe.connections import Connection, list_connections

ROOT = Path(__file__).resolve().parent.parent
linux_root = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or not has_net_admin(),
    reason="needs Linux and root (CAP_NET_ADMIN)",
)


def _conn(**kw: object) -> Connection:
    values: dict[str, object] = {
        "proto": Proto.TCP,
        "family": "IPv4",
        "local_address": "10.1.2.3",
        "local_port": 5000,
        "remote_address": "192.0.2.9",
        "remote_port": 443,
        "state": "ESTABLISHED",
        "pid": 10,
        "process": "srv",
    }
    values.update(kw)
    return Connection(**values)  # type: ignore[arg-type]


def _find(local_port: int, remote_port: int) -> Connection | None:
    for item in list_connections(None):
        if item.local_port == local_port and item.remote_port == remote_port:
            return item
    return None


@linux_root
def test_closing_a_real_connection_resets_the_peer_and_leaves_the_listener() -> None:
    peers = Peers.start()
    try:
        client_end = wait_for(lambda: _find(peers.client_port, peers.server_port))
        assert isinstance(client_end, Connection)
        result = close_connection(client_end)
        assert result.outcome is CloseOutcome.CLOSED, result.message
        # The server, reading from the other end, sees the connection reset.
        assert peers.server_outcome()["ended"] == "reset"
        # Asked again for the server's end, now gone: reported gone, and the port's
        # listener (same local port) is not mistaken for it.
        again = close_connection(
            _conn(
                local_address="127.0.0.1",
                local_port=peers.server_port,
                remote_address="127.0.0.1",
                remote_port=peers.client_port,
            )
        )
        assert again.outcome is CloseOutcome.GONE, again.message
        with socket.create_connection(("127.0.0.1", peers.server_port), timeout=5):
            pass  # still listening
    finally:
        peers.stop()


@linux_root
def test_an_unprivileged_user_is_refused_by_the_kernel_with_a_clear_message() -> None:
    peers = Peers.start()
    try:
        # The child imports portwatch as root (the venv may be private to root), then
        # drops to uid 65534 for good before it asks to close root's connection.
        code = (
            "import json, os, sys; from portwatch.probe import connection_control as cc;"
            " from portwatch.probe.connections import Connection; from portwatch.core.types"
            " import Proto; import portwatch.probe.netlink.sockdiag;"
            " os.setgroups([]); os.setgid(65534); os.setuid(65534);"
            " c = Connection(Proto.TCP, 'IPv4', '127.0.0.1', int(sys.argv[1]), '127.0.0.1',"
            " int(sys.argv[2]), 'ESTABLISHED', None, None);"
            " r = cc.close_connection(c);"
            " print(json.dumps([r.outcome.value, r.message, cc.close_refusal(c)]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, *map(str, (peers.client_port, peers.server_port))],
            capture_output=True,
            text=True,
            timeout=30,
            cwd="/",
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert out.returncode == 0, out.stderr
        outcome, message, refusal = json.loads(out.stdout)
        assert outcome == "denied"
        assert "Access denied" in message and "administrator" in message
        assert refusal is not None and "administrator" in refusal
        # Root's connection is untouched.
        assert _find(peers.client_port, peers.server_port) is not None
        assert peers.server.poll() is None
    finally:
        peers.stop()


def test_udp_time_wait_and_macos_are_refused_in_plain_words() -> None:
    udp = close_refusal(_conn(proto=Proto.UDP, state="NONE"), "linux", lambda: True)
    assert udp is not None and "UDP" in udp and "Ending the program" in udp
    assert "already closed" in (close_refusal(_conn(state="TIME_WAIT"), "linux") or "")
    mac = close_refusal(_conn(), "darwin")
    assert mac is not None and "macOS" in mac
    assert close_refusal(_conn(), "linux", lambda: False) is not None
    assert close_refusal(_conn(), "linux", lambda: True) is None
    assert close_refusal(_conn(local_address="::1", remote_address="::1"), "win32") is not None
    result = close_connection(_conn(proto=Proto.UDP, state="NONE"), platform="linux")
    assert result.outcome is CloseOutcome.UNSUPPORTED


def test_a_kernel_without_destroy_support_is_named() -> None:
    def no_destroy(_c: Connection) -> int:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    result = close_connection(_conn(), platform="linux", linux_destroy=no_destroy)
    assert result.outcome is CloseOutcome.UNSUPPORTED
    assert "CONFIG_INET_DIAG_DESTROY" in result.message


def test_windows_asks_set_tcp_entry_to_delete_the_exact_row() -> None:
    rows: list[bytes] = []

    def set_tcp_entry(row: bytes) -> int:
        rows.append(row)
        return 0

    result = close_connection(_conn(), platform="win32", set_tcp_entry=set_tcp_entry)
    assert result.closed
    (row,) = rows
    assert struct.unpack("<5I", row)[0] == 12  # MIB_TCP_STATE_DELETE_TCB
    # Addresses and ports in network byte order inside the DWORDs, as Windows keeps them.
    assert row[4:8] == socket.inet_aton("10.1.2.3") and row[12:16] == socket.inet_aton("192.0.2.9")
    assert row[8:10] == (5000).to_bytes(2, "big") and row[16:18] == (443).to_bytes(2, "big")
    assert mib_tcprow(_conn()) == row

    def not_admin(_row: bytes) -> int:
        return 317  # what SetTcpEntry returns without elevation

    denied = close_connection(_conn(), platform="win32", set_tcp_entry=not_admin)
    assert denied.outcome is CloseOutcome.DENIED and "administrator" in denied.message
