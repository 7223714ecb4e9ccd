"""The sock_diag codec: request bytes, bytecode port filters, reply parsing."""

from __future__ import annotations

import random
import socket
import struct

import pytest

from portwatch.probe.netlink import codec

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_NETLINK"), reason="Linux only")


# --- requests ---------------------------------------------------------------------------


def test_request_without_filter_has_header_and_inet_diag_req_v2() -> None:
    raw = codec.encode_request(socket.AF_INET6, socket.IPPROTO_TCP, 1 << 10, ext=2, seq=7)
    length, msg_type, flags, seq, pid = struct.unpack_from("=IHHII", raw)
    assert (length, msg_type, seq, pid) == (len(raw), codec.SOCK_DIAG_BY_FAMILY, 7, 0)
    assert flags == codec.NLM_F_REQUEST | codec.NLM_F_DUMP
    assert len(raw) == 16 + 56  # nlmsghdr + inet_diag_req_v2
    family, proto, ext, pad, states = struct.unpack_from("=BBBBI", raw, 16)
    assert (family, proto, ext, pad, states) == (socket.AF_INET6, socket.IPPROTO_TCP, 2, 0, 1024)
    # sockid: ports, addresses and interface zero (= any); cookie "none".
    assert raw[24:64] == bytes(40)
    assert raw[64:72] == b"\xff" * 8


def test_request_with_filter_appends_an_aligned_bytecode_attribute() -> None:
    bytecode = codec.port_filter([(3653, 3653)])
    raw = codec.encode_request(
        socket.AF_INET, socket.IPPROTO_TCP, codec.ALL_STATES, bytecode=bytecode
    )
    assert struct.unpack_from("=I", raw)[0] == len(raw)
    attr_len, attr_type = struct.unpack_from("=HH", raw, 72)
    assert attr_type == codec.INET_DIAG_REQ_BYTECODE
    assert attr_len == 4 + len(bytecode)
    assert raw[76 : 76 + len(bytecode)] == bytecode
    assert len(raw) % 4 == 0


# --- bytecode ---------------------------------------------------------------------------


def _ops(bytecode: bytes) -> list[tuple[int, int, int]]:
    return [struct.unpack_from("=BBH", bytecode, i) for i in range(0, len(bytecode), 4)]


def test_single_port_filter_is_sport_or_dport_equal() -> None:
    bc = codec.port_filter([(3653, 3653)])
    assert _ops(bc) == [
        (codec.BC_S_EQ, 8, 12),  # no: skip this alternative and its JMP → D_EQ at 12
        (0, 0, 3653),
        (codec.BC_JMP, 4, 12),  # matched: jump to the end (20) = accept
        (codec.BC_D_EQ, 8, 12),  # no: to 24 = 4 past the end = reject
        (0, 0, 3653),
    ]


def test_range_filter_uses_ge_and_le_pairs() -> None:
    bc = codec.port_filter([(3224, 3324)])
    codes = [op[0] for op in _ops(bc)[::1] if op[0] not in (0,)]
    assert codes == [codec.BC_S_GE, codec.BC_S_LE, codec.BC_JMP, codec.BC_D_GE, codec.BC_D_LE]
    assert codec.run_filter(bc, 3224, 50000)
    assert codec.run_filter(bc, 3324, 50000)
    assert codec.run_filter(bc, 50000, 3300)
    assert not codec.run_filter(bc, 3223, 3325)
    assert not codec.run_filter(bc, 3325, 1)


def test_ranges_are_merged_before_encoding() -> None:
    assert codec.merge_ranges([(5, 9), (1, 3), (4, 4), (20, 30), (25, 26)]) == [(1, 9), (20, 30)]
    assert codec.port_filter([(1, 3), (4, 9)]) == codec.port_filter([(1, 9)])


def _kernel_audit(bc: bytes) -> bool:
    """Python transcription of the kernel's inet_diag_bc_audit for the ops we emit."""

    def valid_cc(cc: int) -> bool:
        pos, length = 0, len(bc)
        while length >= 0:
            if cc > length:
                return False
            if cc == length:
                return True
            yes = bc[pos + 1]
            if yes < 4 or yes & 3:
                return False
            length -= yes
            pos += yes
        return False

    pos, length = 0, len(bc)
    while length > 0:
        code, yes, no = struct.unpack_from("=BBH", bc, pos)
        min_len = 4
        if code in (
            codec.BC_S_GE,
            codec.BC_S_LE,
            codec.BC_D_GE,
            codec.BC_D_LE,
            codec.BC_S_EQ,
            codec.BC_D_EQ,
        ):
            if length < 8:
                return False
            min_len = 8
        elif code not in (codec.BC_JMP, codec.BC_NOP):
            return False
        if code != codec.BC_NOP:
            if no < min_len or no > length + 4 or no & 3:
                return False
            if no < length and not valid_cc(length - no):
                return False
        if yes < min_len or yes > length + 4 or yes & 3:
            return False
        pos += yes
        length -= yes
    return length == 0


def test_random_filters_pass_the_kernel_audit_and_match_exactly() -> None:
    rng = random.Random(3653)
    for _ in range(200):
        ranges = []
        for _ in range(rng.randint(1, 6)):
            lo = rng.randint(1, 65535)
            hi = min(65535, lo + rng.choice([0, 0, 1, 10, 300]))
            ranges.append((lo, hi))
        bc = codec.port_filter(ranges)
        assert _kernel_audit(bc), ranges
        for _ in range(50):
            sport, dport = rng.randint(0, 65535), rng.randint(0, 65535)
            if rng.random() < 0.3:
                lo, hi = rng.choice(ranges)
                sport = rng.randint(lo, hi)
            expected = any(lo <= sport <= hi or lo <= dport <= hi for lo, hi in ranges)
            assert codec.run_filter(bc, sport, dport) is expected, (ranges, sport, dport)


@pytest.mark.parametrize("ranges", [[], [(10, 5)], [(0, 70000)]])
def test_bad_filters_are_refused(ranges: list[tuple[int, int]]) -> None:
    with pytest.raises(ValueError):
        codec.port_filter(ranges)


# --- replies ----------------------------------------------------------------------------


def _tcp_info(acked: int, received: int, size: int = 232) -> bytes:
    info = bytearray(size)
    struct.pack_into("=QQ", info, codec.TCPI_BYTES_ACKED_OFFSET, acked, received)
    return bytes(info)


def test_reply_message_decodes_ports_addresses_uid_inode_and_tcp_info() -> None:
    src = socket.inet_pton(socket.AF_INET, "127.0.0.1")
    dst = socket.inet_pton(socket.AF_INET, "127.0.0.2")
    raw = codec.encode_message(
        socket.AF_INET,
        codec.TCP_ESTABLISHED,
        3653,
        51000,
        src=src,
        dst=dst,
        uid=65534,
        inode=123456,
        cookie=b"\x01" * 8,
        attributes=[(8, b"\x00"), (codec.INET_DIAG_INFO, _tcp_info(1000, 20))],
    )
    messages = list(codec.iter_messages(raw + codec.encode_done()))
    assert [m[0] for m in messages] == [codec.SOCK_DIAG_BY_FAMILY, codec.NLMSG_DONE]
    _, start, end = messages[0]
    msg = codec.decode_message(raw, start, end)
    assert (msg.family, msg.state, msg.sport, msg.dport) == (socket.AF_INET, 1, 3653, 51000)
    assert (msg.src, msg.dst, msg.uid, msg.inode) == ("127.0.0.1", "127.0.0.2", 65534, 123456)
    assert msg.cookie == b"\x01" * 8
    assert codec.tcp_bytes(msg.tcp_info) == 1020
    # The socket id: ports, addresses, interface and cookie, as the probe's cache key.
    assert msg.sockid == codec.socket_id(raw, start)
    assert len(msg.sockid) == 48
    assert msg.sockid[:4] == bytes.fromhex("0e45c738")  # 3653 and 51000, network order
    assert msg.sockid[-8:] == b"\x01" * 8
    assert codec.decode_message(raw, start, end, with_info=False).tcp_info is None


def test_the_probe_builds_its_rows_with_this_decoder() -> None:
    """One decoder for the kernel's replies: the probe's rows come from it."""
    from portwatch.core.types import Endpoint, Family, Proto
    from portwatch.probe.netlink.probe import NetlinkProbe

    raw = codec.encode_message(
        socket.AF_INET6,
        codec.TCP_LISTEN,
        3653,
        0,
        src=socket.inet_pton(socket.AF_INET6, "::1"),
        dst=bytes(16),
        inode=987654,
    )
    _, start, end = next(codec.iter_messages(raw))
    row = NetlinkProbe._decode_row(codec.decode_message(raw, start, end), Proto.TCP)
    assert row.endpoint == Endpoint(Proto.TCP, Family.IPV6, "::1", 3653)
    assert (row.inode, row.dport, row.state) == (987654, 0, codec.TCP_LISTEN)
    assert row.sockid == codec.socket_id(raw, start)


def test_ipv6_addresses_are_compressed_and_v4_mapped_kept() -> None:
    loop6 = socket.inet_pton(socket.AF_INET6, "::1")
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1")
    assert codec.format_address(socket.AF_INET6, loop6) == "::1"
    assert codec.format_address(socket.AF_INET6, bytes(16)) == "::"
    assert codec.format_address(socket.AF_INET6, mapped) == "::ffff:127.0.0.1"
    assert (
        codec.format_address(socket.AF_INET, socket.inet_aton("10.1.2.3") + bytes(12)) == "10.1.2.3"
    )


def test_short_tcp_info_from_an_old_kernel_gives_no_byte_count() -> None:
    assert codec.tcp_bytes(_tcp_info(1, 2)[:104]) is None
    assert codec.tcp_bytes(None) is None


def test_several_messages_in_one_buffer_are_walked_in_order() -> None:
    src = socket.inet_pton(socket.AF_INET6, "::1")
    buf = b"".join(
        codec.encode_message(
            socket.AF_INET6, codec.TCP_LISTEN, port, 0, src=src, dst=bytes(16), inode=port
        )
        for port in (1, 2, 3)
    )
    ports = [codec.decode_message(buf, s, e).sport for _, s, e in codec.iter_messages(buf)]
    assert ports == [1, 2, 3]


def test_error_reply_raises_with_the_errno() -> None:
    err = struct.pack("=IHHII", 36, codec.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -22) + bytes(16)
    with pytest.raises(codec.DiagError) as info:
        list(codec.iter_messages(err))
    assert info.value.errno == 22


def test_truncated_replies_raise_value_error() -> None:
    raw = codec.encode_message(socket.AF_INET, 10, 1, 0, src=bytes(4), dst=bytes(4))
    with pytest.raises(ValueError):
        list(codec.iter_messages(raw[:-4]))
    bad_attr = raw[:16] + raw[16:88] + struct.pack("=HH", 40, 2) + bytes(4)
    bad_attr = struct.pack("=I", len(bad_attr)) + bad_attr[4:]
    _, start, end = next(codec.iter_messages(bad_attr))
    with pytest.raises(ValueError):
        codec.decode_message(bad_attr, start, end)
    with pytest.raises(ValueError):
        codec.decode_message(raw, 16, 40)


def test_legacy_tcp_request_asks_for_both_families() -> None:
    bytecode = codec.port_filter([(3653, 3653)])
    raw = codec.encode_request(socket.AF_UNSPEC, socket.IPPROTO_TCP, 6, ext=2, bytecode=bytecode)
    length, msg_type = struct.unpack_from("=IH", raw)
    assert (length, msg_type) == (len(raw), codec.TCPDIAG_GETSOCK)
    family, src_len, dst_len, ext = struct.unpack_from("=BBBB", raw, 16)
    assert (family, src_len, dst_len, ext) == (0, 0, 0, 2)
    states, dbs = struct.unpack_from("=II", raw, 16 + 4 + 48)
    assert (states, dbs) == (6, 0)
    assert struct.unpack_from("=HH", raw, 16 + 60) == (4 + len(bytecode), 1)
    with pytest.raises(ValueError):
        codec.encode_request(socket.AF_UNSPEC, socket.IPPROTO_UDP, 6)


def test_coarsen_closes_the_smallest_gaps_and_still_covers_everything() -> None:
    ranges = [(10, 10), (12, 12), (100, 100), (1000, 1010), (1013, 1013)]
    assert codec.coarsen(ranges, 3) == [(10, 12), (100, 100), (1000, 1013)]
    assert codec.coarsen(ranges, 10) == codec.merge_ranges(ranges)
    many = [(port, port) for port in range(1, 60000, 7)]
    wide = codec.coarsen(many, 16)
    assert len(wide) == 16
    assert all(any(lo <= p <= hi for lo, hi in wide) for p, _ in many)
    assert _kernel_audit(codec.port_filter(wide))
