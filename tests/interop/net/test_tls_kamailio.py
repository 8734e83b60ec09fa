"""The TLS client policy and RFC 3263/5922 against a real Kamailio located through dnsmasq.

Kamailio 5.6 crashes under concurrent TLS connection churn: these tests connect one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl
import warnings

import pytest

from sippa.net import tls
from sippa.net.dns import Resolver, locate
from sippa.sip.locate import LocateRequest, Target, Transport
from sippa.sip.uri import Uri
from tests.peers.certs import LabCerts
from tests.peers.dnsmasq import Dnsmasq
from tests.peers.kamailio import Kamailio

pytestmark = pytest.mark.interop


@pytest.fixture
def policy(lab_certs: LabCerts) -> ssl.SSLContext:
    return tls.make_client_context(tls.TrustStore.from_files([lab_certs.ca.cert], system=False))


@pytest.fixture
def resolver(dnsmasq: Dnsmasq) -> Resolver:
    return Resolver(dnsmasq.host, dnsmasq.port, timeout=1.0, lifetime=3.0)


async def resolve(resolver: Resolver, uri: str) -> Target:
    result = await locate(LocateRequest.from_uri(Uri.parse(uri)), resolver)
    assert result.targets, result.trace
    target = result.targets[0]
    assert target.transport is Transport.TLS
    return target


async def options(
    ctx: ssl.SSLContext, address: str, port: int, server_name: str
) -> tuple[tls.TlsInfo, str]:
    """TLS handshake validating ``server_name``, then OPTIONS sip:example.test; status line."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(address, port, ssl=ctx, server_hostname=server_name), 5
    )
    try:
        info = tls.tls_info(writer.get_extra_info("ssl_object"))
        local = writer.get_extra_info("sockname")
        tag = secrets.token_hex(4)
        request = (
            "OPTIONS sip:example.test SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS {local[0]}:{local[1]};branch=z9hG4bK{tag};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@example.test>;tag={tag}\r\n"
            "To: <sip:example.test>\r\n"
            f"Call-ID: {tag}@sippa-test\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        return info, head.decode().split("\r\n", 1)[0]
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, OSError):
            await writer.wait_closed()


async def refused(ctx: ssl.SSLContext, address: str, port: int, name: str) -> tls.TlsRefusal:
    with pytest.raises((ssl.SSLError, OSError)) as info:
        await options(ctx, address, port, name)
    return tls.explain_tls_error(info.value)


async def test_example_test_via_naptr_srv(resolver, kamailio: Kamailio, policy) -> None:
    target = await resolve(resolver, "sips:alice@example.test")
    assert (target.port, target.tls_server_name) == (kamailio.tls_port, "example.test")
    info, status = await options(policy, target.address, target.port, target.tls_server_name)
    assert status == "SIP/2.0 200 OK"
    assert info.verified and info.server_name == "example.test"
    assert info.version in {"TLSv1.2", "TLSv1.3"} and info.group in tls.ALLOWED_GROUPS
    assert info.peer_subject is not None and "CN=sip.example.test" in info.peer_subject


async def test_srv_redirection_is_refused(resolver, kamailio: Kamailio, policy) -> None:
    """RFC 5922 §4: redirect.example.test's SRV points at evil.example.test, whose certificate
    is valid, but not for the SIP domain redirect.example.test."""
    target = await resolve(resolver, "sips:alice@redirect.example.test")
    assert target.port == kamailio.evil_port and target.hostname == "evil.example.test"
    assert target.tls_server_name == "redirect.example.test"
    r = await refused(policy, target.address, target.port, target.tls_server_name)
    assert r.reason is tls.RefusalReason.WRONG_NAME, r
    assert "redirect.example.test" in r.detail
    # control: the reviewed firmware's mistake (validate the SRV target name) would accept it
    info, status = await options(policy, target.address, target.port, target.hostname)
    assert info.verified and status == "SIP/2.0 200 OK"


async def test_evil_domain_positive_control(resolver, kamailio: Kamailio, policy) -> None:
    target = await resolve(resolver, "sips:x@evil.example.test")
    info, status = await options(policy, target.address, target.port, target.tls_server_name)
    assert info.verified and status == "SIP/2.0 200 OK"
    assert info.peer_subject is not None and "CN=evil.example.test" in info.peer_subject


async def test_ip_proxy_validates_against_ip_san(resolver, kamailio: Kamailio, policy) -> None:
    target = await resolve(resolver, f"sips:alice@127.0.0.1:{kamailio.tls_port}")
    assert target.tls_server_name == "127.0.0.1"
    info, status = await options(policy, target.address, target.port, target.tls_server_name)
    assert info.verified and info.server_name == "127.0.0.1" and status == "SIP/2.0 200 OK"
    # the evil certificate has no IP SAN
    r = await refused(policy, "127.0.0.1", kamailio.evil_port, "127.0.0.1")
    assert r.reason is tls.RefusalReason.WRONG_NAME


async def test_weak_group_kamailio_is_refused(kamailio_factory, policy) -> None:
    weak = kamailio_factory(tls_groups="secp192r1:secp224r1")
    r = await refused(policy, weak.host, weak.tls_port, "example.test")
    assert r.reason is tls.RefusalReason.NO_SHARED_PARAMETERS, r
    control = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    control.check_hostname = False
    control.verify_mode = ssl.CERT_NONE
    control.maximum_version = ssl.TLSVersion.TLSv1_2
    control.set_ciphers("ECDHE:@SECLEVEL=0")
    tls.set_groups(control, ["secp192r1", "secp224r1"])
    info, status = await options(control, weak.host, weak.tls_port, "example.test")
    assert info.group in {"P-192", "P-224"} and status == "SIP/2.0 200 OK"


async def test_old_tls_kamailio_is_refused(kamailio_factory, policy) -> None:
    old = kamailio_factory(
        tls_method="TLSv1.1",
        tls_groups="X25519:P-256",
        tls_ciphers="DEFAULT:@SECLEVEL=0",
        tls_max_proto="TLSv1.1",
    )
    r = await refused(policy, old.host, old.tls_port, "example.test")
    assert r.reason is tls.RefusalReason.PROTOCOL_VERSION, r
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 on purpose
        control = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        control.check_hostname = False
        control.verify_mode = ssl.CERT_NONE
        control.minimum_version = ssl.TLSVersion.TLSv1_1
        control.maximum_version = ssl.TLSVersion.TLSv1_1
    control.set_ciphers("DEFAULT:@SECLEVEL=0")
    info, _ = await options(control, old.host, old.tls_port, "example.test")
    assert info.version == "TLSv1.1"
