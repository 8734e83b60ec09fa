"""Make/Ans Call Without Reg in the Phone: the settings, dial and incoming INVITEs on a line
that should be registered but is not, the line status, live changes, lines that do not register.

Real sockets on loopback: line 1 registers (over UDP) with a fake registrar on 127.0.0.1 that
ignores the REGISTERs, or answers them 200 OK; line 2 has no proxy (direct calls). Restrict
Source IP is off on line 1 so that INVITEs from the test's socket reach the line."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sippa.app.line import LineConfig
from sippa.app.phone import CallError, LineChanged, Phone, PhoneOptions
from sippa.app.settings import SCHEMA, by_cisco_name, parse_value
from sippa.app.store import ConfigStore
from sippa.interfaces.cli import main
from sippa.sip.message import Request, make_response, parse_message

pytestmark = pytest.mark.timeout(30)


class FakeRegistrar:
    """A UDP socket standing for line 1's proxy: keeps what it receives; answers REGISTER 200
    OK (Contact echoed with expires=300) when ``accept`` is on, else ignores it; answers every
    INVITE 480 (the call was placed: that is all the tests need)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.accept = False
        self.received: list[Request] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def methods(self) -> list[str]:
        return [r.method for r in self.received]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data, source = await loop.sock_recvfrom(self.sock, 65535)
            message = parse_message(data)
            if not isinstance(message, Request):
                continue
            self.received.append(message)
            if message.method == "REGISTER" and self.accept:
                response = make_response(message, 200, to_tag=secrets.token_hex(4))
                for contact in message.headers.get_all("Contact"):
                    response.headers.add("Contact", f"{contact};expires=300")
                self.sock.sendto(bytes(response), source)
            elif message.method == "INVITE":
                response = make_response(message, 480, to_tag=secrets.token_hex(4))
                self.sock.sendto(bytes(response), source)


def _store(registrar: str) -> ConfigStore:
    store = ConfigStore(":memory:", lines=2)
    store.update({
        ("rtp_port_min", 0): 45000, ("rtp_port_max", 0): 45999,
        ("line_enable", 1): True, ("user_id", 1): "alice", ("proxy", 1): registrar,
        ("sip_transport", 1): "UDP", ("secure_call_option", 1): "Off",
        ("restrict_source_ip", 1): False, ("register_expires", 1): 300,
        ("line_enable", 2): True, ("user_id", 2): "bob", ("sip_transport", 2): "UDP",
        ("secure_call_option", 2): "Off",
    })
    return store


@pytest.fixture
async def registrar() -> AsyncIterator[FakeRegistrar]:
    fake = FakeRegistrar()
    task = asyncio.get_running_loop().create_task(fake.run())
    yield fake
    task.cancel()
    fake.sock.close()


@pytest.fixture
async def phone(registrar: FakeRegistrar) -> AsyncIterator[Phone]:
    p = Phone(_store(registrar.address), PhoneOptions(
        system_ca=False, tls_port=None, tcp_port=None, history=False))
    async with p:
        deadline = asyncio.get_running_loop().time() + 5
        while "REGISTER" not in registrar.methods():
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


def _invite(sock: socket.socket, user: str, phone_host: str) -> bytes:
    host, port = sock.getsockname()
    lines = [
        f"INVITE sip:{user}@{phone_host} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{secrets.token_hex(6)};rport",
        "Max-Forwards: 70",
        f"To: <sip:{user}@{phone_host}>",
        f"From: <sip:stray@{host}>;tag={secrets.token_hex(4)}",
        f"Call-ID: {secrets.token_hex(8)}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:stray@{host}:{port}>",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _call_in(phone: Phone, sock: socket.socket, user: str, wait: float = 0.5
                   ) -> list[str]:
    """Send an INVITE for ``user`` to the phone; the status lines that come back (but 100),
    each once (a final response is retransmitted until an ACK that this test does not send)."""
    host, port = phone.local["udp"]
    sock.sendto(_invite(sock, user, host), (host, port))
    loop = asyncio.get_running_loop()
    got: list[str] = []
    deadline = loop.time() + wait
    while (left := deadline - loop.time()) > 0:
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), left)
        except TimeoutError:
            break
        line = data.split(b"\r\n", 1)[0].decode()
        if not line.startswith("SIP/2.0 100 ") and line not in got:
            got.append(line)
    return got


async def _until(predicate: Any, what: str, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


def test_the_settings_are_per_line_bools_no_by_default() -> None:
    for key, cisco in (("make_call_without_reg", "Make_Call_Without_Reg_{n}_"),
                       ("ans_call_without_reg", "Ans_Call_Without_Reg_{n}_")):
        s = SCHEMA[key]
        assert s.cisco == cisco and s.per_line and s.default is False
        assert s.page == "Ext" and s.section == "Proxy and Registration"
        assert by_cisco_name(cisco.format(n=3)) == (s, 3)
        assert parse_value(s, "Yes") is True and parse_value(s, "no") is False
        with pytest.raises(ValueError, match="Yes or No"):
            parse_value(s, "sometimes")
    store = _store("127.0.0.1:5060")
    store.update({("make_call_without_reg", 2): True, ("ans_call_without_reg", 2): True})
    one, two = LineConfig.from_store(store, 1), LineConfig.from_store(store, 2)
    assert not one.make_call_without_reg and not one.ans_call_without_reg
    assert two.make_call_without_reg and two.ans_call_without_reg


async def test_unregistered_line_refuses_both_ways_and_direct_line_does_not(
    phone: Phone, registrar: FakeRegistrar, peer: socket.socket
) -> None:
    lines = phone.status()["lines"]
    assert not lines[0]["registered"] and lines[0]["registers"]
    assert lines[0]["calls_refused"] == "not registered: calls can be neither made nor answered"
    assert not lines[0]["make_call_without_reg"] and not lines[0]["ans_call_without_reg"]
    assert lines[1]["calls_refused"] is None  # no registration to be without

    # outgoing: refused at once, nothing sent
    with pytest.raises(CallError, match="line 1: not registered"):
        await phone.dial("carol", 1)
    await asyncio.sleep(0.2)
    assert "INVITE" not in registrar.methods() and phone.calls == {}

    # incoming: 480, no ring
    got = await _call_in(phone, peer, "alice")
    assert got == ["SIP/2.0 480 Temporarily Unavailable"], got
    assert phone.calls == {}
    # a user no line has goes to the default line (1): also refused
    assert await _call_in(phone, peer, "100") == ["SIP/2.0 480 Temporarily Unavailable"]

    # line 2 does not register: it rings and it dials
    assert "SIP/2.0 180 Ringing" in await _call_in(phone, peer, "bob")
    (ringing,) = phone.calls.values()
    assert ringing.line == 2
    await phone.reject(ringing.id)
    call = await phone.dial(f"sip:someone@{registrar.address}", 2)
    assert call.line == 2
    await phone.wait_call(call.id, lambda c: c.is_over, 5)
    assert call.status_code == 480  # it was placed (and the fake refused it)


async def test_the_settings_apply_live(
    phone: Phone, registrar: FakeRegistrar, peer: socket.socket
) -> None:
    events: list[LineChanged] = []
    phone.subscribe(lambda ev: events.append(ev) if isinstance(ev, LineChanged) else None)
    phone.store.update({("make_call_without_reg", 1): True})
    await _until(lambda: any(e.line == 1 and e.status["make_call_without_reg"] for e in events),
                 "line 1 shows Make Call Without Reg")
    assert phone.status()["lines"][0]["calls_refused"] == (
        "not registered: incoming calls are refused with 480 (calls can be made)")
    call = await phone.dial("carol", 1)
    await _until(lambda: "INVITE" in registrar.methods(), "the INVITE at the proxy")
    invite = next(r for r in registrar.received if r.method == "INVITE")
    assert invite.uri.user == "carol"
    await phone.wait_call(call.id, lambda c: c.is_over, 5)
    assert await _call_in(phone, peer, "alice") == ["SIP/2.0 480 Temporarily Unavailable"]

    phone.store.update({("ans_call_without_reg", 1): True})
    await _until(lambda: phone.lines[1].config.ans_call_without_reg, "Ans Call Without Reg")
    assert phone.status()["lines"][0]["calls_refused"] is None
    assert "SIP/2.0 180 Ringing" in await _call_in(phone, peer, "alice")
    ringing = next(c for c in phone.calls.values() if c.direction == "incoming")
    assert ringing.line == 1
    await phone.reject(ringing.id)


async def test_a_registered_line_places_and_takes_calls(
    phone: Phone, registrar: FakeRegistrar, peer: socket.socket
) -> None:
    registrar.accept = True  # the next REGISTER (retransmission or retry) gets 200 OK
    assert await phone.wait_registered(1, 10)
    assert phone.status()["lines"][0]["calls_refused"] is None
    call = await phone.dial("carol", 1)
    await phone.wait_call(call.id, lambda c: c.is_over, 5)
    assert "INVITE" in registrar.methods() and call.status_code == 480
    assert "SIP/2.0 180 Ringing" in await _call_in(phone, peer, "alice")


@pytest.fixture
def refusing_registrar() -> Iterator[str]:
    """A registrar (in a thread: the CLI runs its own event loop) answering every REGISTER
    with 403 Forbidden."""
    import threading

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, source = sock.recvfrom(65535)
            except TimeoutError:
                continue
            message = parse_message(data)
            if isinstance(message, Request) and message.method == "REGISTER":
                sock.sendto(bytes(make_response(message, 403, to_tag="x")), source)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    host, port = sock.getsockname()
    yield f"{host}:{port}"
    stop.set()
    thread.join(2)
    sock.close()


def test_cli_says_not_registered(refusing_registrar: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    for key, value in (("line_enable", "yes"), ("user_id", "alice"),
                       ("proxy", refusing_registrar), ("sip_transport", "UDP")):
        assert main(["config", "set", key, value, "--line", "1", "--db", db]) == 0
    capsys.readouterr()
    assert main(["call", "bob", "--line", "1", "--db", db]) != 0
    assert "error: line 1: not registered" in capsys.readouterr().err
    assert main(["status", "--db", db, "--wait", "2"]) == 0
    out = capsys.readouterr().out
    assert "  not registered: calls can be neither made nor answered" in out.splitlines(), out
