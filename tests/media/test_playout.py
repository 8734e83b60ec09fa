"""Playout: one PCM frame per tick from the jitter buffer, with concealment of losses."""

from __future__ import annotations

from sippa.media.playout import Playout

FRAME = 160  # 20 ms at 8 kHz
SILENCE = bytes(2 * FRAME)
CONCEALED = b"\xee\xee" * FRAME


def _payload(n: int) -> bytes:
    return bytes([n]) * 2 * FRAME  # "decoded" PCM is the payload itself here


def decode(payload: bytes) -> bytes:
    return payload


def conceal() -> bytes:
    return CONCEALED


def _playout() -> Playout:
    return Playout(8000, FRAME, 20, min_delay=0.02, max_delay=0.2, initial_delay=0.02)


def _run(p: Playout, arrivals: dict[int, float], ticks: int, start: float = 0.0) -> list[bytes]:
    """Packets n (timestamp n * FRAME) arrive at arrivals[n]; the sink ticks every 20 ms."""
    out = []
    pending = sorted(arrivals.items(), key=lambda kv: kv[1])
    for i in range(ticks):
        now = start + i * 0.02
        while pending and pending[0][1] <= now:
            n, at = pending.pop(0)
            p.put(n, n * FRAME, _payload(n + 1), at)
        out.append(p.get(now, decode, conceal))
    return out


def test_silence_until_primed_then_frames_at_a_steady_rate() -> None:
    p = _playout()
    out = _run(p, {n: n * 0.02 + 0.001 for n in range(40)}, 41)
    assert all(len(o) == 2 * FRAME for o in out)
    assert out[0] == SILENCE  # buffering
    played = [o[0] for o in out if o != SILENCE]
    assert played == list(range(1, 41))  # every frame once, in order, one per tick
    assert p.concealed == 0


def test_jittery_and_reordered_arrivals_still_play_in_order() -> None:
    p = _playout()
    jitter = [0.0, 0.012, 0.003, 0.025, 0.0, 0.018, 0.007, 0.0, 0.022, 0.004] * 5
    arrivals = {n: n * 0.02 + jitter[n] for n in range(50)}
    arrivals[11], arrivals[12] = arrivals[12], arrivals[11]  # reordered on the wire
    out = _run(p, arrivals, 60)
    played = [o[0] for o in out if o not in (SILENCE, CONCEALED)]
    assert played == sorted(played)
    assert len(played) >= 45


def test_a_lost_packet_is_concealed_and_playout_continues() -> None:
    p = _playout()
    arrivals = {n: n * 0.02 for n in range(30) if n != 10}
    out = _run(p, arrivals, 30)
    seq = [o[0] for o in out if o != SILENCE]
    i = seq.index(10)  # frame 9 (payload 10) played...
    assert seq[i + 1] == 0xEE  # ...frame 10 lost: concealed
    assert seq[i + 2] == 12
    assert p.concealed == 1


def test_a_peer_on_hold_is_silence_not_endless_concealment() -> None:
    p = _playout()
    out = _run(p, {n: n * 0.02 for n in range(10)}, 60)
    assert out[-1] == SILENCE
    # the buffer reports losses for up to max_delay (0.2 s), then waits quietly
    assert p.concealed <= 16  # 10 reported losses, then at most 5 frames of gap
    assert out[-20:] == [SILENCE] * 20


def test_longer_remote_packets_are_cut_into_our_frames() -> None:
    # the peer sends 30 ms packets (240 samples) on time, we play 20 ms frames
    p = _playout()
    pcm = b""
    for i in range(48):  # 10 ms steps
        now = i * 0.01
        if i % 3 == 0:
            n = i // 3
            p.put(n, n * 240, bytes([n + 1]) * 480, now)
        if i % 2 == 0:
            pcm += p.get(now, decode, conceal)
    audio = pcm.lstrip(b"\x00")
    expected = b"".join(bytes([n + 1]) * 480 for n in range(16))
    assert len(audio) >= 8 * 2 * FRAME
    assert expected.startswith(audio)  # contiguous, in order, nothing concealed
    assert p.concealed == 0
