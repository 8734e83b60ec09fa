"""The TLS server side (incoming SIP over TLS) keeps the client side's policy."""

from __future__ import annotations

import asyncio
import ssl
import warnings
from pathlib import Path

import pytest

from sippa.net.tls import TlsConfigError, make_server_context, set_groups, tls_info
from tests.peers.certs import LabCerts, make_lab_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LabCerts:
    return make_lab_certs(tmp_path_factory.mktemp("certs"))


def _old_versions(ctx: ssl.SSLContext, maximum: ssl.TLSVersion | None = None) -> None:
    with warnings.catch_warnings():  # the peer under test is deliberately outdated
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        if maximum is not None:
            ctx.maximum_version = maximum


def _lax_client(ca: Path, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    _old_versions(ctx, maximum)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


async def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLObject:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server)
    port = srv.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=client), 5
        )
        obj = writer.get_extra_info("ssl_object")
        writer.close()
        return obj
    finally:
        srv.close()
        await srv.wait_closed()


async def test_a_good_client_gets_tls13_or_aead_and_an_allowed_group(certs: LabCerts) -> None:
    server = make_server_context(certs.server.cert, certs.server.key)
    obj = await _handshake(server, _lax_client(certs.ca.cert))
    info = tls_info(obj)
    assert info.version in ("TLSv1.2", "TLSv1.3")
    assert info.group in ("X25519", "X448", "P-256", "P-384", "P-521")


@pytest.mark.parametrize(
    ("version", "ciphers", "groups"),
    [
        (ssl.TLSVersion.TLSv1_1, "ALL:@SECLEVEL=0", None),  # old protocol
        (ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384", None),  # CBC
        (ssl.TLSVersion.TLSv1_2, "ALL:@SECLEVEL=0", ["secp192r1", "secp224r1"]),  # weak curves
    ],
    ids=["tls1.1", "cbc-only", "weak-groups"],
)
async def test_weak_clients_are_refused(
    certs: LabCerts, version: ssl.TLSVersion, ciphers: str, groups: list[str] | None
) -> None:
    server = make_server_context(certs.server.cert, certs.server.key)
    client = _lax_client(certs.ca.cert, version)
    client.set_ciphers(ciphers)
    if groups:
        set_groups(client, groups)
    # positive control: the same lax client gets through a server without our policy
    lax_server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _old_versions(lax_server)
    lax_server.set_ciphers("ALL:@SECLEVEL=0")
    lax_server.load_cert_chain(certs.server.cert, certs.server.key)
    if groups:
        set_groups(lax_server, groups)
    await _handshake(lax_server, client)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await _handshake(server, client)


def test_unusable_certificate_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(TlsConfigError, match=r"bad\.pem"):
        make_server_context(bad, bad)
