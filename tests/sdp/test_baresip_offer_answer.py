"""Offer/answer against a real peer, baresip 1.0 (Debian ``baresip-core``), SDP level only.

Our negotiator's offers go to baresip in a hand-made INVITE (the test-only ``ProbeCall``, not the
product SIP stack); its answers come back through ``receive_answer``. And baresip's own offer
(it dials a UDP socket of ours) goes through ``receive_offer``. The lab measured baresip's
quirk this guards against: offered only suites it lacks, it answers 200 OK with its own
``a=crypto:1 AES_CM_128_HMAC_SHA1_80`` and sends plain RTP; the negotiator must refuse that
answer with a clear reason.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sippa.errors import RemoteProtocolError
from sippa.sdp import (
    PCMA,
    PCMU,
    MediaCapabilities,
    Negotiator,
    SrtpPolicy,
    parse_crypto,
    parse_sdp,
)
from tests.peers.baresip import Baresip, ProbeCall
from tests.peers.process import LOOPBACK, free_port, free_port_block

pytestmark = pytest.mark.interop


def _start(tmp: pytest.TempPathFactory, mediaenc: str) -> Baresip:
    rtp = free_port_block(10)
    return Baresip(tmp.mktemp(f"baresip-{mediaenc}"), sip_port=free_port_block(2),
                   ctrl_port=free_port(), rtp_min=rtp, rtp_max=rtp + 9, mediaenc=mediaenc,
                   user="ua", siptrace=False)


@pytest.fixture(scope="module")
def mandatory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baresip]:
    with _start(tmp_path_factory, "srtp-mand") as peer:
        yield peer


@pytest.fixture(scope="module")
def optional(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baresip]:
    with _start(tmp_path_factory, "srtp") as peer:
        yield peer


def _negotiator(policy: SrtpPolicy, **kw: object) -> Negotiator:
    caps = MediaCapabilities(LOOPBACK, free_port(socket.SOCK_DGRAM), codecs=(PCMU, PCMA),
                             srtp=policy, rtcp_mux=False, **kw)  # type: ignore[arg-type]
    return Negotiator(caps, session_id=4242, session_version=1, random_bytes=os.urandom)


def _call(peer: Baresip, neg: Negotiator) -> tuple[int, str, ProbeCall]:
    call = ProbeCall(peer.sip_port, peer.user)
    status, answer = call.invite(bytes(neg.create_offer()).decode())
    return status, answer, call


def _hang_up(call: ProbeCall) -> None:
    try:
        if call.status is not None and 200 <= call.status < 300:
            call.bye()
    finally:
        call.close()


def test_mandatory_srtp_agreed(mandatory: Baresip) -> None:
    neg = _negotiator(SrtpPolicy.MANDATORY)
    status, answer, call = _call(mandatory, neg)
    try:
        assert status == 200
        params = neg.receive_answer(parse_sdp(answer))
        # baresip takes the first line it supports: our tag 1, AEAD_AES_256_GCM.
        assert params.srtp_suite == "AEAD_AES_256_GCM"
        assert params.srtp_remote_key is not None and len(params.srtp_remote_key) == 44
        assert params.srtp_local_key != params.srtp_remote_key
        assert params.codec == "PCMU" and params.remote_address == LOOPBACK
        # (baresip 1.0 rounds its rtp_ports range to even ports, so only check it is real.)
        assert params.remote_port > 0 and params.remote_rtcp_port == params.remote_port + 1
    finally:
        _hang_up(call)


def test_non_matching_crypto_answer_is_refused(mandatory: Baresip) -> None:
    neg = _negotiator(SrtpPolicy.MANDATORY, suites=("AES_256_CM_HMAC_SHA1_80",))
    status, answer, call = _call(mandatory, neg)
    try:
        assert status == 200  # baresip accepts although it cannot honour our line
        crypto = [parse_crypto(v) for v in parse_sdp(answer).media[0].attribute_values("crypto")]
        assert [(c.tag, c.suite) for c in crypto] == [(1, "AES_CM_128_HMAC_SHA1_80")]
        with pytest.raises(RemoteProtocolError) as info:
            neg.receive_answer(parse_sdp(answer))
        assert info.value.status_code == 488
        assert "matches none of our offered crypto lines" in info.value.reason
    finally:
        _hang_up(call)


def test_plain_offer_answered_with_crypto_is_refused(optional: Baresip) -> None:
    neg = _negotiator(SrtpPolicy.OFF)
    status, answer, call = _call(optional, neg)
    try:
        assert status == 200
        with pytest.raises(RemoteProtocolError, match="matches none"):
            neg.receive_answer(parse_sdp(answer))
    finally:
        _hang_up(call)


def test_best_effort_offer_gets_srtp(optional: Baresip) -> None:
    neg = _negotiator(SrtpPolicy.BEST_EFFORT, suites=("AES_CM_128_HMAC_SHA1_80",
                                                      "AES_CM_128_HMAC_SHA1_32"))
    status, answer, call = _call(optional, neg)
    try:
        assert status == 200
        params = neg.receive_answer(parse_sdp(answer))
        assert params.srtp_suite == "AES_CM_128_HMAC_SHA1_80"
    finally:
        _hang_up(call)


def _ctrl(peer: Baresip, command: str, params: str) -> None:
    """One ctrl_tcp command (JSON in a netstring)."""
    body = json.dumps({"command": command, "params": params, "token": "t1"}).encode()
    with socket.create_connection((LOOPBACK, peer.ctrl_port), timeout=5) as s:
        s.sendall(str(len(body)).encode() + b":" + body + b",")
        s.settimeout(5)
        s.recv(4096)


def _respond(sock: socket.socket, request: bytes, source: tuple[str, int], status: str) -> None:
    head = request.partition(b"\r\n\r\n")[0].decode(errors="replace").split("\r\n")
    copied = [h for h in head[1:] if h.split(":", 1)[0].strip().lower()
              in ("via", "from", "to", "call-id", "cseq")]
    copied = [h + ";tag=sdp-test" if h.lower().startswith("to:") else h for h in copied]
    lines = [f"SIP/2.0 {status}", *copied, "Content-Length: 0", "", ""]
    sock.sendto("\r\n".join(lines).encode(), source)


def test_baresip_offer_is_answered(mandatory: Baresip, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
        _ctrl(mandatory, "dial", f"sip:phone@{LOOPBACK}:{port}")
        deadline = time.monotonic() + 10
        invite = b""
        while time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            data, source = sock.recvfrom(65535)
            if data.startswith(b"INVITE "):
                invite = data
                break
        assert invite, "baresip did not call"
        (tmp_path / "invite.txt").write_bytes(invite)
        offer = parse_sdp(invite.partition(b"\r\n\r\n")[2])
        neg = _negotiator(SrtpPolicy.MANDATORY)
        answer, params = neg.receive_offer(offer)
        # baresip offers exactly one hard-coded line (lab: probe-suites.sh).
        assert params.srtp_suite == "AES_CM_128_HMAC_SHA1_80"
        crypto = [parse_crypto(v) for v in answer.media[0].attribute_values("crypto")]
        assert [(c.tag, c.suite) for c in crypto] == [(1, "AES_CM_128_HMAC_SHA1_80")]
        assert answer.media[0].proto == "RTP/SAVP"
        assert params.remote_address == LOOPBACK
        _respond(sock, invite, source, "486 Busy Here")  # end baresip's call attempt
