"""The parse fast paths (bench/parse.py) agree with the general paths they short-cut."""

from __future__ import annotations

from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sippa.errors import RemoteProtocolError
from sippa.sdp.model import Attribute, Connection, RtpMap, parse_sdp
from sippa.sip.grammar import SIP_URI_RE
from sippa.sip.headers import NameAddr, Via
from sippa.sip.message import Request, Response, parse_message
from sippa.sip.uri import _SIP_URI_FAST_RE, Uri

NAME_ADDRS = [
    '"Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
    "Bob <sip:bob@biloxi.example.com>",
    "Bob Smith<sip:bob@example.com>;q=0.7;expires=3600",
    "<sip:alice@pc33.atlanta.example.com:5060;transport=udp>",
    "<sips:[2001:db8::1]:5061>;received=[2001:db8::2]",
    '"" <sip:x@y>;tag=a.b-c',
    '"J \\"R\\"" <sip:j@r>;tag=1',  # quoted-pair: general path only
    "<tel:+1-201-555-0123;phone-context=example.com>;flag",
    'A  B <sip:a@b>;x="quoted"',  # two spaces, quoted param: general path only
]


@pytest.mark.parametrize("text", NAME_ADDRS)
def test_name_addr_fast_path_matches_general_path(text: str) -> None:
    # a leading blank keeps the fast regex from matching, so the general path parses it
    fast = NameAddr.parse(text)
    general = NameAddr.parse(" " + text)
    assert fast == general
    assert str(fast) == str(general)
    assert NameAddr.parse(str(fast)) == fast


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776;rport=5060;received=1.2.3.4",
        "SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKx;rport",
    ],
)
def test_via_fast_path_matches_general_path(text: str) -> None:
    assert Via.parse(text) == Via.parse(" " + text)


HEAD = (
    "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
    "Via: SIP/2.0/UDP g.example.com;branch=z9hG4bK2\r\n"
    "From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x@y\r\n"
)


@pytest.mark.parametrize("method", ["SUBSCRIBE", "SIP", "S", "INVITE"])
def test_requests_whose_method_starts_like_a_status_line(method: str) -> None:
    data = f"{method} sip:a@b SIP/2.0\r\n{HEAD}CSeq: 1 {method}\r\n\r\n".encode()
    msg = parse_message(data)
    assert isinstance(msg, Request)
    assert msg.method == method


def test_response_start_line() -> None:
    msg = parse_message(f"SIP/2.0 180 Ringing\r\n{HEAD}CSeq: 1 INVITE\r\n\r\n".encode())
    assert isinstance(msg, Response)
    assert (msg.status_code, msg.reason) == (180, "Ringing")


def test_header_index_follows_changes() -> None:
    msg = parse_message(f"OPTIONS sip:a@b SIP/2.0\r\n{HEAD}CSeq: 1 OPTIONS\r\n\r\n".encode())
    headers = msg.headers
    assert headers.get("v") == "SIP/2.0/UDP h.example.com;branch=z9hG4bK1"
    assert headers.get("i") == "x@y"
    assert headers.get("Subject") is None
    assert headers.get_all("Via") == [
        "SIP/2.0/UDP h.example.com;branch=z9hG4bK1",
        "SIP/2.0/UDP g.example.com;branch=z9hG4bK2",
    ]
    assert headers.get_all("i") == ["x@y"]
    assert headers.get_all("Subject") == []
    headers.set("Call-ID", "changed@y")
    headers.add("Subject", "hello")
    headers.remove("Via")
    assert headers.get("call-id") == "changed@y"
    assert headers.get("s") == "hello"
    assert headers.get("Via") is None
    assert headers.get_all("Via") == []
    assert headers.get_all("Subject") == ["hello"]
    headers.add("Subject", "again")
    assert headers.get_all("Subject") == ["hello", "again"]
    assert msg.call_id == "changed@y"


def test_sdp_fast_constructors_build_ordinary_objects() -> None:
    sdp = parse_sdp(
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        b"a=rtpmap:101 telephone-event/8000/1\r\na=sendrecv\r\n"
    )
    media = sdp.media[0]
    expected = (
        Attribute("rtpmap", "0 PCMU/8000"),
        Attribute("rtpmap", "101 telephone-event/8000/1"),
        Attribute("sendrecv"),
    )
    assert media.attributes == expected
    assert [hash(a) for a in media.attributes] == [hash(a) for a in expected]
    assert repr(media.attributes) == repr(expected)
    assert sdp.connection == Connection("192.0.2.1")
    assert hash(sdp.connection) == hash(Connection("192.0.2.1"))
    rtpmaps = media.rtpmaps()
    assert rtpmaps == {0: RtpMap(0, "PCMU", 8000), 101: RtpMap(101, "telephone-event", 8000)}
    assert repr(rtpmaps[0]) == repr(RtpMap(0, "PCMU", 8000))


def test_sdp_fast_builders_follow_the_dataclass_fields() -> None:
    from sippa.sdp import model

    assert tuple(f.name for f in fields(model.MediaDescription)) == model._MEDIA_FIELDS
    assert tuple(f.name for f in fields(model.SessionDescription)) == model._SESSION_FIELDS
    sdp = parse_sdp(b"v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"
                    b"c=IN IP4 192.0.2.1\r\n")
    built = model.SessionDescription(
        model.Origin("-", 1, 2, "192.0.2.1"), "x",
        media=(model.MediaDescription("audio", 0, "RTP/AVP", ("0",),
                                      connections=(Connection("192.0.2.1"),)),),
    )
    assert sdp == built
    assert hash(sdp) == hash(built)
    assert repr(sdp) == repr(built)


def test_parsed_rtpmaps_match_the_attributes() -> None:
    import dataclasses

    sdp = parse_sdp(
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"a=rtpmap:9 G722/8000\r\n"  # session level: checked, not a media rtpmap
        b"m=audio 4000 RTP/AVP 0 96\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
        b"a=rtpmap:96 other/8000\r\n"
        b"m=video 0 RTP/AVP 31\r\n"
    )
    audio, video = sdp.media
    rebuilt = dataclasses.replace(audio)  # no parser cache: computed from the attributes
    assert rebuilt._rtpmaps is None
    assert audio.rtpmaps() == rebuilt.rtpmaps() == {
        96: RtpMap(96, "opus", 48000, 2),
        0: RtpMap(0, "PCMU", 8000),
    }
    assert list(audio.rtpmaps()) == list(rebuilt.rtpmaps()) == [96, 0]
    audio.rtpmaps().clear()  # a copy: the parsed section is unchanged
    assert len(audio.rtpmaps()) == 2
    assert video.rtpmaps() == {}
    assert audio == rebuilt
    assert hash(audio) == hash(rebuilt)
    with pytest.raises(RemoteProtocolError):
        parse_sdp(b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
                  b"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/0\r\n")


URIS = [
    "sip:alice@pc33.atlanta.example.com:5060;transport=udp",
    "sip:proxy.biloxi.example.com;lr",
    "sips:bob@192.0.2.4:5061;maddr=239.255.255.1;ttl=15;lr",
    "sip:host.example.com.",
    "sip:a;b=c@host",  # ';' in the user: general path
    "sip:user:pass@host:99999",  # password (and a port out of range): general path
    "sip:%61lice@host;x=%20",  # escapes: general path
    "sip:[2001:db8::1]:5060",  # IPv6 reference: general path
    "sip:a@host?subject=x",  # headers: general path
    "sip:a@host;flag;x=y;x=z",
]


@pytest.mark.parametrize("text", URIS)
def test_uri_fast_path_matches_general_path(text: str) -> None:
    # an upper-case scheme keeps the fast regex from matching; the scheme is lower-cased
    upper = "SIP" + text[3:]
    try:
        expected = Uri.parse(upper)
    except RemoteProtocolError:
        with pytest.raises(RemoteProtocolError):
            Uri.parse(text)
        return
    assert Uri.parse(text) == expected
    assert str(Uri.parse(text)) == str(expected)


@settings(max_examples=150, deadline=None)
@given(st.from_regex(_SIP_URI_FAST_RE, fullmatch=True))
def test_uri_fast_path_agrees_on_generated_uris(text: str) -> None:
    # everything the fast regex accepts, the RFC 3261 grammar accepts with the same parts
    assert SIP_URI_RE.fullmatch(text) is not None
    try:
        expected = Uri.parse("SIP" + text[3:])
    except RemoteProtocolError:
        with pytest.raises(RemoteProtocolError):
            Uri.parse(text)
        return
    assert Uri.parse(text) == expected
