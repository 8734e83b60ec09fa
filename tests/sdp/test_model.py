"""SDP model: parse, serialize, typed access, limits (RFC 8866)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sippa.errors import RemoteProtocolError
from sippa.sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtcpAttribute,
    RtpMap,
    SessionDescription,
    parse_sdp,
    serialize_sdp,
)
from sippa.sdp.model import MAX_LINE_LENGTH, MAX_MEDIA, MAX_SDP_SIZE

BASIC = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844527 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"a=sendonly\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=ptime:30\r\n"
    b"a=maxptime:40\r\n"
    b"a=rtcp:53020 IN IP4 192.0.2.11\r\n"
    b"a=X-vendor-thing:keep me  verbatim\r\n"
    b"m=video 0 RTP/AVP 31\r\n"
    b"c=IN IP6 2001:db8::1\r\n"
    b"a=recvonly\r\n"
)


def _sdp_files(vectors: Path) -> list[Path]:
    return sorted((vectors / "sdes").rglob("*.sdp"))


def test_parse_basic_fields() -> None:
    sdp = parse_sdp(BASIC)
    assert sdp.origin == Origin("alice", 2890844526, 2890844527, "192.0.2.10", "IN", "IP4")
    assert sdp.session_name == "-"
    assert sdp.connection == Connection("192.0.2.10")
    assert len(sdp.media) == 2
    audio, video = sdp.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == (
        "audio", 49170, "RTP/AVP", ("0", "8", "101"))
    assert audio.rtpmaps() == {
        0: RtpMap(0, "PCMU", 8000), 101: RtpMap(101, "telephone-event", 8000)}
    assert audio.fmtps() == {"101": "0-15"}
    assert audio.ptime == 30.0
    assert audio.maxptime == 40.0
    assert audio.rtcp == RtcpAttribute(53020, "192.0.2.11", "IN", "IP4")
    assert not audio.rtcp_mux
    assert audio.attribute_values("X-vendor-thing") == ["keep me  verbatim"]
    # RFC 8866 §6.7: session-level default, overridden by media level.
    assert sdp.direction(audio) is Direction.SENDONLY
    assert sdp.direction(video) is Direction.RECVONLY
    assert sdp.connection_for(audio) == Connection("192.0.2.10")
    assert sdp.connection_for(video) == Connection("2001:db8::1", "IN", "IP6")
    assert video.port == 0


def test_serialize_is_byte_exact_for_canonical_input() -> None:
    assert bytes(parse_sdp(BASIC)) == BASIC


def test_lf_only_input_gives_crlf_output() -> None:
    lf = BASIC.replace(b"\r\n", b"\n")
    sdp = parse_sdp(lf)
    assert sdp == parse_sdp(BASIC)
    out = serialize_sdp(sdp)
    assert out == BASIC
    assert b"\n" not in out.replace(b"\r\n", b"")


def test_trailing_blank_lines_and_missing_final_crlf() -> None:
    assert parse_sdp(BASIC + b"\r\n") == parse_sdp(BASIC)
    assert parse_sdp(BASIC[:-2]) == parse_sdp(BASIC)


def test_str_input() -> None:
    assert parse_sdp(BASIC.decode()) == parse_sdp(BASIC)


def test_all_lines_round_trip() -> None:
    full = (
        b"v=0\r\no=- 1 2 IN IP6 2001:db8::2\r\ns=Talk\r\ni=About things\r\nu=http://x.example/\r\n"
        b"e=a@example.com\r\np=+1 555 0100\r\nc=IN IP4 224.2.1.1/127/3\r\nb=CT:128\r\n"
        b"t=2873397496 2873404696\r\nr=604800 3600 0 90000\r\nt=0 0\r\nz=2882844526 -1h\r\n"
        b"k=prompt\r\na=recvonly\r\nm=audio 49170/2 RTP/AVP 0\r\ni=voice\r\n"
        b"c=IN IP4 192.0.2.1\r\nb=AS:64\r\nk=clear:abc\r\na=rtcp-mux\r\n"
    )
    sdp = parse_sdp(full)
    assert sdp.information == "About things"
    assert sdp.uri == "http://x.example/"
    assert sdp.emails == ("a@example.com",)
    assert sdp.phones == ("+1 555 0100",)
    assert sdp.connection is not None
    assert sdp.connection.host == "224.2.1.1"
    assert sdp.bandwidths[0].type == "CT" and sdp.bandwidths[0].value == 128
    assert sdp.timings[0].repeats == ("604800 3600 0 90000",)
    assert len(sdp.timings) == 2
    assert sdp.zone == "2882844526 -1h"
    assert sdp.key == "prompt"
    md = sdp.media[0]
    assert (md.port, md.port_count, md.title, md.key) == (49170, 2, "voice", "clear:abc")
    assert md.bandwidths[0].value == 64
    assert md.rtcp_mux
    assert bytes(sdp) == full


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty", b""),
        ("no version", b"o=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n"),
        ("version 1", b"v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n"),
        ("origin second", b"v=0\r\ns=-\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=0 0\r\n"),
        ("bad origin", b"v=0\r\no=- x 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n"),
        ("no timing", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\n"),
        ("no c", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n"),
        ("bad ip", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.999\r\nt=0 0\r\n"),
        ("bad ip6", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP6 ::g\r\nt=0 0\r\n"),
        ("addrtype", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IPX 1.2.3.4\r\nt=0 0\r\n"),
        ("no equals", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt 0 0\r\n"),
        ("unknown type", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\ny=1\r\n"),
        ("order", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nc=IN IP4 1.2.3.4\r\n"),
        ("blank inside", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n\r\nt=0 0\r\n"),
        ("port", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
                 b"m=audio 70000 RTP/AVP 0\r\n"),
        ("no fmt", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
                   b"m=audio 5000 RTP/AVP\r\n"),
        ("rtpmap", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
                   b"m=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n"),
        ("rtpmap pt", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
                      b"m=audio 5000 RTP/AVP 0\r\na=rtpmap:200 X/8000\r\n"),
        ("ptime", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
                  b"m=audio 5000 RTP/AVP 0\r\na=ptime:abc\r\n"),
        ("rtcp", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
                 b"m=audio 5000 RTP/AVP 0\r\na=rtcp:99999\r\n"),
        ("direction value", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\na=sendonly:x\r\n"),
        ("attr name", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\na=:x\r\n"),
        ("a before c in m", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n"
                            b"m=audio 5000 RTP/AVP 0\r\na=sendrecv\r\nc=IN IP4 1.2.3.4\r\n"),
        ("bare CR", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\na=x\ry\r\n"),
        ("not utf8", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=\xff\r\nt=0 0\r\n"),
        ("two c", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\n"
                  b"c=IN IP4 1.2.3.4\r\nt=0 0\r\n"),
        ("r first", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nr=1 2 3\r\n"),
    ],
)
def test_malformed_is_400(name: str, data: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_sdp(data)
    assert info.value.status_code == 400, name


def test_size_limits() -> None:
    head = b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
    with pytest.raises(RemoteProtocolError) as info:
        parse_sdp(head + b"a=x:" + b"y" * MAX_SDP_SIZE + b"\r\n")
    assert info.value.status_code == 413
    with pytest.raises(RemoteProtocolError, match="longer"):
        parse_sdp(head + b"a=x:" + b"y" * MAX_LINE_LENGTH + b"\r\n")
    many = head + b"m=audio 0 RTP/AVP 0\r\n" * (MAX_MEDIA + 1)
    with pytest.raises(RemoteProtocolError, match="media sections"):
        parse_sdp(many)
    assert len(parse_sdp(head + b"m=audio 0 RTP/AVP 0\r\n" * MAX_MEDIA).media) == MAX_MEDIA
    with pytest.raises(RemoteProtocolError, match="attributes"):
        parse_sdp(head + b"a=x\r\n" * 300)


def test_empty_session_name_tolerated() -> None:
    # RFC 3264's own examples send "s=" with nothing after it.
    sdp = parse_sdp(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n")
    assert sdp.session_name == ""


def test_typed_values() -> None:
    assert RtpMap.parse("96 opus/48000/2") == RtpMap(96, "opus", 48000, 2)
    assert str(RtpMap(96, "opus", 48000, 2)) == "96 opus/48000/2"
    assert str(RtpMap(0, "PCMU", 8000)) == "0 PCMU/8000"
    assert RtcpAttribute.parse("53020") == RtcpAttribute(53020)
    assert str(RtcpAttribute(5, "::1", "IN", "IP6")) == "5 IN IP6 ::1"
    assert Connection("0.0.0.0").is_hold
    assert not Connection("0.0.0.1").is_hold
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.INACTIVE.reversed() is Direction.INACTIVE
    assert Direction.of(sends=True, receives=False) is Direction.SENDONLY
    assert str(Attribute("rtcp-mux")) == "rtcp-mux"
    assert str(Attribute("x", "")) == "x:"
    md = MediaDescription("audio", 1, "RTP/SAVPF", ("0",))
    assert md.is_secure and md.is_rtp


def test_build_and_serialize() -> None:
    sdp = SessionDescription(
        origin=Origin("-", 7, 8, "192.0.2.1"),
        connection=Connection("192.0.2.1"),
        media=(MediaDescription("audio", 4000, "RTP/AVP", ("0",),
                                attributes=(Attribute("rtpmap", "0 PCMU/8000"),)),),
    )
    data = bytes(sdp)
    assert data == (b"v=0\r\no=- 7 8 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
                    b"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    assert SessionDescription.parse(data) == sdp


def test_vector_files_round_trip(vectors: Path) -> None:
    files = _sdp_files(vectors)
    assert len(files) >= 6
    for path in files:
        data = path.read_bytes()
        sdp = parse_sdp(data)
        again = parse_sdp(bytes(sdp))
        assert again == sdp, path.name
        # The captures are canonical CRLF SDP: byte-exact round trip (LF-only if stored so).
        assert bytes(sdp) == data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), path.name


def test_realworld_index_matches_parsed_crypto(vectors: Path) -> None:
    index = json.loads((vectors / "sdes" / "realworld" / "index.json").read_text())
    for entry in index["files"]:
        sdp = parse_sdp((vectors / "sdes" / "realworld" / entry["file"]).read_bytes())
        lines = [v for md in sdp.media for v in md.attribute_values("crypto")]
        assert [(int(v.split()[0]), v.split()[1]) for v in lines] == [
            (c["tag"], c["suite"]) for c in entry["crypto_lines"]], entry["file"]


def test_truncated_captures_parse_or_raise(vectors: Path) -> None:
    """Every prefix of every capture either parses or raises RemoteProtocolError."""
    for path in _sdp_files(vectors):
        data = path.read_bytes()
        parsed = refused = 0
        for n in range(len(data)):
            try:
                parse_sdp(data[:n])
                parsed += 1
            except RemoteProtocolError:
                refused += 1
        # Cuts at line ends still give valid SDP; cuts inside the first lines cannot.
        assert parsed > 0 and refused > 0, path.name


def test_realworld_details(vectors: Path) -> None:
    rw = vectors / "sdes" / "realworld"
    bw = parse_sdp((rw / "broadworks_offer.sdp").read_bytes())
    assert [m.media for m in bw.media] == ["audio", "video"]
    assert bw.media[1].attribute_values("rtcp-fb") == ["* nack", "* nack pli"]
    assert [a.name for a in bw.media[1].attributes].count("X-SBC-Session") == 2
    fs = parse_sdp((rw / "freeswitch_offer_partial.sdp").read_bytes())
    assert fs.media[0].rtcp_mux
    assert fs.media[0].rtcp == RtcpAttribute(32102, "1.2.3.4")
    assert fs.media[0].rtpmaps()[102] == RtpMap(102, "opus", 48000, 2)
    assert fs.media[0].fmtps()["102"].startswith("useinbandfec=1; maxaveragebitrate=18000")


def test_trailing_whitespace_tolerated() -> None:
    spaced = BASIC.replace(b"\r\n", b" \r\n").replace(b"a=ptime:30 ", b"a=ptime:30\t ")
    assert parse_sdp(spaced) == parse_sdp(BASIC)
    assert parse_sdp(BASIC.rstrip(b"\r\n") + b"  ") == parse_sdp(BASIC)
    # Leading whitespace is still an error: " v=0" is not a line of type "v".
    with pytest.raises(RemoteProtocolError):
        parse_sdp(b" " + BASIC)


def test_blank_session_name_kept() -> None:
    data = b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns= \r\nc=IN IP4 1.2.3.4 \r\nt=0 0\r\n"
    sdp = parse_sdp(data)
    assert sdp.session_name == " "
    assert sdp.connection == Connection("1.2.3.4")
    assert bytes(sdp) == data.replace(b"1.2.3.4 \r\n", b"1.2.3.4\r\n")
