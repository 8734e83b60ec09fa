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
