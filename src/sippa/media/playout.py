"""Playout: turns the jitter buffer's frames into exactly one PCM frame per scheduler tick.

The adaptive buffering itself (reordering, playout delay that follows the network's jitter,
late/duplicate drop, loss detection) is :class:`sippa.rtp.jitter.JitterBuffer`. This adapter
feeds the sink at a steady rate whatever the network does:

- every tick takes the frames whose playout time has come (half a frame of tolerance, so
  the phase of our ticks against the peer's packets never matters), decodes them, or asks
  the decoder to conceal a lost one (packet-loss concealment: the last frame repeated and
  faded, then silence);
- a peer whose ptime differs from ours is cut into our frame size through a small PCM FIFO;
- when nothing is due (start, hold, the buffer re-anchoring) the sink gets silence, and
  when audio stops mid-stream the gap is concealed.
"""

from __future__ import annotations

from collections.abc import Callable

from sippa.errors import RemoteProtocolError
from sippa.rtp.jitter import JitterBuffer

__all__ = ["Playout"]

_MAX_FIFO_FRAMES = 6  # PCM kept ahead of the sink; more means the peer sends too fast
_MAX_CONCEALED_GAP = 5  # frames; a longer silence of the peer is played as silence


class Playout:
    """The playout of one stream (pull model: one :meth:`get` per tick)."""

    __slots__ = (
        "_gap",
        "_heard",
        "_initial_delay",
        "_lookahead",
        "_max_delay",
        "_min_delay",
        "_pcm",
        "buffer",
        "clock_rate",
        "concealed",
        "frame_bytes",
        "overflow",
        "ptime",
    )

    def __init__(
        self,
        clock_rate: int,
        frame_samples: int,
        ptime: int,
        *,
        min_delay: float = 0.02,
        max_delay: float = 0.3,
        initial_delay: float = 0.06,
    ) -> None:
        self.clock_rate = clock_rate
        self.ptime = ptime
        self.frame_bytes = 2 * frame_samples
        self._min_delay = min_delay
        self._max_delay = max_delay
        self._initial_delay = initial_delay
        self._lookahead = ptime / 2000  # half a frame, seconds
        self.concealed = 0
        """Frames filled by concealment (lost packets, or gaps in playout)."""
        self.overflow = 0
        """PCM frames discarded because the peer delivered more audio than real time."""
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new source)."""
        self.buffer = JitterBuffer(
            self.clock_rate,
            self.ptime,
            min_delay=self._min_delay,
            max_delay=self._max_delay,
            initial_delay=self._initial_delay,
        )
        self._pcm = b""
        self._heard = False
        self._gap = 0

    def put(self, seq: int, timestamp: int, payload: bytes, arrival: float,
            marker: bool = False) -> None:
        """Store one received payload."""
        self.buffer.put_payload(seq, timestamp, payload, arrival, marker)

    def get(
        self, now: float, decode: Callable[[bytes], bytes], conceal: Callable[[], bytes]
    ) -> bytes:
        """Exactly one frame of PCM for the sink."""
        need = self.frame_bytes
        pcm = self._pcm
        pop = self.buffer.pop
        when = now + self._lookahead
        while len(pcm) < need:
            frame = pop(when)
            if frame is None:
                break
            payload = frame[2]
            chunk = b""
            if payload is not None:
                try:
                    chunk = decode(payload)
                except RemoteProtocolError:
                    chunk = b""
            if not chunk:
                chunk = conceal()
                self.concealed += 1
            pcm += chunk
            self._heard = True
            self._gap = 0
        if len(pcm) < need:
            self._gap += 1
            if not self._heard or self._gap > _MAX_CONCEALED_GAP:
                # Nothing played yet (the buffer fills), or the peer went quiet (hold):
                # plain silence, not concealment.
                pcm += bytes(need - len(pcm))
            else:
                # A short gap mid-stream (a late packet): conceal it.
                pcm += conceal() or bytes(need)
                self.concealed += 1
                if len(pcm) < need:
                    pcm += bytes(need - len(pcm))
        if len(pcm) > need * _MAX_FIFO_FRAMES:
            self.overflow += 1
            pcm = pcm[-need * 2 :]
        self._pcm = pcm[need:]
        return pcm[:need]
