"""An adaptive jitter buffer with loss detection for concealment (sans-IO: time is ``now``).

Packets go in with their arrival time; frames come out in timestamp order when their playout
time has come. Playout time of timestamp ``ts`` is::

    base + ts / clock_rate + delay

where ``base`` is the smallest transit (``arrival - ts / clock_rate``) seen over the last few
seconds (so clock drift and route changes are followed), and ``delay`` follows the largest
transit deviation over the same period, within ``[min_delay, max_delay]``. The delay grows at
once when packets start arriving later and shrinks slowly (at most ``shrink_rate`` seconds per
second), dropping a frame whenever a whole frame of delay has been given back.

A frame that is due but missing comes out as a loss (``payload is None``): the caller then
asks its decoder to :meth:`~sippa.rtp.codecs.Decoder.conceal`. Late packets (after their frame
was played or concealed), duplicates and packets beyond the buffer's span are dropped and
counted. A talkspurt start (marker bit) after a silence re-anchors playout.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final, Protocol

from sippa.errors import LocalProtocolError
from sippa.rtp.packet import ts_diff

__all__ = ["JitterBuffer", "JitterFrame", "JitterStats"]

_WINDOW: Final = 2.0  # seconds per statistics window; base/peak span the last two


class _Packet(Protocol):
    @property
    def sequence_number(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def marker(self) -> bool: ...
    @property
    def payload(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class JitterFrame:
    """One frame to play: a payload, or a loss to conceal (``payload`` is None)."""

    timestamp: int
    sequence_number: int | None
    """Sequence number of the packet, None for a loss."""
    payload: bytes | None

    @property
    def lost(self) -> bool:
        return self.payload is None


@dataclass(slots=True)
class JitterStats:
    """Counters of a :class:`JitterBuffer`."""

    received: int = 0
    """Packets accepted into the buffer."""
    played: int = 0
    """Frames returned with a payload."""
    lost: int = 0
    """Frames returned as losses (to conceal)."""
    late: int = 0
    """Packets dropped because their frame was already played or concealed."""
    duplicates: int = 0
    """Packets dropped because the same frame was already buffered or played."""
    dropped: int = 0
    """Frames discarded to shrink the delay or because they were beyond the buffer span."""
    resyncs: int = 0
    """Times playout was re-anchored (start, talkspurt after silence, timestamp jump)."""


class JitterBuffer:
    """Adaptive playout buffer for one RTP source."""

    __slots__ = (
        "_base",
        "_cur_max",
        "_cur_min",
        "_frames",
        "_last_seq",
        "_last_ts",
        "_next_ext",
        "_next_ts",
        "_played",
        "_played_order",
        "_prev_max",
        "_prev_min",
        "_started",
        "_step",
        "_window_start",
        "clock_rate",
        "delay",
        "max_delay",
        "min_delay",
        "shrink_rate",
        "stats",
    )

    def __init__(
        self,
        clock_rate: int,
        ptime: int = 20,
        *,
        min_delay: float = 0.02,
        max_delay: float = 0.3,
        initial_delay: float = 0.06,
        shrink_rate: float = 0.02,
    ) -> None:
        if not 0 <= min_delay <= max_delay:
            raise LocalProtocolError("need 0 <= min_delay <= max_delay")
        self.clock_rate = clock_rate
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.shrink_rate = shrink_rate
        """Seconds of delay given back per second of playout, at most."""
        self.delay = min(max(initial_delay, min_delay), max_delay)
        """Current playout delay in seconds beyond the fastest recent transit."""
        self.stats = JitterStats()
        self._step = max(1, clock_rate * ptime // 1000)
        self._frames: dict[int, tuple[int, bytes]] = {}
        # Recently played (True) or concealed (False) timestamps, oldest first.
        self._played: dict[int, bool] = {}
        self._played_order: deque[int] = deque()
        self._started = False
        # The playout cursor as a 32-bit timestamp and as an extended (unwrapped) one.
        self._next_ts = 0
        self._next_ext = 0
        self._base = 0.0
        self._last_seq: int | None = None
        self._last_ts = 0
        self._cur_min = self._prev_min = 0.0
        self._cur_max = self._prev_max = 0.0
        self._window_start = 0.0

    @property
    def frame_step(self) -> int:
        """Timestamp units per frame (learned from the stream)."""
        return self._step

    def __len__(self) -> int:
        return len(self._frames)

    def _ext(self, timestamp: int) -> int:
        # RFC 3550 §5.1 timestamps wrap at 2**32: unwrap around the cursor.
        return self._next_ext + ts_diff(timestamp, self._next_ts)

    # --- input ---

    def put(self, packet: _Packet, arrival: float) -> bool:
        """Add a packet (an :class:`~sippa.rtp.packet.RtpPacket` or alike); False if dropped."""
        return self.put_payload(
            packet.sequence_number, packet.timestamp, packet.payload, arrival, packet.marker
        )

    def put_payload(
        self, seq: int, timestamp: int, payload: bytes, arrival: float, marker: bool = False
    ) -> bool:
        """Fast path of :meth:`put` without a packet object; False if the packet was dropped."""
        # The media engine calls this for every packet of every stream: the helpers
        # (ts_diff, seq_diff, _ext, _span) are inlined here; tests/rtp/test_jitter.py checks
        # the result against the plain version (tests/rtp/jitter_reference.py).
        if not self._started:
            self._anchor(timestamp, arrival)
        d = (timestamp - self._next_ts) & 0xFFFFFFFF
        ahead = d - 0x100000000 if d >= 0x80000000 else d
        frames = self._frames
        if ahead < 0:
            if ahead < -self._span():
                # Far behind the cursor: the source restarted with a lower timestamp.
                self.stats.dropped += len(frames)
                frames.clear()
                self._anchor(timestamp, arrival)
                ahead = 0
            elif self._played.get(timestamp):
                self.stats.duplicates += 1
                return False
            else:
                self.stats.late += 1
                self._learn(arrival - (self._next_ext + ahead) / self.clock_rate, arrival,
                            late=True)
                return False
        if timestamp in frames:
            self.stats.duplicates += 1
            return False
        if ahead > self._step and (
            (marker and not frames) or ahead > self._span()
        ):
            # A talkspurt after silence, or a jump beyond what the buffer holds: start over.
            self.stats.dropped += len(frames)
            frames.clear()
            self._anchor(timestamp, arrival)
            ahead = 0
        last_seq = self._last_seq
        if last_seq is not None and (seq - last_seq) & 0xFFFF == 1:
            d = (timestamp - self._last_ts) & 0xFFFFFFFF
            if 0 < d <= self.clock_rate >> 3:
                self._step = d  # the peer's packet interval (its ptime)
        self._last_seq = seq
        self._last_ts = timestamp
        frames[timestamp] = (seq, payload)
        self.stats.received += 1
        self._learn(arrival - (self._next_ext + ahead) / self.clock_rate, arrival, late=False)
        return True

    def _span(self) -> int:
        # Nothing sane is buffered further ahead than max_delay plus a second of slack.
        return int((self.max_delay + 1.0) * self.clock_rate)

    def _anchor(self, timestamp: int, arrival: float) -> None:
        self.stats.resyncs += 1
        self._started = True
        self._next_ts = timestamp
        transit = arrival - self._next_ext / self.clock_rate
        self._base = transit
        self._cur_min = self._prev_min = transit
        self._cur_max = self._prev_max = 0.0
        self._window_start = arrival

    def _learn(self, transit: float, arrival: float, *, late: bool) -> None:
        # Once per packet: plain comparisons instead of min()/max() calls.
        if arrival - self._window_start >= _WINDOW:
            self._prev_min, self._prev_max = self._cur_min, self._cur_max
            self._cur_min, self._cur_max = transit, 0.0
            self._window_start = arrival
        cur_min = self._cur_min
        if transit < cur_min:
            self._cur_min = cur_min = transit
        prev_min = self._prev_min
        base = cur_min if cur_min < prev_min else prev_min
        deviation = transit - base
        cur_max = self._cur_max
        if deviation > cur_max:
            self._cur_max = cur_max = deviation
        prev_max = self._prev_max
        peak = cur_max if cur_max > prev_max else prev_max
        frame = self._step / self.clock_rate
        # Half a frame of margin on top of the worst recent deviation.
        target = peak + frame / 2
        if target < self.min_delay:  # noqa: PLR1730 (no call per packet)
            target = self.min_delay
        if target > self.max_delay:  # noqa: PLR1730 (no call per packet)
            target = self.max_delay
        delay = self.delay
        old_due = self._base + delay
        self._base = base
        if target >= delay or late:
            if target > delay:  # noqa: PLR1730 (no call per packet)
                delay = target
        else:
            shrunk = delay - self.shrink_rate * frame
            delay = target if target > shrunk else shrunk
        # A lower base must not pull playout earlier faster than the shrink rate either.
        floor = old_due - self.shrink_rate * frame
        if base + delay < floor:
            delay = floor - base
            if delay > self.max_delay:  # noqa: PLR1730 (no call per packet)
                delay = self.max_delay
        self.delay = delay

    # --- output ---

    def due(self, timestamp: int) -> float:
        """Playout time (on the clock of ``now``) of an RTP timestamp near the cursor."""
        return self._base + self.delay + self._ext(timestamp) / self.clock_rate

    def get(self, now: float) -> JitterFrame | None:
        """The next frame if its playout time has come, else None; call until None."""
        frame = self.pop(now)
        return None if frame is None else JitterFrame(*frame)

    def pop(self, now: float) -> tuple[int, int | None, bytes | None] | None:
        """:meth:`get` as a plain ``(timestamp, sequence_number, payload)`` tuple (the
        playout's per-frame path: no object per frame)."""
        if not self._started:
            return None
        clock_rate = self.clock_rate
        due = self._base + self.delay + self._next_ext / clock_rate
        if now < due:
            return None
        frames = self._frames
        step = self._step
        frame_time = step / clock_rate
        # Shrinking: a frame over a frame late goes away while the next one is there too.
        while now - due >= frame_time:
            nxt = (self._next_ts + step) & 0xFFFFFFFF
            if self._next_ts not in frames or nxt not in frames:
                break
            del frames[self._next_ts]
            self.stats.dropped += 1
            self._mark_played(self._next_ts, True)
            self._advance(step)
            due += frame_time
        ts = self._next_ts
        entry = frames.pop(ts, None)
        if entry is None and frames:
            # The peer may have changed its ptime: play a frame that starts within this one.
            within = [t for t in frames if 0 < ts_diff(t, ts) < step]
            if within:
                ts = min(within, key=lambda t: ts_diff(t, self._next_ts))
                self._advance(ts_diff(ts, self._next_ts))
                entry = frames.pop(ts)
        self._next_ts = (self._next_ts + step) & 0xFFFFFFFF
        self._next_ext += step
        self._mark_played(ts, entry is not None)
        if entry is None:
            if not frames and ts_diff(ts, self._last_ts) > self.max_delay * clock_rate:
                # Nothing arrives (hold, silence suppression): wait for the next packet.
                self._started = False
                return None
            self.stats.lost += 1
            return (ts, None, None)
        self.stats.played += 1
        return (ts, entry[0], entry[1])

    def _advance(self, units: int) -> None:
        self._next_ts = (self._next_ts + units) & 0xFFFFFFFF
        self._next_ext += units

    def _mark_played(self, ts: int, heard: bool) -> None:
        # The oldest entry leaves through a queue, not next(iter(dict)): that walks over the
        # deleted slots at the front of the dict's entry table, dozens of cold cache lines
        # per frame once hundreds of streams share the cache.
        played = self._played
        if ts not in played:
            order = self._played_order
            order.append(ts)
            if len(order) > 256:
                del played[order.popleft()]
        played[ts] = heard
