"""TLS client policy for SIP over TLS (L1).

The policy, and the reviewed phone's flaw each rule fixes:

- TLS 1.2 minimum; TLS 1.2 cipher suites are ECDHE with AES-GCM or ChaCha20-Poly1305 only
  (AEAD, forward secrecy, never static-RSA key exchange: with a default cipher string a client
  that refuses a weak group silently falls back to static RSA). TLS 1.3 suites are AEAD anyway.
- ECDHE groups only from RFC 8422 §5.1.1's list as recommended today: X25519, X448, P-256,
  P-384, P-521. A server offering only secp192r1/secp224r1 is refused (the reviewed phone
  accepted curves under 224 bits). Python 3.11's ``ssl`` has no ``set_groups``: we call
  ``SSL_CTX_set1_groups_list`` through ``ctypes`` on the ``SSL_CTX*`` of the context, found from
  CPython's object layout and checked against the context before use (:func:`set_groups`).
- The chain is verified against explicit trust anchors (:class:`TrustStore`: the system store
  and custom CA PEM files), with RFC 5280 strict checks.
- The server identity checked is the SIP *domain* (RFC 5922 §4 and §7.2: the host part of the
  proxy or AoR URI), never a name learned from NAPTR or SRV; an IP-address proxy is checked
  against the IP SAN. SNI carries the SIP domain (no SNI for an IP: RFC 6066 §3).
- Validation can be switched off per line (``verify=False``); :class:`TlsInfo` then says
  ``verified=False`` and the line must be shown as insecure.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import enum
import hashlib
import ipaddress
import logging
import os
import ssl
import sys
import warnings
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

log = logging.getLogger(__name__)

__all__ = [
    "ALLOWED_GROUPS",
    "TLS12_CIPHERS",
    "ClientCertificate",
    "RefusalReason",
    "TlsConfigError",
    "TlsInfo",
    "TlsPolicyError",
    "TlsRefusal",
    "TrustAnchor",
    "TrustStore",
    "explain_tls_error",
    "group_policy_available",
    "make_client_context",
    "make_server_context",
    "negotiated_group",
    "set_groups",
    "sni_for",
    "tls_info",
    "tls_server_name",
]

# RFC 8422 §5.1.1 named groups we accept (OpenSSL names).
ALLOWED_GROUPS = ("X25519", "X448", "P-256", "P-384", "P-521")
# TLS 1.2: ECDHE key exchange with an AEAD cipher only (RFC 7525 §4.2 / RFC 9325 §4.2).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!PSK:!SRP"

# OpenSSL control codes (ssl.h): SSL_CTX_set1_groups_list() and SSL_get_negotiated_group()
# are macros over SSL_CTX_ctrl()/SSL_ctrl().
_SSL_CTRL_SET_GROUPS_LIST = 92
_SSL_CTRL_GET_NEGOTIATED_GROUP = 134

# OpenSSL short names -> the names used in RFC 8422 / our UI
_GROUP_NAMES = {
    "prime256v1": "P-256",
    "secp256r1": "P-256",
    "secp384r1": "P-384",
    "secp521r1": "P-521",
    "prime192v1": "P-192",
    "secp192r1": "P-192",
    "secp224r1": "P-224",
    "x25519": "X25519",
    "x448": "X448",
}


class TlsConfigError(Exception):
    """A TLS setting is unusable (unreadable CA file, bad client certificate...)."""


class TlsPolicyError(TlsConfigError):
    """The TLS policy cannot be enforced on this Python/OpenSSL (e.g. groups cannot be set)."""


# --------------------------------------------------------------------------------------------
# Trust anchors
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """One trusted CA certificate."""

    subject: str  # RFC 4514 string
    sha256: str  # SHA-256 fingerprint of the DER certificate, upper-case hex with colons
    not_after: dt.datetime  # end of validity (UTC)
    source: str  # "system" or the PEM file it came from
    der: bytes

    @property
    def expired(self) -> bool:
        return self.not_after < dt.datetime.now(dt.UTC)


def _fingerprint(der: bytes) -> str:
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


class TrustStore:
    """The trust anchors of a line: every one is listed (subject, fingerprint, expiry)."""

    def __init__(self, anchors: Iterable[TrustAnchor] = ()) -> None:
        self._anchors: dict[str, TrustAnchor] = {}
        for a in anchors:
            self._anchors.setdefault(a.sha256, a)

    @classmethod
    def from_files(cls, ca_files: Iterable[str | Path] = (), *, system: bool = True) -> TrustStore:
        """The system store (when ``system``) plus every certificate of the PEM ``ca_files``."""
        store = cls()
        if system:
            store.add_system()
        for path in ca_files:
            store.add_pem_file(path)
        return store

    @property
    def anchors(self) -> tuple[TrustAnchor, ...]:
        return tuple(self._anchors.values())

    def __len__(self) -> int:
        return len(self._anchors)

    def add_pem_data(self, data: bytes, source: str) -> list[TrustAnchor]:
        """Add every certificate of a PEM bundle; raise :class:`TlsConfigError` if none."""
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise TlsConfigError(f"{source}: no PEM certificate ({exc})") from None
        added = []
        for cert in certs:
            der = cert.public_bytes(Encoding.DER)
            anchor = TrustAnchor(
                subject=cert.subject.rfc4514_string(),
                sha256=_fingerprint(der),
                not_after=cert.not_valid_after_utc,
                source=source,
                der=der,
            )
            self._anchors.setdefault(anchor.sha256, anchor)
            added.append(anchor)
        return added

    def add_pem_file(self, path: str | Path) -> list[TrustAnchor]:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise TlsConfigError(f"cannot read CA file {path}: {exc.strerror}") from None
        return self.add_pem_data(data, str(path))

    def add_system(self) -> int:
        """Add the system's CA certificates (OpenSSL default file and directory)."""
        paths = ssl.get_default_verify_paths()
        files: list[Path] = []
        if paths.cafile:
            files.append(Path(paths.cafile))
        if paths.capath and os.path.isdir(paths.capath):
            files += sorted(p for p in Path(paths.capath).iterdir() if p.suffix in {".pem", ".crt"})
        before = len(self)
        for f in files:
            try:
                data = f.read_bytes()
            except OSError:
                continue
            try:
                with warnings.catch_warnings():
                    # some distribution bundles still hold certificates with a negative serial
                    warnings.simplefilter("ignore")
                    certs = x509.load_pem_x509_certificates(data)
                for cert in certs:
                    der = cert.public_bytes(Encoding.DER)
                    anchor = TrustAnchor(
                        cert.subject.rfc4514_string(),
                        _fingerprint(der),
                        cert.not_valid_after_utc,
                        "system",
                        der,
                    )
                    self._anchors.setdefault(anchor.sha256, anchor)
            except ValueError:
                continue  # not a certificate (e.g. a stray file in /etc/ssl/certs)
        return len(self) - before

    def cadata(self) -> bytes:
        """All anchors, DER concatenated (for ``SSLContext.load_verify_locations(cadata=)``)."""
        return b"".join(a.der for a in self._anchors.values())


# --------------------------------------------------------------------------------------------
# Groups through ctypes
# --------------------------------------------------------------------------------------------
class _Lib:
    """libssl/libcrypto functions reached through the ``_ssl`` extension module."""

    def __init__(self) -> None:
        import _ssl  # noqa: PLC0415 - the C module that links the libssl ssl uses

        lib = ctypes.CDLL(_ssl.__file__)
        self.ctx_ctrl = lib.SSL_CTX_ctrl
        self.ctx_ctrl.restype = ctypes.c_long
        self.ctx_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        self.ctx_get_options = lib.SSL_CTX_get_options
        self.ctx_get_options.restype = ctypes.c_uint64
        self.ctx_get_options.argtypes = [ctypes.c_void_p]
        self.ssl_ctrl = lib.SSL_ctrl
        self.ssl_ctrl.restype = ctypes.c_long
        self.ssl_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        self.ssl_get_ctx = lib.SSL_get_SSL_CTX
        self.ssl_get_ctx.restype = ctypes.c_void_p
        self.ssl_get_ctx.argtypes = [ctypes.c_void_p]
        self.clear_errors = lib.ERR_clear_error
        self.clear_errors.restype = None
        self.clear_errors.argtypes = []
        self.nid2sn = lib.OBJ_nid2sn
        self.nid2sn.restype = ctypes.c_char_p
        self.nid2sn.argtypes = [ctypes.c_int]


_lib: _Lib | None = None
_lib_error: str | None = None
# PySSLContext {PyObject_HEAD; SSL_CTX *ctx} and PySSLSocket {PyObject_HEAD; PyObject *Socket;
# SSL *ssl} (Modules/_ssl.c) are unchanged from 3.11 through 3.14
_LAYOUT_CHECKED_UP_TO = (3, 14)


def _get_lib() -> _Lib:
    global _lib, _lib_error
    if _lib is None and _lib_error is None:
        if sys.implementation.name != "cpython":
            _lib_error = f"needs CPython (running {sys.implementation.name})"
        elif not (3, 11) <= sys.version_info[:2] <= _LAYOUT_CHECKED_UP_TO:
            # never read object memory of a CPython whose _ssl layout we have not checked
            _lib_error = f"_ssl object layout not checked for Python {sys.version.split()[0]}"
        else:
            try:
                _lib = _Lib()
            except (OSError, AttributeError, ImportError) as exc:
                _lib_error = f"libssl functions not reachable via ctypes: {exc}"
    if _lib is None:
        raise TlsPolicyError(f"cannot restrict TLS key exchange groups: {_lib_error}")
    return _lib


_verified_ctx: weakref.WeakKeyDictionary[ssl.SSLContext, int] = weakref.WeakKeyDictionary()


def _ctx_pointer(ctx: ssl.SSLContext) -> int:
    """The ``SSL_CTX*`` of ``ctx``: first field after PyObject_HEAD in CPython's PySSLContext."""
    lib = _get_lib()
    known = _verified_ctx.get(ctx)
    if known is not None:
        return known
    ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    # verify that it is really this context's SSL_CTX: options read through OpenSSL must equal
    # the Python view, also after flipping one option bit
    if not ptr or lib.ctx_get_options(ptr) != int(ctx.options):
        raise TlsPolicyError("cannot locate SSL_CTX in ssl.SSLContext (unknown CPython layout)")
    flip = ssl.OP_NO_TICKET
    ctx.options ^= flip
    try:
        same = lib.ctx_get_options(ptr) == int(ctx.options)
    finally:
        ctx.options ^= flip
    if not same:
        raise TlsPolicyError("cannot locate SSL_CTX in ssl.SSLContext (unknown CPython layout)")
    _verified_ctx[ctx] = ptr
    return ptr


def _ssl_pointer(obj: ssl.SSLObject | ssl.SSLSocket) -> int:
    """The ``SSL*`` of an SSL object: PySSLSocket = {PyObject_HEAD; PyObject *Socket; SSL *ssl}."""
    lib = _get_lib()
    inner = getattr(obj, "_sslobj", None)
    if inner is None:
        raise TlsPolicyError("TLS object has no _sslobj (not connected?)")
    ptr = ctypes.c_void_p.from_address(
        id(inner) + object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)
    ).value
    if not ptr or lib.ssl_get_ctx(ptr) != _ctx_pointer(obj.context):
        raise TlsPolicyError("cannot locate SSL in ssl.SSLObject (unknown CPython layout)")
    return ptr


def set_groups(ctx: ssl.SSLContext, groups: Iterable[str]) -> None:
    """Restrict the key exchange groups of ``ctx`` (``SSL_CTX_set1_groups_list``)."""
    names = ":".join(groups)
    ptr = _ctx_pointer(ctx)
    lib = _get_lib()
    if lib.ctx_ctrl(ptr, _SSL_CTRL_SET_GROUPS_LIST, 0, names.encode()) != 1:
        # leave no stale error in OpenSSL's thread-local queue: _ssl would report it later
        lib.clear_errors()
        raise TlsPolicyError(f"OpenSSL refused the group list {names!r}")


def group_policy_available() -> bool:
    """True when :func:`set_groups` works on this Python (checked on a scratch context)."""
    try:
        set_groups(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), ALLOWED_GROUPS)
    except TlsPolicyError:
        return False
    return True


def negotiated_group(obj: ssl.SSLObject | ssl.SSLSocket) -> str | None:
    """Name of the ECDHE/DHE group of a completed handshake (``SSL_get_negotiated_group``)."""
    try:
        ptr = _ssl_pointer(obj)
    except TlsPolicyError:
        return None
    lib = _get_lib()
    nid = int(lib.ssl_ctrl(ptr, _SSL_CTRL_GET_NEGOTIATED_GROUP, 0, None))
    if nid <= 0:
        return None
    sn = lib.nid2sn(nid)
    if not sn:
        return f"group-{nid}"
    name = str(sn.decode())
    return _GROUP_NAMES.get(name.lower(), name)


# --------------------------------------------------------------------------------------------
# Contexts and names
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """An optional client certificate (PEM chain) and its key."""

    certfile: Path
    keyfile: Path | None = None
    password: str | None = None


def make_client_context(
    trust: TrustStore | Iterable[str | Path],
    client_cert: ClientCertificate | None = None,
    verify: bool = True,
    *,
    require_group_policy: bool = True,
) -> ssl.SSLContext:
    """An ``SSLContext`` implementing the client policy (see the module docstring).

    ``trust`` is a :class:`TrustStore` or CA PEM file paths (then without the system store).
    With ``verify=False`` neither chain nor name is checked (the line is insecure).
    ``require_group_policy=False`` keeps going (OpenSSL's default groups) when the groups cannot
    be set on this interpreter; by default that raises :class:`TlsPolicyError`.
    """
    store = trust if isinstance(trust, TrustStore) else TrustStore.from_files(trust, system=False)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    try:
        set_groups(ctx, ALLOWED_GROUPS)
    except TlsPolicyError:
        if require_group_policy:
            raise
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = True  # RFC 5922 §7.2 against the SIP domain (server_hostname)
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN
        if len(store):
            ctx.load_verify_locations(cadata=store.cadata())
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        try:
            ctx.load_cert_chain(client_cert.certfile, client_cert.keyfile, client_cert.password)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"client certificate {client_cert.certfile}: {exc}") from None
    return ctx


def make_server_context(
    certfile: str | Path,
    keyfile: str | Path | None = None,
    *,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
) -> ssl.SSLContext:
    """A server ``SSLContext`` with the same policy as the client side: TLS 1.2 or newer,
    ECDHE with AEAD suites only, the RFC 8422 groups (OpenSSL's defaults, with a warning, where
    the groups cannot be set on this interpreter). Raises :class:`TlsConfigError` for an
    unusable certificate or key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = max(minimum_version, ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= (
        ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    )
    try:
        set_groups(ctx, ALLOWED_GROUPS)
    except TlsPolicyError as exc:
        log.warning("TLS server: %s; OpenSSL's default groups apply", exc)
    try:
        ctx.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"certificate {certfile}: {exc}") from None
    return ctx


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def tls_server_name(sip_domain: str) -> str:
    """The identity to validate: the SIP domain (RFC 5922 §4), normalised; IPs unbracketed."""
    host = sip_domain.strip().rstrip(".").lower()
    return host.strip("[]") if host.startswith("[") else host


def sni_for(sip_domain: str) -> str | None:
    """SNI to send: the SIP domain, or none for an IP address (RFC 6066 §3)."""
    name = tls_server_name(sip_domain)
    return None if _is_ip(name) else name


# --------------------------------------------------------------------------------------------
# Negotiated details and refusal reasons
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TlsInfo:
    """What a completed handshake negotiated."""

    version: str  # "TLSv1.3"
    cipher: str  # OpenSSL suite name
    group: str | None  # key exchange group, e.g. "X25519", "P-256"
    peer_subject: str | None  # RFC 4514 subject of the server certificate
    peer_sha256: str | None  # fingerprint of the server certificate
    verified: bool  # chain and name verified; False = insecure line
    server_name: str | None  # the identity that was checked (SIP domain or IP)


def tls_info(obj: ssl.SSLObject | ssl.SSLSocket) -> TlsInfo:
    """Extract :class:`TlsInfo` from a connected ``SSLObject``/``SSLSocket``."""
    cipher = obj.cipher()
    der = obj.getpeercert(binary_form=True)
    subject = sha = None
    if der:
        sha = _fingerprint(der)
        try:
            subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        except ValueError:
            subject = None
    ctx = obj.context
    verified = ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    server_name = obj.server_hostname
    return TlsInfo(
        version=obj.version() or "",
        cipher=cipher[0] if cipher else "",
        group=negotiated_group(obj),
        peer_subject=subject,
        peer_sha256=sha,
        verified=verified,
        server_name=str(server_name) if server_name else None,
    )


class RefusalReason(enum.StrEnum):
    """Why a TLS connection was refused (shown in the line's status)."""

    EXPIRED = "certificate expired"
    NOT_YET_VALID = "certificate not yet valid"
    SELF_SIGNED = "self-signed certificate"
    UNKNOWN_CA = "certificate issued by an unknown CA"
    WRONG_NAME = "certificate does not match the SIP domain"
    BAD_CERTIFICATE = "invalid certificate"
    PROTOCOL_VERSION = "server does not offer TLS 1.2 or newer"
    NO_SHARED_PARAMETERS = "no shared cipher suite or key exchange group"
    HANDSHAKE_FAILED = "TLS handshake failed"
    CONNECTION_FAILED = "connection failed"


# X509_V_ERR_* codes (openssl/x509_vfy.h)
_VERIFY_CODES = {
    2: RefusalReason.UNKNOWN_CA,  # unable to get issuer certificate
    9: RefusalReason.NOT_YET_VALID,
    10: RefusalReason.EXPIRED,
    18: RefusalReason.SELF_SIGNED,  # depth zero self-signed
    19: RefusalReason.UNKNOWN_CA,  # self-signed certificate in chain (untrusted root)
    20: RefusalReason.UNKNOWN_CA,  # unable to get local issuer certificate
    21: RefusalReason.UNKNOWN_CA,  # unable to verify the first certificate
    62: RefusalReason.WRONG_NAME,  # hostname mismatch
    64: RefusalReason.WRONG_NAME,  # IP address mismatch
}
_VERSION_ERRORS = {
    "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "WRONG_VERSION_NUMBER",
    "NO_PROTOCOLS_AVAILABLE",
    "VERSION_TOO_LOW",
    "TLSV1_ALERT_INAPPROPRIATE_FALLBACK",
}
_PARAMETER_ERRORS = {
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "NO_SHARED_CIPHER",
    "NO_SUITABLE_GROUPS",
    "NO_CIPHERS_AVAILABLE",
    "WRONG_CURVE",
    "WRONG_CIPHER_RETURNED",
    "TLSV1_ALERT_INSUFFICIENT_SECURITY",
    "BAD_ECPOINT",
    "NO_SUITABLE_KEY_SHARE",
}


@dataclass(frozen=True, slots=True)
class TlsRefusal:
    """A refused TLS connection: the reason and OpenSSL's detail."""

    reason: RefusalReason
    detail: str

    def __str__(self) -> str:
        return f"TLS refused: {self.reason.value} ({self.detail})"


def explain_tls_error(exc: BaseException) -> TlsRefusal:
    """Map an exception from a TLS handshake to a :class:`TlsRefusal`."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        reason = _VERIFY_CODES.get(code, RefusalReason.BAD_CERTIFICATE)
        return TlsRefusal(reason, f"{exc.verify_message} (X509 error {code})")
    if isinstance(exc, ssl.SSLError):
        name = (exc.reason or "").upper()
        detail = exc.reason or str(exc)
        if name in _VERSION_ERRORS:
            return TlsRefusal(RefusalReason.PROTOCOL_VERSION, detail)
        if name in _PARAMETER_ERRORS:
            return TlsRefusal(RefusalReason.NO_SHARED_PARAMETERS, detail)
        return TlsRefusal(RefusalReason.HANDSHAKE_FAILED, detail)
    if isinstance(exc, ConnectionError | EOFError | TimeoutError):
        return TlsRefusal(RefusalReason.CONNECTION_FAILED, str(exc) or type(exc).__name__)
    if isinstance(exc, OSError):
        return TlsRefusal(RefusalReason.CONNECTION_FAILED, exc.strerror or str(exc))
    return TlsRefusal(RefusalReason.HANDSHAKE_FAILED, f"{type(exc).__name__}: {exc}")
