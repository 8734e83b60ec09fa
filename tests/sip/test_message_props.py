"""Property tests: the parsers either succeed or raise RemoteProtocolError, and round-trip.

The invariants (h11 style): nothing but :class:`RemoteProtocolError` escapes ``parse_message``,
``validate_request``, the typed accessors, ``Uri.parse``, the header parsers or
``StreamFramer``, for arbitrary bytes and for mutations of real messages; a message that parses
serialises to bytes that parse back to the same message.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sippa.errors import RemoteProtocolError
from sippa.sip.framer import StreamFramer
from sippa.sip.grammar import SIP_URI_RE, TOKEN_RE
from sippa.sip.headers import CSeq, NameAddr, Via, parse_name_addr_list, parse_via_list
from sippa.sip.message import Request, Response, parse_message, validate_request
from sippa.sip.uri import Uri

VECTORS = Path(__file__).parent.parent / "vectors" / "rfc4475"
CORPUS = [p.read_bytes() for p in sorted(VECTORS.glob("*.dat"))]
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)
CORPUS.append(
    b"INVITE sip:bob@[2001:db8::1]:5061;transport=tls SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS [2001:db8::2]:5061;branch=z9hG4bKa;rport;received=2001:db8::3\r\n"
    b'Max-Forwards: 70\r\nFrom: "A \\"q\\"" <sips:alice@example.com>;tag=1\r\n'
    b"To: <sip:bob@example.com>\r\nCall-ID: abc@def\r\nCSeq: 1 INVITE\r\n"
    b'Contact: <sip:a@b;ob>;+sip.instance="<urn:uuid:x>";reg-id=1, sip:c@d;q=0.5\r\n'
    b"Route: <sip:p1;lr>,<sip:p2;lr>\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# Generating from the URI grammar regex is slow: fewer, still varied, examples.
REGEX_PROFILE = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))


def exercise(msg: Request | Response) -> None:
    """Touch every typed accessor; each may only raise RemoteProtocolError."""
    for accessor in (
        lambda: msg.vias,
        lambda: msg.top_via,
        lambda: msg.from_,
        lambda: msg.to,
        lambda: msg.call_id,
        lambda: msg.cseq,
        lambda: msg.max_forwards,
        lambda: msg.contacts,
        lambda: msg.routes,
        lambda: msg.record_routes,
        lambda: msg.content_type,
        lambda: msg.media_type,
        lambda: [str(v) for v in msg.vias],
        lambda: [str(c) for c in msg.contacts],
    ):
        with contextlib.suppress(RemoteProtocolError):
            accessor()
    if isinstance(msg, Request):
        with contextlib.suppress(RemoteProtocolError):
            validate_request(msg)


def parse_or_reject(data: bytes) -> Request | Response | None:
    try:
        msg = parse_message(data)
    except RemoteProtocolError:
        return None
    exercise(msg)
    return msg


def check_round_trip(msg: Request | Response) -> None:
    data = bytes(msg)
    again = parse_message(data)
    expected_headers = msg.headers.copy()
    expected_headers.set("Content-Length", str(len(msg.body)))
    assert again.headers == expected_headers
    assert again.body == msg.body
    if isinstance(msg, Request):
        assert isinstance(again, Request)
        assert (again.method, again.uri) == (msg.method, msg.uri)
    else:
        assert isinstance(again, Response)
        assert (again.status_code, again.reason) == (msg.status_code, msg.reason)
    assert bytes(again) == data


@PROFILE
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    parse_or_reject(data)


@PROFILE
@given(st.binary(max_size=300))
def test_arbitrary_bytes_after_a_valid_head(tail: bytes) -> None:
    parse_or_reject(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n" + tail)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup"]))
        byte = draw(
            st.sampled_from(list(b'\r\n \t:;,<>"\\@=%?&[]/0\x00\xff')) | st.integers(0, 255)
        )
        if op == "flip" and data:
            data[pos] = byte
        elif op == "insert":
            data.insert(pos, byte)
        elif op == "delete" and data:
            del data[pos]
        elif op == "dup":
            end = draw(st.integers(pos, min(len(data), pos + 40)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


@PROFILE
@given(mutated())
def test_mutated_messages(data: bytes) -> None:
    msg = parse_or_reject(data)
    if msg is not None:
        check_round_trip(msg)


@settings(max_examples=len(CORPUS), deadline=None)
@given(st.sampled_from(CORPUS))
def test_round_trip_of_the_corpus(data: bytes) -> None:
    msg = parse_or_reject(data)
    if msg is not None:
        check_round_trip(msg)


@PROFILE
@given(st.text(max_size=200))
def test_header_parsers_on_arbitrary_text(text: str) -> None:
    for parser in (
        Uri.parse,
        Via.parse,
        NameAddr.parse,
        CSeq.parse,
        parse_via_list,
        parse_name_addr_list,
    ):
        with contextlib.suppress(RemoteProtocolError):
            parser(text)  # type: ignore[operator]


@REGEX_PROFILE
@given(st.from_regex(SIP_URI_RE, fullmatch=True))
def test_uri_round_trip(text: str) -> None:
    try:
        uri = Uri.parse(text)
    except RemoteProtocolError:
        return  # e.g. a bad IPv6 reference or port: the regex alone does not rule those out
    assert Uri.parse(str(uri)) == uri
    assert uri.equivalent(Uri.parse(str(uri)))


tokens = st.from_regex(TOKEN_RE, fullmatch=True).filter(lambda t: len(t) < 30)
param_values = (
    st.none()
    | tokens
    | st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=10).map(
        lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'
    )
)


@REGEX_PROFILE
@given(
    st.none() | st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.from_regex(SIP_URI_RE, fullmatch=True),
    st.lists(st.tuples(tokens, param_values), max_size=4),
)
def test_name_addr_round_trip(display: str | None, uri_text: str, params: list) -> None:
    try:
        uri = Uri.parse(uri_text)
    except RemoteProtocolError:
        return
    if display is not None and ("\r" in display or "\n" in display):
        return
    na = NameAddr(display, uri, tuple((k.lower(), v) for k, v in params))
    assert NameAddr.parse(str(na)) == na


@PROFILE
@given(
    tokens,
    st.sampled_from(["example.com", "192.0.2.1", "2001:db8::1", "a-b.c"]),
    st.none() | st.integers(0, 65535),
    st.lists(st.tuples(tokens, param_values), max_size=4),
)
def test_via_round_trip(transport: str, host: str, port: int | None, params: list) -> None:
    via = Via(transport.upper(), host, port, tuple((k.lower(), v) for k, v in params))
    try:
        parsed = Via.parse(str(via))
    except RemoteProtocolError:
        # only our own validation of rport/ttl/branch values may refuse a generated Via
        assert any(k.lower() in ("rport", "ttl", "branch") for k, _ in params)
        return
    assert parsed == via


@PROFILE
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_framer_on_arbitrary_chunks(chunks: list[bytes]) -> None:
    framer = StreamFramer()
    for chunk in chunks:
        try:
            for message in framer.feed(chunk):
                parse_or_reject(message)
        except RemoteProtocolError:
            return


def _frames_alone(message: bytes) -> bool:
    try:
        return StreamFramer().feed(message) == [message]
    except RemoteProtocolError:
        return False


FRAMABLE = [m for m in CORPUS if _frames_alone(m)]


@PROFILE
@given(st.lists(st.sampled_from(FRAMABLE), min_size=1, max_size=4), st.data())
def test_framer_split_anywhere(messages: list[bytes], data: st.DataObject) -> None:
    whole = b"".join(messages)
    framed_whole = StreamFramer().feed(whole)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=10)))
    framer = StreamFramer()
    out: list[bytes] = []
    last = 0
    for cut in [*cuts, len(whole)]:
        out += framer.feed(whole[last:cut])
        last = cut
    assert out == framed_whole
    assert b"".join(out) == whole[: len(b"".join(out))]
