"""What the web interface needs from below: its TLS server context, its certificate, trust anchors.

- :func:`ensure_certificate` makes a self-signed ECDSA P-256 certificate on first start (stored
  beside the database, the key readable by its owner only) unless one is configured.
- :func:`server_context` builds the web server's ``SSLContext`` with the SIP client's policy:
  TLS 1.2 or newer (``TLS_Server_Min_Version``), ECDHE with AEAD suites only and the same ECDHE
  groups (:func:`sippa.net.tls.set_groups`).
- :class:`TrustAnchors` lists every trust anchor (built-in system CAs and custom ones) and stores
  uploaded custom CA certificates (PEM, checked to be CA certificates) in a directory beside the
  database, so the phone's lines and the web pages see the same set.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from sippa.app.certs import write_self_signed
from sippa.net.tls import (
    TlsConfigError,
    TrustAnchor,
    TrustStore,
    make_server_context,
)

__all__ = [
    "MAX_CA_UPLOAD",
    "AnchorInfo",
    "CertificateError",
    "TrustAnchors",
    "custom_ca_dir",
    "custom_ca_files",
    "ensure_certificate",
    "server_context",
]

log = logging.getLogger(__name__)

CERT_NAME = "web-cert.pem"
KEY_NAME = "web-key.pem"
CERT_DAYS = 825  # the longest lifetime browsers accept for a server certificate
MAX_CA_UPLOAD = 256 * 1024  # a CA bundle larger than this is not a CA bundle

_TLS_VERSIONS = {"TLS 1.2": ssl.TLSVersion.TLSv1_2, "TLS 1.3": ssl.TLSVersion.TLSv1_3}


def custom_ca_dir(data_dir: Path) -> Path:
    """Where uploaded custom CA certificates are kept (beside the database)."""
    return data_dir / "ca"


def custom_ca_files(data_dir: Path) -> tuple[Path, ...]:
    """The uploaded custom CA files, for the phone's trust anchors."""
    directory = custom_ca_dir(data_dir)
    return tuple(sorted(directory.glob("*.pem"))) if directory.is_dir() else ()


class CertificateError(ValueError):
    """An uploaded or configured certificate that cannot be used (the message says why)."""


def ensure_certificate(directory: Path, *, names: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """The web certificate and key in ``directory``, made (self-signed) when missing."""
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    write_self_signed(
        cert_path,
        key_path,
        common_name=f"sippa {socket.gethostname()}",
        hosts=("localhost", socket.gethostname(), *names, "127.0.0.1", "::1"),
        days=CERT_DAYS,
    )
    log.info("made a self-signed web certificate %s", cert_path)
    return cert_path, key_path


def server_context(
    certfile: Path, keyfile: Path, *, min_version: str = "TLS 1.2"
) -> ssl.SSLContext:
    """The web server's context: TLS 1.2+ (or 1.3+), AEAD ECDHE suites, the SIP group policy."""
    if min_version not in _TLS_VERSIONS:
        raise ValueError(f"unknown TLS version {min_version!r}")
    try:
        ctx = make_server_context(certfile, keyfile, minimum_version=_TLS_VERSIONS[min_version])
    except TlsConfigError as exc:
        raise CertificateError(f"web {exc}") from None
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@dataclass(frozen=True, slots=True)
class AnchorInfo:
    """A trust anchor as the pages and the API show it."""

    subject: str
    sha256: str
    not_after: dt.datetime
    source: str
    custom: bool
    expired: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "sha256": self.sha256,
            "not_after": self.not_after.isoformat(),
            "source": self.source,
            "custom": self.custom,
            "expired": self.expired,
        }


class TrustAnchors:
    """Built-in (system) CAs plus the custom CAs stored in ``directory`` (one PEM each)."""

    def __init__(
        self, directory: Path | None, *, system: bool = True, extra_files: tuple[Path, ...] = ()
    ) -> None:
        self.directory = directory
        self.system = system
        self.extra_files = extra_files
        self._seen = self._signature()
        self._store = self._load()

    def _signature(self) -> tuple[tuple[str, int], ...]:
        """Names and change times of the custom CA files (another writer may change them)."""
        if self.directory is None or not self.directory.is_dir():
            return ()
        return tuple((p.name, p.stat().st_mtime_ns) for p in sorted(self.directory.glob("*.pem")))

    def reload(self) -> None:
        self._seen = self._signature()
        self._store = self._load()

    def _fresh(self) -> None:
        if self._signature() != self._seen:
            self.reload()

    def _load(self) -> TrustStore:
        store = TrustStore()
        if self.system:
            store.add_system()
        for path in self.extra_files:  # CA files given on the command line
            try:
                store.add_pem_file(path)
            except TlsConfigError as exc:
                log.warning("ignoring CA file %s: %s", path, exc)
        if self.directory is not None and self.directory.is_dir():
            for path in sorted(self.directory.glob("*.pem")):
                try:
                    store.add_pem_file(path)
                except TlsConfigError as exc:
                    log.warning("ignoring custom CA %s: %s", path, exc)
        return store

    @property
    def store(self) -> TrustStore:
        """The :class:`TrustStore` for SIP lines (system plus custom)."""
        self._fresh()
        return self._store

    def _info(self, a: TrustAnchor) -> AnchorInfo:
        """``custom`` anchors were uploaded (and can be removed); ``source`` says where from."""
        if a.source == "system":
            return AnchorInfo(a.subject, a.sha256, a.not_after, "built-in", False, a.expired)
        from sippa.app.trust import RULE_BUNDLE_NAME  # noqa: PLC0415 - it imports this module

        path = Path(a.source)
        if self.directory is not None and path.parent == self.directory:
            if path.name == RULE_BUNDLE_NAME:  # written by the Custom CA Rule, not removable here
                return AnchorInfo(a.subject, a.sha256, a.not_after, "Custom CA Rule", False,
                                  a.expired)
            return AnchorInfo(a.subject, a.sha256, a.not_after, "uploaded", True, a.expired)
        return AnchorInfo(a.subject, a.sha256, a.not_after, "CA file", False, a.expired)

    def anchors(self) -> list[AnchorInfo]:
        """Custom anchors first, then the built-in ones, each sorted by subject."""
        self._fresh()
        infos = [self._info(a) for a in self._store.anchors]
        return sorted(infos, key=lambda i: (i.source == "built-in", i.subject.lower()))

    def add_pem(self, data: bytes) -> list[AnchorInfo]:
        """Check and store a PEM upload of CA certificates; raise :class:`CertificateError`."""
        if self.directory is None:
            raise CertificateError("this phone has no directory for custom CAs")
        if len(data) > MAX_CA_UPLOAD:
            raise CertificateError(f"larger than {MAX_CA_UPLOAD // 1024} KiB")
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise CertificateError("not a PEM certificate (no BEGIN CERTIFICATE line)")
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise CertificateError(f"not a valid PEM certificate: {exc}") from None
        for cert in certs:
            try:
                bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            except x509.ExtensionNotFound:
                bc = None
            subject = cert.subject.rfc4514_string()
            if bc is None or not bc.ca:
                raise CertificateError(f"{subject or 'the certificate'} is not a CA certificate")
            if cert.not_valid_after_utc < dt.datetime.now(dt.UTC):
                raise CertificateError(f"{subject} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
        self.directory.mkdir(parents=True, exist_ok=True)
        added: list[AnchorInfo] = []
        for cert in certs:
            pem = cert.public_bytes(serialization.Encoding.PEM)
            fingerprint = cert.fingerprint(hashes.SHA256()).hex()
            path = self.directory / f"{fingerprint}.pem"
            path.write_bytes(pem)
            added += [self._info(a) for a in self._store.add_pem_data(pem, str(path))]
        self._seen = self._signature()
        return added

    def remove(self, sha256: str) -> bool:
        """Remove a custom anchor by fingerprint (built-in ones cannot be removed)."""
        if self.directory is None:
            return False
        wanted = sha256.replace(":", "").lower()
        path = self.directory / f"{wanted}.pem"
        if not wanted.isalnum() or not path.is_file():
            return False
        path.unlink()
        self.reload()
        return True
