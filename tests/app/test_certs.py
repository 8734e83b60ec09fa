"""The phone's self-signed certificates: a web leaf and the echo service's anchor."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from pathlib import Path

from cryptography import x509

from sippa.app.certs import alt_names, write_self_signed


def test_alt_names_tell_addresses_from_names() -> None:
    assert alt_names(["127.0.0.1", "::1", "phone.example", "", "phone.example"]) == [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.DNSName("phone.example"),
    ]


def test_leaf_and_anchor_profiles(tmp_path: Path) -> None:
    for anchor in (False, True):
        cert_path, key_path = tmp_path / f"{anchor}-cert.pem", tmp_path / f"{anchor}-key.pem"
        pem = write_self_signed(cert_path, key_path, common_name="t", hosts=("127.0.0.1",),
                                days=3, anchor=anchor)
        assert cert_path.read_bytes() == pem
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        cert = x509.load_pem_x509_certificate(pem)
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert bc.ca is anchor
        has_ku = any(isinstance(e.value, x509.KeyUsage) for e in cert.extensions)
        assert has_ku is anchor
        # OpenSSL takes the pair as a server certificate
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_path, key_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "False-cert.pem", "False-key.pem", "True-cert.pem", "True-key.pem"
    ]  # no temporary files left behind
