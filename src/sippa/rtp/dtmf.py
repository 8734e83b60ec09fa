"""DTMF as RTP telephone-events (RFC 4733): payload format, sender sequence, receiver.

The sender turns one digit into the packets to send, one per ``ptime`` slot: the first with
the marker bit, updates with the growing duration, and the final packet (E bit) three times,
all carrying the timestamp of the event start (§2.5.1). The receiver reports each digit once,
whether or not its start packet arrived, and ignores duplicated end packets (§2.5.2).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.rtp.packet import ts_diff

__all__ = [
    "DIGITS",
    "DtmfDigit",
    "DtmfPacket",
    "DtmfReceiver",
    "DtmfSender",
    "TelephoneEvent",
    "digit_to_event",
    "event_to_digit",
]

# RFC 4733 §3.2 table 7: DTMF named events.
DIGITS: Final = "0123456789*#ABCD"
_MAX_DURATION: Final = 0xFFFF
_END_REPEATS: Final = 3  # §2.5.1.4: the final packet is sent three times
_PAYLOAD = struct.Struct("!BBH")


def digit_to_event(digit: str) -> int:
    """The event code of a DTMF digit ``0-9 * # A-D``."""
    code = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise LocalProtocolError(f"not a DTMF digit: {digit!r}")
    return code


def event_to_digit(event: int) -> str | None:
    """The digit of a DTMF event code, or None for other events (flash, tones...)."""
    return DIGITS[event] if 0 <= event < len(DIGITS) else None


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-octet telephone-event payload (RFC 4733 §2.3)."""

    event: int
    end: bool = False
    volume: int = 10
    """Power level in -dBm0 (0..63), §2.3.2."""
    duration: int = 0
    """Duration so far in RTP timestamp units."""

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        # §2.3: one event per payload; redundant events (RFC 2198) are not supported here.
        if len(payload) < 4:
            raise RemoteProtocolError("telephone-event payload shorter than 4 octets")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        if not 0 <= self.volume <= 63:
            raise LocalProtocolError("volume must be 0..63")
        flags = (0x80 if self.end else 0) | self.volume  # R bit is 0 (§2.3.3)
        return _PAYLOAD.pack(self.event, flags, min(self.duration, _MAX_DURATION))


@dataclass(frozen=True, slots=True)
class DtmfPacket:
    """One packet of a digit's sequence, to send at ``slot`` * ptime after the first."""

    payload: bytes
    marker: bool
    timestamp: int
    slot: int


class DtmfSender:
    """Builds the packet sequence of a digit (RFC 4733 §2.5.1)."""

    __slots__ = ("clock_rate", "ptime", "volume")

    def __init__(self, clock_rate: int = 8000, ptime: int = 20, volume: int = 10) -> None:
        self.clock_rate = clock_rate
        self.ptime = ptime
        self.volume = volume

    def packets(self, digit: str, timestamp: int, duration_ms: int = 100) -> list[DtmfPacket]:
        """The packets for ``digit`` starting at RTP ``timestamp``; the caller numbers them.

        An event longer than 65535 timestamp units is split into segments, each with its own
        timestamp and no marker (§2.5.1.3).
        """
        event = digit_to_event(digit)
        if duration_ms <= 0:
            raise LocalProtocolError("DTMF duration must be positive")
        step = self.clock_rate * self.ptime // 1000
        total = self.clock_rate * duration_ms // 1000
        out: list[DtmfPacket] = []
        slot = 0
        seg_start = 0
        while True:
            seg_len = min(total - seg_start, _MAX_DURATION - _MAX_DURATION % step)
            last_segment = seg_start + seg_len >= total
            ts = (timestamp + seg_start) & 0xFFFFFFFF
            elapsed = 0
            while elapsed < seg_len:
                elapsed = min(elapsed + step, seg_len)
                final = elapsed == seg_len and last_segment
                payload = bytes(TelephoneEvent(event, final, self.volume, elapsed))
                repeats = _END_REPEATS if final else 1
                for _ in range(repeats):
                    out.append(DtmfPacket(payload, marker=not out, timestamp=ts, slot=slot))
                    slot += 1
            if last_segment:
                return out
            seg_start += seg_len


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A digit the receiver detected."""

    digit: str
    timestamp: int
    """RTP timestamp of the event start."""


class DtmfReceiver:
    """Detects each digit once from received telephone-event packets (RFC 4733 §2.5.2)."""

    __slots__ = ("_ended", "_event", "_timestamp", "_until", "events")

    def __init__(self) -> None:
        self._timestamp: int | None = None
        self._event = -1
        self._ended = True
        self._until = 0
        self.events = 0
        """Digits reported so far."""

    def receive(self, payload: bytes, timestamp: int) -> DtmfDigit | None:
        """Feed one telephone-event payload; returns the digit the first time an event is seen."""
        ev = TelephoneEvent.parse(payload)
        if self._timestamp is not None and ts_diff(timestamp, self._timestamp) < 0:
            return None  # a late packet of an earlier event
        if timestamp == self._timestamp and ev.event == self._event:
            # An update or a (repeated) end packet of the event we already reported.
            self._ended = self._ended or ev.end
            self._until = max(self._until, (timestamp + ev.duration) & 0xFFFFFFFF)
            return None
        if ev.event == self._event and not self._ended and timestamp == self._until:
            # §2.5.1.3: the next segment of a long event continues it, it is not a new digit.
            self._timestamp = timestamp
            self._ended = ev.end
            self._until = (timestamp + ev.duration) & 0xFFFFFFFF
            return None
        self._timestamp = timestamp
        self._event = ev.event
        self._ended = ev.end
        self._until = (timestamp + ev.duration) & 0xFFFFFFFF
        digit = event_to_digit(ev.event)
        if digit is None:
            return None
        self.events += 1
        return DtmfDigit(digit, timestamp)
