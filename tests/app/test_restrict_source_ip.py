"""Restrict Source IP in the Phone: which line judges a request, the setting, the status.

Real sockets on loopback: the phone's line 1 has a proxy (an IP literal, so no DNS) and the
restriction; line 2 has no proxy (direct calls). Requests come from 127.0.0.1, which is not
line 1's proxy."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from sippa.app.line import LineConfig
from sippa.app.phone import LineChanged, Phone, PhoneOptions
from sippa.app.settings import SCHEMA, by_cisco_name
from sippa.app.store import ConfigStore
from sippa.interfaces.cli import _show_restriction

pytestmark = pytest.mark.timeout(30)

PROXY = "127.0.0.9"


def _store(extra: dict[tuple[str, int], Any] | None = None) -> ConfigStore:
    store = ConfigStore(":memory:", lines=2)
    store.update({
        ("rtp_port_min", 0): 45000, ("rtp_port_max", 0): 45999,
        ("line_enable", 1): True, ("user_id", 1): "alice", ("proxy", 1): f"{PROXY}:5060",
        ("register", 1): False, ("sip_transport", 1): "UDP", ("secure_call_option", 1): "Off",
        ("line_enable", 2): True, ("user_id", 2): "bob", ("sip_transport", 2): "UDP",
        ("secure_call_option", 2): "Off",
        **(extra or {}),
    })
    return store


@pytest.fixture
async def phone() -> AsyncIterator[Phone]:
    p = Phone(_store(), PhoneOptions(system_ca=False, tls_port=None, tcp_port=None,
                                     history=False))
    async with p:
        deadline = asyncio.get_running_loop().time() + 5
        while PROXY not in p.restriction.allowed(1):  # located in the background
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        yield p


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def _request(sock: socket.socket, method: str, user: str, phone_host: str) -> bytes:
    host, port = sock.getsockname()
    lines = [
        f"{method} sip:{user}@{phone_host} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{secrets.token_hex(6)};rport",
        "Max-Forwards: 70",
        f"To: <sip:{user}@{phone_host}>",
        f"From: <sip:scanner@{host}>;tag={secrets.token_hex(4)}",
        f"Call-ID: {secrets.token_hex(8)}",
        f"CSeq: 1 {method}",
        f"Contact: <sip:scanner@{host}:{port}>",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _exchange(phone: Phone, sock: socket.socket, method: str, user: str,
                    wait: float = 0.5) -> list[str]:
    host, port = phone.local["udp"]
    sock.sendto(_request(sock, method, user, host), (host, port))
    loop = asyncio.get_running_loop()
    got: list[str] = []
    deadline = loop.time() + wait
    while (left := deadline - loop.time()) > 0:
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), left)
        except TimeoutError:
            break
        got.append(data.split(b"\r\n", 1)[0].decode())
    return got


def test_the_setting_is_a_per_line_bool_on_by_default() -> None:
    s = SCHEMA["restrict_source_ip"]
    assert s.page == "Ext" and s.section == "SIP Settings" and s.per_line
    assert s.default is True
    assert by_cisco_name("Restrict_Source_IP_2_") == (s, 2)
    store = _store({("restrict_source_ip", 2): False})
    assert LineConfig.from_store(store, 1).restrict_source_ip
    assert not LineConfig.from_store(store, 2).restrict_source_ip
    assert LineConfig.from_store(store, 1).has_proxy and not LineConfig.from_store(
        store, 2).has_proxy


async def test_the_called_line_decides(phone: Phone, peer: socket.socket) -> None:
    events: list[LineChanged] = []
    phone.subscribe(lambda ev: events.append(ev) if isinstance(ev, LineChanged) else None)
    # line 1 (proxy, restricted): its user, and a user no line has (the default line), dropped
    assert await _exchange(phone, peer, "INVITE", "alice") == []
    assert await _exchange(phone, peer, "OPTIONS", "100") == []
    assert await _exchange(phone, peer, "MESSAGE", "alice") == []
    assert phone.calls == {}
    refused = phone.restriction.refused(1)
    assert refused.count == 3 and refused.last_method == "MESSAGE"
    assert refused.last_source == f"udp:127.0.0.1:{peer.getsockname()[1]}"
    # the line status shows it, and is pushed to subscribers (at most once a second, the last
    # of a burst included)
    deadline = asyncio.get_running_loop().time() + 3
    while not any(e.status["source_restriction"]["refused"] == 3 for e in events if e.line == 1):
        assert asyncio.get_running_loop().time() < deadline, events
        await asyncio.sleep(0.05)
    assert len([e for e in events if e.line == 1]) <= 3
    status = phone.status()["lines"]
    assert status[0]["source_restriction"] == {
        "setting": True, "active": True, "allowed": [PROXY], "refused": 3,
        "last_refused_source": refused.last_source, "last_refused_method": "MESSAGE",
    }
    # line 2 has no proxy: direct calls to it ring
    assert status[1]["source_restriction"]["active"] is False
    got = await _exchange(phone, peer, "INVITE", "bob")
    assert "SIP/2.0 180 Ringing" in got
    (call,) = phone.calls.values()
    assert call.line == 2
    assert await _exchange(phone, peer, "OPTIONS", "bob") == ["SIP/2.0 200 OK"]
    assert phone.restriction.refused(2).count == 0
    await phone.reject(call.id)


async def test_switching_it_off_applies_live(phone: Phone, peer: socket.socket) -> None:
    assert await _exchange(phone, peer, "OPTIONS", "alice") == []
    phone.store.update({("restrict_source_ip", 1): False})
    deadline = asyncio.get_running_loop().time() + 5
    while phone.restriction.active(1):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    assert await _exchange(phone, peer, "OPTIONS", "alice") == ["SIP/2.0 200 OK"]
    assert phone.status()["lines"][0]["source_restriction"]["refused"] == 1  # kept
    phone.store.update({("restrict_source_ip", 1): True})
    while not phone.restriction.active(1) or PROXY not in phone.restriction.allowed(1):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    assert await _exchange(phone, peer, "OPTIONS", "alice") == []


def test_cli_status_line(capsys: pytest.CaptureFixture[str]) -> None:
    _show_restriction({"setting": True, "active": True, "allowed": ["192.0.2.1"], "refused": 2,
                       "last_refused_source": "udp:198.51.100.66:5070",
                       "last_refused_method": "INVITE"})
    _show_restriction({"setting": True, "active": False, "allowed": [], "refused": 0,
                       "last_refused_source": None, "last_refused_method": None})
    _show_restriction({"setting": False, "active": False, "allowed": [], "refused": 0,
                       "last_refused_source": None, "last_refused_method": None})
    assert capsys.readouterr().out.splitlines() == [
        "  restrict source IP: on (from 192.0.2.1); 2 refused, last INVITE from "
        "udp:198.51.100.66:5070",
        "  restrict source IP: on, but no proxy: direct calls accepted",
        "  restrict source IP: off",
    ]
