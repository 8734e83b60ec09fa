"""Property tests: the SDP and crypto parsers and the negotiator either succeed or raise
RemoteProtocolError, for arbitrary input and for mutations of valid SDP; round trips are stable."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sippa.errors import RemoteProtocolError
from sippa.sdp import (
    CRYPTO_SUITES,
    G722,
    OPUS,
    PCMA,
    PCMU,
    Attribute,
    Bandwidth,
    Connection,
    MediaCapabilities,
    MediaDescription,
    Negotiator,
    Origin,
    SessionDescription,
    SrtpPolicy,
    Timing,
    parse_crypto,
    parse_sdp,
)

VECTORS = Path(__file__).parent.parent / "vectors" / "sdes"
SAMPLES = [p.read_bytes() for p in sorted(VECTORS.rglob("*.sdp"))]
CRYPTO_LINES = [
    line.split(b":", 1)[1].decode()
    for sample in SAMPLES
    for line in sample.splitlines()
    if line.startswith(b"a=crypto:")
]
# SIPPA_SDP_EXAMPLES=5000 for a longer local run.
SETTINGS = settings(max_examples=int(os.environ.get("SIPPA_SDP_EXAMPLES", "300")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Bytes that matter to the grammar, to make mutations hit interesting paths.
INTERESTING = [b"\r\n", b"\n", b"\r", b" ", b"=", b":", b"/", b"|", b";", b"^", b"0", b"9",
               b"\x00", b"\xff", b"a=", b"m=audio 0 RTP/AVP 0", b"c=IN IP4 0.0.0.0",
               b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:", b"a=rtpmap:", b"2^", b"=="]


@st.composite
def mutated_sdp(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut", "dup_line", "drop_line"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(INTERESTING) | st.binary(max_size=8))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "cut":
            del data[pos:]
        else:
            lines = bytes(data).split(b"\r\n")
            i = draw(st.integers(0, max(0, len(lines) - 1)))
            if op == "dup_line":
                lines.insert(i, lines[i])
            else:
                del lines[i]
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


def _parse_or_reject(data: bytes | str) -> None:
    try:
        sdp = parse_sdp(data)
    except RemoteProtocolError as exc:
        assert exc.status_code in (400, 413)
        return
    # Round trip: what we write we read back identically, and it is stable.
    out = bytes(sdp)
    again = parse_sdp(out)
    assert again == sdp
    assert bytes(again) == out


@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes(data: bytes) -> None:
    _parse_or_reject(data)


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text(data: str) -> None:
    _parse_or_reject(data)
    _parse_or_reject("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n" + data)


@SETTINGS
@given(mutated_sdp())
def test_mutated_sdp(data: bytes) -> None:
    _parse_or_reject(data)


@SETTINGS
@given(mutated_sdp(), st.sampled_from(list(SrtpPolicy)))
def test_negotiator_on_mutated_offers(data: bytes, policy: SrtpPolicy) -> None:
    try:
        offer = parse_sdp(data)
    except RemoteProtocolError:
        return
    neg = Negotiator(MediaCapabilities("192.0.2.1", 4000, srtp=policy), session_id=1,
                     session_version=1, random_bytes=bytes)
    try:
        answer, params = neg.receive_offer(offer)
    except RemoteProtocolError as exc:
        assert exc.status_code in (400, 488)
        return
    assert len(parse_sdp(bytes(answer)).media) == len(offer.media)
    assert params.remote_port > 0
    # The same mutated SDP as an answer to our offer: accepted or refused, nothing else.
    offerer = Negotiator(MediaCapabilities("192.0.2.1", 4000, srtp=policy), session_id=1,
                         session_version=1, random_bytes=bytes)
    offerer.create_offer()
    try:
        offerer.receive_answer(offer)
    except RemoteProtocolError as exc:
        assert exc.status_code in (400, 488)


@st.composite
def mutated_crypto(draw: st.DrawFn) -> str:
    line = list(draw(st.sampled_from(CRYPTO_LINES)))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, max(0, len(line) - 1)))
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "flip" and line:
            line[pos] = draw(st.sampled_from(list(" |:;^=+/0129AZaz_-\t")) | st.characters())
        elif op == "insert":
            line[pos:pos] = list(draw(st.sampled_from(["|2^20", "|1:4", ";inline:", " KDR=1",
                                                       " WSH=64", " X", "=", "|"])))
        else:
            del line[pos:pos + draw(st.integers(1, 8))]
    return "".join(line)


@SETTINGS
@given(st.one_of(st.text(max_size=200), mutated_crypto()))
def test_crypto_parser(value: str) -> None:
    try:
        attr = parse_crypto(value)
    except RemoteProtocolError as exc:
        assert exc.status_code == 400
        return
    again = parse_crypto(str(attr))
    assert again.tag == attr.tag and again.suite == attr.suite
    assert [k.key_salt for k in again.key_params] == [k.key_salt for k in attr.key_params]
    assert parse_crypto(str(again)) == again


# --- generated descriptions and negotiator pairs ----------------------------------------------


TOKEN = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,11}", fullmatch=True)
TEXT = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ,.:;/=@_\-]{0,20}[A-Za-z0-9]", fullmatch=True)
IPV4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
CONNECTION = st.one_of(IPV4.map(Connection),
                       st.just(Connection("2001:db8::7", "IN", "IP6")),
                       st.just(Connection("host.example.com")))
ATTRIBUTE = st.one_of(
    st.builds(Attribute, TOKEN, st.none() | TEXT),
    st.sampled_from([Attribute("sendonly"), Attribute("rtcp-mux"), Attribute("ptime", "30"),
                     Attribute("rtpmap", "96 opus/48000/2"), Attribute("fmtp", "101 0-16"),
                     Attribute("rtcp", "9001 IN IP4 192.0.2.9")]),
)
MEDIA = st.builds(
    MediaDescription,
    st.sampled_from(["audio", "video", "application"]),
    st.integers(0, 65535),
    st.sampled_from(["RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF", "UDP/TLS/RTP/SAVPF"]),
    st.lists(st.integers(0, 127).map(str), min_size=1, max_size=6).map(tuple),
    port_count=st.none() | st.integers(1, 4),
    title=st.none() | TEXT,
    connections=st.lists(CONNECTION, max_size=2).map(tuple),
    bandwidths=st.lists(st.builds(Bandwidth, st.sampled_from(["AS", "CT", "TIAS"]),
                                  st.integers(0, 10**6)), max_size=2).map(tuple),
    attributes=st.lists(ATTRIBUTE, max_size=8).map(tuple),
)
SESSION = st.builds(
    SessionDescription,
    origin=st.builds(Origin, TOKEN, st.integers(0, 2**63), st.integers(0, 2**63), IPV4),
    session_name=st.sampled_from(["-", " ", "Talk", ""]) | TEXT,
    information=st.none() | TEXT,
    emails=st.lists(TEXT, max_size=2).map(tuple),
    connection=CONNECTION,
    timings=st.lists(st.builds(Timing, st.integers(0, 2**32), st.integers(0, 2**32)),
                     min_size=1, max_size=2).map(tuple),
    attributes=st.lists(ATTRIBUTE, max_size=4).map(tuple),
    media=st.lists(MEDIA, max_size=4).map(tuple),
)


@settings(SETTINGS, max_examples=max(1, SETTINGS.max_examples // 3))  # big structures: slow
@given(SESSION)
def test_generated_descriptions_round_trip(sdp: SessionDescription) -> None:
    data = bytes(sdp)
    assert parse_sdp(data) == sdp
    assert parse_sdp(data.replace(b"\r\n", b"\n")) == sdp


CAPS = st.builds(
    MediaCapabilities,
    st.just("192.0.2.1"),
    st.integers(1024, 65534),
    codecs=st.lists(st.sampled_from([PCMU, PCMA, G722, OPUS]), min_size=1, max_size=4,
                    unique=True).map(tuple),
    ptime=st.sampled_from([10, 20, 30]),
    telephone_event=st.booleans(),
    srtp=st.sampled_from(list(SrtpPolicy)),
    suites=st.lists(st.sampled_from(sorted(CRYPTO_SUITES)), min_size=1, max_size=6,
                    unique=True).map(tuple),
    rtcp_mux=st.booleans(),
)


@SETTINGS
@given(CAPS, CAPS, st.booleans())
def test_two_negotiators_agree(a_caps: MediaCapabilities, b_caps: MediaCapabilities,
                               hold: bool) -> None:
    """Any two phones either agree on one consistent set of media parameters or refuse
    with 488; they never disagree about codec, keys or suite."""
    counter = iter(range(10**6))

    def random_bytes(n: int) -> bytes:
        return bytes(next(counter) % 256 for _ in range(n))

    a = Negotiator(a_caps, session_id=1, session_version=1, random_bytes=random_bytes)
    b = Negotiator(b_caps, session_id=2, session_version=1, random_bytes=random_bytes)
    offer = parse_sdp(bytes(a.hold_offer() if hold else a.create_offer()))
    try:
        answer, pb = b.receive_offer(offer)
    except RemoteProtocolError as exc:
        assert exc.status_code == 488
        return
    pa = a.receive_answer(parse_sdp(bytes(answer)))
    assert (pa.codec, pa.clock_rate, pa.channels) == (pb.codec, pb.clock_rate, pb.channels)
    assert pa.payload_type == pb.payload_type
    assert pa.srtp_suite == pb.srtp_suite
    assert pa.srtp_local_key == pb.srtp_remote_key and pa.srtp_remote_key == pb.srtp_local_key
    if pa.srtp_suite is not None:
        suite = CRYPTO_SUITES[pa.srtp_suite]
        assert pa.srtp_local_key is not None and len(pa.srtp_local_key) == suite.key_salt_length
        assert pa.srtp_suite in a_caps.suites and pa.srtp_suite in b_caps.suites
    else:
        assert SrtpPolicy.MANDATORY not in (a_caps.srtp, b_caps.srtp)
        assert pa.srtp_reason and pb.srtp_reason
    assert pa.rtcp_mux == pb.rtcp_mux == (a_caps.rtcp_mux and b_caps.rtcp_mux)
    assert pa.direction.reversed() is pb.direction
    assert pa.direction.sends and not pa.direction.receives if hold else pa.direction.sends
    assert (pa.remote_port, pb.remote_port) == (b_caps.port, a_caps.port)
    assert (pa.telephone_event_pt is None) == (pb.telephone_event_pt is None)
