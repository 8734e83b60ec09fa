"""The registration driver over real loopback sockets against a scripted registrar."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from sippa.net.dns import Resolver
from sippa.net.endpoint import Endpoint
from sippa.net.registrar import LineRegistrar
from sippa.net.transport import Flow, Peer, TransportError, TransportLayer, TransportSettings
from sippa.sip.locate import Target, Transport, TransportChoice
from sippa.sip.message import Request, Response, make_response, parse_message
from sippa.sip.registration import Credentials, RegistrationConfig
from sippa.sip.timers import TimerConfig
from sippa.sip.uri import Uri


def authorize(request: Request, response: Response) -> Credentials:
    return Credentials.single("Authorization", 'Digest username="alice", response="ok"', "SHA-256")


class FakeRegistrar:
    """Answers REGISTER: 401 without credentials, else ``code`` (200 with the Contact)."""

    def __init__(self, transport: str, code: int = 200) -> None:
        self.transport = transport
        self.code = code
        self.requests: list[tuple[Request, Flow]] = []
        self.silent = False
        self.layer = TransportLayer(self._on_message, self._on_error)
        self.address: tuple[str, int] = ("", 0)
        self.tasks: set[asyncio.Future[Flow]] = set()

    async def start(self, port: int = 0) -> FakeRegistrar:
        self.address = await self.layer.listen(self.transport, "127.0.0.1", port)
        return self

    @property
    def uri(self) -> Uri:
        host, port = self.address
        return Uri("sip", host=host, port=port, params=(("transport", self.transport.lower()),))

    def _on_error(self, error: TransportError) -> None:
        pass

    def _on_message(self, data: bytes, flow: Flow) -> None:
        msg = parse_message(data)
        assert isinstance(msg, Request)
        self.requests.append((msg, flow))
        if self.silent:
            return
        if msg.headers.get("Authorization") is None:
            resp = make_response(msg, 401, to_tag="t")
            resp.headers.add("WWW-Authenticate", 'Digest realm="x", nonce="n"')
        else:
            resp = make_response(msg, self.code, to_tag="t")
            if self.code == 200:
                resp.headers.add("Contact", f"{msg.headers.get('Contact')};expires=60")
        task = asyncio.ensure_future(self.layer.send(bytes(resp), flow.peer))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        await self.layer.close()


def line(endpoint: Endpoint, proxy: Uri, **cfg: object) -> LineRegistrar:
    config = RegistrationConfig(Uri.parse("sip:alice@example.test"), retry_base=0.2, retry_max=1)
    for k, v in cfg.items():
        setattr(config, k, v)
    return LineRegistrar(
        endpoint,
        config,
        authorize,
        Resolver("127.0.0.1", 9, timeout=0.2, lifetime=0.3),
        proxy=proxy,
        transport=TransportChoice.AUTO,
        timers=TimerConfig(t1=0.05, t2=0.2),
    )


async def until(pred: Callable[[], bool], timeout: float = 5) -> None:
    async def loop() -> None:
        while not pred():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(loop(), timeout)


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_register_and_unregister(transport: str) -> None:
    server = await FakeRegistrar(transport).start()
    endpoint = Endpoint()
    reg = line(endpoint, server.uri)
    try:
        reg.start()
        status = await reg.wait(lambda st: st.registered, 5)
        assert status.transport == transport and status.expires == 60
        assert status.algorithm == "SHA-256" and status.reason is None
        first, second = server.requests[0][0], server.requests[1][0]
        assert second.cseq.seq == first.cseq.seq + 1 and second.call_id == first.call_id
        assert first.top_via.rport is True
        # the Contact and Via carry our real local address on this flow
        _, flow = server.requests[0]
        assert first.top_via.port == flow.peer.port
        await reg.stop()
        last, _ = server.requests[-1]
        assert last.headers.get("Expires") == "0"
        assert not reg.status.registered and reg.status.state == "stopped"
    finally:
        await endpoint.close()
        await server.close()


async def test_503_on_the_only_target_is_reported() -> None:
    bad = await FakeRegistrar("TCP", code=503).start()
    endpoint = Endpoint()
    reg = line(endpoint, bad.uri)
    try:
        reg.start()
        status = await reg.wait_outcome(5)
        assert not status.registered and status.reason and "503" in status.reason
        assert status.status_code == 503
    finally:
        await reg.stop()
        await endpoint.close()
        await bad.close()


async def test_connection_refused_is_reported_then_retried() -> None:
    server = FakeRegistrar("TCP")
    await server.start()
    port = server.address[1]
    await server.close()  # nothing listens there now
    endpoint = Endpoint()
    reg = line(endpoint, Uri("sip", host="127.0.0.1", port=port, params=(("transport", "tcp"),)))
    try:
        reg.start()
        status = await reg.wait_outcome(5)
        assert not status.registered and status.reason
        assert "refused" in status.reason.lower() or "connect" in status.reason.lower()
        # the server comes back: the back-off retry registers
        server = await FakeRegistrar("TCP").start(port)
        status = await reg.wait(lambda st: st.registered, 5)
        assert status.registered
    finally:
        await reg.stop()
        await endpoint.close()
        await server.close()


async def test_timeout_over_udp_retransmits_then_fails() -> None:
    server = await FakeRegistrar("UDP").start()
    server.silent = True
    endpoint = Endpoint()
    reg = line(endpoint, server.uri)
    try:
        reg.start()
        status = await reg.wait_outcome(8)
        assert not status.registered and status.reason and "timeout" in status.reason
        assert len(server.requests) >= 3  # Timer E retransmissions of the same request
        assert len({r.top_via.branch for r, _ in server.requests}) == 1
    finally:
        await reg.stop(timeout=0.5)
        await endpoint.close()
        await server.close()


async def test_reregisters_when_the_connection_drops() -> None:
    server = await FakeRegistrar("TCP").start()
    endpoint = Endpoint(settings=TransportSettings(keepalive_interval=0))
    reg = line(endpoint, server.uri)
    try:
        reg.start()
        await reg.wait(lambda st: st.registered, 5)
        before = len(server.requests)
        first_port = server.requests[0][1].peer.port
        # the server drops our connection (e.g. restart)
        for conn in list(server.layer.connections.values()):
            conn.abort("restart")
        await until(lambda: len(server.requests) >= before + 2)
        await reg.wait(lambda st: st.registered, 5)
        new_port = server.requests[-1][1].peer.port
        assert new_port != first_port  # a new connection from a new random port
        assert Peer.of("TCP", *server.address) in endpoint.transports.connections
    finally:
        await reg.stop()
        await endpoint.close()
        await server.close()


class TwoTargets(LineRegistrar):
    """Locates to a fixed failover list instead of asking DNS."""

    fixed: list[Target]

    async def _locate(self) -> bool:
        self.targets = list(self.fixed)
        self.registration.set_targets(len(self.targets))
        return True


async def test_failover_to_the_next_target_on_refused_and_503() -> None:
    dead = FakeRegistrar("TCP")
    await dead.start()
    dead_port = dead.address[1]
    await dead.close()
    busy = await FakeRegistrar("TCP", code=503).start()
    good = await FakeRegistrar("TCP").start()
    endpoint = Endpoint()
    config = RegistrationConfig(Uri.parse("sip:alice@example.test"), retry_base=5)
    reg = TwoTargets(endpoint, config, authorize, Resolver("127.0.0.1", 9), name="fo")
    reg.fixed = [
        Target(Transport.TCP, "127.0.0.1", dead_port, "example.test", "a.example.test"),
        Target(Transport.TCP, "127.0.0.1", busy.address[1], "example.test", "b.example.test"),
        Target(Transport.TCP, "127.0.0.1", good.address[1], "example.test", "c.example.test"),
    ]
    try:
        reg.start()
        status = await reg.wait(lambda st: st.registered, 5)
        assert status.target == f"tcp:127.0.0.1:{good.address[1]}"
        assert busy.requests and good.requests
    finally:
        await reg.stop()
        await endpoint.close()
        await busy.close()
        await good.close()


async def test_udp_via_and_contact_never_carry_the_wildcard_address() -> None:
    server = await FakeRegistrar("UDP").start()
    endpoint = Endpoint()  # no listener yet: the registrar opens one on 0.0.0.0
    reg = line(endpoint, server.uri)
    try:
        reg.start()
        await reg.wait(lambda st: st.registered, 5)
        request, _ = server.requests[0]
        assert request.top_via.host == "127.0.0.1"
        assert "@127.0.0.1:" in (request.headers.get("Contact") or "")
    finally:
        await reg.stop()
        await endpoint.close()
        await server.close()


async def test_each_location_is_reported_and_the_flow_is_known() -> None:
    """Restrict Source IP follows the targets: every new RFC 3263 answer is handed on."""
    busy = await FakeRegistrar("TCP", code=503).start()
    endpoint = Endpoint()
    located: list[list[Target]] = []
    reg = line(endpoint, busy.uri)
    reg.on_located = located.append
    try:
        assert reg.flow is None
        reg.start()
        await reg.wait_outcome(5)
        await until(lambda: len(located) >= 2)  # the retry located again
        assert [(t.address, t.port) for t in located[0]] == [busy.address]
        assert reg.flow is not None and reg.flow.connection is not None
        assert reg.flow.peer.port == busy.address[1]
    finally:
        await reg.stop()
        await endpoint.close()
        await busy.close()


async def test_alternate_proxy_then_back_to_the_proxy() -> None:
    primary = await FakeRegistrar("TCP", code=503).start()
    alternate = FakeRegistrar("UDP")
    alternate.address = await alternate.layer.listen("UDP", "127.0.0.2", 0)
    endpoint = Endpoint()
    reg = line(endpoint, primary.uri)
    reg.alternate = alternate.uri.replace(host="127.0.0.2")
    located: list[list[Target]] = []
    reg.on_located = located.append
    try:
        reg.start()
        status = await reg.wait(lambda st: st.registered, 5)
        assert status.server == "alternate"
        assert status.target == f"udp:127.0.0.2:{alternate.address[1]}"
        assert status.server_reason == "proxy failed: 503 Service Unavailable"
        # Restrict Source IP is told the alternate's address too
        assert {t.address for t in located[-1]} == {"127.0.0.1", "127.0.0.2"}
        assert reg.primary_count == 1
        # the proxy recovers; a shorter fallback interval applies at once
        primary.code = 200
        reg.set_fallback_interval(1)
        status = await reg.wait(lambda st: st.registered and st.server == "primary", 5)
        assert status.server_reason is None and status.transport == "TCP"
        await until(lambda: alternate.requests[-1][0].headers.get("Expires") == "0")
        bye, _ = alternate.requests[-1]
        assert bye.call_id == primary.requests[-1][0].call_id
        assert bye.cseq.seq > primary.requests[-1][0].cseq.seq
        assert reg.status.server == "primary" and reg.status.registered
    finally:
        await reg.stop()
        await endpoint.close()
        await primary.close()
        await alternate.close()
