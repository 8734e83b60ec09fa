"""The sound-card source/sink: the buffer between PortAudio's thread and the engine.

No test needs a sound card; without the ``sound`` extra the classes refuse clearly.
"""

from __future__ import annotations

import pytest

from sippa.media.sound import SoundCardSink, SoundCardSource, _Buffer, sound_available


def test_buffer_is_bounded_and_never_blocks() -> None:
    b = _Buffer()
    b.reset(limit=8)
    assert b.pull(4) == bytes(4)  # empty: silence
    b.push(b"abcd")
    b.push(b"efgh")
    b.push(b"ijkl")  # over the limit: the oldest chunk goes
    assert b.pull(6) == b"efghij"
    assert b.pull(4) == b"kl" + bytes(2)


@pytest.mark.skipif(sound_available(), reason="sounddevice is installed")
def test_without_the_extra_the_classes_say_what_to_install() -> None:
    with pytest.raises(RuntimeError, match="sound"):
        SoundCardSource()
    with pytest.raises(RuntimeError, match="sound"):
        SoundCardSink()


class _FakeStream:
    def __init__(self, **kw: object) -> None:
        self.kw = kw
        self.started = self.closed = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class _FakeSoundDevice:
    def __init__(self) -> None:
        self.streams: list[tuple[str, _FakeStream]] = []

    def _make(self, kind: str, **kw: object) -> _FakeStream:
        stream = _FakeStream(**kw)
        self.streams.append((kind, stream))
        return stream

    def RawInputStream(self, **kw: object) -> _FakeStream:
        return self._make("in", **kw)

    def RawOutputStream(self, **kw: object) -> _FakeStream:
        return self._make("out", **kw)


def test_source_and_sink_drive_portaudio_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    from sippa.media import sound

    fake = _FakeSoundDevice()
    monkeypatch.setattr(sound, "_sd", fake)
    source, sink = SoundCardSource(device="mic"), SoundCardSink()
    source.open(8000)
    sink.open(16000)
    (kind_in, capture), (kind_out, playback) = fake.streams
    assert (kind_in, kind_out) == ("in", "out")
    assert capture.started and playback.started
    assert capture.kw["samplerate"] == 8000 and capture.kw["device"] == "mic"
    assert playback.kw["samplerate"] == 16000 and playback.kw["dtype"] == "int16"
    # PortAudio's thread delivers captured audio; the engine reads it, silence after it
    capture.kw["callback"](b"\x01\x02\x03\x04", 2, None, None)  # type: ignore[operator]
    assert source.read(3) == b"\x01\x02\x03\x04" + bytes(2)
    # the engine writes; PortAudio's thread takes it
    sink.write(b"\x05\x06")
    out = bytearray(4)
    playback.kw["callback"](out, 2, None, None)  # type: ignore[operator]
    assert bytes(out) == b"\x05\x06\x00\x00"
    source.open(8000)  # re-opening replaces the stream
    assert capture.closed and len(fake.streams) == 3
    source.close()
    sink.close()
    assert playback.closed and fake.streams[2][1].closed
