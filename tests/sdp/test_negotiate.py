"""Offer/answer (RFC 3264) with SDES-SRTP (RFC 4568): two negotiators back to back, RFC 3264 §10
examples, real captured offers and answers, hold/resume, rejection and versioning."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.sdp import (
    CRYPTO_SUITES,
    G722,
    OPUS,
    PCMA,
    PCMU,
    Direction,
    MediaCapabilities,
    MediaParameters,
    Negotiator,
    NegotiatorState,
    SessionDescription,
    SrtpPolicy,
    parse_crypto,
    parse_sdp,
)


def counter_bytes(start: int = 0) -> Callable[[int], bytes]:
    state = [start]

    def random_bytes(n: int) -> bytes:
        out = bytes((state[0] + i) % 256 for i in range(n))
        state[0] += n
        return out

    return random_bytes


def make(policy: SrtpPolicy = SrtpPolicy.MANDATORY, *, address: str = "192.0.2.1",
         port: int = 4000, seed: int = 0, version: int = 1, **kw: object) -> Negotiator:
    caps = MediaCapabilities(address, port, srtp=policy, **kw)  # type: ignore[arg-type]
    return Negotiator(caps, session_id=1000 + port, session_version=version,
                      random_bytes=counter_bytes(seed))


def wire(sdp: SessionDescription) -> SessionDescription:
    """Every SDP crosses the wire as bytes, as in a real call."""
    return parse_sdp(bytes(sdp))


def exchange(offerer: Negotiator, answerer: Negotiator) -> tuple[MediaParameters,
                                                                  MediaParameters]:
    offer = wire(offerer.create_offer())
    answer, answerer_params = answerer.receive_offer(offer)
    return offerer.receive_answer(wire(answer)), answerer_params


def text(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


HEAD = ["v=0", "o=peer 5 5 IN IP4 198.51.100.7", "s=-", "c=IN IP4 198.51.100.7", "t=0 0"]


# --- offers ---------------------------------------------------------------------------------

def test_offer_per_policy() -> None:
    off = make(SrtpPolicy.OFF).create_offer()
    assert off.media[0].proto == "RTP/AVP"
    assert off.media[0].attribute_values("crypto") == []
    best = make(SrtpPolicy.BEST_EFFORT).create_offer()
    assert best.media[0].proto == "RTP/AVP"
    mand = make(SrtpPolicy.MANDATORY).create_offer()
    assert mand.media[0].proto == "RTP/SAVP"
    for sdp in (best, mand):
        lines = [parse_crypto(v) for v in sdp.media[0].attribute_values("crypto")]
        assert [c.tag for c in lines] == [1, 2, 3, 4, 5, 6]
        assert [c.suite for c in lines][:2] == ["AEAD_AES_256_GCM", "AEAD_AES_128_GCM"]
    md = mand.media[0]
    assert md.formats == ("96", "9", "0", "8", "97", "98")
    assert md.rtpmaps()[96].encoding == "opus" and md.rtpmaps()[96].channels == 2
    assert md.rtpmaps()[97].clock_rate == 8000 and md.rtpmaps()[98].clock_rate == 48000
    assert md.fmtps()["97"] == "0-16"
    assert md.ptime == 20 and md.rtcp_mux
    assert mand.direction(md) is Direction.SENDRECV
    assert mand.origin.session_id == 5000 and mand.origin.session_version == 1
    assert bytes(wire(mand)) == bytes(mand)


def test_offer_without_opus_has_one_telephone_event() -> None:
    sdp = make(codecs=(PCMU, PCMA), telephone_event=True).create_offer()
    assert sdp.media[0].formats == ("0", "8", "96")
    sdp = make(codecs=(PCMU,), telephone_event=False, rtcp_mux=False).create_offer()
    assert sdp.media[0].formats == ("0",)
    assert not sdp.media[0].rtcp_mux


# --- policy matrix --------------------------------------------------------------------------

SRTP, PLAIN, REFUSE = "srtp", "plain", "488"
MATRIX = {
    (SrtpPolicy.OFF, SrtpPolicy.OFF): PLAIN,
    (SrtpPolicy.OFF, SrtpPolicy.BEST_EFFORT): PLAIN,
    (SrtpPolicy.OFF, SrtpPolicy.MANDATORY): REFUSE,
    (SrtpPolicy.BEST_EFFORT, SrtpPolicy.OFF): PLAIN,
    (SrtpPolicy.BEST_EFFORT, SrtpPolicy.BEST_EFFORT): SRTP,
    (SrtpPolicy.BEST_EFFORT, SrtpPolicy.MANDATORY): SRTP,
    (SrtpPolicy.MANDATORY, SrtpPolicy.OFF): REFUSE,
    (SrtpPolicy.MANDATORY, SrtpPolicy.BEST_EFFORT): SRTP,
    (SrtpPolicy.MANDATORY, SrtpPolicy.MANDATORY): SRTP,
}


@pytest.mark.parametrize(("offerer_policy", "answerer_policy"), list(MATRIX))
def test_policy_matrix(offerer_policy: SrtpPolicy, answerer_policy: SrtpPolicy) -> None:
    a = make(offerer_policy, seed=0)
    b = make(answerer_policy, address="192.0.2.2", port=5000, seed=100, codecs=(PCMU, G722))
    expected = MATRIX[offerer_policy, answerer_policy]
    if expected == REFUSE:
        with pytest.raises(RemoteProtocolError) as info:
            b.receive_offer(wire(a.create_offer()))
        assert info.value.status_code == 488
        assert "no acceptable audio stream" in info.value.reason
        assert b.state is NegotiatorState.IDLE
        return
    pa, pb = exchange(a, b)
    assert (pa.codec, pa.payload_type) == (pb.codec, pb.payload_type) == ("G722", 9)
    assert pa.remote_address == "192.0.2.2" and pa.remote_port == 5000
    assert pb.remote_address == "192.0.2.1" and pb.remote_port == 4000
    assert pa.direction is pb.direction is Direction.SENDRECV
    assert pa.rtcp_mux and pb.rtcp_mux and pa.remote_rtcp_port is None
    assert a.state is b.state is NegotiatorState.DONE
    if expected == SRTP:
        assert pa.secure and pb.secure
        assert pa.srtp_suite == pb.srtp_suite == "AEAD_AES_256_GCM"
        assert pa.srtp_local_key == pb.srtp_remote_key
        assert pa.srtp_remote_key == pb.srtp_local_key
        assert pa.srtp_local_key != pa.srtp_remote_key
        assert pa.srtp_local_key is not None and len(pa.srtp_local_key) == 44
        assert pa.srtp_reason is None and pb.srtp_reason is None
    else:
        assert not pa.secure and not pb.secure
        assert pa.srtp_local_key is None and pb.srtp_remote_key is None
        assert pa.srtp_reason and pb.srtp_reason


def test_keys_never_in_repr() -> None:
    pa, _ = exchange(make(), make(port=5000, seed=50))
    assert pa.srtp_local_key is not None
    assert pa.srtp_local_key.hex() not in repr(pa)
    assert repr(pa.srtp_local_key) not in repr(pa)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pa.codec = "x"  # type: ignore[misc]


# --- SDES choice ----------------------------------------------------------------------------

def test_answerer_chooses_by_own_ranking_not_offer_order() -> None:
    a = make(suites=("AES_CM_128_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"))
    b = make(port=5000, seed=9)
    answer, pb = b.receive_offer(wire(a.create_offer()))
    crypto = [parse_crypto(v) for v in answer.media[0].attribute_values("crypto")]
    assert [(c.tag, c.suite) for c in crypto] == [(3, "AEAD_AES_128_GCM")]
    assert pb.srtp_suite == "AEAD_AES_128_GCM"
    # Restricted to the answerer's enabled suites.
    c = make(port=6000, seed=7, suites=("AES_CM_128_HMAC_SHA1_80",))
    _, pc = c.receive_offer(wire(make().create_offer()))
    assert pc.srtp_suite == "AES_CM_128_HMAC_SHA1_80"


def test_offerer_accepts_any_offered_suite() -> None:
    a = make()
    b = make(port=5000, seed=3, suites=("AES_CM_128_HMAC_SHA1_32",))
    pa, pb = exchange(a, b)
    assert pa.srtp_suite == pb.srtp_suite == "AES_CM_128_HMAC_SHA1_32"
    assert pa.srtp_local_key is not None and len(pa.srtp_local_key) == 30


def _answer_with_crypto(crypto: list[str], proto: str = "RTP/SAVP") -> SessionDescription:
    lines = [*HEAD, f"m=audio 7000 {proto} 0", "a=rtpmap:0 PCMU/8000",
             *[f"a=crypto:{c}" for c in crypto]]
    return parse_sdp(text(lines))


KEY30 = base64.b64encode(bytes(range(30))).decode()
KEY44 = base64.b64encode(bytes(range(44))).decode()


@pytest.mark.parametrize(
    ("crypto", "proto", "fragment"),
    [
        # baresip-style: an answer naming a suite we offered under another tag.
        ([f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}"], "RTP/SAVP", "matches none"),
        ([f"9 AEAD_AES_256_GCM inline:{KEY44}"], "RTP/SAVP", "matches none"),
        ([f"1 AEAD_AES_256_GCM inline:{KEY30}"], "RTP/SAVP", "unusable"),
        ([f"1 AEAD_AES_256_GCM inline:{KEY44}", f"2 AEAD_AES_128_GCM inline:{KEY30[:38]}=="],
         "RTP/SAVP", "exactly one"),
        ([f"1 AEAD_AES_256_GCM inline:{KEY44} UNENCRYPTED_SRTP"], "RTP/SAVP", "unsupported"),
        ([], "RTP/SAVP", "no a=crypto"),
        ([f"1 AEAD_AES_256_GCM inline:{KEY44}"], "RTP/AVP", "RTP/AVP"),
    ],
)
def test_bad_crypto_answers_are_refused(crypto: list[str], proto: str, fragment: str) -> None:
    a = make()
    a.create_offer()
    with pytest.raises(RemoteProtocolError) as info:
        a.receive_answer(_answer_with_crypto(crypto, proto))
    assert info.value.status_code == 488
    assert fragment in info.value.reason
    assert a.state is NegotiatorState.LOCAL_OFFER
    a.cancel_offer()
    assert a.state is NegotiatorState.IDLE and a.active is None


def test_good_hand_written_answer() -> None:
    a = make()
    a.create_offer()
    params = a.receive_answer(_answer_with_crypto([f"1 AEAD_AES_256_GCM inline:{KEY44}"]))
    assert params.srtp_remote_key == bytes(range(44))
    assert params.rtcp_mux is False and params.remote_rtcp_port == 7001
    assert params.remote_rtcp_address == "198.51.100.7"


def test_crypto_in_answer_to_plain_offer_is_refused() -> None:
    a = make(SrtpPolicy.OFF)
    a.create_offer()
    with pytest.raises(RemoteProtocolError, match="matches none"):
        a.receive_answer(_answer_with_crypto([f"1 AEAD_AES_256_GCM inline:{KEY44}"],
                                             "RTP/AVP"))


def test_best_effort_plain_answer() -> None:
    a = make(SrtpPolicy.BEST_EFFORT)
    a.create_offer()
    params = a.receive_answer(_answer_with_crypto([], "RTP/AVP"))
    assert not params.secure
    assert params.srtp_reason is not None and "without a=crypto" in params.srtp_reason


# --- real-world captures --------------------------------------------------------------------

REALWORLD_CHOICE = {
    "cisco_spa_offer.sdp": (2, "AES_CM_128_HMAC_SHA1_80", "G722"),
    "zoiper_offer_partial.sdp": (5, "AES_256_CM_HMAC_SHA1_80", "opus"),
    "broadworks_offer.sdp": (1, "AES_CM_128_HMAC_SHA1_32", "G722"),
    "freeswitch_offer_partial.sdp": (2, "AEAD_AES_256_GCM", "PCMU"),
}


def test_every_realworld_offer_is_covered(vectors: Path) -> None:
    index = json.loads((vectors / "sdes" / "realworld" / "index.json").read_text())
    offers = {f["file"] for f in index["files"] if f["role"].startswith("offer")}
    assert offers == set(REALWORLD_CHOICE)


@pytest.mark.parametrize("name", sorted(REALWORLD_CHOICE))
def test_answer_realworld_offer(vectors: Path, name: str) -> None:
    offer = parse_sdp((vectors / "sdes" / "realworld" / name).read_bytes())
    neg = make(port=5000, seed=11)
    answer, params = neg.receive_offer(offer)
    tag, suite, codec = REALWORLD_CHOICE[name]
    # RFC 3264 §6: one m= line per offered one, rejected ones with port 0.
    assert len(answer.media) == len(offer.media)
    assert [m.port for m in answer.media] == [5000] + [0] * (len(offer.media) - 1)
    assert answer.media[0].proto == offer.media[0].proto
    crypto = [parse_crypto(v) for v in wire(answer).media[0].attribute_values("crypto")]
    assert [(c.tag, c.suite) for c in crypto] == [(tag, suite)]
    theirs = next(parse_crypto(v) for v in offer.media[0].attribute_values("crypto")
                  if parse_crypto(v).tag == tag)
    assert params.srtp_suite == suite
    assert params.srtp_remote_key == theirs.key_salt
    assert params.srtp_local_key == crypto[0].key_salt != theirs.key_salt
    assert len(crypto[0].key_salt) == CRYPTO_SUITES[suite].key_salt_length
    assert params.codec == codec
    # RFC 3264 §6.1: payload type numbers of the offer are kept.
    assert set(answer.media[0].formats) <= set(offer.media[0].formats)
    assert params.remote_port == offer.media[0].port
    # The same offer refused by a phone with SRTP off: SAVP cannot be answered with plain RTP.
    with pytest.raises(RemoteProtocolError) as info:
        make(SrtpPolicy.OFF).receive_offer(offer)
    assert info.value.status_code == 488 and "SRTP is disabled" in info.value.reason


def test_realworld_details(vectors: Path) -> None:
    rw = vectors / "sdes" / "realworld"
    _, fs = make().receive_offer(parse_sdp((rw / "freeswitch_offer_partial.sdp").read_bytes()))
    assert fs.rtcp_mux and fs.remote_rtcp_port is None
    assert fs.telephone_event_pt == 101
    assert [c.name for c in fs.codecs] == ["PCMU", "opus"]
    assert fs.codecs[1].fmtp is not None and "maxaveragebitrate=18000" in fs.codecs[1].fmtp
    _, zo = make().receive_offer(parse_sdp((rw / "zoiper_offer_partial.sdp").read_bytes()))
    assert (zo.payload_type, zo.clock_rate, zo.channels) == (106, 48000, 2)
    assert zo.telephone_event_pt == 98  # telephone-event/48000 for opus (RFC 4733 §2.1)
    _, bw = make().receive_offer(parse_sdp((rw / "broadworks_offer.sdp").read_bytes()))
    assert bw.payload_type == 9  # static payload type without rtpmap (RFC 3551)
    assert not bw.rtcp_mux and bw.remote_rtcp_port == 16489


def test_asterisk_answer_to_our_offer(vectors: Path) -> None:
    # Arrange our suites so tag 5 is AES_256_CM_HMAC_SHA1_80, as in the Zoiper offer Asterisk
    # answered (RFC 4568 §5.1.2: the answer echoes tag and suite).
    neg = make(suites=("AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80",
                       "AES_CM_128_HMAC_SHA1_32", "AES_256_CM_HMAC_SHA1_80"))
    offer = neg.create_offer()
    answer = parse_sdp((vectors / "sdes" / "realworld" / "asterisk_answer_to_zoiper.sdp")
                       .read_bytes())
    params = neg.receive_answer(answer)
    ours = next(parse_crypto(v) for v in offer.media[0].attribute_values("crypto")
                if v.startswith("5 "))
    assert params.srtp_suite == "AES_256_CM_HMAC_SHA1_80"
    assert params.srtp_local_key == ours.key_salt
    assert params.srtp_remote_key is not None and len(params.srtp_remote_key) == 46
    assert (params.codec, params.payload_type, params.ptime) == ("opus", 106, 20)
    assert params.remote_address == "50.196.241.75" and params.remote_rtcp_port == 19119
    assert params.telephone_event_pt is None  # only telephone-event/8000, opus runs at 48000
    # With our default tags, tag 5 is AES_256_CM_HMAC_SHA1_32: the same answer must be refused.
    other = make()
    other.create_offer()
    with pytest.raises(RemoteProtocolError, match="matches none"):
        other.receive_answer(answer)


def test_invalid_realworld_variants(vectors: Path) -> None:
    data = (vectors / "sdes" / "realworld" / "cisco_spa_offer.sdp").read_bytes()
    # Keys cut short: both lines unusable -> 488 listing why.
    short = data.replace(b"inline:nnG/PpJHzE0uSirvQsgkIT5BpMVyvFTfzlpBQpW3",
                         b"inline:nnG/PpJHzE0uSirvQsgkIT5B")
    with pytest.raises(RemoteProtocolError) as info:
        make().receive_offer(parse_sdp(short))
    assert info.value.status_code == 488 and "needs 30 octets" in info.value.reason
    # Broken base64 in one line only: the other is still used.
    one_bad = data.replace(b"1 AES_CM_128_HMAC_SHA1_32 inline:nnG/", b"1 AES_CM_128_HMAC_SHA1_32 "
                           b"inline:n!G/")
    _, params = make().receive_offer(parse_sdp(one_bad))
    assert params.srtp_suite == "AES_CM_128_HMAC_SHA1_80"
    # Best-effort phone, crypto unusable, RTP/AVP offer: plain with the reason.
    plain = short.replace(b"RTP/SAVP", b"RTP/AVP")
    _, params = make(SrtpPolicy.BEST_EFFORT).receive_offer(parse_sdp(plain))
    assert not params.secure and params.srtp_reason and "needs 30 octets" in params.srtp_reason


def test_truncated_realworld_offers_answer_or_refuse(vectors: Path) -> None:
    for path in sorted((vectors / "sdes" / "realworld").glob("*offer*.sdp")):
        data = path.read_bytes()
        outcomes = set()
        for n in range(0, len(data), 7):
            try:
                offer = parse_sdp(data[:n])
                make().receive_offer(offer)
                outcomes.add("answered")
            except RemoteProtocolError as exc:
                outcomes.add(exc.status_code)
        assert outcomes >= {"answered", 400, 488}, path.name


def test_rfc4568_example_offer_refused_with_reason(vectors: Path) -> None:
    offer = parse_sdp((vectors / "sdes" / "rfc4568_example_offer.sdp").read_bytes())
    with pytest.raises(RemoteProtocolError) as info:
        make().receive_offer(offer)
    # Line 1 uses an MKI (this phone keys without one), line 2 a suite we do not implement.
    assert "MKI" in info.value.reason and "F8_128_HMAC_SHA1_80" in info.value.reason


# --- RFC 3264 §10 examples ------------------------------------------------------------------

ALICE_10_1 = text([
    "v=0", "o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com", "s=",
    "c=IN IP4 host.atlanta.example.com", "t=0 0",
    "m=audio 49170 RTP/AVP 0 8 97", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:97 iLBC/8000",
    "m=video 51372 RTP/AVP 31 32", "a=rtpmap:31 H261/90000", "a=rtpmap:32 MPV/90000",
])
# RFC 3264 §10.1, second exchange: the other side stops the video and moves its audio port.
ALICE_10_1_REOFFER = text([
    "v=0", "o=alice 2890844526 2890844527 IN IP4 host.atlanta.example.com", "s=",
    "c=IN IP4 host.atlanta.example.com", "t=0 0",
    "m=audio 49178 RTP/AVP 0", "a=rtpmap:0 PCMU/8000",
    "m=video 0 RTP/AVP 31", "a=rtpmap:31 H261/90000",
])


def test_rfc3264_10_1_basic_exchange() -> None:
    bob = make(SrtpPolicy.OFF, address="192.0.2.20", port=49174, codecs=(PCMU, PCMA))
    answer, params = bob.receive_offer(parse_sdp(ALICE_10_1))
    answer = wire(answer)
    audio, video = answer.media
    assert audio.port == 49174 and video.port == 0 and video.media == "video"
    assert params.codec == "PCMU" and params.remote_address == "host.atlanta.example.com"
    assert params.telephone_event_pt is None  # Alice offered no telephone-event
    assert audio.formats == ("0", "8")
    first_version = answer.origin.session_version
    answer2, params2 = bob.receive_offer(parse_sdp(ALICE_10_1_REOFFER))
    assert params2.remote_port == 49178 and params2.codecs[0].name == "PCMU"
    assert len(answer2.media) == 2 and answer2.media[1].port == 0
    # Our answer changed (only PCMU now): one version up, same session id (RFC 3264 §8).
    assert answer2.origin.session_version == first_version + 1
    assert answer2.origin.session_id == answer.origin.session_id


def test_rfc3264_10_2_one_of_n_codec_selection() -> None:
    # Alice offers several codecs; Bob answers with all it supports (offer's numbers and
    # order); Alice then re-offers just one, and Bob's answer follows.
    offer = text([*HEAD, "m=audio 62986 RTP/AVP 0 4 18 8", "a=rtpmap:0 PCMU/8000",
                  "a=rtpmap:4 G723/8000", "a=rtpmap:18 G729/8000", "a=rtpmap:8 PCMA/8000"])
    bob = make(SrtpPolicy.OFF, codecs=(PCMA, PCMU))
    answer, params = bob.receive_offer(parse_sdp(offer))
    assert answer.media[0].formats == ("0", "8")
    assert params.codec == "PCMU" and [c.name for c in params.codecs] == ["PCMU", "PCMA"]
    reoffer = offer.replace(b"o=peer 5 5", b"o=peer 5 6").replace(b"0 4 18 8", b"8")
    answer2, params2 = bob.receive_offer(parse_sdp(reoffer))
    assert answer2.media[0].formats == ("8",) and params2.codec == "PCMA"


# --- hold / resume / direction --------------------------------------------------------------

def test_hold_and_resume_from_our_side() -> None:
    a, b = make(), make(port=5000, seed=40)
    exchange(a, b)
    v0 = a.session_version
    hold = wire(a.hold_offer())
    assert hold.direction(hold.media[0]) is Direction.SENDONLY
    assert hold.origin.session_version == v0 + 1
    answer, pb = b.receive_offer(hold)
    assert answer.direction(answer.media[0]) is Direction.RECVONLY
    assert pb.direction is Direction.RECVONLY
    pa = a.receive_answer(wire(answer))
    assert pa.direction is Direction.SENDONLY
    resume = wire(a.resume_offer())
    assert resume.direction(resume.media[0]) is Direction.SENDRECV
    assert resume.origin.session_version == v0 + 2
    answer, pb = b.receive_offer(resume)
    pa = a.receive_answer(wire(answer))
    assert pa.direction is pb.direction is Direction.SENDRECV
    assert resume.origin.session_id == hold.origin.session_id


@pytest.mark.parametrize(
    ("offer_lines", "answer_direction"),
    [
        (["a=sendonly"], Direction.RECVONLY),
        (["a=recvonly"], Direction.SENDONLY),
        (["a=inactive"], Direction.INACTIVE),
        (["a=sendrecv"], Direction.SENDRECV),
        ([], Direction.SENDRECV),
    ],
)
def test_answer_direction(offer_lines: list[str], answer_direction: Direction) -> None:
    offer = text([*HEAD, "m=audio 7000 RTP/AVP 0", *offer_lines])
    answer, params = make(SrtpPolicy.OFF).receive_offer(parse_sdp(offer))
    assert answer.direction(answer.media[0]) is answer_direction
    assert params.direction is answer_direction


def test_session_level_direction_and_old_hold() -> None:
    # Session-level a=sendonly applies to the media (RFC 8866 §6.7).
    offer = text([*HEAD[:4], "t=0 0", "a=sendonly", "m=audio 7000 RTP/AVP 0"])
    _, params = make(SrtpPolicy.OFF).receive_offer(parse_sdp(offer))
    assert params.direction is Direction.RECVONLY
    # Media level overrides it.
    offer = text([*HEAD[:4], "t=0 0", "a=sendonly", "m=audio 7000 RTP/AVP 0", "a=sendrecv"])
    _, params = make(SrtpPolicy.OFF).receive_offer(parse_sdp(offer))
    assert params.direction is Direction.SENDRECV
    # RFC 3264 §8.4: c=0.0.0.0 is the old way of saying "do not send to me".
    offer = text(["v=0", "o=old 1 2 IN IP4 198.51.100.9", "s=-", "c=IN IP4 0.0.0.0", "t=0 0",
                  "m=audio 7000 RTP/AVP 0"])
    answer, params = make(SrtpPolicy.OFF).receive_offer(parse_sdp(offer))
    assert params.direction is Direction.RECVONLY and not params.direction.sends
    assert params.remote_address == "0.0.0.0"
    assert answer.connection is not None and answer.connection.address == "192.0.2.1"


def test_we_hold_while_peer_offers() -> None:
    a, b = make(), make(port=5000, seed=40)
    exchange(a, b)
    hold = wire(a.hold_offer())
    a.receive_answer(wire(b.receive_offer(hold)[0]))
    # The peer re-offers sendrecv while we hold: we stay sendonly.
    answer, params = a.receive_offer(wire(b.create_offer()))
    assert params.direction is Direction.SENDONLY
    assert answer.direction(answer.media[0]) is Direction.SENDONLY


def test_old_hold_in_answer_stops_sending() -> None:
    a = make(SrtpPolicy.OFF)
    a.create_offer()
    answer = text(["v=0", "o=old 1 2 IN IP4 198.51.100.9", "s=-", "c=IN IP4 0.0.0.0", "t=0 0",
                   "m=audio 7000 RTP/AVP 0"])
    params = a.receive_answer(parse_sdp(answer))
    assert params.direction is Direction.RECVONLY


# --- rejection, port 0, m= line bookkeeping -------------------------------------------------

def test_rejections() -> None:
    cases = {
        "disabled": [*HEAD, "m=audio 0 RTP/AVP 0"],
        "video only": [*HEAD, "m=video 7000 RTP/AVP 31"],
        "no codec": [*HEAD, "m=audio 7000 RTP/AVP 18", "a=rtpmap:18 G729/8000"],
        "transport": [*HEAD, "m=audio 7000 UDP/TLS/RTP/SAVPF 0"],
        "no media": HEAD,
        "plain for mandatory": [*HEAD, "m=audio 7000 RTP/AVP 0"],
        "savp without crypto": [*HEAD, "m=audio 7000 RTP/SAVP 0"],
    }
    for name, lines in cases.items():
        neg = make()
        with pytest.raises(RemoteProtocolError) as info:
            neg.receive_offer(parse_sdp(text(lines)))
        assert info.value.status_code == 488, name
        assert neg.state is NegotiatorState.IDLE, name


def test_audio_second_and_reoffer_keeps_m_lines() -> None:
    offer = text([*HEAD, "m=video 7002 RTP/AVP 31", "m=audio 7000 RTP/AVP 0",
                  "m=audio 7004 RTP/AVP 0"])
    neg = make(SrtpPolicy.OFF)
    answer, params = neg.receive_offer(parse_sdp(offer))
    assert [m.port for m in answer.media] == [0, 4000, 0]
    assert params.remote_port == 7000
    # RFC 3264 §8: our re-offer keeps all three m= lines; audio stays in its slot.
    reoffer = wire(neg.create_offer())
    assert [(m.media, m.port) for m in reoffer.media] == [("video", 0), ("audio", 4000),
                                                          ("audio", 0)]
    reanswer = text([*HEAD, "m=video 0 RTP/AVP 31", "m=audio 7010 RTP/AVP 0",
                     "m=audio 0 RTP/AVP 0"])
    assert neg.receive_answer(parse_sdp(reanswer)).remote_port == 7010


@pytest.mark.parametrize(
    ("answer_lines", "status", "fragment"),
    [
        ([*HEAD, "m=audio 7000 RTP/AVP 0", "m=video 0 RTP/AVP 31"], 400, "m= lines"),
        ([*HEAD, "m=video 7000 RTP/AVP 0"], 400, "m=video"),
        ([*HEAD, "m=audio 0 RTP/AVP 0"], 488, "rejected"),
        ([*HEAD, "m=audio 7000 RTP/SAVP 0"], 488, "RTP/SAVP"),
        ([*HEAD, "m=audio 7000 RTP/AVP 18"], 488, "codec"),
    ],
)
def test_bad_answers(answer_lines: list[str], status: int, fragment: str) -> None:
    neg = make(SrtpPolicy.OFF)
    neg.create_offer()
    with pytest.raises(RemoteProtocolError) as info:
        neg.receive_answer(parse_sdp(text(answer_lines)))
    assert info.value.status_code == status
    assert fragment in info.value.reason


# --- versioning, glare, state ---------------------------------------------------------------

def test_reoffer_versioning_and_glare() -> None:
    a, b = make(version=7), make(port=5000, seed=40)
    exchange(a, b)
    first = a.local_sdp
    assert first is not None and first.origin.session_version == 7
    # Unchanged re-offer (session refresh): same version (RFC 3264 §8).
    same = a.create_offer()
    assert same.origin.session_version == 7 and same == first
    a.receive_answer(wire(b.receive_offer(wire(same))[0]))
    # Glare: both re-offer at once. The peer's offer gets 491 while ours is pending.
    ours = a.hold_offer()
    assert ours.origin.session_version == 8
    with pytest.raises(RemoteProtocolError) as info:
        a.receive_offer(wire(b.create_offer()))
    assert info.value.status_code == 491
    b.cancel_offer()
    a.cancel_offer()  # our re-INVITE also got 491
    assert a.state is NegotiatorState.DONE
    assert a.active is not None and a.active.direction is Direction.SENDRECV
    # Retry of the same hold offer: the same content keeps version 8, never reused otherwise.
    retry = a.create_offer()
    assert retry.origin.session_version == 8 and retry == ours
    a.receive_answer(wire(b.receive_offer(wire(retry))[0]))
    assert a.create_offer().origin.session_version == 8
    a.cancel_offer()
    assert a.resume_offer().origin.session_version == 9
    assert {s.origin.session_id for s in (first, ours, retry)} == {first.origin.session_id}


def test_illegal_calls() -> None:
    neg = make()
    with pytest.raises(LocalProtocolError, match="receive_answer not allowed in state idle"):
        neg.receive_answer(parse_sdp(text([*HEAD, "m=audio 1 RTP/AVP 0"])))
    with pytest.raises(LocalProtocolError):
        neg.cancel_offer()
    neg.create_offer()
    with pytest.raises(LocalProtocolError, match="create_offer not allowed"):
        neg.create_offer()
    with pytest.raises(LocalProtocolError):
        make(suites=("NOPE",))
    with pytest.raises(LocalProtocolError):
        make(codecs=())
    with pytest.raises(LocalProtocolError):
        make(suites=())


def test_keys_kept_across_reoffers_until_rekey() -> None:
    a = make()
    b = make(port=5000, seed=200)
    pa1, pb1 = exchange(a, b)
    pa2, pb2 = exchange(a, b)
    assert pa1 == pa2 and pb1 == pb2
    a.rekey()
    b.rekey()
    pa3, pb3 = exchange(a, b)
    assert pa3.srtp_local_key != pa1.srtp_local_key
    assert pb3.srtp_local_key != pb1.srtp_local_key
    assert pa3.srtp_local_key == pb3.srtp_remote_key


def test_payload_types_remembered_for_reoffers(vectors: Path) -> None:
    neg = make()
    neg.receive_offer(parse_sdp((vectors / "sdes" / "realworld" / "zoiper_offer_partial.sdp")
                                .read_bytes()))
    reoffer = neg.create_offer()
    maps = reoffer.media[0].rtpmaps()
    assert maps[106].encoding == "opus"
    assert maps[101].encoding == "telephone-event" and maps[101].clock_rate == 8000
    assert maps[98].encoding == "telephone-event" and maps[98].clock_rate == 48000


# --- ptime and RTCP -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("extra", "ptime"),
    [([], 20), (["a=ptime:30"], 30), (["a=ptime:30", "a=maxptime:20"], 20),
     (["a=ptime:10.5"], 10)],
)
def test_ptime(extra: list[str], ptime: int) -> None:
    _, params = make(SrtpPolicy.OFF).receive_offer(
        parse_sdp(text([*HEAD, "m=audio 7000 RTP/AVP 0", *extra])))
    assert params.ptime == ptime


def test_rtcp_attribute_and_mux() -> None:
    offer = text([*HEAD, "m=audio 7000 RTP/AVP 0", "a=rtcp:7100 IN IP4 198.51.100.99"])
    _, params = make(SrtpPolicy.OFF).receive_offer(parse_sdp(offer))
    assert (params.remote_rtcp_address, params.remote_rtcp_port) == ("198.51.100.99", 7100)
    offer = text([*HEAD, "m=audio 7000 RTP/AVP 0", "a=rtcp-mux"])
    answer, params = make(SrtpPolicy.OFF, rtcp_mux=False).receive_offer(parse_sdp(offer))
    assert not params.rtcp_mux and params.remote_rtcp_port == 7001
    assert not answer.media[0].rtcp_mux


def test_ipv6_offer_and_answer() -> None:
    a = make(SrtpPolicy.OFF, address="2001:db8::1")
    b = make(SrtpPolicy.OFF, address="2001:db8::2", port=5000)
    pa, pb = exchange(a, b)
    assert pa.remote_address == "2001:db8::2" and pb.remote_address == "2001:db8::1"
    assert a.local_sdp is not None and a.local_sdp.connection is not None
    assert a.local_sdp.connection.addrtype == "IP6" and a.local_sdp.origin.addrtype == "IP6"


def test_opus_preferred_with_its_telephone_event() -> None:
    a, b = make(codecs=(OPUS, PCMU)), make(port=5000, seed=3, codecs=(OPUS, G722, PCMU))
    pa, pb = exchange(a, b)
    assert (pa.codec, pa.clock_rate, pa.channels) == ("opus", 48000, 2)
    assert pa.fmtp == "useinbandfec=1"
    assert pa.telephone_event_pt is not None and pb.telephone_event_pt == pa.telephone_event_pt


def test_reoffer_keeps_our_numbers_after_a_renumbered_answer() -> None:
    a = make(SrtpPolicy.OFF)
    a.create_offer()
    answer = text([*HEAD, "m=audio 7000 RTP/AVP 111 0", "a=rtpmap:111 opus/48000/2"])
    assert a.receive_answer(parse_sdp(answer)).payload_type == 111  # we send with theirs
    reoffer = a.create_offer()
    assert reoffer.media[0].rtpmaps()[96].encoding == "opus"
    assert 111 not in reoffer.media[0].rtpmaps()


def test_static_numbers_survive_a_hostile_mapping() -> None:
    # An offer that maps opus onto PCMA's static number 8 must not move PCMA later.
    neg = make(SrtpPolicy.OFF)
    neg.receive_offer(parse_sdp(text([*HEAD, "m=audio 7000 RTP/AVP 8",
                                      "a=rtpmap:8 opus/48000/2"])))
    maps = neg.create_offer().media[0].rtpmaps()
    assert maps[8].encoding == "PCMA" and maps[0].encoding == "PCMU"
    assert maps[96].encoding == "opus"


# --- baresip 1.0.0 (Debian 12), captured on loopback by tests/sdp/test_baresip_offer_answer.py
BARESIP_OFFER = text([
    "v=0", "o=- 2902729518 272618535 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
    "a=tool:baresip 1.0.0", "m=audio 33952 RTP/SAVP 0 8 101", "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15",
    "a=sendrecv", "a=label:1", "a=rtcp-rsize", "a=ssrc:3603214169 cname:sip:ua@127.0.0.1",
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:IXn+akMiC2N4vRrxHpuPUDH1IHnukX/wbvgrA3tH",
    "a=minptime:20", "a=ptime:20",
])


def _baresip_answer(crypto: str) -> bytes:
    return text([
        "v=0", "o=- 1139322136 616697193 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1",
        "t=0 0", "a=tool:baresip 1.0.0", "m=audio 44202 RTP/SAVP 0 8 96",
        "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:96 telephone-event/8000",
        "a=fmtp:96 0-15", "a=sendrecv", "a=label:1",
        "a=ssrc:2564893097 cname:sip:ua@127.0.0.1:47109", "a=minptime:20", "a=ptime:20",
        f"a=crypto:{crypto}",
    ])


BARESIP_GCM_ANSWER = _baresip_answer(
    "1 AEAD_AES_256_GCM inline:P/L3fLgNhhslTwEA6JPonEZ5KFVGDtB4bHaAu74AecmcbAp80sp6MrIDzx8=")
# Its answer to an offer of only AES_256_CM_HMAC_SHA1_80, a suite it lacks (then plain RTP).
BARESIP_WRONG_ANSWER = _baresip_answer(
    "1 AES_CM_128_HMAC_SHA1_80 inline:IMrdszlWzxSAULfGpdiDxNdOPC1xA4ctGGZdLMjK")


def test_baresip_captures() -> None:
    answer, params = make(codecs=(PCMU, PCMA)).receive_offer(parse_sdp(BARESIP_OFFER))
    assert params.srtp_suite == "AES_CM_128_HMAC_SHA1_80"
    assert (params.codec, params.telephone_event_pt, params.remote_port) == ("PCMU", 101, 33952)
    assert [parse_crypto(v).tag for v in answer.media[0].attribute_values("crypto")] == [1]

    ours = make(codecs=(PCMU, PCMA), rtcp_mux=False)
    ours.create_offer()
    params = ours.receive_answer(parse_sdp(BARESIP_GCM_ANSWER))
    assert params.srtp_suite == "AEAD_AES_256_GCM" and params.telephone_event_pt == 96
    assert params.remote_rtcp_port == 44203

    lone = make(codecs=(PCMU, PCMA), suites=("AES_256_CM_HMAC_SHA1_80",))
    lone.create_offer()
    with pytest.raises(RemoteProtocolError) as info:
        lone.receive_answer(parse_sdp(BARESIP_WRONG_ANSWER))
    assert info.value.status_code == 488
    assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 matches none" in info.value.reason


def test_fork_for_a_second_early_dialog() -> None:
    a = make()
    offer = wire(a.create_offer())
    twin = a.fork()
    answer, pb = make(port=5000, seed=60).receive_offer(offer)
    answer_b = wire(answer)
    answer_c = wire(make(port=6000, seed=90, suites=("AES_CM_128_HMAC_SHA1_80",))
                    .receive_offer(offer)[0])
    pa = a.receive_answer(answer_b)
    pt = twin.receive_answer(answer_c)
    assert pa.srtp_suite == "AEAD_AES_256_GCM" and pt.srtp_suite == "AES_CM_128_HMAC_SHA1_80"
    assert pa.remote_port == 5000 and pt.remote_port == 6000
    assert pa.srtp_remote_key == pb.srtp_local_key
    # Independent from here on: one dialog re-keys and re-offers, the other is untouched.
    a.rekey()
    a.create_offer()
    assert twin.state is NegotiatorState.DONE and twin.active == pt
    assert twin.create_offer().origin.session_version == 1
