"""Audio sources and sinks: tone, silence, WAV play/loop/resample, recorder, echo, tee."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from sippa.media.audio import (
    AudioSink,
    Echo,
    SilenceSource,
    TeeSink,
    ToneSource,
    WavFileSource,
    WavRecorder,
    load_wav,
)
from tests.media.tonecheck import analyse_pcm, analyse_wav


def _write_wav(path: Path, pcm: np.ndarray, rate: int, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


def _sine(hz: float, rate: int, seconds: float, level: float = 0.5) -> np.ndarray:
    n = np.arange(int(rate * seconds))
    return np.sin(2 * np.pi * hz * n / rate) * level * 32767


def test_tone_source_is_the_tone_and_continuous() -> None:
    tone = ToneSource(440)
    tone.open(8000)
    pcm = b"".join(tone.read(160) for _ in range(100))  # 2 s, wraps the 1 s ring
    assert len(pcm) == 2 * 16000
    report = analyse_pcm(pcm, 8000)
    assert report.holds(440)
    assert not report.holds(1000)
    # continuity at the ring wrap: the signal equals a freshly computed sine
    expected = (_sine(440, 8000, 2.0)).astype("<i2")
    got = np.frombuffer(pcm, dtype="<i2")
    assert np.max(np.abs(got.astype(int) - expected.astype(int))) <= 1


def test_tone_source_non_integer_frequency_and_long_reads() -> None:
    tone = ToneSource(697.5, level=0.25)
    tone.open(16000)
    pcm = tone.read(40000)  # longer than the ring half
    assert len(pcm) == 80000
    assert analyse_pcm(pcm, 16000).holds(697.5, tol=3)


def test_tone_source_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        ToneSource(0)
    with pytest.raises(ValueError):
        ToneSource(440, level=2)
    tone = ToneSource(5000)
    with pytest.raises(ValueError):
        tone.open(8000)  # above Nyquist


def test_silence_source() -> None:
    s = SilenceSource()
    assert s.read(160) == bytes(320)
    assert s.read(320) == bytes(640)
    assert not s.finished


def test_wav_source_plays_once_then_silence(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    _write_wav(path, _sine(1000, 8000, 0.1), 8000)  # 800 samples
    src = WavFileSource(path)
    src.open(8000)
    frames = [src.read(160) for _ in range(5)]
    assert not src.finished or frames  # all 800 samples read in 5 frames
    assert src.finished
    assert src.read(160) == bytes(320)
    assert analyse_pcm(b"".join(frames), 8000).dominant_hz == pytest.approx(1000, abs=15)


def test_wav_source_loops(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    data = np.arange(100, dtype=np.int16)
    _write_wav(path, data, 8000)
    src = WavFileSource(path, loop=True)
    src.open(8000)
    out = np.frombuffer(src.read(250), dtype="<i2")
    assert list(out[:100]) == list(range(100))
    assert list(out[100:200]) == list(range(100))
    assert list(out[200:]) == list(range(50))
    assert not src.finished


def test_wav_source_resamples_and_mixes_down(tmp_path: Path) -> None:
    path = tmp_path / "stereo48k.wav"
    left = _sine(1000, 48000, 1.0)
    stereo = np.stack([left, left], axis=1).reshape(-1)
    _write_wav(path, stereo, 48000, channels=2)
    pcm = load_wav(path, 8000)
    assert abs(len(pcm) - 8000) < 100
    report = analyse_pcm(pcm.astype("<i2").tobytes(), 8000)
    assert report.holds(1000, min_active=0.8)


def test_wav_source_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        WavFileSource(tmp_path / "nope.wav")


def test_recorder_writes_a_valid_wav(tmp_path: Path) -> None:
    rec = WavRecorder(tmp_path / "sub" / "rec.wav")
    rec.open(16000)
    tone = ToneSource(800)
    tone.open(16000)
    for _ in range(75):
        rec.write(tone.read(320))
    rec.close()
    rec.close()  # idempotent
    report = analyse_wav(tmp_path / "sub" / "rec.wav")
    assert report.rate == 16000
    assert report.duration == pytest.approx(1.5)
    assert report.holds(800)


def test_echo_sends_back_what_arrives_bounded() -> None:
    echo = Echo(max_delay=0.1)
    echo.open(8000)
    assert echo.read(160) == bytes(320)  # nothing yet: silence
    echo.write(b"\x01\x00" * 160)
    echo.write(b"\x02\x00" * 100)
    assert echo.read(160) == b"\x01\x00" * 160
    out = echo.read(160)
    assert out == b"\x02\x00" * 100 + bytes(120)
    for _ in range(20):  # 400 ms written, at most 100 ms kept
        echo.write(b"\x03\x00" * 160)
    kept = sum(1 for _ in range(10) if echo.read(160) != bytes(320))
    assert kept == 5


class _Collect(AudioSink):
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed = False

    def write(self, pcm: bytes) -> None:
        self.frames.append(pcm)

    def close(self) -> None:
        self.closed = True


def test_tee_sink() -> None:
    a, b = _Collect(), _Collect()
    tee = TeeSink(a, b)
    tee.open(8000)
    tee.write(b"xx")
    tee.close()
    assert a.frames == b.frames == [b"xx"]
    assert a.closed and b.closed
    assert a.sample_rate == 8000
