"""Self-signed certificates the phone makes for itself (ECDSA P-256, SHA-256).

Two profiles: a **leaf** for the web pages (``CA:FALSE``, browsers are asked to accept it once)
and an **anchor** for the loopback echo service, which the main phone trusts as exactly that
certificate (``CA:TRUE, pathlen 0`` with ``keyCertSign``, so OpenSSL accepts it as a trust
anchor that is also the server's certificate). Key and certificate are written atomically, the
key readable by its owner only, so a crash never leaves half a file that a later start would
take for a certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sippa.app.files import atomic_write

__all__ = ["alt_names", "write_self_signed"]


def alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """subjectAltName entries: IP addresses as iPAddress, everything else as dNSName."""
    out: list[x509.GeneralName] = []
    for host in dict.fromkeys(h for h in hosts if h):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            out.append(x509.DNSName(host))
    return out


def write_self_signed(
    cert_path: Path,
    key_path: Path,
    *,
    common_name: str,
    hosts: Iterable[str],
    days: int,
    anchor: bool = False,
) -> bytes:
    """Make a key and a self-signed server certificate for ``hosts``; returns the PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names(hosts)), critical=False)
        .add_extension(
            x509.BasicConstraints(ca=anchor, path_length=0 if anchor else None), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if anchor:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        ).add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    atomic_write(key_path, key_pem, mode=0o600)
    atomic_write(cert_path, pem, mode=0o644)
    return pem
