"""Messages: the header multi-map, parse/serialise, validation, make_response (RFC 3261 §7, §8)."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.sip.headers import CSeq, NameAddr, Via
from sippa.sip.message import (
    Headers,
    InvalidMessage,
    Request,
    Response,
    make_response,
    parse_message,
    validate_request,
)
from sippa.sip.status import StatusCode, reason_phrase
from sippa.sip.uri import Uri

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
)

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS client.atlanta.example.com:5061;branch=z9hG4bK74bf9;rport\r\n"
    b"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKold, "
    b"SIP/2.0/UDP [2001:db8::5]:5070;branch=z9hG4bK3\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n'
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"Contact: <sip:alice@client.atlanta.example.com;transport=tls>"
    b';+sip.instance="<urn:uuid:1>"\r\n'
    b"Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n"
    b"Route: <sip:p3.example.com;lr>\r\n"
    b"Supported: replaces, timer\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


def test_parse_invite() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert msg.uri == Uri.parse("sip:bob@biloxi.example.com")
    assert [v.host for v in msg.vias] == [
        "client.atlanta.example.com",
        "proxy.example.com",
        "2001:db8::5",
    ]
    assert msg.top_via.branch == "z9hG4bK74bf9" and msg.top_via.rport is True
    assert msg.from_.display_name == "Alice" and msg.from_.tag == "9fxced76sl"
    assert msg.to.display_name == "Bob" and msg.to.tag is None
    assert msg.call_id == "3848276298220188511@atlanta.example.com"
    assert msg.cseq == CSeq(2, "INVITE")
    assert msg.max_forwards == 70
    assert [str(c.uri) for c in msg.contacts] == [
        "sip:alice@client.atlanta.example.com;transport=tls"
    ]
    assert msg.contacts[0].param("+sip.instance") == '"<urn:uuid:1>"'
    assert [str(r.uri) for r in msg.record_routes] == [
        "sip:p2.example.com;lr",
        "sip:p1.example.com;lr",
    ]
    assert [str(r.uri) for r in msg.routes] == ["sip:p3.example.com;lr"]
    assert msg.content_type == "application/sdp"
    assert msg.media_type == "application/sdp"
    assert msg.headers.get_all("Supported") == ["replaces", "timer"]
    assert msg.body == SDP
    validate_request(msg)


def test_round_trip() -> None:
    msg = parse_message(INVITE)
    again = parse_message(bytes(msg))
    assert again == msg
    assert bytes(again) == bytes(msg)


def test_compact_forms_and_case() -> None:
    data = (
        b"OPTIONS sip:x@example.com SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"f: <sip:a@b>;tag=1\r\nt: sip:x@example.com\r\ni: abc\r\ncseq: 1 OPTIONS\r\n"
        b"MAX-FORWARDS: 0\r\nk: path\r\nl: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert msg.headers.get("Call-ID") == "abc" == msg.headers.get("i") == msg.headers.get("CALL-id")
    assert "Supported" in msg.headers and "k" in msg.headers
    assert [name for name, _ in msg.headers] == [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Supported",
        "Content-Length",
    ]
    assert msg.max_forwards == 0


def test_response_parse_and_serialise() -> None:
    data = (
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert isinstance(msg, Response)
    assert (msg.status_code, msg.reason) == (180, "Ringing")
    assert msg.to.tag == "2"
    assert bytes(msg) == data


def test_headers_multimap() -> None:
    h = Headers([("v", "SIP/2.0/UDP a"), ("Route", "<sip:x>, <sip:y>"), ("route", "<sip:z>")])
    assert h.get_all("ROUTE") == ["<sip:x>", "<sip:y>", "<sip:z>"]
    assert h.count("Route") == 2
    h.set("Route", "<sip:only>")
    assert list(h) == [("Via", "SIP/2.0/UDP a"), ("Route", "<sip:only>")]
    h.add("X-Custom", "1")
    copy = h.copy()
    h.remove("x-custom")
    assert "X-Custom" not in h and "x-custom" in copy
    assert h.get("X-Custom") is None
    with pytest.raises(LocalProtocolError):
        h.add("Subject", "a\r\nInjected: yes")
    with pytest.raises(LocalProtocolError):
        h.set("Bad Name", "x")
    req = Request("OPTIONS\r\nX: y", Uri.parse("sip:a@b"))
    with pytest.raises(LocalProtocolError):
        bytes(req)


def test_cache_follows_header_changes() -> None:
    msg = parse_message(INVITE)
    assert msg.cseq.seq == 2
    msg.headers.set("CSeq", "3 INVITE")
    assert msg.cseq.seq == 3


def test_body_rules_for_datagrams() -> None:
    head = INVITE[: INVITE.index(b"\r\n\r\n") + 4]
    # Trailing octets beyond Content-Length are discarded (RFC 3261 §18.3)
    assert parse_message(INVITE + b"garbage").body == SDP
    # Fewer octets than Content-Length: 400
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(head + SDP[:-1])
    assert info.value.status_code == 400
    # No Content-Length: the body runs to the end of the datagram
    no_cl = INVITE.replace(b"Content-Length: " + str(len(SDP)).encode() + b"\r\n", b"")
    assert parse_message(no_cl).body == SDP


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 400),
        (b"INVITE sip:a@b SIP/2.0\r\n", 400),
        (b"INVITE sip:a@b SIP/3.0\r\nVia: SIP/2.0/UDP h\r\n\r\n", 505),
        (b"SIP/2.0 099 Odd\r\n\r\n", 400),
        (b"SIP/2.0 700 Odd\r\n\r\n", 400),
        (b"hello\r\n\r\n", 400),
        (b"INVITE sip:a@b SIP/2.0\r\nNo colon here\r\n\r\n", 400),
        (b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\n\r\n", 400),
        (b"INVITE sip:a@b SIP/2.0\r\nSubject: \xff\r\n\r\n", 400),
        (b"INVITE sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 300 + b"\r\n", 400),
        (b"INVITE sip:a@b SIP/2.0\r\nX: " + b"y" * 70000 + b"\r\n\r\n", 513),
    ],
)
def test_rejected(data: bytes, status: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    assert info.value.status_code == status


def test_invalid_message_carries_the_partial_request() -> None:
    data = INVITE.replace(
        b"INVITE sip:bob@biloxi.example.com SIP/2.0", b"INVITE sip:bob@biloxi.example.com SIP/2.1"
    )
    with pytest.raises(InvalidMessage) as info:
        parse_message(data)
    assert info.value.status_code == 505
    partial = info.value.message
    assert isinstance(partial, Request)
    response = make_response(partial, info.value.status_code)
    assert response.reason == "Version Not Supported"
    assert response.headers.get("Call-ID") == partial.headers.get("Call-ID")


def test_make_response_to_a_malformed_request() -> None:
    data = INVITE.replace(
        b"To: Bob <sip:bob@biloxi.example.com>", b"To: Bob <sip:bob@biloxi.example.com"
    )
    with pytest.raises(InvalidMessage) as info:
        parse_message(data)
    partial = info.value.message
    assert isinstance(partial, Request)
    response = make_response(partial, 400, to_tag="x")
    assert response.headers.get("To") == "Bob <sip:bob@biloxi.example.com"
    assert response.headers.get_all("Via") == partial.headers.get_all("Via")


def test_make_response() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    ringing = make_response(request, 180, to_tag="t1", record_route=True)
    assert ringing.reason == "Ringing"
    assert ringing.to.tag == "t1"
    assert ringing.headers.get_all("Via") == request.headers.get_all("Via")
    assert ringing.from_ == request.from_
    assert ringing.call_id == request.call_id
    assert ringing.cseq == request.cseq
    assert len(ringing.record_routes) == 2
    trying = make_response(request, StatusCode.TRYING, to_tag="t1")
    assert trying.to.tag is None  # never a To tag on 100 (RFC 3261 §8.2.6.2)
    assert trying.record_routes == []
    parsed = parse_message(bytes(ringing))
    assert isinstance(parsed, Response) and parsed.status_code == 180
    busy = make_response(request, 486, "Busy Here Now", to_tag="t2")
    assert busy.reason == "Busy Here Now" and busy.record_routes == []


def test_response_without_reason_phrase() -> None:
    data = (
        b"SIP/2.0 200\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n"
    )
    msg = parse_message(data)
    assert isinstance(msg, Response) and (msg.status_code, msg.reason) == (200, "")


def test_trying_copies_timestamp() -> None:
    request = parse_message(
        INVITE.replace(b"CSeq: 2 INVITE\r\n", b"CSeq: 2 INVITE\r\nTimestamp: 54\r\n")
    )
    assert isinstance(request, Request)
    assert make_response(request, 100).headers.get("Timestamp") == "54"
    assert make_response(request, 180).headers.get("Timestamp") is None


def test_fast_constructors_match_the_dataclass_fields() -> None:
    # the parse path builds Uri/Via/NameAddr without their __init__; keep the field lists in sync
    assert [f.name for f in dataclasses.fields(Uri)] == [
        "scheme",
        "user",
        "password",
        "host",
        "port",
        "params",
        "headers",
        "opaque",
    ]
    assert [f.name for f in dataclasses.fields(Via)] == [
        "transport",
        "host",
        "port",
        "params",
        "protocol",
    ]
    assert [f.name for f in dataclasses.fields(NameAddr)] == ["display_name", "uri", "params"]
    msg = parse_message(INVITE)
    via = msg.vias[0]
    assert via == Via(via.transport, via.host, via.port, via.params, via.protocol)
    assert msg.to == NameAddr(msg.to.display_name, msg.to.uri, msg.to.params)
    uri = msg.to.uri
    assert uri == Uri(
        uri.scheme, uri.user, uri.password, uri.host, uri.port, uri.params, uri.headers
    )
    assert hash(uri) == hash(Uri.parse(str(uri)))


def test_status_codes() -> None:
    assert StatusCode.OK == 200 and StatusCode.OK.phrase == "OK"
    assert StatusCode(481).phrase == "Call/Transaction Does Not Exist"
    assert reason_phrase(404) == "Not Found"
    assert reason_phrase(499) == "Request Failure"
    assert reason_phrase(299) == "Success"


def test_build_request_from_parts() -> None:
    req = Request("OPTIONS", Uri.parse("sip:bob@example.com"), Headers(), b"hi")
    req.headers.add("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")
    req.headers.add("From", "<sip:a@b>;tag=1")
    req.headers.add("To", "<sip:bob@example.com>")
    req.headers.add("Call-ID", "c1")
    req.headers.add("CSeq", "1 OPTIONS")
    req.headers.add("Max-Forwards", "70")
    req.headers.add("Content-Length", "999")  # replaced by the real length on output
    data = bytes(req)
    assert data.endswith(b"Content-Length: 2\r\n\r\nhi")
    assert parse_message(data) == req.__class__(
        req.method, req.uri, parse_message(data).headers, b"hi"
    )


@pytest.mark.parametrize("module", ["grammar", "uri", "headers", "message", "framer", "status"])
def test_public_names(module: str) -> None:
    mod = importlib.import_module(f"sippa.sip.{module}")
    assert len(set(mod.__all__)) == len(mod.__all__)  # (the order is ruff's RUF022 sort)
    for name in mod.__all__:
        assert hasattr(mod, name), name
