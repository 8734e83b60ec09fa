"""The local sound card as a source and a sink, through ``sounddevice`` (optional extra).

Install with ``pip install 'sippa[sound]'`` (needs PortAudio). PortAudio runs its own audio
thread; the two sides meet in a bounded buffer, so neither the engine's scheduler nor the
audio thread ever waits on the other: an empty buffer plays (or sends) silence, a full one
drops the oldest audio.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from sippa.media.audio import AudioSink, AudioSource

__all__ = ["SoundCardSink", "SoundCardSource", "sound_available"]

_log = logging.getLogger(__name__)

try:  # an optional extra: PortAudio may be missing too (OSError)
    import sounddevice as _sd
except (ImportError, OSError):  # pragma: no cover - depends on the machine
    _sd = None

_MAX_BUFFER = 0.3  # seconds kept between the audio thread and the engine


def sound_available() -> bool:
    """True when ``sounddevice`` (and PortAudio) can be used."""
    return _sd is not None


def _require() -> Any:
    if _sd is None:
        raise RuntimeError("sound card support needs the 'sound' extra: pip install 'sippa[sound]'")
    return _sd


class _Buffer:
    """Bytes passed between PortAudio's thread and the engine, bounded, never blocking."""

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._limit = 0
        self._lock = threading.Lock()

    def reset(self, limit: int) -> None:
        with self._lock:
            self._chunks.clear()
            self._size = 0
            self._limit = limit

    def push(self, data: bytes) -> None:
        with self._lock:
            self._chunks.append(data)
            self._size += len(data)
            while self._size > self._limit and self._chunks:
                self._size -= len(self._chunks.popleft())

    def pull(self, size: int) -> bytes:
        out = bytearray()
        with self._lock:
            while len(out) < size and self._chunks:
                chunk = self._chunks.popleft()
                take = size - len(out)
                out += chunk[:take]
                if len(chunk) > take:
                    self._chunks.appendleft(chunk[take:])
                self._size -= min(len(chunk), take)
        return bytes(out) + bytes(size - len(out))


class _Device:
    """What a sound-card source and sink share: the device, the buffer, the PortAudio stream."""

    _what = "audio"

    def __init__(self, device: int | str | None = None) -> None:
        _require()
        self.device = device
        self._buffer = _Buffer()
        self._stream: Any = None

    def _start(self, sample_rate: int, kind: str, callback: Any) -> None:
        sd = _require()
        self.close()
        self._buffer.reset(int(_MAX_BUFFER * sample_rate) * 2)
        self._stream = getattr(sd, kind)(
            samplerate=sample_rate, channels=1, dtype="int16", device=self.device,
            callback=callback,
        )
        self._stream.start()

    def close(self) -> None:
        _close_stream(self._stream, self._what)
        self._stream = None


class SoundCardSource(_Device, AudioSource):
    """Captures the default (or a named) input device, mono s16 at the stream's rate."""

    _what = "capture"

    def open(self, sample_rate: int) -> None:
        super().open(sample_rate)

        def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
            if status:
                _log.debug("capture status: %s", status)
            self._buffer.push(bytes(indata))

        self._start(sample_rate, "RawInputStream", callback)

    def read(self, samples: int) -> bytes:
        return self._buffer.pull(samples * 2)


class SoundCardSink(_Device, AudioSink):
    """Plays to the default (or a named) output device."""

    _what = "playback"

    def open(self, sample_rate: int) -> None:
        super().open(sample_rate)

        def callback(outdata: Any, frames: int, time_info: Any, status: Any) -> None:
            if status:
                _log.debug("playback status: %s", status)
            outdata[:] = self._buffer.pull(len(outdata))

        self._start(sample_rate, "RawOutputStream", callback)

    def write(self, pcm: bytes) -> None:
        self._buffer.push(pcm)


def _close_stream(stream: Any, what: str) -> None:
    """Stop and close a sounddevice stream (None: nothing open); never raises."""
    if stream is None:
        return
    try:
        stream.stop()
        stream.close()
    except Exception:
        _log.exception("closing the %s stream failed", what)
