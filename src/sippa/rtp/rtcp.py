"""RTCP (RFC 3550 §6): compound packet parse/serialize, reception statistics, NTP time.

Packets are slotted dataclasses with ``parse``/``__bytes__`` side by side. :func:`parse_rtcp`
splits a compound packet and keeps packet types it does not model (APP, feedback, XR...) as
:class:`RtcpUnknown` instead of failing. :class:`ReceptionStats` implements the receiver side
of RFC 3550 appendix A.1 (sequence validation), A.3 (loss) and A.8 (jitter); round-trip time
comes from LSR/DLSR (§6.4.1). Time is always an argument (``now``, Unix seconds).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Final

from sippa.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "NTP_EPOCH_OFFSET",
    "ReceptionStats",
    "ReportBlock",
    "RtcpApp",
    "RtcpBye",
    "RtcpPacket",
    "RtcpReceiverReport",
    "RtcpSdes",
    "RtcpSenderReport",
    "RtcpUnknown",
    "SdesChunk",
    "SenderStats",
    "ntp_from_unix",
    "ntp_middle32",
    "parse_rtcp",
    "round_trip_time",
    "rtcp_interval",
    "serialize_rtcp",
    "unix_from_ntp",
]

# RFC 3550 §12.1 packet types.
RTCP_SR: Final = 200
RTCP_RR: Final = 201
RTCP_SDES: Final = 202
RTCP_BYE: Final = 203
RTCP_APP: Final = 204

# RFC 3550 §6.5 SDES item types.
SDES_END: Final = 0
SDES_CNAME: Final = 1

NTP_EPOCH_OFFSET: Final = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01 (RFC 5905)

_HEADER = struct.Struct("!BBH")
_SR_INFO = struct.Struct("!IQIII")  # SSRC, NTP, RTP timestamp, packet count, octet count
_BLOCK = struct.Struct("!IIIIII")
_U32 = struct.Struct("!I")


# --- NTP timestamps (RFC 3550 §4) ---


def ntp_from_unix(now: float) -> int:
    """The 64-bit NTP timestamp (32.32 fixed point since 1900) for Unix time ``now``."""
    return int((now + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def unix_from_ntp(ntp: int) -> float:
    """Unix time of a 64-bit NTP timestamp."""
    return ntp / (1 << 32) - NTP_EPOCH_OFFSET


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp (16.16 seconds), as carried in LSR (§6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


# --- packets ---


def _header(padding: bool, count: int, packet_type: int, body_len: int) -> bytes:
    # RFC 3550 §6.4.1: a 5-bit count; length is the packet length in 32-bit words minus one.
    if not 0 <= count <= 31:
        raise LocalProtocolError(f"RTCP count {count} does not fit in 5 bits")
    return _HEADER.pack(0x80 | (0x20 if padding else 0) | count, packet_type, body_len // 4)


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (RFC 3550 §6.4.1)."""

    ssrc: int
    """The source this block reports on."""
    fraction_lost: int = 0
    """Fraction of packets lost since the previous report, in 1/256 (0..255)."""
    cumulative_lost: int = 0
    """Packets lost since the beginning (signed 24 bits; duplicates can make it negative)."""
    highest_sequence: int = 0
    """Extended highest sequence number received (cycles << 16 | seq)."""
    jitter: int = 0
    """Interarrival jitter in RTP timestamp units."""
    lsr: int = 0
    """Middle 32 bits of the NTP timestamp of the last SR received from the source, or 0."""
    dlsr: int = 0
    """Delay since that SR, in 1/65536 seconds, or 0."""

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, word, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        lost = word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 1 << 24
        return cls(ssrc, word >> 24, lost, highest, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        lost = max(-(1 << 23), min(self.cumulative_lost, (1 << 23) - 1)) & 0xFFFFFF
        return _BLOCK.pack(
            self.ssrc,
            (self.fraction_lost & 0xFF) << 24 | lost,
            self.highest_sequence & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.lsr & 0xFFFFFFFF,
            self.dlsr & 0xFFFFFFFF,
        )


def _blocks(data: bytes, offset: int, count: int, end: int) -> tuple[ReportBlock, ...]:
    if offset + count * 24 > end:
        raise RemoteProtocolError("RTCP report blocks exceed the packet")
    return tuple(ReportBlock.parse(data, offset + 24 * i) for i in range(count))


@dataclass(frozen=True, slots=True)
class RtcpSenderReport:
    """SR (RFC 3550 §6.4.1)."""

    packet_type: ClassVar[int] = RTCP_SR
    ssrc: int
    ntp_timestamp: int
    """64-bit NTP wallclock time of the report (see :func:`ntp_from_unix`)."""
    rtp_timestamp: int
    """The same instant in the sender's RTP clock."""
    packet_count: int
    octet_count: int
    """Payload octets sent (no headers, no padding)."""
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    """Profile-specific extension octets (multiple of 4)."""

    @classmethod
    def parse(cls, data: bytes, count: int, start: int, end: int) -> RtcpSenderReport:
        if end - start < 24:
            raise RemoteProtocolError("RTCP SR shorter than its sender info")
        ssrc, ntp, rtp_ts, packets, octets = _SR_INFO.unpack_from(data, start)
        reports = _blocks(data, start + 24, count, end)
        ext = bytes(data[start + 24 + 24 * count : end])
        return cls(ssrc, ntp, rtp_ts, packets, octets, reports, ext)

    def __bytes__(self) -> bytes:
        body = (
            _SR_INFO.pack(
                self.ssrc,
                self.ntp_timestamp,
                self.rtp_timestamp & 0xFFFFFFFF,
                self.packet_count & 0xFFFFFFFF,
                self.octet_count & 0xFFFFFFFF,
            )
            + b"".join(bytes(b) for b in self.reports)
            + self.extension
        )
        return _header(False, len(self.reports), RTCP_SR, len(body)) + body


@dataclass(frozen=True, slots=True)
class RtcpReceiverReport:
    """RR (RFC 3550 §6.4.2)."""

    packet_type: ClassVar[int] = RTCP_RR
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    @classmethod
    def parse(cls, data: bytes, count: int, start: int, end: int) -> RtcpReceiverReport:
        if end - start < 4:
            raise RemoteProtocolError("RTCP RR without SSRC")
        (ssrc,) = _U32.unpack_from(data, start)
        reports = _blocks(data, start + 4, count, end)
        return cls(ssrc, reports, bytes(data[start + 4 + 24 * count : end]))

    def __bytes__(self) -> bytes:
        body = _U32.pack(self.ssrc) + b"".join(bytes(b) for b in self.reports) + self.extension
        return _header(False, len(self.reports), RTCP_RR, len(body)) + body


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """One SDES chunk: a source and its items ``(type, value)`` (RFC 3550 §6.5)."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()

    @property
    def cname(self) -> str | None:
        """The CNAME item (§6.5.1), decoded as UTF-8 with replacement, or None."""
        for kind, value in self.items:
            if kind == SDES_CNAME:
                return value.decode("utf-8", "replace")
        return None


@dataclass(frozen=True, slots=True)
class RtcpSdes:
    """SDES (RFC 3550 §6.5)."""

    packet_type: ClassVar[int] = RTCP_SDES
    chunks: tuple[SdesChunk, ...] = ()

    @classmethod
    def cname_for(cls, ssrc: int, cname: str) -> RtcpSdes:
        """The usual SDES: one chunk with one CNAME."""
        return cls((SdesChunk(ssrc, ((SDES_CNAME, cname.encode()),)),))

    @classmethod
    def parse(cls, data: bytes, count: int, start: int, end: int) -> RtcpSdes:
        chunks = []
        pos = start
        for _ in range(count):
            if pos + 4 > end:
                raise RemoteProtocolError("RTCP SDES chunk truncated")
            (ssrc,) = _U32.unpack_from(data, pos)
            pos += 4
            items = []
            while True:
                if pos >= end:
                    raise RemoteProtocolError("RTCP SDES items not terminated")
                kind = data[pos]
                if kind == SDES_END:
                    # The list ends with null octets up to the next 32-bit boundary.
                    pos = (pos + 4) & ~3
                    break
                if pos + 2 > end or pos + 2 + data[pos + 1] > end:
                    raise RemoteProtocolError("RTCP SDES item truncated")
                length = data[pos + 1]
                items.append((kind, bytes(data[pos + 2 : pos + 2 + length])))
                pos += 2 + length
            chunks.append(SdesChunk(ssrc, tuple(items)))
        return cls(tuple(chunks))

    def __bytes__(self) -> bytes:
        parts = []
        for chunk in self.chunks:
            raw = bytearray(_U32.pack(chunk.ssrc))
            for kind, value in chunk.items:
                if len(value) > 255:
                    raise LocalProtocolError("SDES item longer than 255 octets")
                raw += bytes((kind, len(value))) + value
            raw += bytes(4 - len(raw) % 4)  # at least one null octet ends the list
            parts.append(bytes(raw))
        body = b"".join(parts)
        return _header(False, len(self.chunks), RTCP_SDES, len(body)) + body


@dataclass(frozen=True, slots=True)
class RtcpBye:
    """BYE (RFC 3550 §6.6)."""

    packet_type: ClassVar[int] = RTCP_BYE
    ssrcs: tuple[int, ...] = ()
    reason: bytes = b""

    @classmethod
    def parse(cls, data: bytes, count: int, start: int, end: int) -> RtcpBye:
        if start + 4 * count > end:
            raise RemoteProtocolError("RTCP BYE sources exceed the packet")
        ssrcs = struct.unpack_from(f"!{count}I", data, start)
        pos = start + 4 * count
        reason = b""
        if pos < end:
            length = data[pos]
            if pos + 1 + length > end:
                raise RemoteProtocolError("RTCP BYE reason truncated")
            reason = bytes(data[pos + 1 : pos + 1 + length])
        return cls(tuple(ssrcs), reason)

    def __bytes__(self) -> bytes:
        body = struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs)
        if self.reason:
            if len(self.reason) > 255:
                raise LocalProtocolError("BYE reason longer than 255 octets")
            body += bytes((len(self.reason),)) + self.reason
            body += bytes(-len(body) % 4)
        return _header(False, len(self.ssrcs), RTCP_BYE, len(body)) + body


@dataclass(frozen=True, slots=True)
class RtcpApp:
    """APP (RFC 3550 §6.7), e.g. baresip's clear "PING"."""

    packet_type: ClassVar[int] = RTCP_APP
    subtype: int
    ssrc: int
    name: bytes
    data: bytes = b""

    @classmethod
    def parse(cls, data: bytes, count: int, start: int, end: int) -> RtcpApp:
        if end - start < 8:
            raise RemoteProtocolError("RTCP APP shorter than SSRC and name")
        (ssrc,) = _U32.unpack_from(data, start)
        return cls(count, ssrc, bytes(data[start + 4 : start + 8]), bytes(data[start + 8 : end]))

    def __bytes__(self) -> bytes:
        if len(self.name) != 4 or len(self.data) % 4:
            raise LocalProtocolError("APP name is 4 octets and data a multiple of 4")
        body = _U32.pack(self.ssrc) + self.name + self.data
        return _header(False, self.subtype, RTCP_APP, len(body)) + body


@dataclass(frozen=True, slots=True)
class RtcpUnknown:
    """Any other RTCP packet (feedback, XR...), kept as its count and body."""

    packet_type: int
    count: int
    body: bytes

    def __bytes__(self) -> bytes:
        return _header(False, self.count, self.packet_type, len(self.body)) + self.body


RtcpPacket = RtcpSenderReport | RtcpReceiverReport | RtcpSdes | RtcpBye | RtcpApp | RtcpUnknown

_PARSERS: Final[dict[int, Callable[[bytes, int, int, int], RtcpPacket]]] = {
    RTCP_SR: RtcpSenderReport.parse,
    RTCP_RR: RtcpReceiverReport.parse,
    RTCP_SDES: RtcpSdes.parse,
    RTCP_BYE: RtcpBye.parse,
    RTCP_APP: RtcpApp.parse,
}


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Split and parse a compound RTCP packet (RFC 3550 §6.1); RemoteProtocolError if malformed."""
    packets: list[RtcpPacket] = []
    pos = 0
    n = len(data)
    if n < 4:
        raise RemoteProtocolError("RTCP packet shorter than its header")
    while pos < n:
        if n - pos < 4:
            raise RemoteProtocolError("trailing octets after RTCP packet")
        b0, packet_type, words = _HEADER.unpack_from(data, pos)
        if b0 >> 6 != 2:
            raise RemoteProtocolError(f"RTCP version {b0 >> 6} is not 2")
        end = pos + 4 * (words + 1)
        if end > n:
            raise RemoteProtocolError("RTCP length exceeds the datagram")
        body_end = end
        if b0 & 0x20:
            # RFC 3550 §6.4.1: padding, counted by the last octet of this packet.
            pad = data[end - 1]
            body_end = end - pad
            if pad == 0 or body_end < pos + 4:
                raise RemoteProtocolError("bad RTCP padding count")
        count = b0 & 0x1F
        parser = _PARSERS.get(packet_type)
        if parser is None:
            packets.append(RtcpUnknown(packet_type, count, bytes(data[pos + 4 : body_end])))
        else:
            packets.append(parser(data, count, pos + 4, body_end))
        pos = end
    return packets


def serialize_rtcp(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    """Concatenate packets into one compound RTCP packet."""
    return b"".join(bytes(p) for p in packets)


# --- statistics ---


def round_trip_time(block: ReportBlock, now: float) -> float | None:
    """RTT in seconds from a report block about our stream received at ``now`` (§6.4.1).

    Returns None when the peer has not received an SR from us yet (LSR = 0).
    """
    if block.lsr == 0:
        return None
    a = ntp_middle32(ntp_from_unix(now))
    rtt = (a - block.lsr - block.dlsr) & 0xFFFFFFFF
    if rtt >= 0x80000000:  # clock skew made it negative
        return 0.0
    return rtt / 65536.0


def rtcp_interval(
    members: int,
    senders: int,
    *,
    rtcp_bandwidth: float,
    we_sent: bool,
    avg_rtcp_size: float,
    initial: bool,
    random_factor: float,
) -> float:
    """RFC 3550 A.7 interval in seconds; ``random_factor`` is drawn uniformly from [0, 1).

    ``rtcp_bandwidth`` is in octets per second (5 % of the session bandwidth).
    """
    rtcp_min_time = 2.5 if initial else 5.0
    n = members
    if senders <= members * 0.25:
        if we_sent:
            rtcp_bandwidth *= 0.25
            n = senders
        else:
            rtcp_bandwidth *= 0.75
            n = members - senders
    t = avg_rtcp_size * max(n, 1) / rtcp_bandwidth if rtcp_bandwidth > 0 else rtcp_min_time
    t = max(t, rtcp_min_time)
    t *= random_factor + 0.5
    return t / 1.21828  # e - 3/2, compensating timer reconsideration


@dataclass(slots=True)
class SenderStats:
    """What we sent, for the sender info of our SRs (§6.4.1)."""

    packet_count: int = 0
    octet_count: int = 0

    def on_sent(self, payload_octets: int) -> None:
        self.packet_count += 1
        self.octet_count += payload_octets


# RFC 3550 A.1 constants.
MAX_DROPOUT: Final = 3000
MAX_MISORDER: Final = 100
MIN_SEQUENTIAL: Final = 2
_RTP_SEQ_MOD: Final = 1 << 16


@dataclass(slots=True)
class ReceptionStats:
    """Reception statistics for one remote SSRC (RFC 3550 A.1, A.3, A.8).

    Feed every received packet to :meth:`update`; :meth:`report_block` makes the block for
    our next SR/RR. ``clock_rate`` converts arrival times into RTP units for the jitter.
    """

    ssrc: int
    clock_rate: int
    probation: int = MIN_SEQUENTIAL
    max_seq: int = 0
    cycles: int = 0
    base_seq: int = 0
    bad_seq: int = _RTP_SEQ_MOD + 1
    received: int = 0
    expected_prior: int = 0
    received_prior: int = 0
    jitter: float = 0.0
    """Interarrival jitter in RTP timestamp units (A.8), as a float."""
    late: int = 0
    """Packets older than the highest sequence seen (reordered or duplicated late)."""
    _started: bool = field(default=False, repr=False)
    _transit: int | None = field(default=None, repr=False)
    _last_sr: int = 0
    _last_sr_arrival: float = 0.0

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = _RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def update(self, seq: int, rtp_timestamp: int, arrival: float) -> bool:
        """Account one packet; False if RFC 3550 A.1 says it is not (yet) valid."""
        if not self._started:
            self._started = True
            self._init_seq(seq)
            self.max_seq = (seq - 1) & 0xFFFF
            self.probation = MIN_SEQUENTIAL
        max_seq = self.max_seq
        udelta = (seq - max_seq) & 0xFFFF
        if udelta == 1 and not self.probation:
            # The usual packet: the next in sequence (A.1 with A.8 inlined; per packet).
            if seq < max_seq:
                self.cycles += _RTP_SEQ_MOD  # wrapped
            self.max_seq = seq
            self.received += 1
            transit = int(arrival * self.clock_rate) - rtp_timestamp
            last = self._transit
            if last is not None:
                d = (transit - last) & 0xFFFFFFFF
                if d >= 0x80000000:
                    d = 0x100000000 - d
                self.jitter += (d - self.jitter) / 16.0
            self._transit = transit
            return True
        if self.probation:
            # A.1: a source is valid after MIN_SEQUENTIAL packets in sequence.
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    self._jitter(rtp_timestamp, arrival)
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += _RTP_SEQ_MOD  # wrapped
            self.max_seq = seq
        elif udelta <= _RTP_SEQ_MOD - MAX_MISORDER:
            # A large jump: accept it after two sequential packets (the source restarted).
            if seq == self.bad_seq:
                self._init_seq(seq)
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        else:
            self.late += 1  # reordered or duplicated
        self.received += 1
        self._jitter(rtp_timestamp, arrival)
        return True

    def _jitter(self, rtp_timestamp: int, arrival: float) -> None:
        # A.8: J += (|D(i-1, i)| - J) / 16, in timestamp units.
        transit = int(arrival * self.clock_rate) - rtp_timestamp
        if self._transit is not None:
            d = (transit - self._transit) & 0xFFFFFFFF
            if d >= 0x80000000:
                d = 0x100000000 - d
            self.jitter += (d - self.jitter) / 16.0
        self._transit = transit

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """A.3: packets expected so far."""
        return self.extended_max - self.base_seq + 1 if self.received else 0

    @property
    def lost(self) -> int:
        """A.3: cumulative packets lost (negative with duplicates)."""
        return self.expected - self.received

    def on_sender_report(self, sr: RtcpSenderReport, arrival: float) -> None:
        """Remember the source's last SR for LSR/DLSR (§6.4.1)."""
        self._last_sr = ntp_middle32(sr.ntp_timestamp)
        self._last_sr_arrival = arrival

    def report_block(self, now: float) -> ReportBlock:
        """The reception report for this source; resets the interval counters (A.3)."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min((lost_interval << 8) // expected_interval, 255)
        dlsr = 0
        if self._last_sr:
            dlsr = max(0, int((now - self._last_sr_arrival) * 65536))
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            cumulative_lost=self.lost,
            highest_sequence=self.extended_max & 0xFFFFFFFF,
            jitter=int(self.jitter),
            lsr=self._last_sr,
            dlsr=dlsr,
        )
