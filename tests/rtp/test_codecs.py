"""Codecs: G.711 against reference values, tone in -> tone out for every codec, PLC, registry."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.rtp.codecs import (
    CODECS,
    alaw_decode,
    alaw_encode,
    get_decoder,
    get_encoder,
    ulaw_decode,
    ulaw_encode,
)


def _pcm(values: list[int]) -> bytes:
    return np.array(values, dtype="<i2").tobytes()


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2")


def _tone(freq: float, rate: int, n: int, amplitude: float = 8000.0) -> bytes:
    t = np.arange(n) / rate
    return (np.sin(2 * np.pi * freq * t) * amplitude).astype("<i2").tobytes()


def _dominant(pcm: bytes, rate: int) -> float:
    x = _samples(pcm).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spectrum) * rate / x.size)


def test_ulaw_reference_values() -> None:
    # Values of the Sun/CCITT g711.c reference (linear2ulaw on 16-bit input, ulaw2linear).
    assert ulaw_encode(_pcm([0, -1, 32767, -32768, 1000, -1000])).hex() == "ff7f8000ce4e"
    assert list(_samples(ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00, 0xCE])))) == [
        0,
        0,
        32124,
        -32124,
        988,
    ]


def test_alaw_reference_values() -> None:
    assert alaw_encode(_pcm([0, -1, 32767, -32768, 1000, -1000])).hex() == "d555aa2afa7a"
    assert list(_samples(alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A, 0xFA])))) == [
        8,
        -8,
        32256,
        -32256,
        1008,
    ]


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_g711_tables_are_consistent(encode, decode) -> None:  # type: ignore[no-untyped-def]
    codes = bytes(range(256))
    levels = decode(codes)
    # Every code decodes to a level that encodes back to a code with the same level.
    assert decode(encode(levels)) == levels
    # The quantiser is monotonic over the whole 16-bit range.
    ramp = np.arange(-32768, 32768, dtype="<i2").tobytes()
    out = _samples(decode(encode(ramp)))
    assert np.all(np.diff(out.astype(np.int32)) >= 0)
    # ... and within G.711's worst-case step (4096 at the top segment, ~3 % elsewhere).
    err = np.abs(out.astype(np.int32) - np.arange(-32768, 32768))
    assert err.max() <= 1024


@pytest.mark.parametrize(
    ("name", "clock", "freq"),
    [("PCMU", 8000, 1000), ("PCMA", 8000, 440), ("G722", 8000, 5000), ("opus", 48000, 1000)],
)
def test_tone_in_tone_out(name: str, clock: int, freq: int) -> None:
    enc, dec = get_encoder(name, clock), get_decoder(name, clock)
    assert enc.clock_rate == dec.clock_rate == clock
    n = enc.frame_samples()
    assert n == enc.sample_rate // 50
    tone = _tone(freq, enc.sample_rate, n * 25)
    out = b""
    for i in range(25):
        payload = enc.encode(tone[i * 2 * n : (i + 1) * 2 * n])
        frame = dec.decode(payload)
        assert len(frame) == 2 * n
        out += frame
    tail = out[len(out) // 2 :]  # skip codec start-up
    assert abs(_dominant(tail, enc.sample_rate) - freq) <= enc.sample_rate / (len(tail) // 2) * 2
    rms = float(np.sqrt(np.mean(_samples(tail).astype(np.float64) ** 2)))
    assert 0.5 * 8000 / np.sqrt(2) < rms < 1.5 * 8000 / np.sqrt(2)


def test_g722_clock_rate_is_8000_but_audio_16000() -> None:
    enc = get_encoder("g722", 8000, ptime=20)
    assert (enc.sample_rate, enc.clock_rate) == (16000, 8000)
    assert enc.frame_samples() == 320
    assert enc.timestamp_increment() == 160  # RFC 3551 §4.5.2
    assert len(enc.encode(_tone(1000, 16000, 320))) == 160  # 64 kbit/s


def test_ptime_and_payload_sizes() -> None:
    pcmu = get_encoder("PCMU", 8000, ptime=30)
    assert pcmu.frame_samples() == 240
    assert pcmu.timestamp_increment() == 240
    assert len(pcmu.encode(bytes(480))) == 240
    opus = get_encoder("opus", 48000, 2, ptime=40)
    assert opus.frame_samples() == 1920
    assert opus.timestamp_increment() == 1920
    with pytest.raises(LocalProtocolError):
        opus.encode(bytes(960 * 2))
    with pytest.raises(LocalProtocolError, match="ptime"):
        get_encoder("opus", 48000, ptime=30)


def test_concealment_repeats_fades_then_silences() -> None:
    dec = get_decoder("PCMA", 8000)
    assert dec.conceal() == bytes(320)  # nothing heard yet: silence
    frame = dec.decode(alaw_encode(_tone(500, 8000, 160)))
    levels = []
    for _ in range(5):
        pcm = dec.conceal()
        assert len(pcm) == len(frame)
        levels.append(float(np.abs(_samples(pcm)).max()))
    assert levels[0] < float(np.abs(_samples(frame)).max())
    assert levels[0] > levels[1] > levels[2] > levels[3] > 0
    assert levels[4] == 0
    dec.decode(alaw_encode(_tone(500, 8000, 160)))  # a good frame resets the fade
    assert float(np.abs(_samples(dec.conceal())).max()) == pytest.approx(levels[0], rel=0.01)


def test_bad_payloads_raise_protocol_errors() -> None:
    dec = get_decoder("opus", 48000, 2)
    with pytest.raises(RemoteProtocolError):
        dec.decode(b"")
    # Garbage must never raise anything else.
    rng = np.random.default_rng(1)
    for size in (1, 3, 50, 400):
        with contextlib.suppress(RemoteProtocolError):
            dec.decode(rng.integers(0, 256, size, dtype=np.uint8).tobytes())


def test_registry() -> None:
    assert {s.name for s in CODECS.values()} == {"PCMU", "PCMA", "G722", "opus"}
    assert CODECS["pcmu"].static_payload_type == 0
    assert CODECS["pcma"].static_payload_type == 8
    assert CODECS["g722"].static_payload_type == 9
    assert CODECS["opus"].channels == 2
    with pytest.raises(LocalProtocolError, match="unknown"):
        get_encoder("GSM", 8000)
    with pytest.raises(LocalProtocolError, match="Hz"):
        get_decoder("PCMU", 16000)
    with pytest.raises(LocalProtocolError):
        get_decoder("PCMU", 8000, 2)
    assert get_decoder("pcmu", 8000).spec is CODECS["pcmu"]


@pytest.mark.parametrize("ptime", [10, 20, 30, 40, 60])
def test_g722_one_payload_per_frame_at_any_ptime(ptime: int) -> None:
    enc, dec = get_encoder("G722", 8000, ptime=ptime), get_decoder("G722", 8000, ptime=ptime)
    n = enc.frame_samples()
    tone = _tone(1000, 16000, n * 3)
    for i in range(3):
        payload = enc.encode(tone[i * 2 * n : (i + 1) * 2 * n])
        assert len(payload) == n // 2  # 4 bits per sample, immediately
        assert len(dec.decode(payload)) == 2 * n


def test_g711_fast_paths_match_the_tables_for_every_input() -> None:
    """The C G.711 (audioop) is used only where it equals the G.191-exact tables."""
    from sippa.rtp import codecs

    if codecs._audioop is None:
        pytest.skip("no audioop here: the tables are the only path")
    every_pcm = np.arange(-32768, 32768, dtype="<i2").tobytes()
    every_code = bytes(range(256))
    assert codecs.ulaw_encode(every_pcm) == codecs._ulaw_encode_table(every_pcm)
    assert codecs.alaw_encode(every_pcm) == codecs._alaw_encode_table(every_pcm)
    assert codecs.ulaw_decode(every_code) == codecs._ulaw_decode_table(every_code)
    assert codecs.alaw_decode(every_code) == codecs._alaw_decode_table(every_code)
    # Why mu-law encoding keeps the table: audioop rounds negative samples differently.
    assert codecs._audioop.lin2ulaw(every_pcm, 2) != codecs._ulaw_encode_table(every_pcm)
