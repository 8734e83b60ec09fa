"""Audio codecs behind one small Encoder/Decoder interface, with a registry by SDP name.

PCM everywhere is signed 16-bit little-endian mono at the codec's ``sample_rate``; one call
encodes or decodes one frame of ``ptime`` milliseconds. G.711 (PCMU/PCMA, ITU-T G.711) is
table-driven (numpy tables built on first use) or, where it is bit-exact, CPython's C
``audioop``: it is the hot codec of the media engine.
G.722 and Opus go through FFmpeg via PyAV (``av``). Every decoder can :meth:`~Decoder.conceal`
a lost frame.
"""

from __future__ import annotations

import functools
import sys
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sippa.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "CODECS",
    "CodecSpec",
    "Decoder",
    "Encoder",
    "alaw_decode",
    "alaw_encode",
    "get_decoder",
    "get_encoder",
    "ulaw_decode",
    "ulaw_encode",
]


if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


# numpy and PyAV are imported on first use, not with this module: together ~35 MB of memory
# that an idle phone (and PyAV: a phone speaking only G.711) never needs.


def _np() -> Any:
    import numpy  # noqa: PLC0415

    return numpy


def _av() -> Any:
    import av  # noqa: PLC0415

    return av


DEFAULT_PTIME: Final = 20


@dataclass(frozen=True, slots=True)
class CodecSpec:
    """What SDP needs to know about a codec (RFC 3551 §4.5, RFC 7587)."""

    name: str
    """Encoding name as in a=rtpmap (compared case-insensitively)."""
    clock_rate: int
    """RTP clock rate (G.722: 8000 although it samples at 16000, RFC 3551 §4.5.2)."""
    sample_rate: int
    """Audio sample rate of the PCM in and out."""
    channels: int
    """Channels announced in a=rtpmap (Opus: always 2, RFC 7587 §7); PCM is always mono."""
    static_payload_type: int | None
    """The RFC 3551 static payload type, if any."""


CODECS: Final = {
    "pcmu": CodecSpec("PCMU", 8000, 8000, 1, 0),
    "pcma": CodecSpec("PCMA", 8000, 8000, 1, 8),
    "g722": CodecSpec("G722", 8000, 16000, 1, 9),
    "opus": CodecSpec("opus", 48000, 48000, 2, None),
}
"""The codecs :func:`get_encoder`/:func:`get_decoder` know, by lower-case name."""


class Encoder(ABC):
    """Encodes one frame of PCM (s16le mono at ``sample_rate``) into one RTP payload."""

    # Slots all the way down: the media engine touches one encoder and one decoder per
    # stream every frame, and a compact object stays in fewer cache lines.
    __slots__ = ("clock_rate", "ptime", "sample_rate", "spec")

    spec: CodecSpec
    sample_rate: int
    clock_rate: int
    ptime: int

    def frame_samples(self, ptime: int | None = None) -> int:
        """PCM samples in one frame of ``ptime`` ms (default: this encoder's ptime)."""
        return self.sample_rate * (ptime or self.ptime) // 1000

    def timestamp_increment(self, ptime: int | None = None) -> int:
        """RTP timestamp units per frame of ``ptime`` ms."""
        return self.clock_rate * (ptime or self.ptime) // 1000

    @abstractmethod
    def encode(self, pcm: bytes) -> bytes:
        """One frame of PCM in, one payload out."""


class Decoder(ABC):
    """Decodes one RTP payload into PCM (s16le mono at ``sample_rate``)."""

    __slots__ = ("_concealed", "_last", "clock_rate", "ptime", "sample_rate", "spec")

    spec: CodecSpec
    sample_rate: int
    clock_rate: int
    ptime: int
    _last: bytes
    _concealed: int

    def frame_samples(self, ptime: int | None = None) -> int:
        """PCM samples in one frame of ``ptime`` ms (default: this decoder's ptime)."""
        return self.sample_rate * (ptime or self.ptime) // 1000

    def decode(self, payload: bytes) -> bytes:
        """One payload in, its PCM out; RemoteProtocolError if the payload is not decodable."""
        pcm = self._decode(payload)
        self._last = pcm
        self._concealed = 0
        return pcm

    @abstractmethod
    def _decode(self, payload: bytes) -> bytes: ...

    def conceal(self) -> bytes:
        """PCM for one lost frame: the last frame repeated and faded, then silence.

        Each consecutive concealed frame is 6 dB quieter; after 4 it is silence (comfort frame).
        """
        self._concealed += 1
        if not self._last or self._concealed > 4:
            return bytes(2 * self.frame_samples())
        gain = 0.5**self._concealed
        if _audioop is not None:
            # The fade in _FADE_STEPS constant steps through the C audioop (a loaded engine
            # conceals often, and numpy's five array operations cost ~10x more per frame):
            # a staircase from 0.97 to 0.53 of the gain instead of numpy's smooth 1.0-0.5.
            last, mul = self._last, _audioop.mul
            n = len(last) // 2
            bounds = [2 * (n * i // _FADE_STEPS) for i in range(_FADE_STEPS + 1)]
            return b"".join(
                mul(last[bounds[i] : bounds[i + 1]], 2, gain * _FADE[i])
                for i in range(_FADE_STEPS)
            )
        np = _np()
        samples = np.frombuffer(self._last, dtype="<i2").astype(np.float32)
        ramp = np.linspace(1.0, 0.5, samples.size, dtype=np.float32) * gain
        out: bytes = (samples * ramp).astype("<i2").tobytes()
        return out


_FADE_STEPS: Final = 8
_FADE: Final = tuple(1.0 - 0.5 * (i + 0.5) / _FADE_STEPS for i in range(_FADE_STEPS))


# --- G.711 (ITU-T G.711; bit-exact with the classic Sun/CCITT reference code) ---

_BIAS = 0x84
_CLIP = 32635


def _build_ulaw_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    np = _np()
    pcm = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(pcm < 0, 0x80, 0)
    mag = np.minimum(np.abs(pcm), _CLIP) + _BIAS
    exponent = np.floor(np.log2(mag >> 7)).astype(np.int32)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    enc = (~(sign | (exponent << 4) | mantissa)) & 0xFF
    # Index by the 16-bit pattern (pcm viewed as uint16).
    encode = np.empty(65536, dtype=np.uint8)
    encode[pcm.astype(np.uint16)] = enc
    u = (~np.arange(256)) & 0xFF
    exp = (u >> 4) & 0x07
    man = u & 0x0F
    val = (((man << 3) + _BIAS) << exp) - _BIAS
    decode = np.where(u & 0x80, -val, val).astype(np.int16)
    return encode, decode


def _build_alaw_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    np = _np()
    pcm = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(pcm >= 0, 0x80, 0)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)  # one's complement for negatives, as G.191
    mag = np.minimum(mag, 0x7FFF)
    seg_in = mag >> 8
    exponent = np.where(seg_in > 0, np.floor(np.log2(np.maximum(seg_in, 1))) + 1, 0).astype(
        np.int32
    )
    mantissa = np.where(exponent == 0, mag >> 4, mag >> (exponent + 3)) & 0x0F
    enc = ((exponent << 4) | mantissa | sign) ^ 0x55
    encode = np.empty(65536, dtype=np.uint8)
    encode[pcm.astype(np.uint16)] = enc
    a = np.arange(256) ^ 0x55
    exp = (a >> 4) & 0x07
    man = a & 0x0F
    val = np.where(exp == 0, (man << 4) + 8, ((man << 4) + 0x108) << np.maximum(exp - 1, 0))
    decode = np.where(a & 0x80, val, -val).astype(np.int16)
    return encode, decode


class _G711Tables:
    """The G.711 tables, built once on first use."""

    def __init__(self) -> None:
        np = _np()
        self.frombuffer = np.frombuffer
        self.u2 = np.dtype("<u2")
        self.ulaw_enc, ulaw_dec = _build_ulaw_tables()
        self.alaw_enc, alaw_dec = _build_alaw_tables()
        # Decoding is two byte-wise table lookups (low and high octet of each s16le sample)
        # with bytes.translate, about twice as fast as numpy indexing for one 20 ms frame.
        self.ulaw_lo, self.ulaw_hi = _split_octets(ulaw_dec)
        self.alaw_lo, self.alaw_hi = _split_octets(alaw_dec)


def _split_octets(decode: npt.NDArray[np.int16]) -> tuple[bytes, bytes]:
    words = decode.astype("<i2").view("<u2")
    return bytes(int(v) & 0xFF for v in words), bytes(int(v) >> 8 for v in words)


@functools.cache
def _g711() -> _G711Tables:
    return _G711Tables()


def _expand(data: bytes, lo: bytes, hi: bytes) -> bytes:
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(lo)
    out[1::2] = data.translate(hi)
    return bytes(out)


def _ulaw_encode_table(pcm: bytes) -> bytes:
    t = _g711()
    out: bytes = t.ulaw_enc.take(t.frombuffer(pcm, t.u2)).tobytes()
    return out


def _ulaw_decode_table(data: bytes) -> bytes:
    t = _g711()
    return _expand(data, t.ulaw_lo, t.ulaw_hi)


def _alaw_encode_table(pcm: bytes) -> bytes:
    t = _g711()
    out: bytes = t.alaw_enc.take(t.frombuffer(pcm, t.u2)).tobytes()
    return out


def _alaw_decode_table(data: bytes) -> bytes:
    t = _g711()
    return _expand(data, t.alaw_lo, t.alaw_hi)


def _load_audioop() -> Any:
    """CPython's C G.711 (stdlib ``audioop`` up to 3.12, the ``audioop-lts`` package from
    3.13), or None. It works in native byte order, so only on little-endian machines."""
    if sys.byteorder != "little":
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.11/3.12: slated for removal
        try:
            import audioop  # noqa: PLC0415
        except ImportError:
            return None
    return audioop


_audioop: Any = _load_audioop()


def ulaw_encode(pcm: bytes) -> bytes:
    """s16le PCM to G.711 mu-law, one octet per sample."""
    # Not audioop.lin2ulaw: it negates negative samples where G.191 takes the one's
    # complement, so it differs by one step at 381 of the 65536 inputs (e.g. -1 -> 0x7E).
    return _ulaw_encode_table(pcm)


if _audioop is not None:
    # Bit-exact with the tables (tests/rtp/test_codecs.py checks every input), 5-10x faster.
    _ulaw2lin = _audioop.ulaw2lin
    _lin2alaw = _audioop.lin2alaw
    _alaw2lin = _audioop.alaw2lin

    def ulaw_decode(data: bytes) -> bytes:
        """G.711 mu-law to s16le PCM."""
        out: bytes = _ulaw2lin(data, 2)
        return out

    def alaw_encode(pcm: bytes) -> bytes:
        """s16le PCM to G.711 A-law, one octet per sample."""
        if len(pcm) % 2:
            raise LocalProtocolError("PCM must be whole 16-bit samples")
        out: bytes = _lin2alaw(pcm, 2)
        return out

    def alaw_decode(data: bytes) -> bytes:
        """G.711 A-law to s16le PCM."""
        out: bytes = _alaw2lin(data, 2)
        return out

else:
    ulaw_decode = _ulaw_decode_table
    alaw_encode = _alaw_encode_table
    alaw_decode = _alaw_decode_table


class _G711Encoder(Encoder):
    __slots__ = ("_fn",)

    def __init__(self, spec: CodecSpec, ptime: int, fn: Callable[[bytes], bytes]) -> None:
        self.spec = spec
        self.sample_rate = spec.sample_rate
        self.clock_rate = spec.clock_rate
        self.ptime = ptime
        self._fn = fn

    def encode(self, pcm: bytes) -> bytes:
        if len(pcm) % 2:
            raise LocalProtocolError("PCM must be whole 16-bit samples")
        return self._fn(pcm)


class _G711Decoder(Decoder):
    __slots__ = ("_fn",)

    def __init__(self, spec: CodecSpec, ptime: int, fn: Callable[[bytes], bytes]) -> None:
        self.spec = spec
        self.sample_rate = spec.sample_rate
        self.clock_rate = spec.clock_rate
        self.ptime = ptime
        self._fn = fn
        self._last = b""
        self._concealed = 0

    def decode(self, payload: bytes) -> bytes:
        # Decoder.decode with _decode inlined: once per frame of every stream.
        pcm = self._fn(payload)
        self._last = pcm
        self._concealed = 0
        return pcm

    def _decode(self, payload: bytes) -> bytes:
        return self._fn(payload)


# --- G.722 and Opus through PyAV (FFmpeg) ---

# libopus frame durations (ms) that one RTP packet of ptime ms can carry (RFC 6716 §2.1.4).
_OPUS_DURATIONS: Final = {10, 20, 40, 60}


class _AvEncoder(Encoder):
    __slots__ = ("_ctx", "_frame", "_pts")

    def __init__(
        self, spec: CodecSpec, ptime: int, ffname: str, options: dict[str, str], bitrate: int
    ) -> None:
        self.spec = spec
        self.sample_rate = spec.sample_rate
        self.clock_rate = spec.clock_rate
        self.ptime = ptime
        ctx: Any = _av().CodecContext.create(ffname, "w")
        ctx.sample_rate = self.sample_rate
        ctx.layout = "mono"
        ctx.format = "s16"
        if bitrate:
            ctx.bit_rate = bitrate
        ctx.options = options
        ctx.open()
        self._ctx = ctx
        self._frame = _av().AudioFrame.from_ndarray
        self._pts = 0

    def encode(self, pcm: bytes) -> bytes:
        samples = _np().frombuffer(pcm, dtype="<i2")
        if samples.size != self.frame_samples():
            raise LocalProtocolError(
                f"{self.spec.name} wants {self.frame_samples()} samples per frame"
            )
        frame = self._frame(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        self._pts += samples.size
        return b"".join(bytes(p) for p in self._ctx.encode(frame))


class _AvDecoder(Decoder):
    __slots__ = ("_ctx", "_error", "_packet")

    def __init__(self, spec: CodecSpec, ptime: int, ffname: str) -> None:
        self.spec = spec
        self.sample_rate = spec.sample_rate
        self.clock_rate = spec.clock_rate
        self.ptime = ptime
        av = _av()
        ctx: Any = av.CodecContext.create(ffname, "r")
        self._packet, self._error = av.Packet, av.FFmpegError
        ctx.sample_rate = self.sample_rate
        ctx.layout = "mono"
        ctx.format = "s16"
        self._ctx = ctx
        self._last = b""
        self._concealed = 0

    def _decode(self, payload: bytes) -> bytes:
        if not payload:
            raise RemoteProtocolError(f"empty {self.spec.name} payload")
        try:
            frames = self._ctx.decode(self._packet(payload))
        except self._error as exc:
            raise RemoteProtocolError(f"undecodable {self.spec.name} payload: {exc}") from exc
        return b"".join(_s16_mono(f) for f in frames)


def _s16_mono(frame: Any) -> bytes:
    np = _np()
    data = frame.to_ndarray()
    if data.dtype.kind == "f":
        data = np.clip(data * 32768.0, -32768, 32767).astype("<i2")
    if data.ndim == 2 and data.shape[0] > 1:  # planar multi-channel: average
        data = data.mean(axis=0).astype("<i2")
    out: bytes = np.asarray(data, dtype="<i2").reshape(-1).tobytes()
    return out


# --- registry ---


def _spec(name: str, clock_rate: int, channels: int) -> CodecSpec:
    spec = CODECS.get(name.lower())
    if spec is None:
        raise LocalProtocolError(f"unknown codec {name!r}", 488)
    if clock_rate != spec.clock_rate:
        raise LocalProtocolError(f"{spec.name} runs at {spec.clock_rate} Hz, not {clock_rate}", 488)
    if channels not in (1, spec.channels):
        raise LocalProtocolError(f"{spec.name} with {channels} channels", 488)
    return spec


def get_encoder(
    name: str, clock_rate: int, channels: int = 1, *, ptime: int = DEFAULT_PTIME, bitrate: int = 0
) -> Encoder:
    """An encoder for the a=rtpmap ``name/clock_rate/channels``; ``bitrate`` is for Opus."""
    spec = _spec(name, clock_rate, channels)
    if ptime <= 0:
        raise LocalProtocolError("ptime must be positive")
    key = spec.name.lower()
    if key == "pcmu":
        return _G711Encoder(spec, ptime, ulaw_encode)
    if key == "pcma":
        return _G711Encoder(spec, ptime, alaw_encode)
    if key == "g722":
        # FFmpeg's G.722 encoder buffers to 320-sample frames unless told the frame size.
        samples = spec.sample_rate * ptime // 1000
        return _AvEncoder(spec, ptime, "g722", {"frame_size": str(samples)}, 0)
    if ptime not in _OPUS_DURATIONS:
        raise LocalProtocolError(f"Opus cannot carry ptime {ptime}", 488)
    options = {"frame_duration": str(ptime), "application": "voip"}
    return _AvEncoder(spec, ptime, "libopus", options, bitrate or 32000)


def get_decoder(
    name: str, clock_rate: int, channels: int = 1, *, ptime: int = DEFAULT_PTIME
) -> Decoder:
    """A decoder for the a=rtpmap ``name/clock_rate/channels``."""
    spec = _spec(name, clock_rate, channels)
    key = spec.name.lower()
    if key == "pcmu":
        return _G711Decoder(spec, ptime, ulaw_decode)
    if key == "pcma":
        return _G711Decoder(spec, ptime, alaw_decode)
    if key == "g722":
        return _AvDecoder(spec, ptime, "g722")
    return _AvDecoder(spec, ptime, "libopus")
