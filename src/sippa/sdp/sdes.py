"""SDES: the SDP ``a=crypto`` attribute for SRTP keying (RFC 4568), with the suites of RFC 4568
§6.2, RFC 6188 and RFC 7714 §14.1.

Grammar (RFC 4568 §9.1)::

    a=crypto:<tag> 1*WSP <crypto-suite> 1*WSP <key-params> *(1*WSP <session-param>)
    key-params = key-param *(";" key-param)
    key-param  = "inline:" <base64 key||salt> ["|" lifetime] ["|" MKI ":" MKI-length]

Several key-params are allowed by the grammar; they carry keys for the same suite told apart by
an MKI in every packet. Every key-param is parsed and checked, and ``CryptoAttribute.key_salt``
is the first one's. The negotiator keys SRTP from that first key-param only, and because our
SRTP layer (libsrtp via pylibsrtp) neither sends nor strips an MKI, it does not choose a line
that has an MKI (which any line with several key-params must have, RFC 4568 §6.1); such lines
are reported as ``unsupported_params() == [..., "MKI"]``.

Parsing and validation raise RemoteProtocolError (400); an answer whose crypto does not match
the offer raises it with 488 in the negotiator.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sippa.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "CRYPTO_SUITES",
    "SECURITY_RANKING",
    "CryptoAttribute",
    "CryptoSuite",
    "KeyParams",
    "generate_crypto_offer",
    "parse_crypto",
]

MAX_KEY_PARAMS = 16  # key-params in one attribute; RFC 4568 sets no limit, real offers use 1-2
MAX_SESSION_PARAMS = 16
_MAX_TAG = 999_999_999  # tag = 1*9DIGIT (RFC 4568 §9.1)


@dataclass(frozen=True, slots=True)
class CryptoSuite:
    """An SRTP crypto-suite usable with SDES."""

    name: str
    """Registered name, upper case, as written in ``a=crypto``."""
    key_length: int
    """Master key length in octets."""
    salt_length: int
    """Master salt length in octets."""
    srtp_auth_tag_bits: int
    """SRTP authentication tag length (the AEAD tag for GCM)."""
    spec: str
    """Where the suite is defined."""

    @property
    def key_salt_length(self) -> int:
        """Octets of the inline key||salt."""
        return self.key_length + self.salt_length


# Suites this phone can use (libsrtp profiles), with their key and salt lengths.
CRYPTO_SUITES: dict[str, CryptoSuite] = {
    s.name: s
    for s in (
        CryptoSuite("AEAD_AES_256_GCM", 32, 12, 128, "RFC 7714 §14.1"),
        CryptoSuite("AEAD_AES_128_GCM", 16, 12, 128, "RFC 7714 §14.1"),
        CryptoSuite("AES_256_CM_HMAC_SHA1_80", 32, 14, 80, "RFC 6188 §7.1"),
        CryptoSuite("AES_256_CM_HMAC_SHA1_32", 32, 14, 32, "RFC 6188 §7.1"),
        CryptoSuite("AES_CM_128_HMAC_SHA1_80", 16, 14, 80, "RFC 4568 §6.2.1"),
        CryptoSuite("AES_CM_128_HMAC_SHA1_32", 16, 14, 32, "RFC 4568 §6.2.2"),
    )
}

# Our preference when answering, strongest first: AEAD before encrypt-then-MAC, 256-bit before
# 128-bit keys, 80-bit before 32-bit tags. The answerer chooses (RFC 4568 §5.1.2); we choose by
# this ranking among the lines the offerer listed, not by the offerer's order.
SECURITY_RANKING: tuple[str, ...] = (
    "AEAD_AES_256_GCM",
    "AEAD_AES_128_GCM",
    "AES_256_CM_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_80",
    "AES_256_CM_HMAC_SHA1_32",
    "AES_CM_128_HMAC_SHA1_32",
)

_DIGITS = re.compile(r"[0-9]{1,20}")
_TAG_RE = re.compile(r"[0-9]{1,9}")
_SUITE_RE = re.compile(r"[A-Za-z0-9_]{1,64}")  # srtp-crypto-suite = 1*(ALPHA / DIGIT / "_")
_B64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_LIFETIME_RE = re.compile(r"([0-9]{1,20})|2\^([0-9]{1,2})")
_MKI_RE = re.compile(r"([0-9]{1,39}):([0-9]{1,3})")
_WSP = re.compile(r"[ \t]+")

# RFC 3711 §9.2: at most 2^48 SRTP packets per master key (2^31 for SRTCP).
_MAX_LIFETIME = 2**48


def _bad(reason: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"bad a=crypto: {reason}", 400)


@dataclass(frozen=True, slots=True)
class KeyParams:
    """One ``inline:`` key-param (RFC 4568 §6.1)."""

    key_salt: bytes
    """Master key followed by master salt."""
    lifetime: int | None = None
    """Packets under this key (``2^n`` or decimal on the wire); None when absent."""
    lifetime_text: str | None = None
    """The lifetime as written (``2^20``), kept for round trips."""
    mki: int | None = None
    """Master key identifier value, or None."""
    mki_length: int | None = None
    """MKI length in octets 1..128, or None."""

    @classmethod
    def parse(cls, text: str) -> KeyParams:
        """Parse ``inline:<key||salt>[|lifetime][|MKI:length]``."""
        method, colon, info = text.partition(":")
        # key-method is "inline"; compared case-insensitively like pjproject and libsrtp do.
        if not colon or method.lower() != "inline":
            raise _bad(f"unsupported key method {method[:20]!r}")
        parts = info.split("|")
        if len(parts) > 3:
            raise _bad("too many '|' fields in key-params")
        key_salt = _decode_base64(parts[0])
        lifetime = lifetime_text = mki = mki_length = None
        for part in parts[1:]:
            if ":" in part:
                if mki is not None:
                    raise _bad("two MKI fields")
                m = _MKI_RE.fullmatch(part)
                if m is None:
                    raise _bad(f"malformed MKI {part[:40]!r}")
                mki, mki_length = int(m[1]), int(m[2])
                # RFC 4568 §6.1: MKI length 1..128 octets; the value must fit in it.
                if not 1 <= mki_length <= 128 or mki >= 256**mki_length:
                    raise _bad(f"MKI {part[:40]!r} out of range")
            else:
                if lifetime is not None or mki is not None:
                    raise _bad("lifetime must come once, before the MKI")
                m = _LIFETIME_RE.fullmatch(part)
                if m is None:
                    raise _bad(f"malformed lifetime {part[:40]!r}")
                lifetime = int(m[1]) if m[1] is not None else 2 ** int(m[2])
                if not 1 <= lifetime <= _MAX_LIFETIME:
                    raise _bad(f"lifetime {part[:40]!r} out of range (RFC 3711 §9.2)")
                lifetime_text = part
        return cls(key_salt, lifetime, lifetime_text, mki, mki_length)

    def __str__(self) -> str:
        out = "inline:" + binascii.b2a_base64(self.key_salt, newline=False).decode("ascii")
        if self.lifetime is not None:
            out += "|" + (self.lifetime_text or str(self.lifetime))
        if self.mki is not None:
            out += f"|{self.mki}:{self.mki_length}"
        return out


def _decode_base64(text: str) -> bytes:
    # RFC 4568 §6.1: base64 (RFC 3548) of key||salt. Some stacks drop the '=' padding; we put
    # it back, but refuse anything else that is not strict base64.
    if _B64_RE.fullmatch(text) is None:
        raise _bad("key is not base64")
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1:
        raise _bad("key is not base64 (bad length)")
    padded = stripped + "=" * (-len(stripped) % 4)
    if len(text) > len(stripped) and padded != text:
        raise _bad("key has wrong base64 padding")
    try:
        return binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error:
        raise _bad("key is not base64") from None


# Session parameters (RFC 4568 §6.3). Values checked here; which ones we can honour is decided
# by the negotiator (``CryptoAttribute.unsupported_params``).
def _check_kdr(v: str) -> None:
    if _DIGITS.fullmatch(v) is None or int(v) > 24:  # RFC 4568 §6.3.1: KDR=0..24
        raise _bad(f"KDR={v[:10]} out of range 0..24")


def _check_fec_order(v: str) -> None:
    if v not in ("FEC_SRTP", "SRTP_FEC"):  # RFC 4568 §6.3.5
        raise _bad(f"FEC_ORDER={v[:20]} unknown")


def _check_fec_key(v: str) -> None:
    KeyParams.parse(v)  # RFC 4568 §6.3.6


def _check_wsh(v: str) -> None:
    if _DIGITS.fullmatch(v) is None or int(v) < 64:  # RFC 4568 §6.3.7: at least 64
        raise _bad(f"WSH={v[:10]} below 64")


_VALUED_PARAMS: dict[str, Callable[[str], None]] = {
    "KDR": _check_kdr,
    "FEC_ORDER": _check_fec_order,
    "FEC_KEY": _check_fec_key,
    "WSH": _check_wsh,
}
_FLAG_PARAMS = frozenset({"UNENCRYPTED_SRTCP", "UNENCRYPTED_SRTP", "UNAUTHENTICATED_SRTP"})


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One ``a=crypto`` attribute (RFC 4568 §4)."""

    tag: int
    """Decimal tag, unique per media section; the answer echoes it (RFC 4568 §5.1.2)."""
    suite: str
    """Crypto-suite name as written."""
    key_params: tuple[KeyParams, ...]
    """At least one key-param; only the first is used for keying."""
    session_params: tuple[str, ...] = ()
    """Session parameters verbatim (``KDR=0``, ``UNENCRYPTED_SRTCP``, ``-X`` ignorable ones)."""

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        """Parse the value of an ``a=crypto`` attribute (the part after ``crypto:``).

        A leading ``a=crypto:`` is accepted too. Key lengths are checked for the known suites
        (:data:`CRYPTO_SUITES`); an unknown suite parses (it is simply never chosen).
        """
        if value.startswith("a=crypto:"):
            value = value[9:]
        fields = _WSP.split(value.strip(" \t"))
        if len(fields) < 3:
            raise _bad("needs <tag> <crypto-suite> <key-params>")
        tag_text, suite, keys_text, *params = fields
        if _TAG_RE.fullmatch(tag_text) is None:
            raise _bad(f"tag {tag_text[:12]!r} is not 1-9 digits")
        if _SUITE_RE.fullmatch(suite) is None:
            raise _bad(f"malformed crypto-suite {suite[:40]!r}")
        texts = keys_text.split(";")
        if len(texts) > MAX_KEY_PARAMS or len(params) > MAX_SESSION_PARAMS:
            raise _bad("too many key or session parameters")
        keys = tuple(KeyParams.parse(t) for t in texts)
        # RFC 4568 §6.1: all key-params of one attribute use the same MKI length; with more
        # than one key, each needs an MKI to tell them apart.
        if len(keys) > 1 and (len({k.mki_length for k in keys}) != 1 or keys[0].mki is None):
            raise _bad("key-params differ in MKI length or lack an MKI")
        known = CRYPTO_SUITES.get(suite.upper())
        if known is not None:
            for k in keys:
                if len(k.key_salt) != known.key_salt_length:
                    raise _bad(f"{known.name} needs {known.key_salt_length} octets of key||salt, "
                               f"got {len(k.key_salt)}")
        for p in params:
            _check_session_param(p)
            # RFC 4568 §6.3.6: FEC_KEY carries a key for the same suite.
            if known is not None and p.startswith("FEC_KEY="):
                fec = KeyParams.parse(p[8:])
                if len(fec.key_salt) != known.key_salt_length:
                    raise _bad(f"FEC_KEY needs {known.key_salt_length} octets of key||salt")
        return cls(int(tag_text), suite, keys, tuple(params))

    @property
    def crypto_suite(self) -> CryptoSuite | None:
        """The suite's definition when it is one we know (names compared case-insensitively)."""
        return CRYPTO_SUITES.get(self.suite.upper())

    @property
    def key_salt(self) -> bytes:
        """The first key-param's key||salt (the one used for keying)."""
        return self.key_params[0].key_salt

    def unsupported_params(self) -> list[str]:
        """Session parameters and key-param features this phone cannot honour; an attribute
        with any of them is not chosen (RFC 4568 §5.1.2: accept only what we support)."""
        out: list[str] = []
        for p in self.session_params:
            if p.startswith("-"):
                continue  # RFC 4568 §6.3.7: ignorable
            name, _, val = p.partition("=")
            if name == "WSH":
                continue  # our replay window is local; honouring a larger one is optional
            if name == "KDR" and val.isdigit() and int(val) == 0:
                continue  # 0 means no re-keying by derivation, which is what libsrtp does
            if name == "FEC_ORDER":
                continue  # no FEC is in use, so the order is moot
            out.append(p)
        if len(self.key_params) > 1 or self.key_params[0].mki is not None:
            out.append("MKI")
        return out

    def __str__(self) -> str:
        out = f"{self.tag} {self.suite} " + ";".join(str(k) for k in self.key_params)
        if self.session_params:
            out += " " + " ".join(self.session_params)
        return out


def _check_session_param(p: str) -> None:
    if not p or p.startswith("-"):
        return
    name, eq, val = p.partition("=")
    check = _VALUED_PARAMS.get(name)
    if check is not None:
        if not eq:
            raise _bad(f"{name} needs a value")
        check(val)
    elif name not in _FLAG_PARAMS or eq:
        # RFC 4568 §6.3.7: an unknown parameter without '-' makes the attribute unusable.
        raise _bad(f"unknown session parameter {p[:40]!r}")


def parse_crypto(value: str) -> CryptoAttribute:
    """Parse an ``a=crypto`` value; see :meth:`CryptoAttribute.parse`."""
    return CryptoAttribute.parse(value)


def generate_crypto_offer(
    suites: Iterable[str], random_bytes: Callable[[int], bytes]
) -> tuple[CryptoAttribute, ...]:
    """One attribute per suite, tags 1..n in the given order, fresh keys from ``random_bytes``
    (RFC 4568 §5.1.1). Unknown suite names or a short random source are a LocalProtocolError."""
    out = []
    for tag, name in enumerate(suites, start=1):
        suite = CRYPTO_SUITES.get(name)
        if suite is None:
            raise LocalProtocolError(f"unknown SRTP crypto suite {name!r}")
        out.append(CryptoAttribute(tag, suite.name, (new_key_params(suite, random_bytes),)))
    return tuple(out)


def new_key_params(suite: CryptoSuite, random_bytes: Callable[[int], bytes]) -> KeyParams:
    """A fresh inline key for ``suite`` (no lifetime, no MKI)."""
    key_salt = random_bytes(suite.key_salt_length)
    if not isinstance(key_salt, bytes) or len(key_salt) != suite.key_salt_length:
        raise LocalProtocolError("random_bytes returned the wrong number of bytes")
    return KeyParams(key_salt)
