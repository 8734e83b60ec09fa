"""Does a recording hold a given tone? (numpy FFT over the non-silent part; test helper)."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ToneReport:
    rate: int
    duration: float
    active: float
    """Seconds of 20 ms frames louder than -45 dBFS."""
    dominant_hz: float | None
    purity: float
    """Share of the analysed energy within +-20 Hz of the dominant frequency."""

    def holds(self, hz: float, *, min_active: float = 1.0, tol: float = 15.0) -> bool:
        return (
            self.active >= min_active
            and self.dominant_hz is not None
            and abs(self.dominant_hz - hz) <= tol
            and self.purity >= 0.5
        )


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2, "16-bit WAV expected"
        channels, rate = w.getnchannels(), w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    if channels > 1:
        data = data[: len(data) // channels * channels].reshape(-1, channels).mean(axis=1)
    return data / 32768.0, rate


def analyse(samples: np.ndarray, rate: int) -> ToneReport:
    frame = max(1, rate // 50)
    n = len(samples) // frame
    if n == 0:
        return ToneReport(rate, len(samples) / rate, 0.0, None, 0.0)
    frames = samples[: n * frame].reshape(n, frame)
    rms = np.sqrt((frames**2).mean(axis=1))
    active = np.nonzero(rms > 10 ** (-45 / 20))[0]
    if active.size == 0:
        return ToneReport(rate, len(samples) / rate, 0.0, None, 0.0)
    seg = frames[active].reshape(-1)
    mid = len(seg) // 2
    seg = seg[max(0, mid - rate // 2) : mid + rate // 2]
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
    freqs = np.fft.rfftfreq(len(seg), 1 / rate)
    spectrum[freqs < 50] = 0
    peak = int(np.argmax(spectrum))
    near = np.abs(freqs - freqs[peak]) <= 20
    purity = float(spectrum[near].sum() / max(spectrum.sum(), 1e-30))
    return ToneReport(
        rate, len(samples) / rate, active.size * frame / rate, float(freqs[peak]), purity
    )


def analyse_wav(path: Path) -> ToneReport:
    return analyse(*read_wav(path))


def analyse_pcm(pcm: bytes, rate: int) -> ToneReport:
    return analyse(np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0, rate)
