"""Adaptive playout: turns received packets into one PCM frame per scheduler tick.

Packets are kept by RTP timestamp. Playout starts ``min_delay`` after the first packet and
then advances one frame per tick on the timestamp grid, so the sink gets audio at a steady
rate whatever the network does:

- a missing frame is concealed by the decoder (last frame repeated and faded, then
  silence: packet-loss concealment);
- a packet that arrives after its frame was played (late) grows the delay by one frame,
  up to ``max_delay`` (one extra concealed frame is inserted);
- after a whole window (5 s) without a late packet the target delay shrinks by a frame,
  and a buffer that stayed deeper than the target for the whole window drops one frame;
- a jump of the sender's timestamp by more than a second (a new talk spurt after a long
  pause, a restarted source) re-primes the buffer instead of waiting or concealing.
"""

from __future__ import annotations

from collections.abc import Callable

from sippa.errors import RemoteProtocolError
from sippa.rtp.packet import ts_diff

__all__ = ["Playout"]

_SHRINK_WINDOW = 250  # ticks (5 s at 20 ms) of steady depth before the delay shrinks


class Playout:
    """The playout buffer of one stream (pull model: one :meth:`get` per tick)."""

    def __init__(
        self,
        clock_rate: int,
        frame_samples: int,
        ts_step: int,
        *,
        min_delay: float = 0.04,
        max_delay: float = 0.3,
    ) -> None:
        self.clock_rate = clock_rate
        self.ts_step = ts_step
        self.frame_bytes = 2 * frame_samples
        ptime = ts_step / clock_rate
        self.min_frames = max(1, round(min_delay / ptime))
        self.max_frames = max(self.min_frames, round(max_delay / ptime))
        self.delay_frames = self.min_frames
        self.concealed = 0
        """Frames filled by concealment."""
        self.late = 0
        """Packets that arrived after their frame was played (dropped)."""
        self.dropped = 0
        """Frames dropped to shrink the delay, or because the buffer overflowed."""
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new source)."""
        self._packets: dict[int, bytes] = {}
        self._pcm = b""
        self._next_ts: int | None = None
        self._start_at: float | None = None
        self._playing = False
        self._stretch = 0
        self._min_depth = 1 << 30
        self._window = 0
        self._newest: int | None = None
        self._late_mark = self.late

    @property
    def depth(self) -> int:
        """Frames buffered ahead of the playout point."""
        if self._next_ts is None or self._newest is None:
            return 0
        return max(0, ts_diff(self._newest, self._next_ts) // self.ts_step + 1)

    def put(self, seq: int, timestamp: int, payload: bytes, arrival: float) -> None:
        """Store one received payload (``seq`` is only used by subclasses/diagnostics)."""
        if self._next_ts is None:
            self._next_ts = timestamp
            self._newest = timestamp
            self._start_at = arrival + self.delay_frames * self.ts_step / self.clock_rate
        else:
            ahead = ts_diff(timestamp, self._next_ts)
            if abs(ahead) > self.clock_rate:
                # More than a second off: the sender restarted its clock. Re-prime.
                self.reset()
                self.put(seq, timestamp, payload, arrival)
                return
            if ahead < 0:
                self.late += 1
                if self._playing and self.delay_frames < self.max_frames:
                    self.delay_frames += 1
                    self._stretch += 1
                return
            if ahead // self.ts_step > 4 * self.max_frames:
                self.dropped += 1
                return  # far in the future: a bogus timestamp, not worth the memory
            assert self._newest is not None
            if ts_diff(timestamp, self._newest) > 0:
                self._newest = timestamp
        self._packets[timestamp] = payload

    def get(
        self, now: float, decode: Callable[[bytes], bytes], conceal: Callable[[], bytes]
    ) -> bytes:
        """Exactly one frame of PCM for the sink."""
        need = self.frame_bytes
        if not self._playing:
            if self._start_at is None or now < self._start_at:
                return bytes(need)
            self._playing = True
        while len(self._pcm) < need:
            self._pcm += self._next_chunk(decode, conceal)
        out = self._pcm[:need]
        self._pcm = self._pcm[need:]
        self._adapt()
        return out

    def _next_chunk(self, decode: Callable[[bytes], bytes], conceal: Callable[[], bytes]) -> bytes:
        assert self._next_ts is not None  # playing implies a first packet
        if self._stretch:
            self._stretch -= 1
            self.concealed += 1
            return conceal()
        payload = self._packets.pop(self._next_ts, None)
        if payload is not None:
            try:
                pcm = decode(payload)
            except RemoteProtocolError:
                pcm = b""
            if pcm:
                samples = len(pcm) // 2
                step = samples * self.ts_step * 2 // self.frame_bytes
                self._next_ts = (self._next_ts + step) & 0xFFFFFFFF
                return pcm
        # Lost (or undecodable): conceal one frame. If the next packet starts within this
        # frame (the sender's ptime differs from ours), continue from it.
        self.concealed += 1
        target = (self._next_ts + self.ts_step) & 0xFFFFFFFF
        for ts in self._packets:
            if 0 < ts_diff(ts, self._next_ts) < self.ts_step:
                target = ts
                break
        self._next_ts = target
        return conceal() or bytes(self.frame_bytes)

    def _adapt(self) -> None:
        depth = self.depth
        self._min_depth = min(self._min_depth, depth)
        self._window += 1
        if self._window < _SHRINK_WINDOW:
            return
        if self.late == self._late_mark and self.delay_frames > self.min_frames:
            self.delay_frames -= 1  # a quiet window: aim for a shorter delay
        if self._min_depth > self.delay_frames + 1:
            # Steadily deeper than the target: drop the oldest frame to cut the delay.
            assert self._next_ts is not None
            self._packets.pop(self._next_ts, None)
            self._next_ts = (self._next_ts + self.ts_step) & 0xFFFFFFFF
            self.dropped += 1
        self._late_mark = self.late
        self._min_depth = 1 << 30
        self._window = 0
