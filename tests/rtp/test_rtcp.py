"""RTCP compound packets, NTP helpers and RFC 3550 A.1/A.3/A.8 statistics on synthetic streams."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.rtp.rtcp import (
    ReceptionStats,
    ReportBlock,
    RtcpApp,
    RtcpBye,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpSenderReport,
    RtcpUnknown,
    SdesChunk,
    SenderStats,
    ntp_from_unix,
    ntp_middle32,
    parse_rtcp,
    round_trip_time,
    rtcp_interval,
    serialize_rtcp,
    unix_from_ntp,
)

# RFC 7714 §17 example "RTCP" packet: an SR with one report block, but its length field says
# 14 words (56 octets) while the packet has 52 (= 13 words), so it is malformed as RTCP.
RFC7714_SR = bytes.fromhex(
    "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61"
    "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
)
# baresip/re test/srtp.c: BYE for 0x01020304 with reason "b".
RE_BYE = bytes.fromhex("81cb00020102030401620000")


def test_parse_rfc7714_sender_report() -> None:
    with pytest.raises(RemoteProtocolError, match="length"):
        parse_rtcp(RFC7714_SR)
    fixed = RFC7714_SR[:3] + b"\x0c" + RFC7714_SR[4:]
    (sr,) = parse_rtcp(fixed)
    assert isinstance(sr, RtcpSenderReport)
    assert sr.ssrc == 0x4D617273  # "Mars"
    assert sr.ntp_timestamp == 0x4E5450314E545032  # "NTP1NTP2"
    assert sr.rtp_timestamp == 0x52545020
    assert (sr.packet_count, sr.octet_count) == (0x42A, 0xE930)
    assert sr.reports[0].ssrc == 0x4C756E61  # "Luna"
    assert sr.reports[0].fraction_lost == 0xDE
    assert sr.reports[0].cumulative_lost == 0xADBEEF - (1 << 24)
    assert sr.extension == b""
    assert bytes(sr) == fixed


def test_parse_re_bye() -> None:
    assert parse_rtcp(RE_BYE) == [RtcpBye((0x01020304,), b"b")]
    assert bytes(RtcpBye((0x01020304,), b"b")) == RE_BYE


def test_compound_round_trip_with_unknown_types() -> None:
    packets = [
        RtcpSenderReport(
            1,
            ntp_from_unix(1_700_000_000.5),
            160,
            10,
            1600,
            (ReportBlock(2, 12, -3, 70000, 9, 5, 6),),
        ),
        RtcpReceiverReport(1, (ReportBlock(3), ReportBlock(4, cumulative_lost=1 << 30))),
        RtcpSdes.cname_for(1, "alice@example.org"),
        RtcpApp(0, 1, b"PING"),
        RtcpUnknown(205, 1, bytes(8)),  # RTPFB generic NACK (RFC 4585), kept opaque
        RtcpBye((1, 2), b"bye now"),
    ]
    data = serialize_rtcp(packets)
    parsed = parse_rtcp(data)
    assert parsed[0] == packets[0]
    assert parsed[1].reports[1].cumulative_lost == (1 << 23) - 1  # clamped to 24 bits
    assert parsed[2].chunks[0].cname == "alice@example.org"
    assert parsed[3:] == packets[3:]
    assert serialize_rtcp(parsed[2:]) == serialize_rtcp(packets[2:])


def test_sdes_padding_and_items() -> None:
    # A CNAME of 2 octets fills the chunk exactly to 8: one more word of nulls ends the list.
    raw = bytes(RtcpSdes.cname_for(7, "ab"))
    assert len(raw) % 4 == 0
    assert raw[-4:] == bytes(4)
    (sdes,) = parse_rtcp(raw)
    assert sdes.chunks[0].cname == "ab"


def test_padding_on_last_packet() -> None:
    rr = bytes(RtcpReceiverReport(5))
    padded = bytes([rr[0] | 0x20]) + rr[1:3] + bytes([rr[3] + 1]) + rr[4:] + b"\x00\x00\x00\x04"
    assert parse_rtcp(padded) == [RtcpReceiverReport(5)]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x81\xc9",
        b"\x41\xc9\x00\x01\x00\x00\x00\x01",  # version 1
        b"\x81\xc9\x00\x05\x00\x00\x00\x01",  # length beyond datagram
        b"\x81\xc9\x00\x01\x00\x00\x00\x01",  # one report block announced, none present
        # libsrtp's srtp_validate "RTCP" packet: SR with one block but only 48 octets.
        bytes.fromhex("81c8000bcafebabeabababababababababababababababab") + bytes(24),
        b"\x81\xc8\x00\x01\x00\x00\x00\x01",  # SR without sender info
        b"\x81\xca\x00\x01\x00\x00\x00\x01",  # SDES chunk without terminator
        b"\x81\xca\x00\x02\x00\x00\x00\x01\x01\x09ab",  # SDES item longer than packet
        b"\x82\xcb\x00\x01\x00\x00\x00\x01",  # BYE with 2 sources, 1 present
        b"\x80\xcb\x00\x01\x05abc",  # BYE reason truncated
        b"\x80\xcc\x00\x01\x00\x00\x00\x01",  # APP without name
        b"\xa0\xc9\x00\x01\x00\x00\x00\x00",  # padding count 0
        b"\x80\xc9\x00\x01\x00\x00\x00\x01\x00",  # trailing octet
    ],
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_rtcp(data)


@given(st.binary(max_size=120))
def test_parse_only_raises_protocol_error(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        parse_rtcp(data)


def test_ntp_helpers() -> None:
    now = 1_700_000_000.25
    ntp = ntp_from_unix(now)
    assert ntp >> 32 == 1_700_000_000 + 2_208_988_800
    assert ntp & 0xFFFFFFFF == 1 << 30
    assert unix_from_ntp(ntp) == pytest.approx(now, abs=1e-9)
    assert ntp_middle32(ntp) == ((1_700_000_000 + 2_208_988_800) & 0xFFFF) << 16 | 0x4000


def test_round_trip_time_from_lsr_dlsr() -> None:
    # We send an SR at t=1000, the peer gets it 50 ms later and reports 200 ms after that;
    # its RR reaches us at 1000.3: RTT = 0.3 - 0.2 = 0.1 s.
    sr = RtcpSenderReport(1, ntp_from_unix(1000.0), 0, 0, 0)
    peer = ReceptionStats(ssrc=1, clock_rate=8000)
    peer.on_sender_report(sr, arrival=1000.05)
    block = peer.report_block(now=1000.25)
    assert block.lsr == ntp_middle32(sr.ntp_timestamp)
    assert block.dlsr == int(0.2 * 65536)
    rtt = round_trip_time(block, now=1000.3)
    assert rtt == pytest.approx(0.1, abs=1e-3)
    assert round_trip_time(ReportBlock(1), now=1000.3) is None


def _stream(stats: ReceptionStats, seqs: list[int], jitter: float = 0.0) -> int:
    valid = 0
    for i, seq in enumerate(seqs):
        ts = (seq * 160) & 0xFFFFFFFF
        delay = 0.05 + (jitter if i % 2 else 0.0)
        arrival = 10.0 + seq * 0.02 + delay
        valid += stats.update(seq & 0xFFFF, ts, arrival)
    return valid


def test_statistics_lossless_stream_across_wrap() -> None:
    stats = ReceptionStats(ssrc=9, clock_rate=8000)
    seqs = list(range(65500, 65500 + 100))
    assert _stream(stats, seqs) == 99  # A.1: the first packet is probation
    block = stats.report_block(now=20.0)
    assert block.highest_sequence == 65500 + 99  # one cycle
    assert block.cumulative_lost == 0
    assert block.fraction_lost == 0
    assert block.jitter == 0


def test_statistics_loss_and_fraction() -> None:
    stats = ReceptionStats(ssrc=9, clock_rate=8000)
    seqs = [s for s in range(1000, 1200) if s % 10 != 3]  # 10 % loss after the first two
    _stream(stats, seqs)
    first = stats.report_block(now=20.0)
    assert stats.expected == 199
    assert first.cumulative_lost == 20
    assert first.fraction_lost == (20 * 256) // 199
    # Next interval: 50 in a row, 25 of them lost.
    _stream(stats, [s for s in range(1200, 1250) if s % 2 == 0])
    second = stats.report_block(now=21.0)
    assert second.cumulative_lost == 20 + 24  # 1249 is not received: highest is 1248
    assert second.fraction_lost == (24 * 256) // 49


def test_statistics_reorder_duplicates_and_restart() -> None:
    stats = ReceptionStats(ssrc=9, clock_rate=8000)
    _stream(stats, [1, 2, 3, 5, 4, 6, 6])
    assert stats.late == 1
    assert stats.lost == -1  # the duplicate 6 makes the loss negative (RFC 3550 A.3)
    # A jump of 20000 is only accepted after two sequential packets (source restart).
    assert not stats.update(20000, 0, 30.0)
    assert stats.update(20001, 160, 30.02)
    assert stats.expected == 1


def test_jitter_converges_to_alternating_delay() -> None:
    stats = ReceptionStats(ssrc=9, clock_rate=8000)
    _stream(stats, list(range(400)), jitter=0.010)  # transit alternates by 10 ms = 80 units
    assert stats.report_block(now=99.0).jitter == pytest.approx(80, abs=2)


def test_sender_stats_and_interval() -> None:
    s = SenderStats()
    for _ in range(3):
        s.on_sent(160)
    assert (s.packet_count, s.octet_count) == (3, 480)
    # Two members at 64 kbit/s: 5 % is 400 octets/s, far below the 5 s minimum interval.
    kwargs = dict(rtcp_bandwidth=400.0, we_sent=True, avg_rtcp_size=100.0)
    assert rtcp_interval(2, 1, initial=False, random_factor=0.5, **kwargs) == pytest.approx(
        5.0 / 1.21828
    )
    assert rtcp_interval(2, 1, initial=True, random_factor=0.0, **kwargs) == pytest.approx(
        2.5 * 0.5 / 1.21828
    )
    # Large sessions: the deterministic interval grows with the members.
    big = rtcp_interval(
        1000,
        1,
        rtcp_bandwidth=400.0,
        we_sent=False,
        avg_rtcp_size=100.0,
        initial=False,
        random_factor=0.5,
    )
    assert big == pytest.approx(100.0 * 999 / 300.0 / 1.21828)


def test_serializing_nonsense_is_a_local_error() -> None:
    for pkt in (
        RtcpReceiverReport(1, tuple(ReportBlock(i) for i in range(32))),
        RtcpBye(tuple(range(32))),
        RtcpBye((1,), b"x" * 256),
        RtcpApp(32, 1, b"PING"),
        RtcpApp(0, 1, b"PIN"),
        RtcpSdes((SdesChunk(1, ((1, b"x" * 256),)),)),
    ):
        with pytest.raises(LocalProtocolError):
            bytes(pkt)
