"""The NETLINK_SOCK_DIAG socket: send one dump request, read the reply messages.

Only the queries a poll needs are asked, and the kernel does the filtering: TCP
listeners by state, UDP sockets, and TCP connections on watched ports by an
``inet_diag`` bytecode port filter (what ``ss`` uses).
"""

from __future__ import annotations

import errno
import select
import socket
from collections.abc import Iterator
from typing import NamedTuple

from portwatch.probe.netlink import codec

# The kernel fills at most about 32 KiB per read of a dump; a bit more is harmless.
_RECV_SIZE = 64 * 1024
# A dump that stops answering means something is badly wrong; never hang a poll on it.
_TIMEOUT_S = 5.0

FAMILIES = (socket.AF_INET, socket.AF_INET6)
# AF_UNSPEC: one legacy TCP request answered for both families (see codec).
BOTH_FAMILIES = (socket.AF_UNSPEC,)
_REPLY_TYPES = (codec.SOCK_DIAG_BY_FAMILY, codec.TCPDIAG_GETSOCK)


class Request(NamedTuple):
    """One dump request: which sockets, which extensions, which kernel-side filter."""

    family: int
    protocol: int
    states: int
    ext: int = 0
    bytecode: bytes = b""


class SockDiag:
    """One netlink socket to the kernel's socket-diagnostics interface.

    Not thread-safe: a probe owns one and polls from one thread.
    """

    def __init__(self) -> None:
        if not hasattr(socket, "AF_NETLINK"):
            raise OSError(errno.EAFNOSUPPORT, "netlink sockets exist only on Linux")
        self._sock = socket.socket(
            socket.AF_NETLINK,
            socket.SOCK_RAW | socket.SOCK_CLOEXEC,
            codec.NETLINK_SOCK_DIAG,
        )
        try:
            self._sock.bind((0, 0))
            self._sock.settimeout(_TIMEOUT_S)
        except OSError:
            self._sock.close()
            raise
        self._buf = bytearray(_RECV_SIZE)
        self._view = memoryview(self._buf)
        self._seq = 0

    def close(self) -> None:
        """Close the netlink socket."""
        self._view.release()
        self._sock.close()

    def dump(self, request: Request) -> Iterator[tuple[bytes, int, int]]:
        """Send one dump request and yield ``(chunk, start, end)`` per ``inet_diag_msg``.

        Each chunk is one read from the kernel as ``bytes``; ``start:end`` is one
        message's payload inside it. Raises ``OSError`` (``codec.DiagError`` when the
        kernel refuses the request).
        """
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        seq = self._seq
        self._drain()
        self._sock.send(
            codec.encode_request(
                request.family,
                request.protocol,
                request.states,
                ext=request.ext,
                bytecode=request.bytecode,
                seq=seq,
            )
        )
        header = codec.NLMSGHDR
        while True:
            n = self._sock.recv_into(self._buf)
            if n == 0:
                raise OSError(errno.EIO, "the kernel closed the socket-diagnostics dump")
            chunk = bytes(self._view[:n])
            for msg_type, start, end in codec.iter_messages(chunk):
                if header.unpack_from(chunk, start - header.size)[3] != seq:
                    continue  # a late reply to an older request
                if msg_type == codec.NLMSG_DONE:
                    return
                if msg_type in _REPLY_TYPES:
                    yield chunk, start, end

    def _drain(self) -> None:
        # A dump abandoned half-way (an exception in the consumer) leaves replies queued;
        # drop them so they cannot be mistaken for the next answer.
        while select.select([self._sock], [], [], 0)[0]:
            if self._sock.recv_into(self._buf) == 0:
                break


def tcp_listeners_request(family: int) -> Request:
    """TCP sockets in LISTEN, filtered by state in the kernel."""
    return Request(family, socket.IPPROTO_TCP, codec.state_bit(codec.TCP_LISTEN))


def udp_request(family: int) -> Request:
    """All UDP sockets (bound-and-unconnected ones are the listeners)."""
    return Request(family, socket.IPPROTO_UDP, codec.ALL_STATES)


# Every TCP state except LISTEN: connections being set up, open, or closing.
CONNECTION_STATES = codec.ALL_STATES & ~codec.state_bit(codec.TCP_LISTEN)
INFO_EXT = 1 << (codec.INET_DIAG_INFO - 1)


def tcp_connections_request(family: int, bytecode: bytes) -> Request:
    """TCP connections matching ``bytecode`` (a :func:`codec.port_filter`), with ``tcp_info``."""
    return Request(family, socket.IPPROTO_TCP, CONNECTION_STATES, INFO_EXT, bytecode)
