"""Restrict Source IP against a real Kamailio: a line registered over UDP with the restriction
on is rung by baresip through Kamailio, while a scanner's INVITE sent straight to the phone's
port from 127.0.0.2 (SIPVicious style) gets no response and no ring, and is counted; with the
restriction off the same INVITE rings."""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from sippa.app.call import CallState
from sippa.app.phone import Phone
from tests.interop.phone.conftest import (
    baresip_command,
    make_baresip,
    phone_for,
    phone_store,
    wait_for,
)
from tests.peers.baresip import Baresip
from tests.peers.certs import LabCerts
from tests.peers.fixtures import KamailioFactory
from tests.peers.kamailio import Kamailio

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

ROGUE = "127.0.0.2"


@pytest.fixture
def kam(kamailio_factory: KamailioFactory) -> Kamailio:
    """MD5 only: baresip 1.0 gives up on any SHA-256 challenge."""
    return kamailio_factory(auth_mode="md5")


@pytest.fixture
def carol(kam: Kamailio, tmp_path: Path) -> Iterator[Baresip]:
    """baresip registered to Kamailio as carol@example.test over UDP, plain RTP."""
    account = (
        "<sip:carol@example.test>;auth_pass=carol-secret;"
        f'outbound="sip:{kam.host}:{kam.sip_port};transport=udp";regint=300;'
        "answermode=manual;audio_codecs=PCMU,PCMA"
    )
    peer = make_baresip(tmp_path / "carol", user="carol", account=account, mediaenc="none")
    with peer:
        registered = re.compile(r"SIP/2.0 200 OK[^#]{0,600}CSeq: \d+ REGISTER")
        wait_for(lambda: bool(registered.search(peer.log_text())), 10, "baresip registration")
        yield peer


@pytest.fixture
def rogue() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.2: the scanner's address, not Kamailio's."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((ROGUE, 0))
    except OSError as exc:  # pragma: no cover - every Linux routes 127/8 to lo
        sock.close()
        pytest.fail(f"cannot bind {ROGUE}: {exc}")
    sock.setblocking(False)
    yield sock
    sock.close()


def scanner_invite(sock: socket.socket, phone_host: str) -> bytes:
    """The INVITE a SIPVicious-style scanner sends: extension 100, no SDP."""
    host, port = sock.getsockname()
    tag, call_id = secrets.token_hex(4), secrets.token_hex(8)
    lines = [
        f"INVITE sip:100@{phone_host} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{secrets.token_hex(6)};rport",
        "Max-Forwards: 70",
        f'To: "100" <sip:100@{phone_host}>',
        f'From: "100" <sip:100@{phone_host}>;tag={tag}',
        "User-Agent: friendly-scanner",
        f"Call-ID: {call_id}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:100@{host}:{port}>",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def responses(sock: socket.socket, seconds: float) -> list[str]:
    """Status lines of what comes back within ``seconds``."""
    loop = asyncio.get_running_loop()
    got: list[str] = []
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), left)
        except TimeoutError:
            break
        got.append(data.split(b"\r\n", 1)[0].decode(errors="replace"))
    return got


def _alice(kam: Kamailio, *, restrict: bool) -> Phone:
    store = phone_store(
        proxy="example.test",
        outbound_proxy=f"{kam.host}:{kam.sip_port}",
        use_outbound_proxy=True,
        sip_transport="UDP",
        password="alice-secret",
        register_expires=300,
        secure_call_option="Off",
        restrict_source_ip=restrict,
    )
    # a DNS server that answers nothing at once: "example.test" (the proxy behind the outbound
    # proxy) stays unresolved, so only Kamailio's address is allowed
    return phone_for(store, tls_port=None, tcp_port=None, dns=f"{kam.host}:9")


def _incoming(phone: Phone) -> list[str]:
    return [c.remote for c in phone.calls.values() if c.direction == "incoming"]


async def test_proxy_calls_ring_and_a_direct_scanner_invite_is_dropped(
    kam: Kamailio, carol: Baresip, rogue: socket.socket
) -> None:
    phone = _alice(kam, restrict=True)
    async with phone:
        assert await phone.wait_registered(1, 10), phone.status()["lines"][0]
        restriction = phone.status()["lines"][0]["source_restriction"]
        assert restriction["active"] and restriction["allowed"] == [kam.host]
        udp_host, udp_port = phone.local["udp"]

        # (1) carol calls alice through Kamailio: it rings
        baresip_command(carol.ctrl_port, "dial", "sip:alice@example.test")
        deadline = asyncio.get_running_loop().time() + 10
        while not _incoming(phone):
            assert asyncio.get_running_loop().time() < deadline, carol.log_text()[-3000:]
            await asyncio.sleep(0.05)
        call = next(c for c in phone.calls.values() if c.direction == "incoming")
        assert call.state is CallState.INCOMING and "carol" in call.remote
        await phone.reject(call.id)
        await phone.wait_call(call.id, lambda c: c.is_over, 5)
        assert phone.restriction.refused(1).count == 0

        # (2) the scanner's INVITE straight to the phone: no response, no ring, counted
        rogue.sendto(scanner_invite(rogue, udp_host), (udp_host, udp_port))
        assert await responses(rogue, 2.0) == []
        assert len(_incoming(phone)) == 1
        status = phone.status()["lines"][0]["source_restriction"]
        assert status["refused"] == 1 and status["last_refused_method"] == "INVITE"
        assert status["last_refused_source"] == f"udp:{ROGUE}:{rogue.getsockname()[1]}"

        # (3) the restriction switched off (saved settings apply live): the same INVITE rings
        phone.store.update({("restrict_source_ip", 1): False})
        deadline = asyncio.get_running_loop().time() + 5
        while phone.restriction.active(1):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        rogue.sendto(scanner_invite(rogue, udp_host), (udp_host, udp_port))
        got = await responses(rogue, 1.0)
        assert any(line.startswith("SIP/2.0 180") for line in got), got
        assert len(_incoming(phone)) == 2
        ghost = [c for c in phone.calls.values() if c.direction == "incoming"][-1]
        assert ghost.remote == f"sip:100@{udp_host}" and ghost.state is CallState.INCOMING
        assert phone.restriction.refused(1).count == 1
        await phone.reject(ghost.id)


async def test_over_tls_the_registration_flow_is_trusted_and_tcp_strangers_get_403(
    kam: Kamailio, lab_certs: LabCerts
) -> None:
    store = phone_store(
        proxy="example.test",
        outbound_proxy=f"{kam.host}:{kam.tls_port}",
        use_outbound_proxy=True,
        sip_transport="TLS",
        password="alice-secret",
        register_expires=300,
    )
    phone = phone_for(store, ca_files=[lab_certs.ca.cert], tls_port=None,
                      dns=f"{kam.host}:9")
    async with phone:
        assert await phone.wait_registered(1, 10), phone.status()["lines"][0]
        assert phone.restriction.active(1)
        flow = phone.lines[1].registrar.flow  # type: ignore[union-attr]
        assert flow is not None and phone.restriction.flows(1) == {flow.connection}
        # a stranger over TCP (connection-oriented: the source is proven) gets a 403
        tcp_host, tcp_port = phone.local["tcp"]
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((ROGUE, 0))
            sock.setblocking(False)
            await loop.sock_connect(sock, (tcp_host, tcp_port))
            invite = scanner_invite(sock, tcp_host).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
            await loop.sock_sendall(sock, invite)
            answer = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
        assert answer.startswith(b"SIP/2.0 403 "), answer[:200]
        assert phone.calls == {}
        refused = phone.restriction.refused(1)
        assert refused.count == 1 and refused.last_source is not None
        assert refused.last_source.startswith(f"tcp:{ROGUE}:")
