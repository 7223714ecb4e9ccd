"""``portwatch connections``: real loopback connections from a child process."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_runner import run
from loopback_traffic import TEN_MB, LoopbackTraffic
from platforms import wine_gives_pid_0
from test_netlink_children import SocketChild, start_child

# Every test here finds its rows by the child's pid.
pytestmark = wine_gives_pid_0


@pytest.fixture
def child() -> Iterator[SocketChild]:
    started = start_child(
        [
            {"kind": "tcp-pair", "host": "127.0.0.1"},
            {"kind": "tcp-pair", "host": "::1"},
            {"kind": "udp-connected", "host": "127.0.0.1"},
        ]
    )
    yield started
    started.stop()


def _rows(data_dir: Path, *args: str) -> list[dict[str, Any]]:
    result = run(data_dir, "connections", "--json", *args)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def test_connections_json_lists_both_ends_with_their_bytes(
    data_dir: Path, child: SocketChild
) -> None:
    # 10 MB to the server and 3 MB back, so each direction is told apart.
    with LoopbackTraffic() as traffic:
        traffic.send(TEN_MB, THREE_MB)
        assert traffic.client_port is not None
        pair = {"port": traffic.port, "client_port": traffic.client_port}
        _check_traffic(data_dir, traffic.pid, pair, child)


THREE_MB = 3_000_000


def _check_traffic(data_dir: Path, pid: int, pair: dict[str, int], child: SocketChild) -> None:
    port = pair["port"]
    assert run(data_dir, "watch", "add", f"{port}/tcp").returncode == 0
    rows = _rows(data_dir)
    mine = [r for r in rows if r["pid"] == pid]
    server = next(r for r in mine if r["local_port"] == port)
    client = next(r for r in mine if r["remote_port"] == port)
    assert server["remote_port"] == client["local_port"] == pair["client_port"]
    assert server["state"] == client["state"] == "ESTABLISHED"
    assert server["local_address"] == server["remote_address"] == "127.0.0.1"
    assert server["process"] and server["proto"] == "tcp"
    if sys.platform.startswith("linux"):
        # The kernel's own counters, each end its own direction.
        assert server["bytes_in"] == pytest.approx(TEN_MB, rel=0.05)
        assert client["bytes_out"] == pytest.approx(TEN_MB, rel=0.05)
        assert server["bytes_out"] == pytest.approx(THREE_MB, rel=0.05)
        assert client["bytes_in"] == pytest.approx(THREE_MB, rel=0.05)
    # The other pair's port is not watched: not listed without --all.
    other = child.opened[1]["port"]
    assert not [r for r in rows if other in (r["local_port"], r["remote_port"])]


def test_all_lists_unwatched_connections_and_udp_with_a_remote(
    data_dir: Path, child: SocketChild
) -> None:
    rows = _rows(data_dir, "--all")
    mine = [r for r in rows if r["pid"] == child.pid]
    v6 = child.opened[1]
    assert {r["local_port"] for r in mine if r["family"] == "IPv6"} >= {
        v6["port"],
        v6["client_port"],
    }
    udp = child.opened[2]
    udp_rows = [r for r in mine if r["proto"] == "udp"]
    assert {(r["local_port"], r["remote_port"]) for r in udp_rows} == {
        (udp["port"], udp["client_port"]),
        (udp["client_port"], udp["port"]),
    }
    # No per-socket byte counters for UDP: unknown, not zero.
    assert all(r["bytes_in"] is None and r["bytes_out"] is None for r in udp_rows)
    # Listeners are not connections.
    assert not [r for r in mine if r["state"] == "LISTEN"]


def test_connections_text_names_the_process(data_dir: Path, child: SocketChild) -> None:
    port = child.opened[0]["port"]
    assert run(data_dir, "watch", "add", f"{port}/tcp").returncode == 0
    result = run(data_dir, "connections")
    assert result.returncode == 0, result.stderr
    assert f"127.0.0.1:{port}" in result.stdout
    assert f"({child.pid})" in result.stdout
    assert "ESTABLISHED" in result.stdout
