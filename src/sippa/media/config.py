"""Plain parameters of the media engine and of one stream (media never sees SIP or SDP)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

__all__ = ["Direction", "EngineSettings", "StreamConfig"]

#: RFC 3264 §5.1 / RFC 4566 §6: the media direction, seen from this end.
Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """One negotiated audio stream, as the offer/answer exchange left it."""

    codec: str
    """Codec name as in a=rtpmap: ``PCMU``, ``PCMA``, ``G722``, ``opus``."""
    payload_type: int
    """RTP payload type of the codec (0..127)."""
    clock_rate: int = 8000
    """RTP clock rate of the codec (a=rtpmap; 8000 for G.722, 48000 for Opus)."""
    channels: int = 1
    """Channels of the codec (a=rtpmap encoding parameters; audio is mono inside sippa)."""
    ptime: int = 20
    """Packetization time in milliseconds (a=ptime)."""
    telephone_event_pt: int | None = None
    """Payload type of RFC 4733 telephone-event, or None when not negotiated."""
    local_port: int | None = None
    """Our RTP port (reserved with :meth:`MediaEngine.reserve_port`), None: pick one now."""
    remote_host: str | None = None
    """The peer's RTP address (c= line); None until known (symmetric RTP may learn it)."""
    remote_port: int | None = None
    """The peer's RTP port (m= line); 0 or None: nothing to send to yet."""
    rtcp_mux: bool = False
    """RTP and RTCP share one port (RFC 5761)."""
    remote_rtcp_port: int | None = None
    """The peer's RTCP port (a=rtcp, RFC 3605); None: RTP port + 1 (RFC 3550 §11)."""
    direction: Direction = "sendrecv"
    """Our direction: sendrecv, sendonly, recvonly or inactive (RFC 3264 §5.1)."""
    srtp_suite: str | None = None
    """SDES crypto suite name (RFC 4568), e.g. ``AES_CM_128_HMAC_SHA1_80``; None: plain RTP."""
    srtp_local_key: bytes | None = None
    """Our master key || salt (what we offered/answered in a=crypto): protects what we send."""
    srtp_remote_key: bytes | None = None
    """The peer's master key || salt: authenticates and decrypts what we receive."""
    symmetric_rtp: bool = True
    """Latch the destination to the source of the first authenticated packet (RFC 4961)."""

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError("payload type must be 0..127")
        if self.telephone_event_pt is not None and not 0 <= self.telephone_event_pt <= 127:
            raise ValueError("telephone-event payload type must be 0..127")
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"unknown direction {self.direction!r}")
        if not 1 <= self.ptime <= 200:
            raise ValueError("ptime must be 1..200 ms")
        if self.clock_rate <= 0:
            raise ValueError("clock rate must be positive")
        if self.remote_host:
            try:
                ipaddress.ip_address(self.remote_host)
            except ValueError:
                # A name here would be resolved by a blocking lookup on every packet.
                raise ValueError(
                    f"remote_host must be an IP address (resolve {self.remote_host!r} first)"
                ) from None
        if self.srtp_suite is not None and (
            self.srtp_local_key is None or self.srtp_remote_key is None
        ):
            raise ValueError("an SRTP suite needs both the local and the remote key")

    def __repr__(self) -> str:  # never shows key material
        keys = "srtp=" + (self.srtp_suite or "off")
        return (
            f"StreamConfig({self.codec}/{self.clock_rate} pt={self.payload_type} "
            f"ptime={self.ptime} local={self.local_port} "
            f"remote={self.remote_host}:{self.remote_port} {self.direction} {keys})"
        )

    @property
    def sends(self) -> bool:
        """True when RTP flows from us (sendrecv, sendonly)."""
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        """True when received RTP is played (sendrecv, recvonly)."""
        return self.direction in ("sendrecv", "recvonly")

    @property
    def remote_rtp(self) -> tuple[str, int] | None:
        """(host, port) to send RTP to, or None."""
        if not self.remote_host or not self.remote_port:
            return None
        return (self.remote_host, self.remote_port)

    @property
    def remote_rtcp(self) -> tuple[str, int] | None:
        """(host, port) to send RTCP to, or None."""
        if not self.remote_host or not self.remote_port:
            return None
        if self.rtcp_mux:
            return (self.remote_host, self.remote_port)
        return (self.remote_host, self.remote_rtcp_port or self.remote_port + 1)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Settings of the media engine (names follow the Cisco profile where one exists)."""

    rtp_port_min: int = 16384
    """"RTP Port Min": lowest local RTP port; each stream takes a random EVEN port."""
    rtp_port_max: int = 32766
    """"RTP Port Max": highest local RTP port."""
    bind_host: str = "127.0.0.1"
    """Local address the RTP sockets bind to."""
    rtcp_interval: float = 5.0
    """Mean RTCP report interval in seconds (RFC 3550 §6.2 minimum), randomized 0.5..1.5x."""
    early_slack: float = 0.001
    """A frame may go out this much before its deadline (absorbs coarse loop timers)."""
    max_catch_up: int = 5
    """A stream more than this many frames behind (a stalled loop) skips ahead, not bursts."""
    jitter_min_delay: float = 0.02
    """Lower bound of the adaptive jitter buffer's playout delay, seconds."""
    jitter_initial_delay: float = 0.06
    """Playout delay of the jitter buffer before it has measured the network, seconds."""
    jitter_max_delay: float = 0.3
    """Upper bound of the adaptive playout delay, seconds."""

    def __post_init__(self) -> None:
        if not 1024 <= self.rtp_port_min < self.rtp_port_max <= 65535:
            raise ValueError("need 1024 <= RTP Port Min < RTP Port Max <= 65535")
