"""Make/Ans Call Without Reg against a real Kamailio: alice's line registers with the wrong
password (Kamailio challenges again: the registration fails), so with the Cisco defaults (No /
No) the line cannot dial ("not registered", nothing reaches Kamailio) and a direct INVITE gets
480; after the password is fixed (saved settings apply live) the line registers and its call
to bob (a second sippa phone registered to the same Kamailio) goes through Kamailio."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable, Iterator

import pytest

from sippa.app.call import CallState
from sippa.app.phone import CallError, Phone
from tests.interop.phone.conftest import phone_for, phone_store
from tests.peers.fixtures import KamailioFactory
from tests.peers.kamailio import Kamailio

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


def _phone(kam: Kamailio, user: str, password: str, rtp: int) -> Phone:
    store = phone_store(
        user_id=user,
        proxy="example.test",
        outbound_proxy=f"{kam.host}:{kam.sip_port}",
        use_outbound_proxy=True,
        sip_transport="UDP",
        password=password,
        register_expires=300,
        secure_call_option="Off",
        restrict_source_ip=False,  # the direct INVITE below must reach the line
    )
    store.update({("rtp_port_min", 0): rtp, ("rtp_port_max", 0): rtp + 999})
    # a DNS server that answers nothing at once: only the outbound proxy is ever used
    return phone_for(store, tls_port=None, tcp_port=None, dns=f"{kam.host}:9")


@pytest.fixture
def kam(kamailio_factory: KamailioFactory) -> Kamailio:
    """A Kamailio of its own (SHA-256; three workers make the instance distinct): the shared ones
    keep bindings of bob left by earlier tests, to which Kamailio would fork the call, and the
    call would not end until those branches time out."""
    return kamailio_factory(auth_mode="sha256", workers=3)


@pytest.fixture
def stray() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


async def _direct_invite(sock: socket.socket, phone: Phone) -> str:
    """An INVITE for alice straight to the phone's UDP port: the first final status line."""
    host, port = sock.getsockname()
    phone_host, phone_port = phone.local["udp"]
    tag, call_id = secrets.token_hex(4), secrets.token_hex(8)
    lines = [
        f"INVITE sip:alice@{phone_host}:{phone_port} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{secrets.token_hex(6)};rport",
        "Max-Forwards: 70",
        "To: <sip:alice@example.test>",
        f"From: <sip:mallory@{host}>;tag={tag}",
        f"Call-ID: {call_id}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:mallory@{host}:{port}>",
        "Content-Length: 0",
    ]
    sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), (phone_host, phone_port))
    loop = asyncio.get_running_loop()
    while True:
        data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
        status = data.split(b"\r\n", 1)[0].decode(errors="replace")
        if not status.startswith("SIP/2.0 1"):
            return status


async def test_wrong_password_no_calls_then_fixed_it_calls_through_kamailio(
    kam: Kamailio, stray: socket.socket
) -> None:
    mark = kam.log_mark()
    alice = _phone(kam, "alice", "not-the-password", 46000)
    bob = _phone(kam, "bob", "bob-secret", 48000)
    async with alice, bob:
        assert await bob.wait_registered(1, 10), bob.status()["lines"][0]
        # the wrong password: Kamailio challenges the credentials again, the line fails (and
        # backs off before it tries again)
        assert await _until(lambda: alice.status()["lines"][0]["state"] == "backoff")
        line = alice.status()["lines"][0]
        assert not line["registered"] and line["reason"], line
        assert line["calls_refused"] == "not registered: calls can be neither made nor answered"
        assert any(not e.ok and e.user == "alice" for e in kam.auth_log(mark))

        # it cannot dial: refused at once, and no INVITE reaches Kamailio
        before_dial = kam.log_mark()
        with pytest.raises(CallError, match="not registered"):
            await alice.dial("bob")
        assert alice.calls == {}
        # and a direct INVITE for the line gets 480
        assert await _direct_invite(stray, alice) == "SIP/2.0 480 Temporarily Unavailable"
        assert alice.calls == {}

        # the password fixed (saved settings re-register the line live)
        alice.store.update({("password", 1): "alice-secret"})
        assert await _until(lambda: alice.lines[1].registered), alice.status()["lines"][0]
        assert alice.status()["lines"][0]["calls_refused"] is None
        assert not [e for e in kam.auth_log(before_dial) if e.method == "INVITE"]
        invites = kam.log_mark()
        call = await alice.dial("bob")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not any(c.direction == "incoming" for c in bob.calls.values()):
            assert loop.time() < deadline, call.as_dict()
            await asyncio.sleep(0.05)
        incoming = next(c for c in bob.calls.values() if c.direction == "incoming")
        assert incoming.state is CallState.INCOMING and "alice" in incoming.remote
        entry = next(e for e in kam.auth_log(invites) if e.method == "INVITE")
        assert entry.ok and entry.user == "alice"  # it went through Kamailio, authenticated
        await bob.reject(incoming.id)
        await alice.wait_call(call.id, lambda c: c.is_over, 5)
        assert call.status_code == 486


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False
