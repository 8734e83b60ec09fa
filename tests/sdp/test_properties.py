"""Property tests: the SDP and crypto parsers and the negotiator either succeed or raise
RemoteProtocolError, for arbitrary input and for mutations of valid SDP; round trips are stable."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sippa.errors import RemoteProtocolError
from sippa.sdp import MediaCapabilities, Negotiator, SrtpPolicy, parse_crypto, parse_sdp

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
