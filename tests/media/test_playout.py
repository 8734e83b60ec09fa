"""The adaptive playout buffer: steady frames, reordering, loss concealment, adaptation."""

from __future__ import annotations

from sippa.media.playout import Playout

FRAME = 160  # 20 ms at 8 kHz


def _payload(n: int) -> bytes:
    return bytes([n % 256]) * 2 * FRAME  # "decoded" PCM is the payload itself here


def decode(payload: bytes) -> bytes:
    return payload


CONCEALED = b"\xee\xee" * FRAME


def conceal() -> bytes:
    return CONCEALED


def _playout() -> Playout:
    return Playout(8000, FRAME, FRAME, min_delay=0.04, max_delay=0.2)


def test_silence_until_primed_then_in_order_frames_at_a_steady_rate() -> None:
    p = _playout()
    assert p.get(0.0, decode, conceal) == bytes(2 * FRAME)  # nothing yet
    for n in range(10):
        p.put(n, 1000 + n * FRAME, _payload(n + 1), arrival=n * 0.02)
    out = [p.get(0.02 * i, decode, conceal) for i in range(14)]
    assert all(len(o) == 2 * FRAME for o in out)
    # primed 40 ms after the first packet, then frame after frame
    assert out[0] == out[1] == bytes(2 * FRAME)
    assert [o[0] for o in out[2:12]] == list(range(1, 11))


def test_reordered_packets_are_played_in_timestamp_order() -> None:
    p = _playout()
    order = [0, 2, 1, 3, 5, 4]
    for i, n in enumerate(order):
        p.put(n, n * FRAME, _payload(n), arrival=0.001 * i)
    frames = [p.get(1.0 + 0.02 * i, decode, conceal)[0] for i in range(6)]
    assert frames == [0, 1, 2, 3, 4, 5]
    assert p.concealed == 0


def test_a_lost_packet_is_concealed_and_playout_continues() -> None:
    p = _playout()
    for n in (0, 1, 3, 4):
        p.put(n, n * FRAME, _payload(n), arrival=0.0)
    frames = [p.get(1.0 + 0.02 * i, decode, conceal) for i in range(5)]
    assert [f[0] for f in frames] == [0, 1, 0xEE, 3, 4]
    assert p.concealed == 1


def test_a_late_packet_is_dropped_and_grows_the_delay() -> None:
    p = _playout()
    p.put(0, 0, _payload(0), arrival=0.0)
    p.get(1.0, decode, conceal)  # frame 0
    p.get(1.02, decode, conceal)  # frame 1 missing: concealed
    before = p.delay_frames
    p.put(1, FRAME, _payload(1), arrival=1.03)  # arrives after its turn
    assert p.late == 1
    assert p.delay_frames == before + 1
    p.put(2, 2 * FRAME, _payload(2), arrival=1.03)
    # one inserted concealment frame (the delay grew), then frame 2
    assert p.get(1.04, decode, conceal) == CONCEALED
    assert p.get(1.06, decode, conceal)[0] == 2


def test_a_big_timestamp_jump_reprimes() -> None:
    p = _playout()
    p.put(0, 0, _payload(0), arrival=0.0)
    p.get(1.0, decode, conceal)
    p.put(1, 10 * 8000, _payload(7), arrival=1.01)  # ten seconds ahead: restarted source
    assert p.get(1.02, decode, conceal) == bytes(2 * FRAME)  # re-priming
    assert p.get(1.2, decode, conceal)[0] == 7


def test_longer_remote_packets_are_split_into_our_frames() -> None:
    # the peer sends 30 ms packets (240 samples), we play 20 ms frames
    p = _playout()
    for n in range(4):
        p.put(n, n * 240, bytes([n]) * 480, arrival=0.0)
    out = b"".join(p.get(1.0 + 0.02 * i, decode, conceal) for i in range(6))
    assert out == b"".join(bytes([n]) * 480 for n in range(4))
    assert p.concealed == 0


def test_a_steadily_deep_buffer_shrinks() -> None:
    p = _playout()
    for n in range(20):  # a burst: 20 frames buffered at once
        p.put(n, n * FRAME, _payload(n), arrival=0.0)
    now = 1.0
    seq = 20
    for _ in range(300):  # then packets keep coming in step with playout
        p.put(seq, seq * FRAME, _payload(seq), arrival=now)
        seq += 1
        p.get(now, decode, conceal)
        now += 0.02
    assert p.dropped >= 1
    assert p.depth < 20
