"""Stream framing (RFC 3261 §18.3) and CRLF keep-alives (RFC 5626 §4.4.1)."""

from __future__ import annotations

import pytest

from sippa.errors import RemoteProtocolError
from sippa.sip.framer import StreamFramer

MSG = (
    b"OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
    b"Content-Length: 5\r\n\r\nhello"
)
EMPTY = b"OPTIONS sip:x@example.com SIP/2.0\r\nl: 0\r\n\r\n"


def _byte_at_a_time(framer: StreamFramer, data: bytes) -> list[bytes]:
    out: list[bytes] = []
    for i in range(len(data)):
        out += framer.feed(data[i : i + 1])
    return out


def test_whole_and_byte_at_a_time() -> None:
    data = MSG + EMPTY + MSG
    assert StreamFramer().feed(data) == [MSG, EMPTY, MSG]
    assert _byte_at_a_time(StreamFramer(), data) == [MSG, EMPTY, MSG]


def test_partial_message_waits() -> None:
    framer = StreamFramer()
    assert framer.feed(MSG[:-1]) == []
    assert framer.buffered == len(MSG) - 1
    assert framer.feed(MSG[-1:] + MSG[:10]) == [MSG]
    assert framer.buffered == 10


def test_keepalives() -> None:
    framer = StreamFramer()
    assert _byte_at_a_time(framer, b"\r\n\r\n" + MSG + b"\r\n\r\n\r\n\r\n" + b"\r\n" + EMPTY) == [
        MSG,
        EMPTY,
    ]
    assert framer.pings == 3
    assert framer.pongs == 1


def test_folded_content_length() -> None:
    data = b"OPTIONS sip:x SIP/2.0\r\nContent-Length:\r\n  3\r\n\r\nabc"
    assert StreamFramer().feed(data) == [data]


@pytest.mark.parametrize(
    "data",
    [
        b"OPTIONS sip:x SIP/2.0\r\nVia: x\r\n\r\n",  # no Content-Length on a stream
        b"OPTIONS sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n",
    ],
)
def test_framing_errors_are_sticky(data: bytes) -> None:
    framer = StreamFramer()
    with pytest.raises(RemoteProtocolError):
        framer.feed(data)
    with pytest.raises(RemoteProtocolError):
        framer.feed(MSG)


def test_limits() -> None:
    framer = StreamFramer(max_header_size=100)
    with pytest.raises(RemoteProtocolError) as info:
        framer.feed(b"OPTIONS sip:x SIP/2.0\r\n" + b"X: y\r\n" * 30)
    assert info.value.status_code == 513
    framer = StreamFramer(max_message_size=200)
    with pytest.raises(RemoteProtocolError) as info:
        framer.feed(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 500\r\n\r\n")
    assert info.value.status_code == 513
