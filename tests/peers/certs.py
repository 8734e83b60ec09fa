"""Test PKI for the interop peers, made with ``cryptography`` (from the lab's make-certs.sh).

- ``ca``: the lab test CA, strict RFC 5280 extensions (so ``VERIFY_X509_STRICT`` accepts it);
- ``server``: CN sip.example.test, SAN DNS:sip.example.test, DNS:example.test, IP:127.0.0.1
  (example.test is in it because RFC 5922 checks the SIP *domain*);
- ``evil``: same CA, SAN DNS:evil.example.test only (the RFC 5922 SRV-redirection test);
- ``wrong_ca``: an unrelated CA; ``unknown_ca``: the server names, signed by ``wrong_ca``;
- ``expired``, ``not_yet_valid``: the server names, lab CA, outside their validity;
- ``self_signed``: the server names, signed by its own key (not a CA);
- ``client``: a client certificate for alice@example.test (EKU clientAuth), lab CA.

Leaf keys are RSA 2048, so a server can use any ECDHE group (also the weak ones).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES = ("sip.example.test", "example.test")
SERVER_IP = "127.0.0.1"


@dataclass(frozen=True)
class CertPair:
    """A certificate and its private key, both PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class LabCerts:
    """Every file of the test PKI (see the module docstring)."""

    directory: Path
    ca: CertPair
    wrong_ca: CertPair
    server: CertPair
    evil: CertPair
    expired: CertPair
    not_yet_valid: CertPair
    self_signed: CertPair
    unknown_ca: CertPair
    client: CertPair


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sippa test lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write(directory: Path, stem: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> CertPair:
    pair = CertPair(directory / f"{stem}.crt", directory / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pair.key.chmod(0o600)
    return pair


def _make_ca(cn: str, now: dt.datetime) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _key()
    name = _name(cn)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        # RFC 5280 §4.2.1.9 / §4.2.1.3 / §4.2.1.2: what a strict verifier wants of a CA
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    cn: str,
    dns_names: tuple[str, ...],
    ips: tuple[str, ...],
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    client: bool = False,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _key()
    issuer_name = issuer[0].subject if issuer else _name(cn)
    signing_key = issuer[1] if issuer else key
    issuer_pub = issuer[1].public_key() if issuer else key.public_key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if client:
        sans.append(x509.UniformResourceIdentifier(f"sip:{cn}"))
    eku = (
        [ExtendedKeyUsageOID.CLIENT_AUTH]
        if client
        else [
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.CLIENT_AUTH,
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_pub), critical=False
        )
        .sign(signing_key, hashes.SHA256())
    )
    return cert, key


def make_lab_certs(directory: Path) -> LabCerts:
    """Generate the whole test PKI into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    day = dt.timedelta(days=1)
    ca = _make_ca("sippa Test CA", now)
    wrong = _make_ca("Unrelated Wrong Test CA", now)
    ips = (SERVER_IP,)

    valid = (now - day, now + 825 * day)
    return LabCerts(
        directory=directory,
        ca=_write(directory, "ca", *ca),
        wrong_ca=_write(directory, "wrongca", *wrong),
        server=_write(
            directory, "server", *_make_leaf(SERVER_NAMES[0], SERVER_NAMES, ips, ca, *valid)
        ),
        evil=_write(
            directory,
            "evil",
            *_make_leaf("evil.example.test", ("evil.example.test",), (), ca, *valid),
        ),
        expired=_write(
            directory,
            "expired",
            *_make_leaf(SERVER_NAMES[0], SERVER_NAMES, ips, ca, now - 400 * day, now - 30 * day),
        ),
        not_yet_valid=_write(
            directory,
            "notyetvalid",
            *_make_leaf(SERVER_NAMES[0], SERVER_NAMES, ips, ca, now + 30 * day, now + 400 * day),
        ),
        self_signed=_write(
            directory, "selfsigned", *_make_leaf(SERVER_NAMES[0], SERVER_NAMES, ips, None, *valid)
        ),
        unknown_ca=_write(
            directory, "unknownca", *_make_leaf(SERVER_NAMES[0], SERVER_NAMES, ips, wrong, *valid)
        ),
        client=_write(
            directory,
            "client",
            *_make_leaf("alice@example.test", (), (), ca, *valid, client=True),
        ),
    )
