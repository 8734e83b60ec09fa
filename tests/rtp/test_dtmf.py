"""RFC 4733 telephone-events: payload format, sender sequence, receiver de-duplication."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.rtp.dtmf import (
    DtmfDigit,
    DtmfReceiver,
    DtmfSender,
    TelephoneEvent,
    digit_to_event,
    event_to_digit,
)


def test_payload_format() -> None:
    # RFC 4733 §2.3: event 5, E=1, volume 10, duration 800 -> 05 8a 03 20.
    raw = bytes(TelephoneEvent(5, end=True, volume=10, duration=800))
    assert raw == bytes.fromhex("058a0320")
    assert TelephoneEvent.parse(raw) == TelephoneEvent(5, True, 10, 800)
    assert TelephoneEvent.parse(bytes.fromhex("0b4a00a0")) == TelephoneEvent(11, False, 10, 160)
    with pytest.raises(RemoteProtocolError):
        TelephoneEvent.parse(b"\x01\x02\x03")


def test_digit_codes() -> None:
    assert [digit_to_event(d) for d in "0189*#AbCD"] == [0, 1, 8, 9, 10, 11, 12, 13, 14, 15]
    assert event_to_digit(11) == "#"
    assert event_to_digit(16) is None  # flash
    for bad in ("E", "", "12"):
        with pytest.raises(LocalProtocolError):
            digit_to_event(bad)


def test_sender_sequence() -> None:
    pkts = DtmfSender(clock_rate=8000, ptime=20, volume=10).packets("5", 1000, duration_ms=100)
    events = [TelephoneEvent.parse(p.payload) for p in pkts]
    assert [p.slot for p in pkts] == list(range(7))
    assert [p.marker for p in pkts] == [True] + [False] * 6
    assert {p.timestamp for p in pkts} == {1000}
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {5}


def test_sender_odd_duration_and_wideband_clock() -> None:
    pkts = DtmfSender(clock_rate=48000, ptime=20).packets("#", 0xFFFFFF00, duration_ms=50)
    events = [TelephoneEvent.parse(p.payload) for p in pkts]
    assert [e.duration for e in events] == [960, 1920, 2400, 2400, 2400]
    assert events[-1].end


def test_long_event_is_segmented() -> None:
    # 10 s at 8 kHz = 80000 units > 65535: two segments, the second with a new timestamp.
    pkts = DtmfSender().packets("1", 0, duration_ms=10_000)
    stamps = sorted({p.timestamp for p in pkts})
    assert stamps[0] == 0
    assert len(stamps) == 2
    first_seg = [TelephoneEvent.parse(p.payload) for p in pkts if p.timestamp == 0]
    assert not any(e.end for e in first_seg)
    assert first_seg[-1].duration == stamps[1]
    assert sum(p.marker for p in pkts) == 1
    last = TelephoneEvent.parse(pkts[-1].payload)
    assert last.end
    assert stamps[1] + last.duration == 80000
    # The receiver reports it once.
    rx = DtmfReceiver()
    assert [d for p in pkts if (d := rx.receive(p.payload, p.timestamp))] == [DtmfDigit("1", 0)]


def test_receiver_reports_each_digit_once() -> None:
    tx, rx = DtmfSender(), DtmfReceiver()
    got = []
    ts = 0
    for digit in "1123#":
        for p in tx.packets(digit, ts):
            d = rx.receive(p.payload, p.timestamp)
            if d:
                got.append(d.digit)
        ts += 2000
    assert "".join(got) == "1123#"
    assert rx.events == 5


def test_receiver_missing_start_duplicates_and_late_packets() -> None:
    tx, rx = DtmfSender(), DtmfReceiver()
    first = tx.packets("7", 100)
    second = tx.packets("8", 5000)
    # Start and first update of "7" lost: the digit is still reported, once.
    seen = [rx.receive(p.payload, p.timestamp) for p in first[2:]]
    assert seen[0] == DtmfDigit("7", 100)
    assert not any(seen[1:])
    # "8": all packets duplicated, then a late end packet of "7".
    got = [rx.receive(p.payload, p.timestamp) for p in second for _ in range(2)]
    assert [d for d in got if d] == [DtmfDigit("8", 5000)]
    assert rx.receive(first[-1].payload, first[-1].timestamp) is None
    # A non-DTMF event (flash) is not a digit.
    assert rx.receive(bytes(TelephoneEvent(16, duration=160)), 9000) is None
    assert rx.events == 2


@given(st.lists(st.tuples(st.binary(max_size=8), st.integers(0, 0xFFFFFFFF)), max_size=30))
def test_receiver_only_raises_protocol_error(packets: list[tuple[bytes, int]]) -> None:
    rx = DtmfReceiver()
    for payload, ts in packets:
        try:
            digit = rx.receive(payload, ts)
        except RemoteProtocolError:
            assert len(payload) < 4
            continue
        assert digit is None or digit.digit in "0123456789*#ABCD"
