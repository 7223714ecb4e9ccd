"""The NETLINK_SOCK_DIAG socket: send one dump request, read the reply messages.

Only the queries a poll needs are asked, and the kernel does the filtering: TCP
listeners by state, UDP sockets, and TCP connections on watched ports by an
``inet_diag`` bytecode port filter (what ``ss`` uses).
"""

from __future__ import annotations

import errno
import select
import socket
from collections.abc import Iterator, Sequence
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
REPLY_TYPES = _REPLY_TYPES
# One fixed sequence number: replies of an unchanged table are then byte-identical
# from poll to poll (see dump_chunks). Stale replies cannot mix in: every request
# starts by draining what an abandoned dump left behind.
_SEQ = 1


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

    def close(self) -> None:
        """Close the netlink socket."""
        self._view.release()
        self._sock.close()

    def _send(self, request: Request) -> None:
        self._drain()
        self._sock.send(
            codec.encode_request(
                request.family,
                request.protocol,
                request.states,
                ext=request.ext,
                bytecode=request.bytecode,
                seq=_SEQ,
            )
        )

    def _recv_chunk(self) -> bytes:
        n = self._sock.recv_into(self._buf)
        if n == 0:
            raise OSError(errno.EIO, "the kernel closed the socket-diagnostics dump")
        return bytes(self._view[:n])

    def dump(self, request: Request) -> Iterator[tuple[bytes, int, int]]:
        """Send one dump request and yield ``(chunk, start, end)`` per ``inet_diag_msg``.

        Each chunk is one read from the kernel as ``bytes``; ``start:end`` is one
        message's payload inside it. Raises ``OSError`` (``codec.DiagError`` when the
        kernel refuses the request).
        """
        self._send(request)
        while True:
            chunk = self._recv_chunk()
            done = False
            for msg_type, start, end in codec.iter_messages(chunk):
                if msg_type == codec.NLMSG_DONE:
                    done = True
                elif msg_type in _REPLY_TYPES:
                    yield chunk, start, end
            if done:
                return

    def dump_chunks(self, request: Request, previous: Sequence[bytes] = ()) -> list[bytes]:
        """The raw reads of one dump, the last holding ``NLMSG_DONE``.

        A read identical to the same-position read of ``previous`` (this request's
        last answer) is not walked again: unchanged socket tables come back
        byte-for-byte the same, so a steady poll costs a memory compare per read.
        """
        self._send(request)
        chunks: list[bytes] = []
        while True:
            chunk = self._recv_chunk()
            index = len(chunks)
            chunks.append(chunk)
            if index < len(previous) and chunk == previous[index]:
                if index == len(previous) - 1:
                    return chunks
                continue
            if any(msg_type == codec.NLMSG_DONE for msg_type, _, _ in codec.iter_messages(chunk)):
                return chunks

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


# Connections being set up, open or closing: the states that carry a tcp_info. Not
# TIME_WAIT (no counters left), and above all not the "bound, inactive" bit (13) that
# ALL_STATES includes: it makes the kernel walk its whole bind hash table, which cost
# more than the connection walk itself here.
CONNECTION_STATES = (
    codec.state_bit(codec.TCP_ESTABLISHED)
    | codec.state_bit(codec.TCP_SYN_SENT)
    | codec.state_bit(codec.TCP_SYN_RECV)
    | codec.state_bit(codec.TCP_FIN_WAIT1)
    | codec.state_bit(codec.TCP_FIN_WAIT2)
    | codec.state_bit(codec.TCP_CLOSE_WAIT)
    | codec.state_bit(codec.TCP_LAST_ACK)
    | codec.state_bit(codec.TCP_CLOSING)
)
INFO_EXT = 1 << (codec.INET_DIAG_INFO - 1)


def tcp_connections_request(family: int, bytecode: bytes) -> Request:
    """TCP connections matching ``bytecode`` (a :func:`codec.port_filter`), with ``tcp_info``."""
    return Request(family, socket.IPPROTO_TCP, CONNECTION_STATES, INFO_EXT, bytecode)
