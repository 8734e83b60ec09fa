"""The RFC SRTP vectors, through an independent reference; then libsrtp against the reference.

Vectors: tests/vectors/srtp/rfc3711_appendix_b.json (B.2 keystream, B.3 KDF and the SRTCP
labels), rfc6188_aes192_aes256.json (7.1 AES-256-CM keystream, 7.2 AES_256_CM_PRF),
rfc7714_aead_gcm.json (16.1.x, 16.2.x, 17.1, 17.2), full_packet_examples.json (libsrtp).
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sippa.rtp.packet import RtpPacket
from sippa.rtp.rtcp import ReportBlock, RtcpReceiverReport, RtcpSdes, serialize_rtcp
from sippa.rtp.srtp import SUITES, SrtpContext

from .srtp_reference import (
    Reference,
    SessionKeys,
    aes_cm,
    kdf,
    srtcp_cm,
    srtcp_gcm,
    srtp_cm,
    srtp_gcm,
)


def _load(vectors: Path, name: str) -> Any:
    return json.loads((vectors / "srtp" / name).read_text())


def _h(s: str) -> bytes:
    return bytes.fromhex(s)


def _aes_block(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


@pytest.mark.parametrize(
    ("file", "section"),
    [
        ("rfc3711_appendix_b.json", "B.2_aes_cm_keystream"),
        ("rfc6188_aes192_aes256.json", "7.1_aes_256_cm_keystream"),
    ],
)
def test_aes_cm_keystream(vectors: Path, file: str, section: str) -> None:
    v = _load(vectors, file)[section]
    key = _h(v["session_key"])
    first = _h(v["blocks"][0]["counter"])
    stream = aes_cm(key, first, bytes(16 * 65282))  # the whole segment, as the RFC does
    for block in v["blocks"]:
        counter = _h(block["counter"])
        offset = int.from_bytes(counter, "big") - int.from_bytes(first, "big")
        assert stream[16 * offset : 16 * offset + 16] == _h(block["keystream"])
        assert _aes_block(key, counter) == _h(block["keystream"])


def test_rfc3711_b3_key_derivation(vectors: Path) -> None:
    v = _load(vectors, "rfc3711_appendix_b.json")
    b3 = v["B.3_key_derivation"]
    mk, ms = _h(b3["master_key"]), _h(b3["master_salt"])
    assert kdf(mk, ms, 0, 16) == _h(b3["cipher_key"]["output"])
    assert kdf(mk, ms, 2, 14) == _h(b3["cipher_salt"]["output"])
    assert kdf(mk, ms, 1, 94) == _h(b3["auth_key"]["output_94_octets"])
    keys = SessionKeys.derive(mk, ms, rtcp=False, aead=False)
    assert keys.auth_key == _h(b3["auth_key"]["first_20_octets_for_hmac_sha1"])
    extra = v["derived_srtcp_keys_not_in_rfc"]
    rtcp = SessionKeys.derive(mk, ms, rtcp=True, aead=False)
    assert rtcp.cipher_key == _h(extra["srtcp_cipher_key_label_03"])
    assert rtcp.auth_key == _h(extra["srtcp_auth_key_label_04_first20"])
    assert rtcp.cipher_salt == _h(extra["srtcp_cipher_salt_label_05"])


def test_rfc6188_aes_256_prf(vectors: Path) -> None:
    v = _load(vectors, "rfc6188_aes192_aes256.json")["7.2_aes_256_cm_prf_kdf"]
    keys = SessionKeys.derive(_h(v["master_key"]), _h(v["master_salt"]), rtcp=False, aead=False)
    assert keys.cipher_key == _h(v["cipher_key_label_00_32_octets"])
    assert keys.cipher_salt == _h(v["cipher_salt_label_02_14_octets"])
    assert keys.auth_key == _h(v["auth_key_label_01_first_20_octets"])


def test_rfc7714_rtp_and_rtcp(vectors: Path) -> None:
    v = _load(vectors, "rfc7714_aead_gcm.json")
    salt = _h(v["common"]["session_salt"])
    index = int(v["common"]["srtcp_index"], 16)
    for case in v["rtp"]:
        keys = SessionKeys(_h(case["key"]), salt, b"")
        name = case["name"]
        if "encryption" in name:
            assert srtp_gcm(keys, _h(case["input"]), roc=0) == _h(case["output"]), name
        elif "decryption" in name:
            assert srtp_gcm(keys, _h(case["output"]), roc=0) == _h(case["input"]), name
        elif "tagging only" in name:
            # Whole packet as AAD, empty plaintext (RFC 7714 §8.2 with no encryption).
            pkt = _h(case["input"])
            iv = bytes.fromhex(v["common"]["rtp_iv"])
            assert pkt + AESGCM(keys.cipher_key).encrypt(iv, b"", pkt) == _h(case["output"])
    for case in v["rtcp"]:
        keys = SessionKeys(_h(case["key"]), salt, b"")
        if case["section"] == "17.1":
            assert srtcp_gcm(keys, _h(case["input"]), index) == _h(case["output"])
        elif case["section"] == "17.2":
            assert srtcp_gcm(keys, _h(case["output"]), index) == _h(case["input"])


def test_reference_reproduces_libsrtp_known_answers(vectors: Path) -> None:
    by_name = {v["name"]: v for v in _load(vectors, "full_packet_examples.json")["vectors"]}
    v = by_name["libsrtp srtp_validate (default policy)"]
    mk, ms = _h(v["master_key"]), _h(v["master_salt"])
    rtp_keys = SessionKeys.derive(mk, ms, rtcp=False, aead=False)
    assert srtp_cm(rtp_keys, _h(v["rtp"]), 0, 10) == _h(v["srtp"])
    rtcp_keys = SessionKeys.derive(mk, ms, rtcp=True, aead=False)
    assert srtcp_cm(rtcp_keys, _h(v["rtcp"]), 1) == _h(v["srtcp"])
    v = by_name["libsrtp srtp_validate_aes_256"]
    keys = SessionKeys.derive(_h(v["master_key"]), _h(v["master_salt"]), rtcp=False, aead=False)
    assert srtp_cm(keys, _h(v["rtp"]), 0, 10) == _h(v["srtp"])
    v = by_name["libsrtp srtp_validate_gcm"]
    mk, ms = _h(v["master_key"]), _h(v["master_salt"])
    assert srtp_gcm(SessionKeys.derive(mk, ms, False, True), _h(v["rtp"]), 0) == _h(v["srtp"])
    assert srtcp_gcm(SessionKeys.derive(mk, ms, True, True), _h(v["rtcp"]), 1) == _h(v["srtcp"])


def _packets(rng: random.Random) -> list[bytes]:
    """RTP packets of two sources across a sequence wrap, some with CSRCs and extensions."""
    out = []
    for i in range(160):
        ssrc = 0x0BADCAFE if i % 3 else 0x12345678
        seq = (65450 + i) & 0xFFFF
        pkt = RtpPacket(
            payload_type=0 if i % 5 else 101,
            marker=i % 7 == 0,
            sequence_number=seq,
            timestamp=(0xFFFF0000 + 160 * i) & 0xFFFFFFFF,
            ssrc=ssrc,
            csrc=(1, 2) if i % 11 == 0 else (),
            extension=(0xBEDE, rng.randbytes(8)) if i % 13 == 0 else None,
            payload=rng.randbytes(rng.choice((1, 20, 160, 171, 960))),
        )
        out.append(bytes(pkt))
    return out


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_libsrtp_matches_the_reference(suite: str) -> None:
    """Byte-for-byte: libsrtp through SrtpContext and the RFC-checked reference agree."""
    info = SUITES[suite]
    rng = random.Random(suite)
    master = rng.randbytes(info.master_length)
    ctx = SrtpContext(suite, master, outbound=True)
    rx = SrtpContext(suite, master, outbound=False)
    ref = Reference(suite, master, info.key_length, info.rtp_tag_length, info.aead)
    for pkt in _packets(rng):
        out = ctx.protect(pkt)
        assert out == ref.protect(pkt)
        assert rx.unprotect(out) == pkt
    assert max(ref.roc.values()) == 1  # the rollover counter did roll over
    for i in range(4):
        rtcp = serialize_rtcp(
            [
                RtcpReceiverReport(0x0BADCAFE, (ReportBlock(i, 1, 2, 3, 4, 5, 6),)),
                RtcpSdes.cname_for(0x0BADCAFE, f"host-{i}.example"),
            ]
        )
        out = ctx.protect_rtcp(rtcp)
        assert out == ref.protect_rtcp(rtcp)
        # RFC 3711 §3.4 / RFC 7714 §9.2: E flag set, index counting from 1 as libsrtp does.
        word = out[-4:] if info.aead else out[len(rtcp) : len(rtcp) + 4]
        assert struct.unpack("!I", word)[0] == 0x80000000 | (i + 1)
        assert rx.unprotect_rtcp(out) == rtcp
