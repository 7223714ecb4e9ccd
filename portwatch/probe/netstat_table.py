"""macOS's socket table as ``netstat -an`` prints it, which needs no administrator rights.

Without root, psutil on macOS can only ask each process for its own sockets, and the OS
refuses that for other users' and system processes. netstat reads the kernel's table
(``net.inet.tcp.pcblist_n``) unprivileged: it has every listening socket, without its owner.
Those sockets are reported as unattributed listeners instead of going missing.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from portwatch.core.types import Family, Proto

log = logging.getLogger(__name__)

_TIMEOUT_S = 5.0
TableReader = Callable[[], str]


@dataclass(frozen=True)
class TableListener:
    """A listening socket from the table: no pid, no program."""

    proto: Proto
    family: Family
    address: str
    port: int


def read_netstat() -> str:
    """``netstat -an`` for TCP and UDP; empty when netstat cannot run."""
    out: list[str] = []
    for proto in ("tcp", "udp"):
        try:
            result = subprocess.run(
                ["/usr/sbin/netstat", "-an", "-p", proto],
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.debug("netstat -p %s failed: %s", proto, exc)
            continue
        out.append(result.stdout)
    return "\n".join(out)


def _split_address(text: str) -> tuple[str, int] | None:
    # BSD netstat joins address and port with the last dot: "127.0.0.1.8123", "*.5000",
    # "fe80::1%lo0.123".
    host, sep, port = text.rpartition(".")
    if not sep or not port.isdigit():
        return None
    number = int(port)
    if not 0 < number < 65536:
        return None
    return host, number


def parse_netstat(text: str) -> list[TableListener]:
    """The listening sockets in ``netstat -an`` output (TCP in LISTEN, unconnected UDP)."""
    found: list[TableListener] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or not fields[0].startswith(("tcp", "udp")):
            continue
        kind, local, remote = fields[0], fields[3], fields[4]
        proto = Proto.TCP if kind.startswith("tcp") else Proto.UDP
        if proto is Proto.TCP and (len(fields) < 6 or fields[5] != "LISTEN"):
            continue
        if proto is Proto.UDP and remote != "*.*":
            continue
        split = _split_address(local)
        if split is None:
            continue
        host, port = split
        # tcp46/udp46: one IPv6 socket that also takes IPv4, as psutil reports it.
        family = Family.IPV4 if kind.endswith("4") and not kind.endswith("46") else Family.IPV6
        if host == "*":
            host = "0.0.0.0" if family is Family.IPV4 else "::"  # noqa: S104 (read, never bound)
        found.append(TableListener(proto, family, host, port))
    return found
