"""TLS client policy against in-process asyncio TLS servers (Python's own ssl, loopback).

The openssl s_server and Kamailio cases are in tests/interop/net/.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from sippa.net import tls
from tests.peers.certs import CertPair, LabCerts, make_lab_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LabCerts:
    return make_lab_certs(tmp_path_factory.mktemp("tls-certs"))


def server_context(
    pair: CertPair,
    *,
    groups: str | None = None,
    ciphers: str | None = None,
    maximum: ssl.TLSVersion | None = None,
    client_ca: Path | None = None,
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pair.cert, pair.key)
    if ciphers:
        ctx.set_ciphers(ciphers)
    if maximum:
        ctx.maximum_version = maximum
    if groups:
        tls.set_groups(ctx, groups.split(":"))
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


@asynccontextmanager
async def tls_server(ctx: ssl.SSLContext) -> AsyncIterator[int]:
    """A blocking TLS server in a thread: unlike asyncio's server it sends TLS alerts."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.02)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True) as s:
                    s.sendall(b"hello")
            except (ssl.SSLError, OSError):
                conn.close()  # the handshake failed: the alert has been sent

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


async def connect(ctx: ssl.SSLContext, port: int, name: str) -> tls.TlsInfo:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=name), 5
    )
    try:
        assert await reader.read() == b"hello"
        obj = writer.get_extra_info("ssl_object")
        assert isinstance(obj, ssl.SSLObject)
        return tls.tls_info(obj)
    finally:
        writer.close()


async def refusal(ctx: ssl.SSLContext, port: int, name: str) -> tls.TlsRefusal:
    with pytest.raises((ssl.SSLError, OSError)) as info:
        await connect(ctx, port, name)
    return tls.explain_tls_error(info.value)


@pytest.fixture
def policy(certs: LabCerts) -> ssl.SSLContext:
    return tls.make_client_context([certs.ca.cert])


# ---- the context itself ------------------------------------------------------------------------
def test_context_settings(certs: LabCerts) -> None:
    ctx = tls.make_client_context([certs.ca.cert])
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.verify_flags & ssl.VERIFY_X509_STRICT
    suites = ctx.get_ciphers()
    assert {c["protocol"] for c in suites} == {"TLSv1.2", "TLSv1.3"}
    for c in suites:
        assert c["aead"] is True, c
        if c["protocol"] == "TLSv1.2":
            assert c["kea"] == "kx-ecdhe", c  # never static RSA, never DHE
    assert len(ctx.get_ca_certs()) == 1


def test_verify_off_context(certs: LabCerts) -> None:
    ctx = tls.make_client_context([], verify=False)
    assert ctx.verify_mode is ssl.CERT_NONE and not ctx.check_hostname
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2


def test_group_policy_is_available_here() -> None:
    assert tls.group_policy_available()


def test_set_groups_rejects_unknown_names() -> None:
    with pytest.raises(tls.TlsPolicyError):
        tls.set_groups(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), ["no-such-group"])


def test_names_and_sni() -> None:
    assert tls.tls_server_name("Example.TEST.") == "example.test"
    assert tls.tls_server_name("[::1]") == "::1"
    assert tls.sni_for("example.test") == "example.test"
    assert tls.sni_for("127.0.0.1") is None
    assert tls.sni_for("[2001:db8::1]") is None


# ---- trust store -------------------------------------------------------------------------------
def test_trust_store_lists_anchors(certs: LabCerts) -> None:
    store = tls.TrustStore.from_files(
        [certs.ca.cert, certs.ca.cert, certs.wrong_ca.cert], system=False
    )
    assert len(store) == 2  # the duplicate is listed once
    subjects = [a.subject for a in store.anchors]
    assert "CN=sippa Test CA,O=sippa test lab" in subjects
    anchor = store.anchors[0]
    assert len(anchor.sha256) == 95 and anchor.sha256.count(":") == 31
    assert anchor.not_after > dt.datetime.now(dt.UTC) and not anchor.expired
    assert anchor.source == str(certs.ca.cert)


def test_trust_store_errors(tmp_path: Path, certs: LabCerts) -> None:
    with pytest.raises(tls.TlsConfigError, match="cannot read"):
        tls.TrustStore.from_files([tmp_path / "missing.pem"], system=False)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(tls.TlsConfigError, match="no PEM certificate"):
        tls.TrustStore.from_files([bad], system=False)
    with pytest.raises(tls.TlsConfigError, match="client certificate"):
        tls.make_client_context([certs.ca.cert], tls.ClientCertificate(bad))


def test_system_store() -> None:
    paths = ssl.get_default_verify_paths()
    if not (paths.cafile and Path(paths.cafile).exists()):
        pytest.skip("no system CA bundle on this machine")
    store = tls.TrustStore.from_files()
    assert len(store) > 10
    assert {a.source for a in store.anchors} == {"system"}


async def test_custom_anchor_is_required(certs: LabCerts) -> None:
    """The system store does not know the lab CA: unknown CA without the custom file."""
    async with tls_server(server_context(certs.server)) as port:
        r = await refusal(tls.make_client_context(tls.TrustStore()), port, "example.test")
        assert r.reason is tls.RefusalReason.UNKNOWN_CA
        info = await connect(
            tls.make_client_context(tls.TrustStore.from_files([certs.ca.cert])),
            port,
            "example.test",
        )
        assert info.verified


# ---- handshakes --------------------------------------------------------------------------------
async def test_good_server_details(certs: LabCerts, policy: ssl.SSLContext) -> None:
    async with tls_server(server_context(certs.server)) as port:
        info = await connect(policy, port, "example.test")
    assert info.version == "TLSv1.3"
    assert info.group == "X25519"
    assert info.cipher.startswith("TLS_")
    assert info.peer_subject == "CN=sip.example.test,O=sippa test lab"
    assert info.verified and info.server_name == "example.test"


@pytest.mark.parametrize(
    ("groups", "maximum", "expected"),
    [
        ("P-384", None, "P-384"),
        ("P-521", ssl.TLSVersion.TLSv1_2, "P-521"),
        ("X448", None, "X448"),
        ("P-256", ssl.TLSVersion.TLSv1_2, "P-256"),
    ],
)
async def test_allowed_groups_negotiate(
    certs: LabCerts, policy: ssl.SSLContext, groups: str, maximum, expected: str
) -> None:
    async with tls_server(server_context(certs.server, groups=groups, maximum=maximum)) as port:
        info = await connect(policy, port, "sip.example.test")
    assert info.group == expected


@pytest.mark.parametrize(
    ("groups", "ciphers", "maximum"),
    [
        ("secp224r1", "ECDHE:@SECLEVEL=0", ssl.TLSVersion.TLSv1_2),
        ("secp192r1", "ECDHE:@SECLEVEL=0", ssl.TLSVersion.TLSv1_2),
        ("ffdhe2048", None, None),  # TLS 1.3 finite-field group: not in RFC 8422's list
    ],
)
async def test_other_groups_refused(
    certs: LabCerts, policy: ssl.SSLContext, groups: str, ciphers, maximum
) -> None:
    ctx = server_context(certs.server, groups=groups, ciphers=ciphers, maximum=maximum)
    async with tls_server(ctx) as port:
        r = await refusal(policy, port, "example.test")
        assert r.reason is tls.RefusalReason.NO_SHARED_PARAMETERS, r
        # control: a client offering that group gets through
        control = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        control.check_hostname = False
        control.verify_mode = ssl.CERT_NONE
        control.set_ciphers("ALL:@SECLEVEL=0")
        if maximum:
            control.maximum_version = maximum
        tls.set_groups(control, [groups])
        info = await connect(control, port, "example.test")
        assert not info.verified


async def test_static_rsa_fallback_is_impossible(certs: LabCerts, policy) -> None:
    """A weak-group server that also allows RSA key exchange: a client with a default cipher
    string 'succeeds' through static RSA; ours refuses."""
    ctx = server_context(
        certs.server,
        groups="secp192r1",
        ciphers="ECDHE:AES128-GCM-SHA256:@SECLEVEL=0",
        maximum=ssl.TLSVersion.TLSv1_2,
    )
    async with tls_server(ctx) as port:
        lax = ssl.create_default_context(cafile=str(certs.ca.cert))
        lax.set_ciphers("DEFAULT")
        info = await connect(lax, port, "example.test")
        assert info.cipher == "AES128-GCM-SHA256" and info.group is None  # static RSA
        r = await refusal(policy, port, "example.test")
        assert r.reason is tls.RefusalReason.NO_SHARED_PARAMETERS


async def test_old_versions_refused(certs: LabCerts, policy) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 on purpose
        ctx = server_context(
            certs.server, ciphers="DEFAULT:@SECLEVEL=0", maximum=ssl.TLSVersion.TLSv1_1
        )
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    async with tls_server(ctx) as port:
        r = await refusal(policy, port, "example.test")
        assert r.reason is tls.RefusalReason.PROTOCOL_VERSION


@pytest.mark.parametrize(
    ("pair", "name", "reason"),
    [
        ("expired", "example.test", tls.RefusalReason.EXPIRED),
        ("not_yet_valid", "example.test", tls.RefusalReason.NOT_YET_VALID),
        ("self_signed", "example.test", tls.RefusalReason.SELF_SIGNED),
        ("unknown_ca", "example.test", tls.RefusalReason.UNKNOWN_CA),
        ("evil", "example.test", tls.RefusalReason.WRONG_NAME),
        ("evil", "127.0.0.1", tls.RefusalReason.WRONG_NAME),
        ("server", "redirect.example.test", tls.RefusalReason.WRONG_NAME),
        ("server", "127.0.0.2", tls.RefusalReason.WRONG_NAME),
    ],
)
async def test_bad_certificates(
    certs: LabCerts, policy, pair: str, name: str, reason: tls.RefusalReason
) -> None:
    async with tls_server(server_context(getattr(certs, pair))) as port:
        r = await refusal(policy, port, name)
        assert r.reason is reason, r
        insecure = await connect(tls.make_client_context([], verify=False), port, name)
        assert insecure.verified is False


async def test_ip_proxy_validates_against_ip_san(certs: LabCerts, policy) -> None:
    async with tls_server(server_context(certs.server)) as port:
        info = await connect(policy, port, "127.0.0.1")
    assert info.verified and info.server_name == "127.0.0.1"


async def test_client_certificate(certs: LabCerts) -> None:
    ctx = server_context(certs.server, client_ca=certs.ca.cert, maximum=ssl.TLSVersion.TLSv1_2)
    async with tls_server(ctx) as port:
        with_cert = tls.make_client_context(
            [certs.ca.cert], tls.ClientCertificate(certs.client.cert, certs.client.key)
        )
        assert (await connect(with_cert, port, "example.test")).verified
        r = await refusal(tls.make_client_context([certs.ca.cert]), port, "example.test")
        assert r.reason in {
            tls.RefusalReason.HANDSHAKE_FAILED,
            tls.RefusalReason.NO_SHARED_PARAMETERS,
        }


# ---- reasons -----------------------------------------------------------------------------------
def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code = code
    exc.verify_message = message
    return exc


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (_verify_error(10, "certificate has expired"), tls.RefusalReason.EXPIRED),
        (_verify_error(19, "self-signed certificate in chain"), tls.RefusalReason.UNKNOWN_CA),
        (_verify_error(64, "IP address mismatch"), tls.RefusalReason.WRONG_NAME),
        (_verify_error(7, "certificate signature failure"), tls.RefusalReason.BAD_CERTIFICATE),
        (ConnectionResetError(104, "reset"), tls.RefusalReason.CONNECTION_FAILED),
        (TimeoutError(), tls.RefusalReason.CONNECTION_FAILED),
        (ValueError("x"), tls.RefusalReason.HANDSHAKE_FAILED),
    ],
)
def test_explain(exc: BaseException, reason: tls.RefusalReason) -> None:
    r = tls.explain_tls_error(exc)
    assert r.reason is reason
    assert str(r).startswith(f"TLS refused: {reason.value}")


def test_every_refusal_has_text() -> None:
    texts: list[Callable[[], str]] = [lambda r=r: r.value for r in tls.RefusalReason]
    assert all(t() for t in texts)


# ---- SNI and the degrade path --------------------------------------------------------------------
@pytest.mark.parametrize(("name", "sni"), [("example.test", "example.test"), ("127.0.0.1", None)])
async def test_sni_carries_the_sip_domain(certs: LabCerts, policy, name: str, sni) -> None:
    seen: list[str | None] = []
    ctx = server_context(certs.server)
    ctx.sni_callback = lambda _obj, server_name, _ctx: seen.append(server_name)
    async with tls_server(ctx) as port:
        await connect(policy, port, name)
    assert seen == [sni]
    assert tls.sni_for(name) == sni


def test_group_policy_unavailable_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, certs: LabCerts
) -> None:
    monkeypatch.setattr(tls, "_lib", None)
    monkeypatch.setattr(tls, "_lib_error", "simulated: no libssl symbols")
    with pytest.raises(tls.TlsPolicyError, match="cannot restrict TLS key exchange groups"):
        tls.make_client_context([certs.ca.cert])
    assert not tls.group_policy_available()
    # explicitly accepted degradation: OpenSSL's default groups, everything else still enforced
    ctx = tls.make_client_context([certs.ca.cert], require_group_policy=False)
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2 and ctx.check_hostname


def test_context_pointer_is_checked(certs: LabCerts) -> None:
    """The SSL_CTX* read from the object layout is verified against the context's options."""
    ctx = tls.make_client_context([certs.ca.cert])
    ptr = tls._ctx_pointer(ctx)
    other = tls.make_client_context([certs.ca.cert])
    assert tls._ctx_pointer(other) != ptr
    before = ctx.options
    tls._verified_ctx.pop(ctx, None)
    tls._ctx_pointer(ctx)
    assert ctx.options == before  # the probe restores the option it flips
