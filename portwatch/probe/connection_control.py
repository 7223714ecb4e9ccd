"""Closing one connection the user chose, where the OS lets a program do that.

- Linux: ``SOCK_DESTROY`` on the socket-diagnostics netlink socket (what ``ss -K``
  does). The kernel aborts the socket: its program sees the connection aborted and the
  peer gets a reset. Needs CAP_NET_ADMIN (root) and a kernel built with
  ``CONFIG_INET_DIAG_DESTROY``. The socket is first found by a dump, so the request
  names it by its cookie too: a connection that closed meanwhile is reported gone and
  never mistaken for its port's listener.
- Windows: ``SetTcpEntry`` with ``MIB_TCP_STATE_DELETE_TCB`` (IPv4 only; needs an
  administrator).
- macOS and others: no such interface; the user is told to end the process instead.

UDP sockets have no connection to close. Outcomes are plain sentences the window shows
as they are.
"""

from __future__ import annotations

import enum
import errno
import ipaddress
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from portwatch.core.types import Proto
from portwatch.probe.connections import Connection

# CAP_NET_ADMIN's bit in /proc/self/status's CapEff (linux/capability.h).
_CAP_NET_ADMIN = 12
# Windows: MIB_TCP_STATE_DELETE_TCB, and what SetTcpEntry returns without elevation
# (ERROR_ACCESS_DENIED, or the undocumented 317 many Windows versions give instead).
MIB_TCP_STATE_DELETE_TCB = 12
_WIN_DENIED = (5, 317)
_WIN_NOT_FOUND = (1168,)
_MIB_TCPROW = struct.Struct("<5I")

END_PROCESS_HINT = "Ending the program that holds it closes it too."


class CloseOutcome(str, enum.Enum):
    CLOSED = "closed"
    GONE = "gone"
    DENIED = "denied"
    UNSUPPORTED = "unsupported"
    FAILED = "failed"


@dataclass(frozen=True)
class CloseResult:
    outcome: CloseOutcome
    message: str

    @property
    def closed(self) -> bool:
        return self.outcome is CloseOutcome.CLOSED


def _needs_admin(platform: str) -> str:
    if platform == "win32":
        return "Closing a connection needs administrator rights: run portwatch as administrator."
    return (
        "Closing a connection needs administrator rights (CAP_NET_ADMIN): run portwatch "
        "as root, for example with sudo."
    )


def has_net_admin(status: Path = Path("/proc/self/status")) -> bool:
    """True when this process may abort sockets on Linux (CAP_NET_ADMIN is effective)."""
    try:
        text = status.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    return False


def close_refusal(
    connection: Connection,
    platform: str = sys.platform,
    privileged: Callable[[], bool] | None = None,
) -> str | None:
    """Why this connection cannot be closed from here, known before trying; None: try."""
    if connection.proto is Proto.UDP:
        return (
            "A UDP socket has no connection to close (it only remembers a peer). "
            + END_PROCESS_HINT
        )
    if connection.state in ("TIME_WAIT", "CLOSE"):
        return "The connection is already closed; the OS forgets it by itself shortly."
    if platform.startswith("linux"):
        if not (privileged or has_net_admin)():
            return _needs_admin(platform)
        return None
    if platform == "win32":
        if ":" in connection.local_address:
            return "Windows can close IPv4 connections only. " + END_PROCESS_HINT
        return None
    if platform == "darwin":
        return "macOS does not let a program close another program's connection. " + (
            END_PROCESS_HINT
        )
    return "Closing a connection is not supported on this OS. " + END_PROCESS_HINT


# --- Linux -----------------------------------------------------------------------------


def _same(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def _linux_destroy(connection: Connection) -> int:
    """0 when the kernel aborted the socket, else the errno it answered with."""
    from portwatch.probe.netlink import codec
    from portwatch.probe.netlink.sockdiag import Request, SockDiag

    c = connection
    family = socket.AF_INET6 if ":" in c.local_address else socket.AF_INET
    everything_but_listeners = codec.ALL_STATES & ~codec.state_bit(codec.TCP_LISTEN)
    diag = SockDiag()
    try:
        found: tuple[int, bytes] | None = None
        for chunk, start, end in diag.dump(
            Request(family, socket.IPPROTO_TCP, everything_but_listeners)
        ):
            msg = codec.decode_message(chunk, start, end, with_info=False)
            if (
                msg.sport == c.local_port
                and msg.dport == c.remote_port
                and _same(msg.src, c.local_address)
                and _same(msg.dst, c.remote_address)
            ):
                found = (msg.family, msg.sockid)
        if found is None:
            return errno.ENOENT
        diag_family, sockid = found
        return _send_destroy(codec.encode_destroy(diag_family, socket.IPPROTO_TCP, sockid, seq=2))
    finally:
        diag.close()


def _send_destroy(request: bytes) -> int:
    from portwatch.probe.netlink import codec

    with socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, codec.NETLINK_SOCK_DIAG
    ) as sock:
        sock.bind((0, 0))
        sock.settimeout(5.0)
        sock.send(request)
        reply = sock.recv(8192)
    try:
        for msg_type, _start, _end in codec.iter_messages(reply):
            if msg_type == codec.NLMSG_ERROR:
                return 0  # an acknowledgement (error code 0)
    except codec.DiagError as exc:
        return exc.errno or errno.EIO
    return errno.EIO


def _linux_result(code: int) -> CloseResult:
    if code == 0:
        return CloseResult(CloseOutcome.CLOSED, "Connection closed (the other end was reset).")
    if code in (errno.ENOENT, errno.ESTALE):
        return CloseResult(CloseOutcome.GONE, "The connection had already closed.")
    if code in (errno.EPERM, errno.EACCES):
        return CloseResult(CloseOutcome.DENIED, "Access denied. " + _needs_admin("linux"))
    if code == errno.EOPNOTSUPP:
        return CloseResult(
            CloseOutcome.UNSUPPORTED,
            "This Linux kernel cannot close connections (it was built without "
            "CONFIG_INET_DIAG_DESTROY). " + END_PROCESS_HINT,
        )
    return CloseResult(
        CloseOutcome.FAILED, f"The connection was not closed: {errno.errorcode.get(code, code)}."
    )


# --- Windows ---------------------------------------------------------------------------


def _dword_address(address: str) -> int:
    # MIB_TCPROW keeps addresses and ports in network byte order inside little-endian DWORDs.
    return int.from_bytes(socket.inet_aton(address), "little")


def _dword_port(port: int) -> int:
    return int.from_bytes(port.to_bytes(2, "big"), "little")


def mib_tcprow(connection: Connection) -> bytes:
    """The ``MIB_TCPROW`` that asks ``SetTcpEntry`` to delete this connection."""
    c = connection
    local = c.local_address.removeprefix("::ffff:")
    remote = c.remote_address.removeprefix("::ffff:")
    return _MIB_TCPROW.pack(
        MIB_TCP_STATE_DELETE_TCB,
        _dword_address(local),
        _dword_port(c.local_port),
        _dword_address(remote),
        _dword_port(c.remote_port),
    )


def windows_set_tcp_entry(row: bytes) -> int:
    """Call ``iphlpapi.SetTcpEntry`` with ``row``; its Win32 error code (0: done)."""
    import ctypes

    buffer = ctypes.create_string_buffer(row, len(row))
    iphlpapi = getattr(ctypes, "windll").iphlpapi  # noqa: B009 - windll exists on Windows only
    return int(iphlpapi.SetTcpEntry(buffer))


def _windows_result(code: int) -> CloseResult:
    if code == 0:
        return CloseResult(CloseOutcome.CLOSED, "Connection closed (the other end was reset).")
    if code in _WIN_DENIED:
        return CloseResult(CloseOutcome.DENIED, "Access denied. " + _needs_admin("win32"))
    if code in _WIN_NOT_FOUND:
        return CloseResult(CloseOutcome.GONE, "The connection had already closed.")
    return CloseResult(CloseOutcome.FAILED, f"Windows did not close it (error {code}).")


# --- the action ------------------------------------------------------------------------


def close_connection(
    connection: Connection,
    *,
    platform: str = sys.platform,
    linux_destroy: Callable[[Connection], int] = _linux_destroy,
    set_tcp_entry: Callable[[bytes], int] = windows_set_tcp_entry,
) -> CloseResult:
    """Close ``connection`` (its local end, as listed); never raises for the usual cases.

    The privilege is not checked first: the OS's own answer is the one reported.
    """
    refusal = close_refusal(connection, platform, privileged=lambda: True)
    if refusal is not None:
        return CloseResult(CloseOutcome.UNSUPPORTED, refusal)
    try:
        if platform.startswith("linux"):
            return _linux_result(linux_destroy(connection))
        return _windows_result(set_tcp_entry(mib_tcprow(connection)))
    except OSError as exc:
        if exc.errno is not None and platform.startswith("linux"):
            return _linux_result(exc.errno)
        return CloseResult(
            CloseOutcome.FAILED, f"The connection was not closed: {exc.strerror or exc}."
        )
