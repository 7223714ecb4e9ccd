"""Byte layouts of the kernel's socket-diagnostics (NETLINK_SOCK_DIAG) messages.

Pure encoding and decoding with :mod:`struct`, no sockets: requests
(``nlmsghdr`` + ``inet_diag_req_v2`` + an optional ``INET_DIAG_REQ_BYTECODE``
filter) and replies (``inet_diag_msg`` + route attributes, ``tcp_info``).
Layouts follow ``linux/netlink.h``, ``linux/inet_diag.h`` and ``linux/tcp.h``;
all fields are in host byte order except ports and addresses, which the kernel
keeps in network order.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

# linux/netlink.h
NETLINK_SOCK_DIAG = 4
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
# linux/sock_diag.h
SOCK_DIAG_BY_FAMILY = 20
# Asks the kernel to abort one socket (needs CAP_NET_ADMIN and CONFIG_INET_DIAG_DESTROY).
SOCK_DESTROY = 21
NLM_F_ACK = 0x04
# linux/inet_diag.h: the original TCP-only request. The kernel answers it for IPv4 and
# IPv6 together (family AF_UNSPEC), walking its TCP tables once instead of twice.
TCPDIAG_GETSOCK = 18

# linux/inet_diag.h: request attributes
INET_DIAG_REQ_BYTECODE = 1
# reply attributes (and, for those below 9, bits of idiag_ext: 1 << (attr - 1))
INET_DIAG_INFO = 2
# Sent unasked for IPv6 sockets in LISTEN or CLOSE (an unconnected UDP socket): one
# byte, 1 when the socket is IPv6-only (IPV6_V6ONLY), 0 when it takes IPv4 too.
INET_DIAG_SKV6ONLY = 11

# linux/inet_diag.h: bytecode operations
BC_NOP = 0
BC_JMP = 1
BC_S_GE = 2
BC_S_LE = 3
BC_D_GE = 4
BC_D_LE = 5
BC_S_EQ = 11
BC_D_EQ = 12

# include/net/tcp_states.h
TCP_ESTABLISHED = 1
TCP_SYN_SENT = 2
TCP_SYN_RECV = 3
TCP_FIN_WAIT1 = 4
TCP_FIN_WAIT2 = 5
TCP_TIME_WAIT = 6
TCP_CLOSE = 7
TCP_CLOSE_WAIT = 8
TCP_LAST_ACK = 9
TCP_LISTEN = 10
TCP_CLOSING = 11
TCP_NEW_SYN_RECV = 12
ALL_STATES = 0xFFFFFFFF

NLMSGHDR = struct.Struct("=IHHII")
# inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid.
INET_DIAG_REQ_V2 = struct.Struct("=BBBBI48s")
# inet_diag_req (v1): family, src_len, dst_len, ext, sockid, states, dbs.
INET_DIAG_REQ_V1 = struct.Struct("=BBBB48sII")
# inet_diag_msg: family, state, timer, retrans, sockid (sport, dport, src, dst, if,
# cookie), expires, rqueue, wqueue, uid, inode.
INET_DIAG_MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")
RTATTR = struct.Struct("=HH")
NLMSGERR = struct.Struct("=i")
BC_OP = struct.Struct("=BBH")
PORT = struct.Struct("!H")
# Offsets of the RFC 4898 byte counters inside struct tcp_info (linux/tcp.h).
TCPI_BYTES_ACKED_OFFSET = 120
TCPI_BYTES_RECEIVED_OFFSET = 128
_U64 = struct.Struct("=Q")

NO_COOKIE = b"\xff" * 8


class DiagError(OSError):
    """The kernel refused a socket-diagnostics request (an ``NLMSG_ERROR`` reply)."""


def state_bit(state: int) -> int:
    """The ``idiag_states`` bit for one TCP state."""
    return 1 << state


def align4(length: int) -> int:
    """Netlink and route attributes are padded to four bytes."""
    return (length + 3) & ~3


# --- requests -------------------------------------------------------------------------


def encode_request(
    family: int,
    protocol: int,
    states: int,
    *,
    ext: int = 0,
    bytecode: bytes = b"",
    seq: int = 0,
) -> bytes:
    """A dump request for all sockets of one family/protocol in ``states``.

    ``ext`` is a mask of ``1 << (INET_DIAG_xxx - 1)`` extensions to include in replies;
    ``bytecode`` (from :func:`port_filter`) makes the kernel skip non-matching sockets.
    ``family`` ``AF_UNSPEC`` with TCP gives the legacy ``TCPDIAG_GETSOCK`` request, which
    the kernel answers for both address families in one pass.
    """
    if family == socket.AF_UNSPEC:
        if protocol != socket.IPPROTO_TCP:
            raise ValueError("only TCP can be asked for both address families at once")
        msg_type = TCPDIAG_GETSOCK
        body = INET_DIAG_REQ_V1.pack(0, 0, 0, ext, bytes(40) + NO_COOKIE, states, 0)
    else:
        msg_type = SOCK_DIAG_BY_FAMILY
        body = INET_DIAG_REQ_V2.pack(family, protocol, ext, 0, states, bytes(40) + NO_COOKIE)
    if bytecode:
        attr_len = RTATTR.size + len(bytecode)
        body += RTATTR.pack(attr_len, INET_DIAG_REQ_BYTECODE) + bytecode
        body += bytes(align4(attr_len) - attr_len)
    header = NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    return header + body


def encode_destroy(family: int, protocol: int, sockid: bytes, seq: int = 0) -> bytes:
    """A ``SOCK_DESTROY`` request for the one socket whose ``inet_diag_sockid`` (ports,
    addresses, interface and cookie, as a dump reported it) is ``sockid``.

    The cookie matters: without it the kernel looks the 4-tuple up like an incoming
    packet would, and a connection that has just closed would match its port's
    *listener*; with it, anything but that very socket is refused (``ESTALE``).
    """
    if len(sockid) != 48:
        raise ValueError("inet_diag_sockid is 48 bytes")
    body = INET_DIAG_REQ_V2.pack(family, protocol, 0, 0, ALL_STATES, sockid)
    flags = NLM_F_REQUEST | NLM_F_ACK
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), SOCK_DESTROY, flags, seq, 0) + body


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort inclusive port ranges and join those that overlap or touch."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def coarsen(ranges: Iterable[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """At most ``limit`` ranges covering ``ranges``, closing the smallest gaps first.

    The kernel runs the filter on every socket it walks, so a watch list of hundreds
    of scattered ports is asked as a few wider ranges; the caller keeps only the
    watched ports of what comes back.
    """
    merged = merge_ranges(ranges)
    excess = len(merged) - max(1, limit)
    if excess <= 0:
        return merged
    # Closing one gap leaves the others as they were, so close the smallest at once.
    gaps = sorted(range(len(merged) - 1), key=lambda i: (merged[i + 1][0] - merged[i][1], i))
    closed = set(gaps[:excess])
    out = [merged[0]]
    for i in range(1, len(merged)):
        if i - 1 in closed:
            out[-1] = (out[-1][0], merged[i][1])
        else:
            out.append(merged[i])
    return out


def _port_op(code: int, port: int, yes: int, no: int) -> bytes:
    # A port comparison is two ops: the test, then a carrier whose ``no`` is the port.
    return BC_OP.pack(code, yes, no) + BC_OP.pack(0, 0, port)


def port_filter(ranges: Sequence[tuple[int, int]]) -> bytes:
    """Bytecode accepting a socket whose local OR remote port is in any inclusive range.

    The program is a chain of alternatives; each is one test (``S_EQ``/``D_EQ``) or a
    pair (``S_GE`` then ``S_LE``, or ``D_GE`` then ``D_LE``). A failed test jumps to the
    next alternative (past the end = reject, which the kernel reads as "ran off by 4");
    an alternative that passes whole jumps to the end (= accept) with ``JMP``. The
    kernel's verifier walks the ``yes`` chain, so every ``yes`` is the op's own length.
    """
    alternatives: list[list[tuple[int, int]]] = []
    for lo, hi in merge_ranges(ranges):
        if not 0 <= lo <= hi <= 0xFFFF:
            raise ValueError(f"bad port range {lo}-{hi}")
        if lo == hi:
            alternatives.append([(BC_S_EQ, lo)])
            alternatives.append([(BC_D_EQ, lo)])
        else:
            alternatives.append([(BC_S_GE, lo), (BC_S_LE, hi)])
            alternatives.append([(BC_D_GE, lo), (BC_D_LE, hi)])
    if not alternatives:
        raise ValueError("a port filter needs at least one port")
    # Lengths first: 8 bytes per test, plus a 4-byte JMP after every alternative but the last.
    sizes = [
        8 * len(alt) + (4 if i < len(alternatives) - 1 else 0) for i, alt in enumerate(alternatives)
    ]
    total = sum(sizes)
    if total + 4 > 0xFFFF:
        raise ValueError("too many port ranges for one kernel filter")
    out = bytearray()
    for i, alt in enumerate(alternatives):
        next_alt = sum(sizes[: i + 1])
        for code, port in alt:
            here = len(out)
            # Reject = jump to 4 bytes past the end; otherwise to the next alternative.
            fail_target = total + 4 if i == len(alternatives) - 1 else next_alt
            out += _port_op(code, port, 8, fail_target - here)
        if i < len(alternatives) - 1:
            here = len(out)
            out += BC_OP.pack(BC_JMP, 4, total - here)
    return bytes(out)


def run_filter(bytecode: bytes, sport: int, dport: int) -> bool:
    """Evaluate a port filter the way the kernel's ``inet_diag_bc_run`` does (for tests)."""
    pos = 0
    length = len(bytecode)
    while length > 0:
        code, yes, no = BC_OP.unpack_from(bytecode, pos)
        if code == BC_NOP:
            ok = True
        elif code == BC_JMP:
            ok = False
        else:
            value = BC_OP.unpack_from(bytecode, pos + 4)[2]
            ok = {
                BC_S_GE: sport >= value,
                BC_S_LE: sport <= value,
                BC_D_GE: dport >= value,
                BC_D_LE: dport <= value,
                BC_S_EQ: sport == value,
                BC_D_EQ: dport == value,
            }[code]
        step = yes if ok else no
        length -= step
        pos += step
    return length == 0


# --- replies --------------------------------------------------------------------------


# Where inet_diag_sockid sits in an inet_diag_msg: ports, addresses, interface and
# cookie, unique per socket (a probe keys its cache of decoded sockets by these bytes).
_SOCKID_START = 4
_SOCKID_END = 52


def socket_id(data: bytes, start: int) -> bytes:
    """The ``inet_diag_sockid`` bytes of the message whose payload starts at ``start``."""
    return data[start + _SOCKID_START : start + _SOCKID_END]


@dataclass(frozen=True)
class DiagMessage:
    """One decoded ``inet_diag_msg`` with the attributes portwatch reads.

    ``src_raw`` holds the address bytes as the kernel sent them (16 bytes; IPv4 uses
    the first four); ``src`` is their text. ``tcp_info`` is read only when asked for.
    """

    family: int
    state: int
    sport: int
    dport: int
    src: str
    dst: str
    uid: int
    inode: int
    cookie: bytes
    tcp_info: bytes | None = None
    src_raw: bytes = b""
    sockid: bytes = b""
    # The device the socket is bound to (SO_BINDTODEVICE, or a link-local scope), 0: none.
    ifindex: int = 0
    # IPV6_V6ONLY of an IPv6 listener; None when the kernel did not say (IPv4).
    v6only: bool | None = None


def format_address(family: int, raw: bytes) -> str:
    """Address text as psutil gives it: dotted IPv4, compressed IPv6 (v4-mapped kept)."""
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw)


def iter_messages(data: bytes | memoryview) -> Iterator[tuple[int, int, int]]:
    """Yield ``(type, payload_offset, payload_end)`` for each netlink message in a buffer.

    Raises :class:`DiagError` for an ``NLMSG_ERROR`` with a non-zero code, and
    ``ValueError`` for a message whose length runs past the buffer.
    """
    pos = 0
    end = len(data)
    while pos + NLMSGHDR.size <= end:
        length, msg_type, _flags, _seq, _pid = NLMSGHDR.unpack_from(data, pos)
        if length < NLMSGHDR.size or pos + length > end:
            raise ValueError(f"truncated netlink message at offset {pos}")
        if msg_type == NLMSG_ERROR:
            (code,) = NLMSGERR.unpack_from(data, pos + NLMSGHDR.size)
            if code != 0:
                raise DiagError(-code, f"socket diagnostics request refused: errno {-code}")
        yield msg_type, pos + NLMSGHDR.size, pos + length
        pos += align4(length)


def iter_attributes(
    data: bytes | memoryview, start: int, end: int
) -> Iterator[tuple[int, int, int]]:
    """Yield ``(type, value_offset, value_end)`` for route attributes in ``data[start:end]``."""
    pos = start
    while pos + RTATTR.size <= end:
        length, attr_type = RTATTR.unpack_from(data, pos)
        if length < RTATTR.size or pos + length > end:
            raise ValueError(f"truncated attribute at offset {pos}")
        yield attr_type, pos + RTATTR.size, pos + length
        pos += align4(length)


def find_attribute(data: bytes | memoryview, start: int, end: int, wanted: int) -> bytes | None:
    """The value of the first attribute of type ``wanted``, or None."""
    for attr_type, value_start, value_end in iter_attributes(data, start, end):
        if attr_type & 0x3FFF == wanted:  # strip NLA_F_NESTED / NLA_F_NET_BYTEORDER
            return bytes(data[value_start:value_end])
    return None


def decode_message(
    data: bytes | memoryview, start: int, end: int, *, with_info: bool = True
) -> DiagMessage:
    """Decode one ``inet_diag_msg`` payload (and its ``INET_DIAG_INFO`` if present and
    ``with_info``): the one decoder of the kernel's replies, used by the probe."""
    if end - start < INET_DIAG_MSG.size:
        raise ValueError("inet_diag_msg is shorter than its fixed part")
    (
        family,
        state,
        _timer,
        _retrans,
        sport,
        dport,
        src,
        dst,
        ifindex,
        cookie,
        _expires,
        _rqueue,
        _wqueue,
        uid,
        inode,
    ) = INET_DIAG_MSG.unpack_from(data, start)
    info = (
        find_attribute(data, start + INET_DIAG_MSG.size, end, INET_DIAG_INFO) if with_info else None
    )
    v6only: bool | None = None
    if family == socket.AF_INET6:
        flag = find_attribute(data, start + INET_DIAG_MSG.size, end, INET_DIAG_SKV6ONLY)
        if flag:
            v6only = flag[0] != 0
    return DiagMessage(
        family=family,
        state=state,
        sport=PORT.unpack(sport)[0],
        dport=PORT.unpack(dport)[0],
        src=format_address(family, src),
        dst=format_address(family, dst),
        uid=uid,
        inode=inode,
        cookie=cookie,
        tcp_info=info,
        src_raw=src,
        sockid=bytes(data[start + _SOCKID_START : start + _SOCKID_END]),
        ifindex=ifindex,
        v6only=v6only,
    )


def tcp_bytes(info: bytes | None) -> int | None:
    """``tcpi_bytes_acked + tcpi_bytes_received`` from a ``tcp_info``; None if too short."""
    split = tcp_bytes_split(info)
    return None if split is None else split[0] + split[1]


def tcp_bytes_split(info: bytes | None) -> tuple[int, int] | None:
    """``(tcpi_bytes_received, tcpi_bytes_acked)`` from a ``tcp_info``; None if too short."""
    if info is None or len(info) < TCPI_BYTES_RECEIVED_OFFSET + 8:
        return None
    acked = _U64.unpack_from(info, TCPI_BYTES_ACKED_OFFSET)[0]
    received = _U64.unpack_from(info, TCPI_BYTES_RECEIVED_OFFSET)[0]
    return int(received), int(acked)


def encode_message(
    family: int,
    state: int,
    sport: int,
    dport: int,
    *,
    src: bytes,
    dst: bytes,
    uid: int = 0,
    inode: int = 0,
    cookie: bytes = bytes(8),
    attributes: Sequence[tuple[int, bytes]] = (),
    seq: int = 0,
    ifindex: int = 0,
) -> bytes:
    """A whole netlink reply message as the kernel would write it (for tests and fakes)."""
    body = INET_DIAG_MSG.pack(
        family,
        state,
        0,
        0,
        PORT.pack(sport),
        PORT.pack(dport),
        src.ljust(16, b"\0"),
        dst.ljust(16, b"\0"),
        ifindex,
        cookie,
        0,
        0,
        0,
        uid,
        inode,
    )
    for attr_type, value in attributes:
        attr_len = RTATTR.size + len(value)
        body += RTATTR.pack(attr_len, attr_type) + value + bytes(align4(attr_len) - attr_len)
    length = NLMSGHDR.size + len(body)
    return NLMSGHDR.pack(length, SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, seq, 0) + body


def encode_done(seq: int = 0) -> bytes:
    """The ``NLMSG_DONE`` that ends a dump (for tests and fakes)."""
    return NLMSGHDR.pack(NLMSGHDR.size + 4, NLMSG_DONE, NLM_F_MULTI, seq, 0) + bytes(4)
