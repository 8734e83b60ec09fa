"""SRTP/SRTCP contexts (RFC 3711, RFC 6188, RFC 7714) on libsrtp, as bundled by ``pylibsrtp``.

One :class:`SrtpContext` protects (``outbound=True``) or unprotects (``outbound=False``) every
SSRC of one direction of one media stream, for RTP and RTCP alike.

libsrtp does the cryptography. ``pylibsrtp`` 1.0 only names four DTLS-SRTP profiles; the two
AES-256 counter-mode SDES suites of RFC 6188 are set with libsrtp's own exported policy
setters (``srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80``/``_32``), called through ctypes on
the very shared object that pylibsrtp loaded, so every suite runs the same C code. The tests
check each suite against published vectors and libsrtp's known-answer packets.

Interop: baresip 1.0 tags SRTCP of AES_CM_128_HMAC_SHA1_32 with 32 bits instead of the 80 of
RFC 4568 §6.2.1. An inbound context of that suite only keeps a second libsrtp session whose
RTCP policy has the short tag: it is tried when the standard tag fails (first, once the peer
used it), authenticates on its own and keeps its own replay list (see ``rtcp_short_tag``).

The per-packet path is lean on purpose (the media engine pushes tens of thousands of packets a
second): one preallocated C buffer and length cell per context, a single C call, no objects.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from pylibsrtp import _binding

from sippa.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["DEFAULT_REPLAY_WINDOW", "SUITES", "SrtpContext", "SrtpError", "SrtpSuite"]

_log = logging.getLogger(__name__)

_ffi: Any = _binding.ffi
_lib: Any = _binding.lib
_memmove: Any = _ffi.memmove


class SrtpError(RemoteProtocolError):
    """An SRTP/SRTCP packet failed authentication, replay protection or was malformed.

    The media engine drops and counts such packets; they never end a call.
    """


@dataclass(frozen=True, slots=True)
class SrtpSuite:
    """One SDES crypto-suite (RFC 4568 §6.2, RFC 6188 §6, RFC 7714 §14.2)."""

    name: str
    """The a=crypto suite name."""
    key_length: int
    """Master key length in octets."""
    salt_length: int
    """Master salt length in octets."""
    rtp_tag_length: int
    """Authentication tag appended to SRTP packets, in octets."""
    rtcp_tag_length: int
    """SRTCP authentication tag in octets (80 bits even for the _32 suites, RFC 4568 §6.2.1)."""
    aead: bool
    """AES-GCM (the tag is the AEAD tag) rather than AES-CM + HMAC-SHA1."""

    @property
    def master_length(self) -> int:
        """Length of the concatenated master key and salt (the inline key of a=crypto)."""
        return self.key_length + self.salt_length


# The libsrtp policy setter used for RTP and for RTCP, by suite (libsrtp include/srtp.h; the
# AES-128/HMAC-SHA1-80 setter is a macro for the *_default functions).
_SETTERS: Final = {
    "AES_CM_128_HMAC_SHA1_80": ("rtp_default", "rtcp_default"),
    "AES_CM_128_HMAC_SHA1_32": ("aes_cm_128_hmac_sha1_32", "rtcp_default"),
    "AES_256_CM_HMAC_SHA1_80": ("aes_cm_256_hmac_sha1_80", "aes_cm_256_hmac_sha1_80"),
    "AES_256_CM_HMAC_SHA1_32": ("aes_cm_256_hmac_sha1_32", "aes_cm_256_hmac_sha1_80"),
    "AEAD_AES_128_GCM": ("aes_gcm_128_16_auth", "aes_gcm_128_16_auth"),
    "AEAD_AES_256_GCM": ("aes_gcm_256_16_auth", "aes_gcm_256_16_auth"),
}

# Interop: baresip 1.0 (libre) protects SRTCP of this suite with a 32-bit tag, where RFC 4568
# §6.2.1 and RFC 3711 §3.4 use 80 bits. Inbound contexts of this suite only keep a second
# session whose RTCP policy has the short tag, tried when the standard tag fails.
_SHORT_SRTCP_SUITES: Final = {"AES_CM_128_HMAC_SHA1_32": "aes_cm_128_hmac_sha1_32"}
_SHORT_TAG_CUT: Final = 10 - 4  # octets between the standard and the short HMAC-SHA1 tag

SUITES: Final[Mapping[str, SrtpSuite]] = MappingProxyType(
    {
        s.name: s
        for s in (
            SrtpSuite("AES_CM_128_HMAC_SHA1_80", 16, 14, 10, 10, aead=False),
            SrtpSuite("AES_CM_128_HMAC_SHA1_32", 16, 14, 4, 10, aead=False),
            SrtpSuite("AES_256_CM_HMAC_SHA1_80", 32, 14, 10, 10, aead=False),
            SrtpSuite("AES_256_CM_HMAC_SHA1_32", 32, 14, 4, 10, aead=False),
            # RFC 7714 §12: 12-octet salt, 16-octet tag.
            SrtpSuite("AEAD_AES_128_GCM", 16, 12, 16, 16, aead=True),
            SrtpSuite("AEAD_AES_256_GCM", 32, 12, 16, 16, aead=True),
        )
    }
)
"""Every suite this build supports, by its SDES name."""

DEFAULT_REPLAY_WINDOW: Final = 128
"""libsrtp's default replay window (RFC 3711 §3.3.2 asks for at least 64)."""

_MAX_PACKET: Final = 8192  # larger than any UDP datagram on a sane media path
_MAX_TRAILER: Final = 4 + 16 + 128  # SRTCP index + max tag + max MKI (libsrtp)
_MIN_RTP: Final = 12
_MIN_RTCP: Final = 8

# libsrtp srtp_err_status_t values worth naming (include/srtp.h).
_ERR_AUTH_FAIL: Final = 7
_ERR_REPLAY_FAIL: Final = 9
_ERR_REPLAY_OLD: Final = 10
_ERR_TEXT: Final = {
    _ERR_AUTH_FAIL: "authentication failure",
    _ERR_REPLAY_FAIL: "replayed packet",
    _ERR_REPLAY_OLD: "packet too old for the replay window",
}

_setter_cache: dict[str, Callable[[int], None]] = {}


def _policy_setter(name: str) -> Callable[[int], None]:
    """libsrtp's ``srtp_crypto_policy_set_<name>(srtp_crypto_policy_t *)``, from pylibsrtp's .so."""
    fn = _setter_cache.get(name)
    if fn is None:
        try:
            so = ctypes.CDLL(_binding.__file__)
            cfn = getattr(so, f"srtp_crypto_policy_set_{name}")
        except (OSError, AttributeError) as exc:  # pragma: no cover - depends on the build
            raise LocalProtocolError(f"libsrtp in pylibsrtp lacks policy {name}") from exc
        cfn.restype = None
        cfn.argtypes = [ctypes.c_void_p]
        fn = cfn
        _setter_cache[name] = fn
    return fn


def _address(cdata: Any) -> int:
    return int(_ffi.cast("uintptr_t", cdata))


class SrtpContext:
    """SRTP/SRTCP for one direction of one media stream (any number of SSRCs).

    ``master_key_and_salt`` is the concatenated master key and salt of the a=crypto inline key.
    Outbound contexts protect, inbound ones unprotect; libsrtp keeps the rollover counter
    (RFC 3711 §3.3.1) and the replay window (§3.3.2) per SSRC. ``replay_window`` is in packets
    (RFC 4568 WSH); ``allow_repeat_tx`` lets an outbound context protect the same packet twice
    (a retransmission) instead of refusing it as a replay.
    """

    __slots__ = (
        "_buf",
        "_buffer",
        "_len",
        "_session",
        "_short",
        "_short_first",
        "_srtp",
        "auth_failures",
        "outbound",
        "replays",
        "rtcp_short_tag",
        "suite",
    )

    def __init__(
        self,
        suite: str,
        master_key_and_salt: bytes,
        *,
        outbound: bool,
        replay_window: int = DEFAULT_REPLAY_WINDOW,
        allow_repeat_tx: bool = False,
    ) -> None:
        info = SUITES.get(suite)
        if info is None:
            raise LocalProtocolError(f"unsupported SRTP suite {suite!r}")
        if len(master_key_and_salt) != info.master_length:
            raise LocalProtocolError(
                f"{suite} needs {info.master_length} octets of key and salt, "
                f"got {len(master_key_and_salt)}"
            )
        # libsrtp accepts windows of 64 .. 0x7fff packets (srtp_stream_init).
        if not 64 <= replay_window < 0x8000:
            raise LocalProtocolError("replay window must be 64..32767 packets")
        self.suite = info
        self.outbound = outbound
        self.auth_failures = 0
        self.replays = 0
        self.rtcp_short_tag = 0  # SRTCP packets accepted with a 32-bit tag (baresip interop)

        rtp_setter, rtcp_setter = _SETTERS[suite]
        short_setter = None if outbound else _SHORT_SRTCP_SUITES.get(suite)
        key = _ffi.new("unsigned char[]", master_key_and_salt)
        try:
            self._srtp = _create(
                suite,
                key,
                rtp_setter=rtp_setter,
                rtcp_setter=rtcp_setter,
                outbound=outbound,
                replay_window=replay_window,
                allow_repeat_tx=allow_repeat_tx,
            )
            # Same master key and salt, same replay window; its own replay list.
            self._short = (
                None
                if short_setter is None
                else _create(
                    suite,
                    key,
                    rtp_setter=rtp_setter,
                    rtcp_setter=short_setter,
                    outbound=False,
                    replay_window=replay_window,
                    allow_repeat_tx=False,
                )
            )
        finally:
            # libsrtp derived its session keys: wipe our copy of the master key.
            _ffi.memmove(key, bytes(len(master_key_and_salt)), len(master_key_and_salt))
        self._session = self._srtp[0]
        self._short_first = False
        self._buf = _ffi.new("unsigned char[]", _MAX_PACKET + _MAX_TRAILER)
        self._buffer = _ffi.buffer(self._buf)
        self._len = _ffi.new("int *")

    # RFC 3711 §3.3: header || encrypted payload || auth tag.
    def protect(self, rtp: bytes) -> bytes:
        """Protect one RTP packet; returns the SRTP packet."""
        n = len(rtp)
        if n < _MIN_RTP or n > _MAX_PACKET:
            raise LocalProtocolError(f"cannot protect an RTP packet of {n} octets")
        _memmove(self._buf, rtp, n)
        length = self._len
        length[0] = n
        rc = _lib.srtp_protect(self._session, self._buf, length)
        if rc:
            raise LocalProtocolError(f"srtp_protect failed (libsrtp error {rc})")
        out: bytes = self._buffer[0 : length[0]]
        return out

    def unprotect(self, srtp: bytes) -> bytes:
        """Authenticate and decrypt one SRTP packet; raises :class:`SrtpError` if it fails."""
        n = len(srtp)
        if n < _MIN_RTP or n > _MAX_PACKET:
            raise SrtpError(f"SRTP packet of {n} octets")
        _memmove(self._buf, srtp, n)
        length = self._len
        length[0] = n
        rc = _lib.srtp_unprotect(self._session, self._buf, length)
        if rc:
            raise self._error(rc)
        out: bytes = self._buffer[0 : length[0]]
        return out

    # RFC 3711 §3.4: header || encrypted payload || E|SRTCP index || auth tag.
    def protect_rtcp(self, rtcp: bytes) -> bytes:
        """Protect one (compound) RTCP packet; returns the SRTCP packet."""
        n = len(rtcp)
        if n < _MIN_RTCP or n > _MAX_PACKET:
            raise LocalProtocolError(f"cannot protect an RTCP packet of {n} octets")
        _memmove(self._buf, rtcp, n)
        length = self._len
        length[0] = n
        rc = _lib.srtp_protect_rtcp(self._session, self._buf, length)
        if rc:
            raise LocalProtocolError(f"srtp_protect_rtcp failed (libsrtp error {rc})")
        out: bytes = self._buffer[0 : length[0]]
        return out

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        """Authenticate and decrypt one SRTCP packet; raises :class:`SrtpError` if it fails.

        An inbound AES_CM_128_HMAC_SHA1_32 context also accepts a 32-bit SRTCP tag (baresip),
        counted in :attr:`rtcp_short_tag`; once a peer used it, that tag is tried first.
        """
        n = len(srtcp)
        if n < _MIN_RTCP or n > _MAX_PACKET:
            raise SrtpError(f"SRTCP packet of {n} octets")
        short = self._short
        if short is None:
            rc = self._unprotect_rtcp_in(self._session, srtcp, n)
            if rc:
                raise self._error(rc)
            out: bytes = self._buffer[0 : self._len[0]]
            return out
        return self._unprotect_rtcp_either(short[0], srtcp, n)

    def _unprotect_rtcp_in(self, session: Any, srtcp: bytes, n: int) -> int:
        _memmove(self._buf, srtcp, n)
        length = self._len
        length[0] = n
        rc: int = _lib.srtp_unprotect_rtcp(session, self._buf, length)
        return rc

    def _unprotect_rtcp_either(self, short: Any, srtcp: bytes, n: int) -> bytes:
        # Each session authenticates on its own (no packet passes without a valid tag) and
        # keeps its own replay list. The 32-bit tag is a prefix of the 80-bit one (both
        # truncate the same HMAC-SHA1, RFC 3711 §4.2.1), so a standard packet cut short would
        # be new to the short session: every standard packet accepted is also recorded there.
        order = ((short, True), (self._session, False))
        if not self._short_first:
            order = order[::-1]
        first_rc = 0
        for session, is_short in order:
            rc = self._unprotect_rtcp_in(session, srtcp, n)
            if rc == 0:
                out: bytes = self._buffer[0 : self._len[0]]
                if is_short:
                    self.rtcp_short_tag += 1
                    if not self._short_first:
                        self._short_first = True
                        _log.info(
                            "%s: the peer uses a non-standard 32-bit SRTCP tag "
                            "(RFC 4568 §6.2.1 says 80 bits); accepting it",
                            self.suite.name,
                        )
                elif n - _SHORT_TAG_CUT >= _MIN_RTCP:
                    self._unprotect_rtcp_in(short, srtcp[:-_SHORT_TAG_CUT], n - _SHORT_TAG_CUT)
                return out
            if not first_rc:
                first_rc = rc
        # Report what the session this peer is believed to use said.
        raise self._error(first_rc)

    def _error(self, rc: int) -> SrtpError:
        if rc == _ERR_AUTH_FAIL:
            self.auth_failures += 1
        elif rc in (_ERR_REPLAY_FAIL, _ERR_REPLAY_OLD):
            self.replays += 1
        return SrtpError(_ERR_TEXT.get(rc, f"libsrtp error {rc}"))

    def __repr__(self) -> str:  # never shows key material
        direction = "outbound" if self.outbound else "inbound"
        return f"<SrtpContext {self.suite.name} {direction}>"


def _create(
    suite: str,
    key: Any,
    *,
    rtp_setter: str,
    rtcp_setter: str,
    outbound: bool,
    replay_window: int,
    allow_repeat_tx: bool,
) -> Any:
    """A libsrtp session (``srtp_t *``, freed with it) for one policy."""
    policy = _ffi.new("srtp_policy_t *")
    _policy_setter(rtp_setter)(_address(_ffi.addressof(policy.rtp)))
    _policy_setter(rtcp_setter)(_address(_ffi.addressof(policy.rtcp)))
    policy.key = key
    policy.ssrc.type = _lib.ssrc_any_outbound if outbound else _lib.ssrc_any_inbound
    policy.window_size = replay_window
    # Let an outbound stream resend a packet verbatim (same index, same keystream).
    policy.allow_repeat_tx = 1 if allow_repeat_tx else 0
    srtp = _ffi.new("srtp_t *")
    rc = _lib.srtp_create(srtp, policy)
    if rc != 0:
        raise LocalProtocolError(f"libsrtp refused the {suite} policy (error {rc})")
    return _ffi.gc(srtp, _dealloc)


def _dealloc(srtp: Any) -> None:
    _lib.srtp_dealloc(srtp[0])
