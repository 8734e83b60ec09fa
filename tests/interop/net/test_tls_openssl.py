"""The TLS client policy against ``openssl s_server``: every bad server is refused, with the
right reason, and a good one is accepted with its negotiated details reported.

Each refusal has a positive control: a permissive client DOES complete the handshake with the
same server, so the refusal comes from our policy, not from a broken server.
"""

from __future__ import annotations

import socket
import ssl

import pytest

from sippa.net import tls
from tests.peers.certs import LabCerts

pytestmark = pytest.mark.interop


def _connect(ctx: ssl.SSLContext, port: int, name: str) -> tls.TlsInfo:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=name) as s,
    ):
        return tls.tls_info(s)


def _permissive(groups: str | None = None) -> ssl.SSLContext:
    """A client that accepts anything (the positive control)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    if groups:
        # groups under 256 bits exist in TLS <= 1.2 only; OpenSSL will not offer them in 1.3
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        tls.set_groups(ctx, groups.split(":"))
    return ctx


def _refusal(ctx: ssl.SSLContext, port: int, name: str) -> tls.TlsRefusal:
    with pytest.raises((ssl.SSLError, OSError)) as info:
        _connect(ctx, port, name)
    return tls.explain_tls_error(info.value)


@pytest.fixture(scope="module")
def policy(lab_certs: LabCerts) -> ssl.SSLContext:
    return tls.make_client_context(tls.TrustStore.from_files([lab_certs.ca.cert], system=False))


@pytest.mark.parametrize(
    ("profile", "reason", "control_groups"),
    [
        ("weak-groups", tls.RefusalReason.NO_SHARED_PARAMETERS, "secp192r1:secp224r1"),
        ("old-tls", tls.RefusalReason.PROTOCOL_VERSION, None),
        ("expired", tls.RefusalReason.EXPIRED, None),
        ("not-yet-valid", tls.RefusalReason.NOT_YET_VALID, None),
        ("self-signed", tls.RefusalReason.SELF_SIGNED, None),
        ("unknown-ca", tls.RefusalReason.UNKNOWN_CA, None),
        ("wrong-name", tls.RefusalReason.WRONG_NAME, None),
    ],
)
def test_bad_server_refused(
    openssl_server, policy: ssl.SSLContext, profile: str, reason, control_groups
) -> None:
    server = openssl_server(profile)
    refusal = _refusal(policy, server.port, "example.test")
    assert refusal.reason is reason, refusal
    assert reason.value in str(refusal)
    # positive control: the server does complete a handshake with a permissive client
    info = _connect(_permissive(control_groups), server.port, "example.test")
    assert info.verified is False
    if profile == "weak-groups":
        assert info.version == "TLSv1.2"
        assert info.group in {"P-192", "P-224"}
    if profile == "old-tls":
        assert info.version in {"TLSv1", "TLSv1.1"}


def test_weak_groups_without_static_rsa_fallback(openssl_server, lab_certs: LabCerts) -> None:
    """Static-RSA key exchange would let a client 'succeed' past a weak-group server: our
    TLS 1.2 suites are ECDHE+AEAD only, so there is nothing to fall back to."""
    ctx = tls.make_client_context([lab_certs.ca.cert])
    names = [c["name"] for c in ctx.get_ciphers()]
    assert names
    for c in ctx.get_ciphers():
        if c["protocol"] == "TLSv1.2":
            assert c["kea"] == "kx-ecdhe", c
            assert c["aead"] is True, c
    server = openssl_server("weak-groups")
    refusal = _refusal(ctx, server.port, "example.test")
    assert refusal.reason is tls.RefusalReason.NO_SHARED_PARAMETERS


@pytest.mark.parametrize("profile", ["good", "good-tls12"])
@pytest.mark.parametrize("name", ["example.test", "sip.example.test", "127.0.0.1"])
def test_good_server_accepted(openssl_server, policy, profile: str, name: str) -> None:
    server = openssl_server(profile)
    info = _connect(policy, server.port, name)
    assert info.verified is True
    assert info.server_name == name
    assert info.version == ("TLSv1.2" if profile == "good-tls12" else "TLSv1.3")
    assert info.group in tls.ALLOWED_GROUPS
    assert "GCM" in info.cipher or "CHACHA20" in info.cipher
    assert info.peer_subject is not None and "CN=sip.example.test" in info.peer_subject
    assert info.peer_sha256 is not None and len(info.peer_sha256) == 95


def test_wrong_name_for_the_sip_domain(openssl_server, policy) -> None:
    """The good certificate does not cover another domain (RFC 5922 §7.2)."""
    server = openssl_server("good")
    refusal = _refusal(policy, server.port, "redirect.example.test")
    assert refusal.reason is tls.RefusalReason.WRONG_NAME


def test_validation_off_is_reported_insecure(openssl_server, lab_certs: LabCerts) -> None:
    ctx = tls.make_client_context([], verify=False)
    info = _connect(ctx, openssl_server("self-signed").port, "example.test")
    assert info.verified is False
    assert info.group in tls.ALLOWED_GROUPS  # the group policy holds even without validation
    # still no weak groups or old versions when validation is off
    assert _refusal(ctx, openssl_server("weak-groups").port, "x").reason is (
        tls.RefusalReason.NO_SHARED_PARAMETERS
    )
    assert _refusal(ctx, openssl_server("old-tls").port, "x").reason is (
        tls.RefusalReason.PROTOCOL_VERSION
    )
