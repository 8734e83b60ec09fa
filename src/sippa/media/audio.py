"""Audio sources and sinks: what a stream sends and where what it receives goes.

Every source and sink works on 16-bit signed little-endian mono PCM ("s16le") at the sample
rate of the stream's codec, which the stream hands over in ``open(sample_rate)``. A source's
``read(n)`` always returns exactly ``n`` samples (silence when it has nothing), so the stream
never waits on a source; a sink's ``write(pcm)`` must not block either (the engine calls both
from its one paced scheduler).
"""

from __future__ import annotations

import logging
import math
import wave
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported on first use: an idle phone never loads it
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "AudioSink",
    "AudioSource",
    "Echo",
    "NullSink",
    "SilenceSource",
    "TeeSink",
    "ToneSource",
    "WavFileSource",
    "WavRecorder",
    "load_wav",
]

_log = logging.getLogger(__name__)
_BYTES_PER_SAMPLE = 2


class AudioSource:
    """Base class of everything a stream can send. The default is silence."""

    sample_rate: int = 8000

    def open(self, sample_rate: int) -> None:
        """Prepare to deliver audio at ``sample_rate`` Hz (called when the stream starts)."""
        self.sample_rate = sample_rate

    def read(self, samples: int) -> bytes:
        """Exactly ``samples`` s16le mono samples; must not block."""
        return bytes(samples * _BYTES_PER_SAMPLE)

    @property
    def finished(self) -> bool:
        """True once a finite source (a WAV file played once) has nothing left to play."""
        return False

    def close(self) -> None:
        """Release resources (files, devices)."""


class AudioSink:
    """Base class of everything that takes received (or sent) audio. The default drops it."""

    sample_rate: int = 8000

    def open(self, sample_rate: int) -> None:
        """Prepare to take audio at ``sample_rate`` Hz."""
        self.sample_rate = sample_rate

    def write(self, pcm: bytes) -> None:
        """Take one frame of s16le mono samples; must not block."""

    def close(self) -> None:
        """Flush and release resources."""


class SilenceSource(AudioSource):
    """Digital silence (what a muted phone sends)."""

    def __init__(self) -> None:
        self._frame = b""

    def read(self, samples: int) -> bytes:
        if len(self._frame) != samples * _BYTES_PER_SAMPLE:
            self._frame = bytes(samples * _BYTES_PER_SAMPLE)
        return self._frame


class NullSink(AudioSink):
    """Drops everything (a stream without a sink skips decoding altogether)."""


class ToneSource(AudioSource):
    """A sine tone of ``frequency`` Hz at ``level`` (0..1 of full scale), endless.

    The tone is rendered once for one second (an integer frequency repeats exactly every
    second) and then read as a ring, so a frame costs a slice, not a sine per sample.
    """

    def __init__(self, frequency: float, level: float = 0.5) -> None:
        if not frequency > 0:
            raise ValueError("tone frequency must be positive")
        if not 0 <= level <= 1:
            raise ValueError("tone level must be within 0..1")
        self.frequency = frequency
        self.level = level
        self._ring = b""
        self._period = 0
        self._pos = 0

    def open(self, sample_rate: int) -> None:
        super().open(sample_rate)
        if self.frequency >= sample_rate / 2:
            raise ValueError(f"{self.frequency} Hz cannot be sampled at {sample_rate} Hz")
        # One second holds a whole number of periods when the frequency is an integer; for
        # other frequencies the ring is as long as the smallest whole number of periods
        # that fits (up to 10 s), which keeps the phase continuous at the wrap.
        length = sample_rate
        for seconds in range(1, 11):
            if math.isclose(self.frequency * seconds, round(self.frequency * seconds)):
                length = sample_rate * seconds
                break
        import numpy as np  # noqa: PLC0415

        n = np.arange(length, dtype=np.float64)
        wave_ = np.sin(2 * np.pi * self.frequency * n / sample_rate) * self.level * 32767
        self._ring = wave_.astype("<i2").tobytes() * 2  # doubled: a read never wraps
        self._period = length * _BYTES_PER_SAMPLE
        self._pos = 0

    def read(self, samples: int) -> bytes:
        if not self._ring:
            self.open(self.sample_rate)
        size = samples * _BYTES_PER_SAMPLE
        if size > self._period:
            return self._read_long(samples)
        start = self._pos
        self._pos = (start + size) % self._period
        return self._ring[start : start + size]

    def _read_long(self, samples: int) -> bytes:
        chunk = self._period // _BYTES_PER_SAMPLE
        parts = []
        while samples > 0:
            take = min(samples, chunk)
            parts.append(self.read(take))
            samples -= take
        return b"".join(parts)


def load_wav(path: str | Path, sample_rate: int) -> npt.NDArray[np.int16]:
    """Read a PCM WAV file as mono int16 samples at ``sample_rate`` (mixed down, resampled).

    Resampling goes through FFmpeg's resampler (PyAV), which filters before decimating.
    """
    import numpy as np  # noqa: PLC0415

    with wave.open(str(path), "rb") as wav:
        channels = wav.getnchannels()
        width = wav.getsampwidth()
        rate = wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.int32)
    elif width == 3:
        b = np.frombuffer(raw[: len(raw) // 3 * 3], dtype=np.uint8)
        b = b.reshape(-1, 3).astype(np.int32)
        data = ((b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)) >> 16
    elif width == 4:
        data = (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int32)
    else:
        raise ValueError(f"{path}: unsupported sample width {width}")
    if channels > 1:
        data = data[: len(data) // channels * channels].reshape(-1, channels).mean(axis=1)
    mono: npt.NDArray[np.int16] = np.clip(data, -32768, 32767).astype(np.int16)
    if rate == sample_rate or mono.size == 0:
        return mono
    import av  # noqa: PLC0415 - only for resampling: ~20 MB a G.711 call never needs

    frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    out = [*resampler.resample(frame), *resampler.resample(None)]
    if not out:
        return np.zeros(0, dtype=np.int16)
    pcm: npt.NDArray[np.int16] = np.concatenate(
        [f.to_ndarray().reshape(-1) for f in out]
    ).astype(np.int16)
    return pcm


class WavFileSource(AudioSource):
    """Plays a WAV file once (then silence, ``finished`` becomes True) or in a loop."""

    def __init__(self, path: str | Path, *, loop: bool = False) -> None:
        self.path = Path(path)
        self.loop = loop
        self._pcm = b""
        self._pos = 0
        if not self.path.is_file():
            raise FileNotFoundError(self.path)

    def open(self, sample_rate: int) -> None:
        super().open(sample_rate)
        self._pcm = load_wav(self.path, sample_rate).astype("<i2").tobytes()
        self._pos = 0

    @property
    def finished(self) -> bool:
        return not self.loop and self._pos >= len(self._pcm)

    def read(self, samples: int) -> bytes:
        size = samples * _BYTES_PER_SAMPLE
        out = bytearray()
        while len(out) < size:
            if self._pos >= len(self._pcm):
                if not self.loop or not self._pcm:
                    break
                self._pos = 0
            take = self._pcm[self._pos : self._pos + size - len(out)]
            self._pos += len(take)
            out += take
        if len(out) < size:
            out += bytes(size - len(out))
        return bytes(out)


class WavRecorder(AudioSink):
    """Writes what it gets to a 16-bit mono WAV file at the stream's rate (stdlib ``wave``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._wav: wave.Wave_write | None = None
        self.frames_written = 0

    def open(self, sample_rate: int) -> None:
        super().open(sample_rate)
        if self._wav is not None:
            return  # one file per recorder: a re-open (codec change) keeps the first rate
        self.path.parent.mkdir(parents=True, exist_ok=True)
        wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed in close()
        wav.setnchannels(1)
        wav.setsampwidth(_BYTES_PER_SAMPLE)
        wav.setframerate(sample_rate)
        self._wav = wav

    def write(self, pcm: bytes) -> None:
        if self._wav is None:
            return
        self._wav.writeframesraw(pcm)
        self.frames_written += len(pcm) // _BYTES_PER_SAMPLE

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()  # patches the RIFF sizes
            self._wav = None


class TeeSink(AudioSink):
    """Hands every frame to several sinks (e.g. the sound card and a recorder)."""

    def __init__(self, *sinks: AudioSink) -> None:
        self.sinks = sinks

    def open(self, sample_rate: int) -> None:
        super().open(sample_rate)
        for sink in self.sinks:
            sink.open(sample_rate)

    def write(self, pcm: bytes) -> None:
        for sink in self.sinks:
            sink.write(pcm)

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                _log.exception("closing %r failed", sink)


class Echo(AudioSource, AudioSink):
    """Sends back what arrives: use the same object as a stream's source and sink.

    At most ``max_delay`` seconds are buffered (older audio is dropped), so a sender that
    is faster than the playout cannot grow the buffer without bound.
    """

    def __init__(self, max_delay: float = 0.5) -> None:
        self.max_delay = max_delay
        self._frames: deque[bytes] = deque()
        self._buffered = 0
        self._pending = b""

    def open(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._frames.clear()
        self._buffered = 0
        self._pending = b""

    def write(self, pcm: bytes) -> None:
        self._frames.append(pcm)
        self._buffered += len(pcm)
        limit = int(self.max_delay * self.sample_rate) * _BYTES_PER_SAMPLE
        while self._buffered > limit and self._frames:
            self._buffered -= len(self._frames.popleft())

    def read(self, samples: int) -> bytes:
        size = samples * _BYTES_PER_SAMPLE
        out = self._pending
        while len(out) < size and self._frames:
            frame = self._frames.popleft()
            self._buffered -= len(frame)
            out += frame
        self._pending = out[size:]
        out = out[:size]
        return out + bytes(size - len(out))

    def close(self) -> None:
        self._frames.clear()
        self._buffered = 0
