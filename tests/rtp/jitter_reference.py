"""The plain versions of the per-packet methods of :class:`sippa.rtp.jitter.JitterBuffer`
(as they were before being inlined for the media engine), kept as the oracle of
tests/rtp/test_jitter.py: both must agree on every packet and every frame. Everything else is
the real class's. Do not optimise this copy.
"""

from __future__ import annotations

from sippa.rtp import jitter
from sippa.rtp.jitter import _WINDOW, JitterFrame
from sippa.rtp.packet import seq_diff, ts_diff

__all__ = ["JitterBuffer"]


class JitterBuffer(jitter.JitterBuffer):
    __slots__ = ()

    def put_payload(
        self, seq: int, timestamp: int, payload: bytes, arrival: float, marker: bool = False
    ) -> bool:
        """Fast path of :meth:`put` without a packet object; False if the packet was dropped."""
        stats = self.stats
        if not self._started:
            self._anchor(timestamp, arrival)
        ahead = ts_diff(timestamp, self._next_ts)
        if ahead < -self._span():
            # Far behind the cursor: the source restarted with a lower timestamp.
            stats.dropped += len(self._frames)
            self._frames.clear()
            self._anchor(timestamp, arrival)
            ahead = 0
        if ahead < 0:
            if self._played.get(timestamp):
                stats.duplicates += 1
            else:
                stats.late += 1
                self._learn(arrival - self._ext(timestamp) / self.clock_rate, arrival, late=True)
            return False
        if timestamp in self._frames:
            stats.duplicates += 1
            return False
        if ahead > self._span() or (marker and not self._frames and ahead > self._step):
            # A talkspurt after silence, or a jump beyond what the buffer holds: start over.
            stats.dropped += len(self._frames)
            self._frames.clear()
            self._anchor(timestamp, arrival)
        if (
            self._last_seq is not None
            and seq_diff(seq, self._last_seq) == 1
            and 0 < (d := ts_diff(timestamp, self._last_ts)) <= self.clock_rate // 8
        ):
            self._step = d  # the peer's packet interval (its ptime)
        self._last_seq = seq
        self._last_ts = timestamp
        self._frames[timestamp] = (seq, payload)
        stats.received += 1
        self._learn(arrival - self._ext(timestamp) / self.clock_rate, arrival, late=False)
        return True

    def _learn(self, transit: float, arrival: float, *, late: bool) -> None:
        if arrival - self._window_start >= _WINDOW:
            self._prev_min, self._prev_max = self._cur_min, self._cur_max
            self._cur_min, self._cur_max = transit, 0.0
            self._window_start = arrival
        self._cur_min = min(self._cur_min, transit)
        base = min(self._cur_min, self._prev_min)
        deviation = transit - base
        self._cur_max = max(self._cur_max, deviation)
        peak = max(self._cur_max, self._prev_max)
        frame = self._step / self.clock_rate
        # Half a frame of margin on top of the worst recent deviation.
        target = min(max(peak + frame / 2, self.min_delay), self.max_delay)
        old_due = self._base + self.delay
        self._base = base
        if target >= self.delay or late:
            self.delay = max(target, self.delay)
        else:
            self.delay = max(target, self.delay - self.shrink_rate * frame)
        # A lower base must not pull playout earlier faster than the shrink rate either.
        floor = old_due - self.shrink_rate * frame
        if self._base + self.delay < floor:
            self.delay = min(floor - self._base, self.max_delay)

    def get(self, now: float) -> JitterFrame | None:
        """The next frame if its playout time has come, else None; call until None."""
        if not self._started:
            return None
        due = self.due(self._next_ts)
        if now < due:
            return None
        frames = self._frames
        step = self._step
        frame_time = step / self.clock_rate
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
        if entry is None:
            # The peer may have changed its ptime: play a frame that starts within this one.
            within = [t for t in frames if 0 < ts_diff(t, ts) < step]
            if within:
                ts = min(within, key=lambda t: ts_diff(t, self._next_ts))
                self._advance(ts_diff(ts, self._next_ts))
                entry = frames.pop(ts)
        self._advance(step)
        self._mark_played(ts, entry is not None)
        if entry is None:
            if not frames and ts_diff(ts, self._last_ts) > self.max_delay * self.clock_rate:
                # Nothing arrives (hold, silence suppression): wait for the next packet.
                self._started = False
                return None
            self.stats.lost += 1
            return JitterFrame(ts, None, None)
        self.stats.played += 1
        return JitterFrame(ts, entry[0], entry[1])

    def _mark_played(self, ts: int, heard: bool) -> None:
        played = self._played
        played[ts] = heard
        if len(played) > 256:
            del played[next(iter(played))]
