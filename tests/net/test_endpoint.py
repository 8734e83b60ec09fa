"""The endpoint pump with the real UA core, two endpoints on loopback."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from sippa.net.endpoint import Endpoint, FlowLost
from sippa.net.transport import Peer
from sippa.sip.core import CoreConfig, UserAgentCore
from sippa.sip.events import Address, Event, RequestReceived, ResponseReceived, TransactionTimeout
from sippa.sip.headers import NameAddr
from sippa.sip.timers import TimerConfig
from sippa.sip.uri import Uri


class Phone:
    def __init__(self, user: str) -> None:
        self.user = user
        self.events: asyncio.Queue[Event | FlowLost] = asyncio.Queue()
        self.endpoint = Endpoint(on_event=self.events.put_nowait)

    async def start(self, transport: str) -> Address:
        host, port = await self.endpoint.listen(transport, "127.0.0.1", 0)
        local = Address(transport.lower(), host, port)
        config = CoreConfig(
            local=(local,),
            aor=NameAddr(None, Uri("sip", user=self.user, host="example.test"), ()),
            timers=TimerConfig(t1=0.05, t2=0.2),
        )
        self.core = UserAgentCore(config, ids=lambda: secrets.token_hex(8), rand=lambda: 0.5)
        self.endpoint.core = self.core
        return local

    async def event(self, kind: type) -> object:
        while True:
            ev = await asyncio.wait_for(self.events.get(), 5)
            if isinstance(ev, kind):
                return ev


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_request_and_response_through_two_pumped_cores(transport: str) -> None:
    alice, bob = Phone("alice"), Phone("bob")
    await alice.start(transport)
    bob_addr = await bob.start(transport)
    try:
        uri = Uri(
            "sip", user="bob", host=bob_addr.host, port=bob_addr.port,
            params=(("transport", transport.lower()),),
        )
        handle = alice.core.send_request("OPTIONS", uri, alice.endpoint.clock())
        alice.endpoint.pump()
        req = await bob.event(RequestReceived)
        assert isinstance(req, RequestReceived) and req.request.method == "OPTIONS"
        bob.core.respond(req.transaction, 200, bob.endpoint.clock())
        bob.endpoint.pump()
        resp = await alice.event(ResponseReceived)
        assert isinstance(resp, ResponseReceived) and resp.transaction == handle
        assert resp.response.status_code == 200
        if transport == "TCP":
            # the response came back over alice's connection: bob opened none of his own
            assert len(bob.endpoint.transports.connections) == 1
            (conn,) = bob.endpoint.transports.connections.values()
            assert not conn.outgoing
    finally:
        await alice.endpoint.close()
        await bob.endpoint.close()


async def test_unreachable_destination_fails_the_transaction() -> None:
    alice = Phone("alice")
    await alice.start("TCP")
    try:
        probe = Phone("probe")
        addr = await probe.start("TCP")
        await probe.endpoint.close()  # nothing listens there any more
        uri = Uri("sip", host=addr.host, port=addr.port, params=(("transport", "tcp"),))
        alice.core.send_request("OPTIONS", uri, alice.endpoint.clock())
        alice.endpoint.pump()
        lost = await alice.event(FlowLost)
        assert isinstance(lost, FlowLost) and lost.peer == Peer.of("TCP", addr.host, addr.port)
        # the core hears about it and ends the transaction (no 32 s wait)
        done = await asyncio.wait_for(
            _first_of(alice, (ResponseReceived, TransactionTimeout)), 5
        )
        assert done is not None
    finally:
        await alice.endpoint.close()


async def _first_of(phone: Phone, kinds: tuple[type, ...]) -> object:
    while True:
        ev = await phone.events.get()
        if isinstance(ev, kinds) or type(ev).__name__ == "TransportError":
            return ev


async def test_a_name_without_resolver_fails_cleanly() -> None:
    alice = Phone("alice")
    await alice.start("TCP")
    try:
        uri = Uri("sip", host="nothere.example.test", port=5060, params=(("transport", "tcp"),))
        alice.core.send_request("OPTIONS", uri, alice.endpoint.clock())
        alice.endpoint.pump()
        lost = await alice.event(FlowLost)
        assert isinstance(lost, FlowLost) and "resolve" in lost.reason
    finally:
        await alice.endpoint.close()
