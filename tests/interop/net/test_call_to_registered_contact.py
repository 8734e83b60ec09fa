"""Kamailio routes a call to the Contact a line registered over TLS (RFC 3261 §26.2.2).

The line registers ``sips:bob@127.0.0.1:PORT`` (no deprecated ``;transport=tls``) over its TLS
connection; a caller on UDP dials ``sip:bob@example.test`` through Kamailio, which looks the
binding up and reaches bob over that same connection. The whole call (INVITE, 200, ACK, BYE)
goes through the proxy.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

import pytest

from sippa.app.register import make_authorize
from sippa.net.dns import Resolver
from sippa.net.endpoint import Endpoint, FlowLost
from sippa.net.registrar import LineRegistrar
from sippa.net.tls import TrustStore, make_client_context
from sippa.sip.core import CoreConfig, UserAgentCore
from sippa.sip.digest import DigestClient
from sippa.sip.events import (
    Address,
    CallAnswered,
    CallConfirmed,
    CallEnded,
    Event,
    IncomingCall,
)
from sippa.sip.headers import NameAddr
from sippa.sip.locate import TransportChoice
from sippa.sip.registration import RegistrationConfig
from sippa.sip.uri import Uri
from tests.peers.certs import LabCerts
from tests.peers.process import LOOPBACK

pytestmark = pytest.mark.interop

OFFER = b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\n"
ANSWER = b"v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\n"


async def _until(done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _of(events: list[Event | FlowLost], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


@pytest.mark.parametrize("aor", ["sips:bob@example.test", "sip:bob@example.test"])
async def test_call_reaches_the_contact_registered_over_tls(
    kamailio_factory, lab_certs: LabCerts, aor: str
) -> None:
    k = kamailio_factory(auth_mode="sha256")
    ctx = make_client_context(TrustStore.from_files([lab_certs.ca.cert], system=False))
    bob_events: list[Event | FlowLost] = []
    bob_ep = Endpoint(tls_client=lambda name: ctx, on_event=bob_events.append)
    line = LineRegistrar(
        bob_ep,
        RegistrationConfig(Uri.parse(aor), expires=120),
        make_authorize("bob", "bob-secret"),
        Resolver("127.0.0.1", 9),
        proxy=Uri.parse(f"sips:{k.host}:{k.tls_port}"),
        transport=TransportChoice.TLS,
        name="bob",
    )
    alice_events: list[Event | FlowLost] = []
    alice_ep = Endpoint(on_event=alice_events.append)
    try:
        line.start()
        status = await line.wait(lambda st: st.registered, 10)
        assert status.local is not None
        host, port = status.local.rsplit(":", 1)
        # bob's core answers on the registered TLS connection: its Contact is that flow's end
        bob_ep.core = UserAgentCore(
            CoreConfig(
                local=(Address("tls", host, int(port)),),
                aor=NameAddr(None, Uri.parse(aor)),
                contact_user="bob",
            ),
            ids=lambda: secrets.token_hex(6),
            rand=lambda: 0.5,
        )
        _, alice_port = await alice_ep.listen("UDP", LOOPBACK, 0)
        digest = DigestClient("alice", "alice-secret", cnonce=lambda: secrets.token_hex(8))
        alice = UserAgentCore(
            CoreConfig(
                local=(Address("udp", LOOPBACK, alice_port),),
                aor=NameAddr(None, Uri.parse("sip:alice@example.test")),
                contact_user="alice",
                outbound_proxy=Uri("sip", None, None, k.host, k.sip_port),
            ),
            ids=lambda: secrets.token_hex(6),
            rand=lambda: 0.5,
            authorize=digest.authorize,
        )
        alice_ep.core = alice
        call = alice.invite(Uri.parse("sip:bob@example.test"), time.monotonic(), body=OFFER)
        alice_ep.pump()
        await _until(lambda: bool(_of(bob_events, IncomingCall)), "the INVITE at bob")
        incoming = _of(bob_events, IncomingCall)[0]
        # Kamailio sent it to the registered binding, over bob's own TLS connection
        assert str(incoming.request.uri) == f"sips:bob@{host}:{port}"
        assert incoming.request.top_via.transport == "TLS"
        assert incoming.body == OFFER
        bob_ep.core.answer(incoming.call, time.monotonic(), body=ANSWER)
        bob_ep.pump()
        await _until(
            lambda: bool(_of(alice_events, CallAnswered) and _of(bob_events, CallConfirmed)),
            "the 200 at alice and the ACK at bob",
        )
        assert _of(alice_events, CallAnswered)[0].body == ANSWER
        alice.bye(call, time.monotonic())
        alice_ep.pump()
        await _until(
            lambda: bool(_of(alice_events, CallEnded) and _of(bob_events, CallEnded)), "the BYE"
        )
        assert _of(alice_events, CallEnded) == [CallEnded(call, "bye-local", 200)]
        assert _of(bob_events, CallEnded) == [CallEnded(incoming.call, "bye-remote", None)]
    finally:
        await line.stop()
        await alice_ep.close()
        await bob_ep.close()
    log = k.log_text()
    assert "LAB-REQ ACK" in log and "LAB-REQ BYE" in log  # both went through the proxy
