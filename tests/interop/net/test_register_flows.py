"""Flows to a real Kamailio without registering: CRLF keep-alive and random source ports."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from sippa.net.tls import TrustStore, make_client_context
from sippa.net.transport import Flow, Peer, TransportError, TransportLayer, TransportSettings
from tests.peers.certs import LabCerts
from tests.peers.kamailio import Kamailio

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("transport", ["TCP", "TLS"])
async def test_kamailio_answers_our_keepalive_pings(
    kamailio: Kamailio, lab_certs: LabCerts, transport: str
) -> None:
    ctx = make_client_context(TrustStore.from_files([lab_certs.ca.cert], system=False))
    errors: list[TransportError] = []
    layer = TransportLayer(
        lambda d, f: None,
        errors.append,
        settings=TransportSettings(keepalive_interval=0.2, keepalive_timeout=0.5),
        tls_client=lambda name: ctx,
    )
    port = kamailio.tls_port if transport == "TLS" else kamailio.sip_port
    try:
        conn = await layer.connect(Peer.of(transport, kamailio.host, port), server_name="127.0.0.1")
        await asyncio.sleep(1.0)
        assert conn.pings_sent >= 3
        assert conn.pongs_received >= 2  # RFC 5626 §4.4.1 pong (single CRLF) from Kamailio
        assert not errors and not conn.closing
    finally:
        await layer.close()


async def test_twenty_tls_connections_to_kamailio_use_random_source_ports(
    kamailio: Kamailio, lab_certs: LabCerts
) -> None:
    ctx = make_client_context(TrustStore.from_files([lab_certs.ca.cert], system=False))
    ports: list[int] = []
    for _ in range(20):  # sequential: Kamailio 5.6 dislikes concurrent TLS churn
        layer = TransportLayer(lambda d, f: None, lambda e: None, tls_client=lambda name: ctx)
        try:
            conn = await layer.connect(
                Peer.of("TLS", kamailio.host, kamailio.tls_port), server_name="example.test"
            )
            flow: Flow | None = conn.flow
            assert flow is not None and flow.tls is not None and flow.tls.verified
            ports.append(flow.local_port)
        finally:
            await layer.close()
    assert len(set(ports)) == 20
    steps = [b - a for a, b in itertools.pairwise(ports)]
    assert sum(1 for s in steps if 0 < s <= 2) <= 1, ports


async def test_core_request_to_a_name_is_located_with_dns(kamailio: Kamailio, dnsmasq) -> None:
    import secrets

    from sippa.net.dns import Resolver
    from sippa.net.endpoint import Endpoint
    from sippa.sip.core import CoreConfig, UserAgentCore
    from sippa.sip.events import Address, ResponseReceived
    from sippa.sip.headers import NameAddr
    from sippa.sip.uri import Uri

    events: asyncio.Queue[object] = asyncio.Queue()
    endpoint = Endpoint(on_event=events.put_nowait, resolver=Resolver(dnsmasq.host, dnsmasq.port))
    host, port = await endpoint.listen("TCP", "127.0.0.1", 0)
    core = UserAgentCore(
        CoreConfig(
            local=(Address("tcp", host, port),),
            aor=NameAddr(None, Uri("sip", user="alice", host="example.test"), ()),
        ),
        ids=lambda: secrets.token_hex(8),
        rand=lambda: 0.5,
    )
    endpoint.core = core
    try:
        # the URI names the port, so RFC 3263 §4.2 asks dnsmasq for A/AAAA only
        uri = Uri("sip", host="sip.example.test", port=kamailio.sip_port,
                  params=(("transport", "tcp"),))
        handle = core.send_request("OPTIONS", uri, endpoint.clock())
        endpoint.pump()
        while True:
            ev = await asyncio.wait_for(events.get(), 5)
            if isinstance(ev, ResponseReceived) and ev.transaction == handle:
                break
        assert ev.response.status_code >= 200  # Kamailio answered (407 or 200)
        assert Peer.of("TCP", "127.0.0.1", kamailio.sip_port) in endpoint.transports.connections
    finally:
        await endpoint.close()
