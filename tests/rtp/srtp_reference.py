"""An independent, slow SRTP/SRTCP reference built on ``cryptography`` (tests only).

It is checked against the RFC vectors first (RFC 3711 B.2/B.3, RFC 6188 §7, RFC 7714 §16/17),
then used to check libsrtp (through :class:`sippa.rtp.srtp.SrtpContext`) byte for byte on
packets no RFC publishes: every suite, ROC roll-over, CSRCs, header extensions, SRTCP.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def aes_cm(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES counter mode (RFC 3711 §4.1.1) with a 16-octet initial counter block."""
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def kdf(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 §4.3.1/§4.3.3 (AES_CM PRF, RFC 6188 §5.1 for AES-256), kdr = 0."""
    salt = master_salt.ljust(14, b"\x00")  # RFC 7714 §11: 96-bit salts padded to 112 bits
    x = int.from_bytes(salt, "big") ^ (label << 48)
    return aes_cm(master_key, (x << 16).to_bytes(16, "big"), bytes(length))


@dataclass
class SessionKeys:
    cipher_key: bytes
    cipher_salt: bytes
    auth_key: bytes

    @classmethod
    def derive(cls, master_key: bytes, master_salt: bytes, rtcp: bool, aead: bool) -> SessionKeys:
        base = 3 if rtcp else 0
        salt_len = 12 if aead else 14
        return cls(
            kdf(master_key, master_salt, base, len(master_key)),
            kdf(master_key, master_salt, base + 2, 14)[:salt_len],
            b"" if aead else kdf(master_key, master_salt, base + 1, 20),
        )


def rtp_header_length(packet: bytes) -> int:
    n = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        n += 4 + 4 * struct.unpack_from("!H", packet, n + 2)[0]
    return n


def srtp_cm(keys: SessionKeys, packet: bytes, roc: int, tag_len: int) -> bytes:
    """RFC 3711 §3.3 / §4.1.1 / §4.2.1: AES-CM encryption + HMAC-SHA1 over header||payload||ROC."""
    hlen = rtp_header_length(packet)
    seq, ssrc = struct.unpack_from("!H", packet, 2)[0], struct.unpack_from("!I", packet, 8)[0]
    index = (roc << 16) | seq
    iv = (int.from_bytes(keys.cipher_salt, "big") << 16) ^ (ssrc << 64) ^ (index << 16)
    body = packet[:hlen] + aes_cm(keys.cipher_key, iv.to_bytes(16, "big"), packet[hlen:])
    tag = hmac.new(keys.auth_key, body + roc.to_bytes(4, "big"), hashlib.sha1).digest()
    return body + tag[:tag_len]


def srtcp_cm(keys: SessionKeys, packet: bytes, index: int, tag_len: int = 10) -> bytes:
    """RFC 3711 §3.4: encrypt after the first 8 octets, then E|index and the HMAC tag."""
    ssrc = struct.unpack_from("!I", packet, 4)[0]
    iv = (int.from_bytes(keys.cipher_salt, "big") << 16) ^ (ssrc << 64) ^ (index << 16)
    body = packet[:8] + aes_cm(keys.cipher_key, iv.to_bytes(16, "big"), packet[8:])
    body += (0x80000000 | index).to_bytes(4, "big")
    return body + hmac.new(keys.auth_key, body, hashlib.sha1).digest()[:tag_len]


def srtp_gcm(keys: SessionKeys, packet: bytes, roc: int) -> bytes:
    """RFC 7714 §8: IV = (00 00 || SSRC || ROC || SEQ) XOR salt, AAD = the RTP header."""
    hlen = rtp_header_length(packet)
    seq, ssrc = struct.unpack_from("!H", packet, 2)[0], struct.unpack_from("!I", packet, 8)[0]
    iv = bytes(2) + struct.pack("!IIH", ssrc, roc, seq)
    iv = bytes(a ^ b for a, b in zip(iv, keys.cipher_salt, strict=True))
    return packet[:hlen] + AESGCM(keys.cipher_key).encrypt(iv, packet[hlen:], packet[:hlen])


def srtcp_gcm(keys: SessionKeys, packet: bytes, index: int) -> bytes:
    """RFC 7714 §9: AAD = first 8 octets || E|index; output ... || ciphertext||tag || E|index."""
    ssrc = struct.unpack_from("!I", packet, 4)[0]
    iv = bytes(2) + struct.pack("!IHI", ssrc, 0, index)
    iv = bytes(a ^ b for a, b in zip(iv, keys.cipher_salt, strict=True))
    word = (0x80000000 | index).to_bytes(4, "big")
    sealed = AESGCM(keys.cipher_key).encrypt(iv, packet[8:], packet[:8] + word)
    return packet[:8] + sealed + word


class Reference:
    """Protect-only SRTP/SRTCP for one SDES suite, keeping ROC and SRTCP index like libsrtp."""

    def __init__(self, suite: str, master: bytes, key_len: int, rtp_tag: int, aead: bool) -> None:
        mk, ms = master[:key_len], master[key_len:]
        self.aead = aead
        self.rtp_tag = rtp_tag
        self.rtp_keys = SessionKeys.derive(mk, ms, rtcp=False, aead=aead)
        self.rtcp_keys = SessionKeys.derive(mk, ms, rtcp=True, aead=aead)
        self.roc: dict[int, int] = {}
        self.last_seq: dict[int, int] = {}
        self.rtcp_index = 0

    def protect(self, packet: bytes) -> bytes:
        seq, ssrc = struct.unpack_from("!H", packet, 2)[0], struct.unpack_from("!I", packet, 8)[0]
        if ssrc in self.last_seq and seq < self.last_seq[ssrc]:
            self.roc[ssrc] = self.roc.get(ssrc, 0) + 1  # RFC 3711 §3.3.1 sender side
        self.last_seq[ssrc] = seq
        roc = self.roc.get(ssrc, 0)
        if self.aead:
            return srtp_gcm(self.rtp_keys, packet, roc)
        return srtp_cm(self.rtp_keys, packet, roc, self.rtp_tag)

    def protect_rtcp(self, packet: bytes) -> bytes:
        self.rtcp_index += 1  # libsrtp numbers the first SRTCP packet 1
        if self.aead:
            return srtcp_gcm(self.rtcp_keys, packet, self.rtcp_index)
        return srtcp_cm(self.rtcp_keys, packet, self.rtcp_index)
