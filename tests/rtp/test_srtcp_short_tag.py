"""SRTCP with a 32-bit tag on AES_CM_128_HMAC_SHA1_32 (baresip 1.0 interop).

RFC 3711 §3.4 / RFC 4568 §6.2.1 give SRTCP an 80-bit tag for every HMAC-SHA1 suite; baresip
uses 32 bits for this suite. Packets are made by the independent reference in
``tests/rtp/srtp_reference.py`` so libsrtp is not checked against itself.
"""

from __future__ import annotations

import logging

import pytest

from sippa.rtp.srtp import SUITES, SrtpContext, SrtpError
from tests.rtp.srtp_reference import SessionKeys, srtcp_cm

SUITE = "AES_CM_128_HMAC_SHA1_32"
SSRC = b"\x11\x22\x33\x44"
RR = bytes.fromhex("81c90007") + SSRC + bytes.fromhex("55667788") + bytes(24)
SR = bytes.fromhex("80c80006") + SSRC + bytes(range(20))


def _keys(suite: str, master: bytes) -> SessionKeys:
    info = SUITES[suite]
    mk, ms = master[: info.key_length], master[info.key_length :]
    return SessionKeys.derive(mk, ms, rtcp=True, aead=False)


def _master(suite: str) -> bytes:
    return bytes(range(7, 7 + SUITES[suite].master_length))


def test_reference_80_bit_srtcp_matches_libsrtp() -> None:
    # The reference agrees with libsrtp on the standard tag, and the short one is its prefix.
    master = _master(SUITE)
    tx = SrtpContext(SUITE, master, outbound=True)
    standard = srtcp_cm(_keys(SUITE, master), RR, 1, tag_len=10)
    assert tx.protect_rtcp(RR) == standard
    assert srtcp_cm(_keys(SUITE, master), RR, 1, tag_len=4) == standard[:-6]


def test_short_tag_accepted_counted_latched_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    master = _master(SUITE)
    keys = _keys(SUITE, master)
    rx = SrtpContext(SUITE, master, outbound=False)
    with caplog.at_level(logging.INFO, logger="sippa.rtp.srtp"):
        for index in range(1, 6):
            packet = RR if index % 2 else SR
            assert rx.unprotect_rtcp(srtcp_cm(keys, packet, index, tag_len=4)) == packet
    assert rx.rtcp_short_tag == 5
    assert rx.auth_failures == 0
    assert rx.replays == 0
    notes = [r for r in caplog.records if "32-bit SRTCP tag" in r.getMessage()]
    assert len(notes) == 1
    assert notes[0].levelno == logging.INFO
    # Latched on the short tag, a standard 80-bit packet still passes (and is not counted).
    assert rx.unprotect_rtcp(srtcp_cm(keys, RR, 6, tag_len=10)) == RR
    assert rx.rtcp_short_tag == 5
    assert rx.unprotect_rtcp(srtcp_cm(keys, SR, 7, tag_len=4)) == SR
    assert rx.rtcp_short_tag == 6


def test_standard_tag_still_accepted_and_not_counted() -> None:
    master = _master(SUITE)
    tx = SrtpContext(SUITE, master, outbound=True)
    rx = SrtpContext(SUITE, master, outbound=False)
    for _ in range(4):
        assert rx.unprotect_rtcp(tx.protect_rtcp(RR)) == RR
    assert rx.rtcp_short_tag == 0
    assert rx.auth_failures == 0


@pytest.mark.parametrize("latched", [False, True])
def test_tampered_short_tag_packet_rejected(latched: bool) -> None:
    master = _master(SUITE)
    keys = _keys(SUITE, master)
    rx = SrtpContext(SUITE, master, outbound=False)
    if latched:
        rx.unprotect_rtcp(srtcp_cm(keys, RR, 1, tag_len=4))
    good = srtcp_cm(keys, SR, 2, tag_len=4)
    positions = (1, 5, 9, len(good) - 5, len(good) - 1)  # header, SSRC, payload, index, tag
    for pos in positions:
        bad = bytearray(good)
        bad[pos] ^= 0x10
        with pytest.raises(SrtpError):
            rx.unprotect_rtcp(bytes(bad))
    # A wrong key does not authenticate either, nor a clear RTCP packet (baresip's "PING").
    with pytest.raises(SrtpError, match="authentication"):
        rx.unprotect_rtcp(srtcp_cm(_keys(SUITE, bytes(30)), SR, 3, tag_len=4))
    assert rx.auth_failures == len(positions) + 1
    with pytest.raises(SrtpError):
        rx.unprotect_rtcp(bytes.fromhex("80cc0003") + SSRC + b"PING" + bytes(4))
    assert rx.rtcp_short_tag == (1 if latched else 0)
    assert rx.unprotect_rtcp(good) == SR  # the genuine packet still passes


def test_short_tag_replays_rejected() -> None:
    master = _master(SUITE)
    keys = _keys(SUITE, master)
    rx = SrtpContext(SUITE, master, outbound=False)
    first = srtcp_cm(keys, RR, 1, tag_len=4)
    rx.unprotect_rtcp(first)
    with pytest.raises(SrtpError, match="replay"):
        rx.unprotect_rtcp(first)
    assert rx.replays == 1
    assert rx.rtcp_short_tag == 1


@pytest.mark.parametrize("latched", [False, True])
def test_standard_packet_cut_to_a_short_tag_is_a_replay(latched: bool) -> None:
    # The 32-bit tag is a prefix of the 80-bit one: an attacker who cuts a standard packet
    # already accepted must not get it through the short-tag session.
    master = _master(SUITE)
    keys = _keys(SUITE, master)
    rx = SrtpContext(SUITE, master, outbound=False)
    if latched:
        rx.unprotect_rtcp(srtcp_cm(keys, RR, 1, tag_len=4))
    standard = srtcp_cm(keys, SR, 2, tag_len=10)
    assert rx.unprotect_rtcp(standard) == SR
    with pytest.raises(SrtpError):
        rx.unprotect_rtcp(standard[:-6])
    with pytest.raises(SrtpError):
        rx.unprotect_rtcp(standard)
    assert rx.rtcp_short_tag == (1 if latched else 0)
    assert rx.auth_failures + rx.replays == 2


@pytest.mark.parametrize(
    "suite", ["AES_CM_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_32", "AES_256_CM_HMAC_SHA1_80"]
)
def test_other_suites_reject_short_srtcp_tags(suite: str) -> None:
    master = _master(suite)
    keys = _keys(suite, master)
    rx = SrtpContext(suite, master, outbound=False)
    for index in (1, 2):
        with pytest.raises(SrtpError):
            rx.unprotect_rtcp(srtcp_cm(keys, RR, index, tag_len=4))
    assert rx.rtcp_short_tag == 0
    assert rx.unprotect_rtcp(srtcp_cm(keys, RR, 1, tag_len=10)) == RR  # standard tag passes


def test_srtp_tags_unchanged_for_the_32_suite() -> None:
    # Only SRTCP gains the fallback: an SRTP packet with a cut tag still fails.
    master = _master(SUITE)
    tx = SrtpContext(SUITE, master, outbound=True)
    rx = SrtpContext(SUITE, master, outbound=False)
    rtp = bytes.fromhex("80000001000000a0") + SSRC + b"\x55" * 160
    prot = tx.protect(rtp)
    with pytest.raises(SrtpError):
        rx.unprotect(prot[:-2])
    assert rx.unprotect(prot) == rtp
