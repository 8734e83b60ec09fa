"""RTP packets (RFC 3550 §5.1), sequence/timestamp arithmetic and the rtcp-mux demultiplexer.

Two ways in: :class:`RtpPacket` (a parse/serialize pair for the general case) and a bytes-level
fast path for the media engine's per-packet loop (:func:`build_rtp_header`,
:func:`rewrite_rtp_header`, :func:`peek_rtp`), which never builds an object per packet.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sippa.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "RTP_HEADER_SIZE",
    "RTP_VERSION",
    "RtpPacket",
    "build_rtp_header",
    "extend_sequence",
    "is_rtcp",
    "is_rtp_or_rtcp",
    "peek_rtp",
    "rewrite_rtp_header",
    "seq_add",
    "seq_diff",
    "seq_lt",
    "ts_add",
    "ts_diff",
    "ts_lt",
]

RTP_VERSION = 2
RTP_HEADER_SIZE = 12

# RFC 3550 §5.1: V(2) P(1) X(1) CC(4) | M(1) PT(7) | sequence number(16) | timestamp | SSRC.
_HEADER = struct.Struct("!BBHII")
_SEQ_TS = struct.Struct("!HI")
_EXT_HEADER = struct.Struct("!HH")
_pack_header = _HEADER.pack
_pack_header_into = _HEADER.pack_into
_unpack_header = _HEADER.unpack_from

_SEQ_MOD = 1 << 16
_SEQ_HALF = 1 << 15
_TS_MOD = 1 << 32
_TS_HALF = 1 << 31


# --- 16-bit sequence and 32-bit timestamp arithmetic (RFC 3550 §5.1, A.1; RFC 1982 style) ---


def seq_add(seq: int, n: int) -> int:
    """``seq + n`` modulo 2**16."""
    return (seq + n) & 0xFFFF


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in sequence space, in [-32768, 32767]."""
    d = (a - b) & 0xFFFF
    return d - _SEQ_MOD if d >= _SEQ_HALF else d


def seq_lt(a: int, b: int) -> bool:
    """True when ``a`` comes before ``b`` under 16-bit wrap-around."""
    return seq_diff(a, b) < 0


def ts_add(ts: int, n: int) -> int:
    """``ts + n`` modulo 2**32."""
    return (ts + n) & 0xFFFFFFFF


def ts_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in 32-bit timestamp space."""
    d = (a - b) & 0xFFFFFFFF
    return d - _TS_MOD if d >= _TS_HALF else d


def ts_lt(a: int, b: int) -> bool:
    """True when timestamp ``a`` comes before ``b`` under 32-bit wrap-around."""
    return ts_diff(a, b) < 0


def extend_sequence(highest: int | None, seq: int) -> int:
    """Extend a 16-bit ``seq`` to the extended sequence number nearest to ``highest``.

    ``highest`` is the largest extended sequence number seen so far (cycles * 65536 + seq,
    RFC 3550 A.1) or None for the first packet. The result may be smaller than ``highest``
    (a reordered packet) and is never negative.
    """
    if highest is None:
        return seq
    ext = highest + seq_diff(seq, highest & 0xFFFF)
    return ext if ext >= 0 else ext + _SEQ_MOD


# --- RFC 5761 §4: demultiplexing RTP and RTCP on one port ---


def is_rtcp(data: bytes) -> bool:
    """True if ``data`` is RTCP on an rtcp-mux port: 2nd octet 192-223 (PT 64-95, RFC 5761 §4)."""
    return len(data) >= 2 and 64 <= (data[1] & 0x7F) <= 95


def is_rtp_or_rtcp(data: bytes) -> bool:
    """True if the first octet is 128-191 (RFC 7983 §7: RTP/RTCP, as opposed to STUN/DTLS)."""
    return len(data) >= 1 and 128 <= data[0] <= 191


# --- fast path: bytes in, bytes out, no object per packet ---


def build_rtp_header(
    payload_type: int, sequence_number: int, timestamp: int, ssrc: int, marker: bool = False
) -> bytes:
    """The 12-octet fixed header (no CSRC, no extension, no padding)."""
    return _pack_header(
        0x80,
        (0x80 if marker else 0) | payload_type,
        sequence_number & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )


def rewrite_rtp_header(
    buf: bytearray | memoryview,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    *,
    marker: bool = False,
) -> None:
    """Write a fixed header in place into the first 12 octets of ``buf`` (a reusable buffer)."""
    _pack_header_into(
        buf,
        0,
        0x80,
        (0x80 if marker else 0) | payload_type,
        sequence_number & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )


def peek_rtp(data: bytes) -> tuple[int, int, int, int, bool, int, int]:
    """Validate ``data`` and return ``(payload_type, seq, timestamp, ssrc, marker, start, end)``.

    ``data[start:end]`` is the payload (CSRCs, extension and padding skipped). Raises
    :class:`RemoteProtocolError` like :meth:`RtpPacket.parse`.
    """
    n = len(data)
    if n < RTP_HEADER_SIZE:
        raise RemoteProtocolError("RTP packet shorter than 12 octets")
    b0, b1, seq, ts, ssrc = _unpack_header(data)
    if b0 >> 6 != RTP_VERSION:
        raise RemoteProtocolError(f"RTP version {b0 >> 6} is not 2")
    start = RTP_HEADER_SIZE + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        # RFC 3550 §5.3.1: 16-bit profile, 16-bit length in 32-bit words, then the data.
        if n < start + 4:
            raise RemoteProtocolError("RTP header extension truncated")
        start += 4 + 4 * _EXT_HEADER.unpack_from(data, start)[1]
    end = n
    if b0 & 0x20:
        # RFC 3550 §5.1: the last octet counts the padding octets, itself included.
        pad = data[-1] if n else 0
        end = n - pad
        if pad == 0 or end < start:
            raise RemoteProtocolError("bad RTP padding count")
    if start > end:
        raise RemoteProtocolError("RTP header longer than the packet")
    return b1 & 0x7F, seq, ts, ssrc, bool(b1 & 0x80), start, end


@dataclass(slots=True, kw_only=True)
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1).

    ``padding`` is the number of padding octets (0: none); ``extension`` is
    ``(profile, data)`` with ``len(data)`` a multiple of 4 (RFC 3550 §5.3.1), or None.
    """

    version: int = RTP_VERSION
    padding: int = 0
    marker: bool = False
    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    payload: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet; raises :class:`RemoteProtocolError` on malformed input."""
        pt, seq, ts, ssrc, marker, start, end = peek_rtp(data)
        b0 = data[0]
        cc = b0 & 0x0F
        csrc = struct.unpack_from(f"!{cc}I", data, RTP_HEADER_SIZE) if cc else ()
        extension = None
        if b0 & 0x10:
            pos = RTP_HEADER_SIZE + 4 * cc
            profile, words = _EXT_HEADER.unpack_from(data, pos)
            extension = (profile, bytes(data[pos + 4 : pos + 4 + 4 * words]))
        return cls(
            padding=len(data) - end,
            marker=marker,
            payload_type=pt,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            csrc=tuple(csrc),
            extension=extension,
            payload=bytes(data[start:end]),
        )

    def __bytes__(self) -> bytes:
        if not 0 <= self.payload_type <= 127:
            raise LocalProtocolError("payload type must be 0..127")
        if len(self.csrc) > 15:
            raise LocalProtocolError("at most 15 CSRCs")
        if not 0 <= self.padding <= 255:
            raise LocalProtocolError("padding must be 0..255 octets")
        b0 = (self.version << 6) | len(self.csrc)
        if self.padding:
            b0 |= 0x20
        if self.extension is not None:
            b0 |= 0x10
        parts = [
            _pack_header(
                b0,
                (0x80 if self.marker else 0) | self.payload_type,
                self.sequence_number & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                self.ssrc,
            )
        ]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension is not None:
            profile, ext = self.extension
            if len(ext) % 4:
                raise LocalProtocolError("RTP header extension data must be a multiple of 4 octets")
            parts.append(_EXT_HEADER.pack(profile, len(ext) // 4))
            parts.append(ext)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)
