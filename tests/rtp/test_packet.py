"""RTP packet parse/serialize, fast-path helpers, wrap-around arithmetic, rtcp-mux demux."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.rtp.packet import (
    RtpPacket,
    build_rtp_header,
    extend_sequence,
    is_rtcp,
    is_rtp_or_rtcp,
    peek_rtp,
    rewrite_rtp_header,
    seq_add,
    seq_diff,
    seq_lt,
    ts_add,
    ts_diff,
    ts_lt,
)

# RFC 7714 §16 example packet: V=2, PT=64, seq=0xf17b, ts=0x8041f8d3, SSRC=0x5501a0b2.
RFC7714_RTP = bytes.fromhex(
    "8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573"
)


def test_parse_rfc7714_example() -> None:
    pkt = RtpPacket.parse(RFC7714_RTP)
    assert (pkt.version, pkt.marker, pkt.payload_type) == (2, False, 64)
    assert pkt.sequence_number == 0xF17B
    assert pkt.timestamp == 0x8041F8D3
    assert pkt.ssrc == 0x5501A0B2
    assert pkt.payload == b"Gallia est omnis divisa in partes tres"
    assert bytes(pkt) == RFC7714_RTP


def test_full_packet_round_trip() -> None:
    pkt = RtpPacket(
        padding=3,
        marker=True,
        payload_type=101,
        sequence_number=65535,
        timestamp=0xFFFFFFFF,
        ssrc=0xDEADBEEF,
        csrc=(1, 2, 3),
        extension=(0xBEDE, b"\x10\xaa\x00\x00"),
        payload=b"\x01\x02\x03",
    )
    data = bytes(pkt)
    assert data[0] == 0x80 | 0x20 | 0x10 | 3
    assert data[1] == 0x80 | 101
    assert data[-1] == 3
    assert len(data) == 12 + 12 + 4 + 4 + 3 + 3
    assert RtpPacket.parse(data) == pkt
    # The fast path agrees with the object path.
    assert peek_rtp(data) == (101, 65535, 0xFFFFFFFF, 0xDEADBEEF, True, 32, len(data) - 3)


@given(
    st.builds(
        RtpPacket,
        padding=st.integers(0, 255),
        marker=st.booleans(),
        payload_type=st.integers(0, 127),
        sequence_number=st.integers(0, 0xFFFF),
        timestamp=st.integers(0, 0xFFFFFFFF),
        ssrc=st.integers(0, 0xFFFFFFFF),
        csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
        extension=st.none()
        | st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=16).map(lambda b: b * 4)),
        payload=st.binary(max_size=64),
    )
)
def test_round_trip_property(pkt: RtpPacket) -> None:
    assert RtpPacket.parse(bytes(pkt)) == pkt


@given(st.binary(max_size=80))
def test_parse_only_raises_protocol_error(data: bytes) -> None:
    try:
        pkt = RtpPacket.parse(data)
    except RemoteProtocolError:
        return
    assert pkt.version == 2


@pytest.mark.parametrize(
    "data",
    [
        b"",
        RFC7714_RTP[:11],
        b"\x40" + RFC7714_RTP[1:],  # version 1
        b"\x81" + RFC7714_RTP[1:12],  # one CSRC announced, none present
        b"\x90" + RFC7714_RTP[1:12] + b"\xbe\xde",  # truncated extension header
        b"\x90" + RFC7714_RTP[1:12] + b"\xbe\xde\x00\x05\x00\x00\x00\x00",  # extension too long
        b"\xa0" + RFC7714_RTP[1:12] + b"\x00",  # padding count 0
        b"\xa0" + RFC7714_RTP[1:12] + b"\x00\x09",  # padding longer than payload
    ],
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        RtpPacket.parse(data)


def test_header_fast_path() -> None:
    hdr = build_rtp_header(0, 0x10000 + 5, 0x1_0000_0007, 0x01020304, True)
    assert hdr == bytes.fromhex("808000050000000701020304")
    buf = bytearray(hdr + b"payload")
    rewrite_rtp_header(buf, 8, 6, 160, 0x01020304)
    pkt = RtpPacket.parse(bytes(buf))
    assert (pkt.payload_type, pkt.sequence_number, pkt.timestamp, pkt.marker) == (8, 6, 160, False)
    assert pkt.payload == b"payload"


def test_sequence_arithmetic_wraps() -> None:
    assert seq_add(65535, 1) == 0
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(100, 100) == 0
    assert seq_lt(65530, 3)
    assert not seq_lt(3, 65530)
    assert ts_add(0xFFFFFF00, 0x200) == 0x100
    assert ts_diff(0x100, 0xFFFFFF00) == 0x200
    assert ts_lt(0xFFFFFF00, 0x100)
    assert not ts_lt(0x100, 0xFFFFFF00)


def test_extend_sequence_across_wrap() -> None:
    highest = None
    out = []
    for seq in [65533, 65534, 65535, 0, 65535, 1, 2]:
        ext = extend_sequence(highest, seq)
        out.append(ext)
        highest = ext if highest is None else max(highest, ext)
    assert out == [65533, 65534, 65535, 65536, 65535, 65537, 65538]
    # Never negative just after start.
    assert extend_sequence(3, 65535) == 65535


def test_rtcp_mux_demux() -> None:
    # RFC 5761 §4: second octet 192..223 is RTCP (SR=200, RR=201, SDES=202, BYE=203, APP=204).
    for pt in (192, 200, 201, 202, 203, 204, 205, 206, 207, 223):
        assert is_rtcp(bytes([0x80, pt, 0, 1]))
    for b1 in (0, 8, 96, 127, 0x80 | 0, 0x80 | 96, 0x80 | 127, 0x80 | 63, 0x80 | 96):
        assert not is_rtcp(bytes([0x80, b1, 0, 1]))
    assert not is_rtcp(b"\x80")
    assert is_rtp_or_rtcp(RFC7714_RTP)
    assert not is_rtp_or_rtcp(b"\x00\x01")  # STUN
    assert not is_rtp_or_rtcp(b"\x16\xfe")  # DTLS


@pytest.mark.parametrize(
    "pkt",
    [
        RtpPacket(payload_type=128),
        RtpPacket(csrc=tuple(range(16))),
        RtpPacket(padding=256),
        RtpPacket(extension=(1, b"abc")),
    ],
)
def test_serializing_nonsense_is_a_local_error(pkt: RtpPacket) -> None:
    with pytest.raises(LocalProtocolError):
        bytes(pkt)
