"""The transport layer with real sockets on loopback: UDP, TCP, TLS, keep-alive, errors."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import ssl
from pathlib import Path

import pytest

from sippa.net.ports import PortRange
from sippa.net.tls import make_client_context
from sippa.net.transport import (
    Flow,
    Peer,
    TransportError,
    TransportLayer,
    TransportSettings,
)
from tests.peers.certs import LabCerts, make_lab_certs

OPTIONS = (
    b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK1\r\n"
    b"Max-Forwards: 70\r\nTo: <sip:x@127.0.0.1>\r\nFrom: <sip:y@127.0.0.1>;tag=1\r\n"
    b"Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


class Sink:
    """Collects what a TransportLayer reports."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[tuple[bytes, Flow]] = asyncio.Queue()
        self.errors: asyncio.Queue[TransportError] = asyncio.Queue()

    def layer(self, **kw: object) -> TransportLayer:
        return TransportLayer(
            lambda d, f: self.messages.put_nowait((d, f)), self.errors.put_nowait, **kw
        )  # type: ignore[arg-type]

    async def message(self) -> tuple[bytes, Flow]:
        return await asyncio.wait_for(self.messages.get(), 5)

    async def error(self) -> TransportError:
        return await asyncio.wait_for(self.errors.get(), 5)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LabCerts:
    return make_lab_certs(tmp_path_factory.mktemp("certs"))


async def test_udp_both_ways_and_ipv6() -> None:
    a, b = Sink(), Sink()
    la, lb = a.layer(), b.layer()
    try:
        host, port = await lb.listen("UDP", "127.0.0.1", 0)
        assert port > 0 and host == "127.0.0.1"
        await la.listen("UDP", "127.0.0.1", 0)
        flow = await la.send(OPTIONS, Peer.of("udp", host, port))
        assert flow.local_port == la.listening("UDP")[0][1]
        data, got = await b.message()
        assert data == OPTIONS and got.peer == Peer("UDP", "127.0.0.1", flow.local_port)
        # reply to where it came from
        await lb.send(b"SIP/2.0 200 OK\r\n\r\n", got.peer)
        data, _ = await a.message()
        assert data.startswith(b"SIP/2.0 200")
        # CRLF keep-alives over UDP are not messages
        await la.send(b"\r\n\r\n", Peer.of("UDP", host, port))
        h6, p6 = await lb.listen("UDP", "::1", 0)
        assert h6 == "::1"
        flow6 = await la.send(OPTIONS, Peer.of("UDP", "[::1]", p6))
        data, got6 = await b.message()
        assert data == OPTIONS and got6.peer.host == "::1" and ":" in flow6.local_host
    finally:
        await la.close()
        await lb.close()


async def test_tcp_connection_is_reused_both_ways() -> None:
    a, b = Sink(), Sink()
    la, lb = a.layer(), b.layer()
    try:
        host, port = await lb.listen("TCP", "127.0.0.1", 0)
        server = Peer.of("TCP", host, port)
        flow1 = await la.send(OPTIONS, server)
        flow2 = await la.send(OPTIONS, server)
        assert flow1 == flow2 and len(la.connections) == 1
        # the local port is a random one from the ephemeral range
        assert flow1.local_port in PortRange.ephemeral()
        data, seen = await b.message()
        await b.message()
        assert seen.peer == Peer("TCP", "127.0.0.1", flow1.local_port)
        # the response (and any request) towards the client reuses its connection
        assert lb.send_on(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", seen.peer) is not None
        data, back = await a.message()
        assert data.startswith(b"SIP/2.0 200 OK") and back == flow1
        await lb.send(OPTIONS, seen.peer)  # in-dialog request: same flow, no new connection
        data, _ = await a.message()
        assert data == OPTIONS and len(lb.connections) == 1
        assert lb.send_on(OPTIONS, Peer.of("TCP", "127.0.0.1", 9)) is None
    finally:
        await la.close()
        await lb.close()


async def test_stream_split_and_oversized_messages() -> None:
    b = Sink()
    lb = b.layer(settings=TransportSettings(max_message_size=600))
    try:
        host, port = await lb.listen("TCP", "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(host, port)
        for i in range(0, len(OPTIONS), 7):  # byte trickle
            writer.write(OPTIONS[i : i + 7])
            await writer.drain()
        data, _ = await b.message()
        assert data == OPTIONS
        big = OPTIONS.replace(b"Content-Length: 0", b"Content-Length: 5000")
        writer.write(big + b"x" * 5000)
        await writer.drain()
        err = await b.error()
        assert "bad stream" in err.reason and not err.outgoing
        assert await asyncio.wait_for(reader.read(), 5) == b""  # we closed it
        writer.close()
    finally:
        await lb.close()


async def test_tls_flow_reports_negotiated_details(certs: LabCerts) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(certs.server.cert, certs.server.key)
    client_ctx = make_client_context([certs.ca.cert], require_group_policy=False)
    a, b = Sink(), Sink()
    la = a.layer(tls_client=lambda name: client_ctx)
    lb = b.layer(tls_server=server_ctx)
    try:
        host, port = await lb.listen("TLS", "127.0.0.1", 0)
        flow = await la.send(OPTIONS, Peer.of("TLS", host, port), server_name="example.test")
        assert flow.tls is not None
        assert flow.tls.version in ("TLSv1.2", "TLSv1.3") and flow.tls.cipher
        assert flow.tls.peer_subject and "sip.example.test" in flow.tls.peer_subject
        assert flow.tls.server_name == "example.test" and flow.tls.verified
        data, seen = await b.message()
        assert data == OPTIONS and seen.peer.transport == "TLS"
        # a name the certificate does not carry is refused
        la2 = Sink().layer(tls_client=lambda name: client_ctx)
        with pytest.raises(ssl.SSLCertVerificationError):
            await la2.send(OPTIONS, Peer.of("TLS", host, port), server_name="evil.example.test")
        await la2.close()
    finally:
        await la.close()
        await lb.close()


async def test_twenty_tls_connections_use_random_source_ports(certs: LabCerts) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(certs.server.cert, certs.server.key)
    client_ctx = make_client_context([certs.ca.cert], require_group_policy=False)
    b = Sink()
    lb = b.layer(tls_server=server_ctx)
    ports: list[int] = []
    try:
        host, port = await lb.listen("TLS", "127.0.0.1", 0)
        for _ in range(20):
            la = Sink().layer(tls_client=lambda name: client_ctx)
            flow = await la.send(OPTIONS, Peer.of("TLS", host, port), server_name="example.test")
            _, seen = await b.message()
            assert seen.peer.port == flow.local_port  # what the server saw
            ports.append(flow.local_port)
            await la.close()
    finally:
        await lb.close()
    assert len(set(ports)) == 20
    steps = [b - a for a, b in itertools.pairwise(ports)]
    assert sum(1 for s in steps if 0 < s <= 2) <= 1, ports


async def test_keepalive_ping_pong_and_dead_peer() -> None:
    a, b = Sink(), Sink()
    fast = TransportSettings(keepalive_interval=0.1, keepalive_timeout=0.3)
    la, lb = a.layer(settings=fast), b.layer()
    try:
        host, port = await lb.listen("TCP", "127.0.0.1", 0)
        await la.send(OPTIONS, Peer.of("TCP", host, port))
        await b.message()
        await asyncio.sleep(0.5)
        (conn,) = la.connections.values()
        (server_side,) = lb.connections.values()
        assert conn.pings_sent >= 2
        assert server_side.pings_answered >= 2  # double CRLF answered with CRLF
        assert conn.pongs_received >= 2
        assert a.errors.empty()
    finally:
        await la.close()
        await lb.close()
    # a peer that accepts but never answers pings: the flow fails
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    la = a.layer(settings=fast)
    try:
        await la.send(OPTIONS, Peer.of("TCP", "127.0.0.1", silent.getsockname()[1]))
        err = await a.error()
        assert "keep-alive" in err.reason and err.outgoing
        assert not la.connections
    finally:
        await la.close()
        silent.close()


async def test_broken_connection_is_a_transport_error() -> None:
    a, b = Sink(), Sink()
    la, lb = a.layer(), b.layer()
    try:
        host, port = await lb.listen("TCP", "127.0.0.1", 0)
        server = Peer.of("TCP", host, port)
        await la.send(OPTIONS, server)
        await b.message()
        await lb.close()  # the server goes away
        err = await a.error()
        assert err.peer == server and "connection" in err.reason
        assert server not in la.connections
        with pytest.raises(OSError):
            await la.send(OPTIONS, server)  # refused now
    finally:
        await la.close()


async def test_idle_connections_are_closed_unless_pinned() -> None:
    a, b = Sink(), Sink()
    la = a.layer(settings=TransportSettings(idle_timeout=0.2, keepalive_interval=0))
    lb = b.layer()
    try:
        host, port = await lb.listen("TCP", "127.0.0.1", 0)
        h2, p2 = await lb.listen("TCP", "127.0.0.1", 0)
        idle, kept = Peer.of("TCP", host, port), Peer.of("TCP", h2, p2)
        await la.send(OPTIONS, idle)
        await la.send(OPTIONS, kept)
        la.pin(kept)
        await asyncio.sleep(0.6)
        assert idle not in la.connections and kept in la.connections
        assert a.errors.empty()  # an idle close is not an error
    finally:
        await la.close()
        await lb.close()


async def test_narrow_source_port_range(tmp_path: Path) -> None:
    b = Sink()
    lb = b.layer()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        low = probe.getsockname()[1]
    ports = PortRange(low, min(low + 50, 65535))
    la = Sink().layer(settings=TransportSettings(tcp_ports=ports))
    try:
        host, port = await lb.listen("TCP", "127.0.0.1", 0)
        flow = await la.send(OPTIONS, Peer.of("TCP", host, port))
        assert flow.local_port in ports
    finally:
        await la.close()
        await lb.close()


async def test_tcp_over_ipv6_and_connection_limit() -> None:
    a, b = Sink(), Sink()
    la, lb = a.layer(), b.layer(settings=TransportSettings(max_connections=1))
    extra = Sink().layer()
    try:
        host, port = await lb.listen("TCP", "::1", 0)
        assert host == "::1" and port > 0
        flow = await la.send(OPTIONS, Peer.of("TCP", "::1", port))
        assert ":" in flow.local_host
        _, seen = await b.message()
        assert seen.peer.host == "::1" and str(seen.peer) == f"tcp:[::1]:{flow.local_port}"
        # a second accepted connection is over the limit: closed at once, never delivered
        with contextlib.suppress(OSError):  # it may be closed before we even write
            await extra.send(OPTIONS, Peer.of("TCP", "::1", port))
        await asyncio.sleep(0.2)
        assert b.messages.empty() and len(lb.connections) == 1
    finally:
        await la.close()
        await lb.close()
        await extra.close()


async def test_bad_bytes_after_a_good_message_close_the_stream_at_once() -> None:
    """The framer hands out the good message first; the connection must not wait for more data."""
    b = Sink()
    lb = b.layer()
    try:
        host, port = await lb.listen("TCP", "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(host, port)
        garbage = b"NOT SIP AT ALL\r\nContent-Length: banana\r\n\r\n"
        writer.write(OPTIONS + garbage)  # one write: both arrive in the same read
        await writer.drain()
        data, _ = await b.message()
        assert data == OPTIONS
        err = await b.error()
        assert "bad stream" in err.reason
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed without more input
        writer.close()
    finally:
        await lb.close()


async def test_tls_to_an_ip_without_a_name_checks_the_ip_in_the_certificate(
    certs: LabCerts,
) -> None:
    """A Contact like sip:bob@127.0.0.1;transport=tls has only an IP to check (RFC 5922 §7.2):
    a certificate with that IP address passes, one without it is refused cleanly."""
    client_ctx = make_client_context([certs.ca.cert], require_group_policy=False)
    for pair, accepted in ((certs.server, True), (certs.evil, False)):
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(pair.cert, pair.key)
        a, b = Sink(), Sink()
        la = a.layer(tls_client=lambda name: client_ctx)
        lb = b.layer(tls_server=server_ctx)
        try:
            host, port = await lb.listen("TLS", "127.0.0.1", 0)
            if accepted:
                flow = await la.send(OPTIONS, Peer.of("TLS", host, port))
                assert flow.tls is not None and flow.tls.verified
                assert flow.tls.server_name == "127.0.0.1"
            else:
                with pytest.raises(ssl.SSLCertVerificationError):
                    await la.send(OPTIONS, Peer.of("TLS", host, port))
        finally:
            await la.close()
            await lb.close()
