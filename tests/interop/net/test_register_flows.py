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
