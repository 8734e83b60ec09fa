"""What a media stream reports: events (frozen dataclasses) and a statistics snapshot."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DtmfReceived",
    "MediaEvent",
    "RemoteLatched",
    "RtcpByeReceived",
    "RtcpReport",
    "SourceFinished",
    "StreamStats",
]


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """The peer sent a DTMF telephone event (RFC 4733 §2.5), reported once when it starts."""

    digit: str
    """The key: ``0``-``9``, ``*``, ``#``, ``A``-``D``."""


@dataclass(frozen=True, slots=True)
class RemoteLatched:
    """Symmetric RTP (RFC 4961) switched the destination to where authenticated media came from."""

    address: tuple[str, int]
    """The new destination of our RTP (or RTCP, see ``rtcp``)."""
    rtcp: bool = False
    """True when the RTCP destination latched."""


@dataclass(frozen=True, slots=True)
class RtcpReport:
    """An authenticated SR or RR about our stream arrived (RFC 3550 §6.4)."""

    fraction_lost: float
    """Share of our packets the peer lost in its last interval (0..1)."""
    cumulative_lost: int
    """Our packets the peer has lost in total."""
    jitter: float
    """Interarrival jitter the peer sees, in seconds."""
    rtt: float | None
    """Round-trip time from LSR/DLSR in seconds, None until the peer has had one of our SRs."""


@dataclass(frozen=True, slots=True)
class RtcpByeReceived:
    """The peer's source left (RTCP BYE, RFC 3550 §6.6)."""

    reason: str


@dataclass(frozen=True, slots=True)
class SourceFinished:
    """A finite audio source (a WAV file played once) has played to its end."""


MediaEvent = DtmfReceived | RemoteLatched | RtcpReport | RtcpByeReceived | SourceFinished


@dataclass(frozen=True, slots=True)
class StreamStats:
    """A snapshot of one stream's counters."""

    packets_sent: int
    octets_sent: int
    """Payload octets sent (RFC 3550 sender octet count)."""
    packets_received: int
    """Authenticated, well-formed RTP packets received."""
    octets_received: int
    packets_lost: int
    """Expected minus received (RFC 3550 A.3), for the current remote source."""
    jitter: float
    """Interarrival jitter of what we receive, seconds (RFC 3550 A.8)."""
    remote_fraction_lost: float | None
    """What the peer reported about our stream (last RTCP report), 0..1."""
    remote_jitter: float | None
    """Jitter the peer reported about our stream, seconds."""
    rtt: float | None
    """Round-trip time from RTCP, seconds."""
    auth_failures: int
    """SRTP packets dropped because they failed authentication (or were replays)."""
    rtcp_auth_failures: int
    """SRTCP packets dropped because they failed authentication (or were replays)."""
    malformed: int
    """Datagrams dropped because they were not valid RTP/RTCP."""
    send_errors: int
    """Datagrams the socket refused (buffer full, ICMP unreachable)."""
    late_frames_skipped: int
    """Frames skipped because the scheduler fell more than a few frames behind."""
    concealed_frames: int
    """Frames the jitter buffer filled by packet-loss concealment."""
    rtcp_sent: int
    rtcp_received: int
    remote_address: tuple[str, int] | None
    """Where our RTP goes now (after any symmetric-RTP latch)."""
    latched: bool
    """True once the destination latched to the peer's source address."""
    rtcp_short_tag: int = 0
    """SRTCP packets accepted with a 32-bit tag on an AES_CM_128_HMAC_SHA1_32 stream, where
    RFC 3711 asks for 80 bits (baresip 1.0 does this)."""
    rejected_source: int = 0
    """Plain RTP/RTCP packets dropped because they came from neither the learned source nor
    the address the SDP named (someone else speaking into the call, or still on probation)."""
