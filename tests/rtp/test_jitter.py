"""Adaptive jitter buffer: order, reorder, loss, late and duplicate drop, adaptation, wrap."""

from __future__ import annotations

import itertools
import random
from dataclasses import astuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sippa.errors import LocalProtocolError
from sippa.rtp.jitter import JitterBuffer, JitterFrame
from sippa.rtp.packet import RtpPacket

STEP = 160  # 20 ms at 8 kHz


def _packets(
    n: int, *, ts0: int = 1000, seq0: int = 0, delays: list[float] | None = None, step: int = STEP
) -> list[tuple[float, RtpPacket]]:
    out = []
    for i in range(n):
        pkt = RtpPacket(
            payload_type=0,
            sequence_number=(seq0 + i) & 0xFFFF,
            timestamp=(ts0 + i * step) & 0xFFFFFFFF,
            ssrc=1,
            marker=i == 0,
            payload=i.to_bytes(4, "big"),
        )
        sent = i * step / 8000
        out.append((sent + 0.05 + (delays[i] if delays else 0.0), pkt))
    return out


def _run(
    jb: JitterBuffer, arrivals: list[tuple[float, RtpPacket]], until: float, tick: float = 0.02
) -> list[tuple[float, JitterFrame]]:
    """Deliver packets at their arrival times and poll playout every ``tick``."""
    pending = sorted(arrivals, key=lambda a: a[0])
    played = []
    now = 0.0
    i = 0
    while now <= until:
        while i < len(pending) and pending[i][0] <= now:
            jb.put(pending[i][1], pending[i][0])
            i += 1
        while (frame := jb.get(now)) is not None:
            played.append((now, frame))
        now = round(now + tick / 4, 9)
    return played


def _numbers(played: list[tuple[float, JitterFrame]]) -> list[int | None]:
    """Payload numbers in playout order, without the losses concealed after the stream ended."""
    nums = [None if f.payload is None else int.from_bytes(f.payload, "big") for _, f in played]
    tail = len(nums)
    while tail and nums[tail - 1] is None:
        tail -= 1
    assert len(nums) - tail <= 0.3 / 0.02 + 1  # concealment stops after max_delay
    return nums[:tail]


def test_steady_stream_plays_everything_in_order_at_a_steady_pace() -> None:
    jb = JitterBuffer(8000, 20, initial_delay=0.04)
    played = _run(jb, _packets(100), until=2.5)
    assert _numbers(played) == list(range(100))
    played = played[:100]
    times = [t for t, _ in played]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(abs(g - 0.02) <= 0.0051 for g in gaps)
    assert jb.stats.late == jb.stats.dropped == 0
    assert jb.stats.played == jb.stats.received == 100


def test_reordered_packets_are_put_back_in_order() -> None:
    arrivals = _packets(50)
    # Swap neighbours: 10 arrives after 11, 30 after 31 (10 ms later than its turn).
    for a, b in ((10, 11), (30, 31)):
        (_ta, pa), (tb, pb) = arrivals[a], arrivals[b]
        arrivals[a], arrivals[b] = (tb + 0.01, pa), (tb, pb)
    jb = JitterBuffer(8000, 20, initial_delay=0.06)
    assert _numbers(_run(jb, arrivals, until=1.5)) == list(range(50))
    assert jb.stats.late == jb.stats.duplicates == 0


def test_lost_packets_become_loss_frames_in_their_slot() -> None:
    arrivals = [a for i, a in enumerate(_packets(40)) if i not in (5, 6, 20)]
    jb = JitterBuffer(8000, 20)
    nums = _numbers(_run(jb, arrivals, until=1.2))
    expected: list[int | None] = list(range(40))
    for i in (5, 6, 20):
        expected[i] = None
    assert nums == expected
    lost = [f for _, f in _run(JitterBuffer(8000, 20), arrivals, until=1.2) if f.lost]
    assert [f.timestamp for f in lost[:3]] == [1000 + i * STEP for i in (5, 6, 20)]
    assert lost[3].timestamp == 1000 + 40 * STEP  # after the end: concealment until max_delay
    assert all(f.sequence_number is None for f in lost)


def test_late_and_duplicate_packets_are_dropped_and_delay_grows() -> None:
    delays = [0.0] * 60
    delays[20] = 0.2  # arrives long after its slot
    arrivals = _packets(60, delays=delays)
    arrivals += [(arrivals[30][0] + 0.001, arrivals[30][1])]  # duplicate while buffered
    arrivals += [(arrivals[10][0] + 0.3, arrivals[10][1])]  # duplicate long after playout
    jb = JitterBuffer(8000, 20, min_delay=0.02, initial_delay=0.02)
    before = jb.delay
    nums = _numbers(_run(jb, arrivals, until=1.6))
    assert nums[20] is None
    assert [n for n in nums if n is not None] == [n for n in range(60) if n != 20]
    assert jb.stats.late == 1
    assert jb.stats.duplicates == 2
    assert jb.delay > before + 0.1  # the late packet taught it a larger delay


def test_delay_adapts_up_to_jitter_and_back_down() -> None:
    rng = random.Random(7)
    n = 1500  # 30 s: 10 s calm, 10 s with up to 80 ms jitter, 10 s calm
    delays = [rng.uniform(0, 0.08) if 500 <= i < 1000 else 0.0 for i in range(n)]
    arrivals = _packets(n, delays=delays)
    jb = JitterBuffer(8000, 20, min_delay=0.02, max_delay=0.3, initial_delay=0.02)
    trace = []
    played = []
    pending = sorted(arrivals, key=lambda a: a[0])
    i, now = 0, 0.0
    while now < 31:
        while i < len(pending) and pending[i][0] <= now:
            jb.put(pending[i][1], pending[i][0])
            i += 1
        while (f := jb.get(now)) is not None:
            played.append(f)
        trace.append((now, jb.delay))
        now = round(now + 0.005, 6)

    def delay_at(t: float) -> float:
        return next(d for tt, d in trace if tt >= t)

    assert delay_at(9.0) == pytest.approx(0.03, abs=0.011)  # calm: near the minimum
    assert 0.08 <= delay_at(19.0) <= 0.1  # covers the jitter
    assert delay_at(30.5) < 0.045  # given back afterwards
    losses = sum(f.lost for f in played[:-20])  # the tail is concealment after the end
    assert losses <= 3  # only while learning the first jitter peak
    assert jb.stats.played + jb.stats.dropped + losses >= n - 3


def test_timestamp_and_sequence_wrap_around() -> None:
    jb = JitterBuffer(8000, 20)
    played = _run(jb, _packets(30, ts0=0xFFFFFFFF - 5 * STEP, seq0=65530), until=1.0)
    assert _numbers(played) == list(range(30))
    assert played[6][1].timestamp < 0x1000


def test_silence_then_talkspurt_resyncs_without_endless_losses() -> None:
    first = _packets(10)
    # 3 s of silence suppression, then a talkspurt (marker) with a timestamp 3 s later.
    second = [
        (
            t + 3.0,
            RtpPacket(
                **{
                    **_asdict(p),
                    "timestamp": p.timestamp + 24000 + 10 * STEP,
                    "sequence_number": p.sequence_number + 10,
                    "payload": (100 + k).to_bytes(4, "big"),
                }
            ),
        )
        for k, (t, p) in enumerate(_packets(10))
    ]
    jb = JitterBuffer(8000, 20, max_delay=0.2)
    nums = _numbers(_run(jb, first + second, until=4.0))
    assert [n for n in nums if n is not None] == list(range(10)) + list(range(100, 110))
    assert nums.count(None) <= 0.2 / 0.02 + 2  # concealment stops after max_delay
    assert jb.stats.resyncs == 2


def _asdict(p: RtpPacket) -> dict[str, object]:
    return {k: getattr(p, k) for k in RtpPacket.__slots__}


def test_learns_the_peer_ptime() -> None:
    jb = JitterBuffer(8000, 20)
    played = _run(jb, _packets(30, step=240), until=1.2)  # the peer sends 30 ms packets
    assert jb.frame_step == 240
    assert _numbers(played) == list(range(30))


def test_nothing_before_the_first_packet() -> None:
    jb = JitterBuffer(48000, 20)
    assert jb.get(100.0) is None
    assert len(jb) == 0
    with pytest.raises(LocalProtocolError):
        JitterBuffer(8000, min_delay=0.5, max_delay=0.1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 0.25), st.integers(0, 9)),  # extra delay, fate (0: lost, 1: dup)
        min_size=1,
        max_size=300,
    ),
    st.integers(0, 0xFFFFFFFF),
)
def test_property_order_uniqueness_and_accounting(fates: list[tuple[float, int]], ts0: int) -> None:
    arrivals = []
    for (t, pkt), (extra, fate) in zip(
        _packets(len(fates), ts0=ts0, seq0=ts0 & 0xFFFF), fates, strict=True
    ):
        if fate == 0:
            continue
        arrivals.append((t + extra, pkt))
        if fate == 1:
            arrivals.append((t + extra + 0.013, pkt))
    jb = JitterBuffer(8000, 20, max_delay=0.2)
    played = _run(jb, arrivals, until=len(fates) * 0.02 + 1.0)
    heard = [int.from_bytes(f.payload, "big") for _, f in played if f.payload is not None]
    assert heard == sorted(set(heard))  # in order, each at most once
    s = jb.stats
    assert s.received + s.late + s.duplicates == len(arrivals)
    assert s.played == len(heard)
    assert s.received == s.played + s.dropped + len(jb)


def test_source_restart_with_an_earlier_timestamp_resyncs() -> None:
    first = _packets(20, ts0=5_000_000)
    second = [(t + 0.6, p) for t, p in _packets(20, ts0=1000, seq0=9000)]
    jb = JitterBuffer(8000, 20)
    heard = [n for n in _numbers(_run(jb, first + second, until=1.7)) if n is not None]
    assert heard == list(range(20)) + list(range(20))
    assert jb.stats.resyncs == 2
    assert jb.stats.late == 0


def _frame(frame: object) -> object:
    return None if frame is None else astuple(frame)  # type: ignore[call-overload]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 1, 1, 1, 1, 1, 2, 0, -1, -5, 40]),  # sequence step
            st.sampled_from(
                [160] * 12 + [0, 80, 240, 320, 480, 1200, 8000, 3_000_000, -160, -1600, -50_000]
            ),
            st.one_of(st.floats(0.0, 0.01), st.floats(0.0, 0.25)),  # extra network delay
            st.booleans(),  # marker
            st.integers(0, 3),  # playout polls before this packet
        ),
        min_size=1,
        max_size=300,
    ),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFF),
)
def test_inlined_paths_agree_with_the_plain_version(  # type: ignore[no-untyped-def]
    steps, ts0, seq0
) -> None:
    from tests.rtp.jitter_reference import JitterBuffer as Reference

    fast, plain = JitterBuffer(8000, 20), Reference(8000, 20)
    seq, ts, now = seq0, ts0, 0.0
    for seq_step, ts_step, delay, marker, polls in steps:
        seq = (seq + seq_step) & 0xFFFF
        ts = (ts + ts_step) & 0xFFFFFFFF
        now = round(now + 0.02, 6)
        for k in range(polls):
            when = now + k * 0.01
            assert _frame(fast.get(when)) == _frame(plain.get(when))
        arrival = now + delay
        payload = seq.to_bytes(2, "big")
        assert fast.put_payload(seq, ts, payload, arrival, marker) == plain.put_payload(
            seq, ts, payload, arrival, marker
        )
        assert astuple(fast.stats) == astuple(plain.stats)
        assert fast.delay == plain.delay
    for k in range(30):
        when = now + 0.4 + k * 0.02
        assert _frame(fast.get(when)) == _frame(plain.get(when))
    assert astuple(fast.stats) == astuple(plain.stats)


@pytest.mark.parametrize("seed", range(6))
def test_inlined_paths_agree_with_the_plain_version_over_a_long_noisy_call(seed: int) -> None:
    """20 s of a stream with changing jitter, loss, reordering, duplicates and a restart."""
    from tests.rtp.jitter_reference import JitterBuffer as Reference

    rng = random.Random(seed)
    fast, plain = JitterBuffer(8000, 20), Reference(8000, 20)
    arrivals = []
    ts0 = rng.randrange(1 << 32)
    for i in range(1000):
        if rng.random() < 0.03:
            continue  # lost
        spread = 0.005 if (i // 150) % 2 else 0.08  # calm and rough periods
        ts = (ts0 + i * 160 + (5_000_000 if i > 700 else 0)) & 0xFFFFFFFF
        at = i * 0.02 + rng.random() * spread
        arrivals.append((at, i & 0xFFFF, ts, i in (0, 701)))
        if rng.random() < 0.02:
            arrivals.append((at + rng.random() * 0.3, i & 0xFFFF, ts, False))  # duplicate
    arrivals.sort()
    t, k = 0.0, 0
    while t < 21.0:
        while k < len(arrivals) and arrivals[k][0] <= t:
            at, seq, ts, marker = arrivals[k]
            assert fast.put_payload(seq, ts, b"x", at, marker) == plain.put_payload(
                seq, ts, b"x", at, marker
            )
            k += 1
        while True:
            a, b = fast.get(t), plain.get(t)
            assert _frame(a) == _frame(b)
            if a is None:
                break
        assert fast.delay == plain.delay
        t = round(t + 0.02 * rng.choice((0.5, 1.0, 1.0, 1.5)), 6)
    assert astuple(fast.stats) == astuple(plain.stats)
    assert fast.stats.played > 800
