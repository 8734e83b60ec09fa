"""The voicemail light end to end on loopback: a Phone and a scripted registrar/notifier (UDP)
that challenges the SUBSCRIBE, accepts it, NOTIFYs counts, and sends unsolicited NOTIFYs."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from typing import Any

import pytest

from sippa.app.line import LineConfig
from sippa.app.mwi import MwiStatus, same_flow
from sippa.app.phone import Phone, PhoneOptions
from sippa.app.settings import SettingError
from sippa.app.store import ConfigStore
from sippa.sip.digest_server import DigestVerifier
from sippa.sip.events import Address
from sippa.sip.message import Request, Response, make_response, parse_message
from sippa.sip.mwi import MessageCounts, MessageSummary

pytestmark = pytest.mark.timeout(60)


class Notifier:
    """A UDP registrar + message-summary notifier, driven by the test."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.verifier = DigestVerifier(
            "example.test", secrets.token_bytes(16),
            lambda user: "alice-secret" if user == "alice" else None,
        )
        self.requests: list[Request] = []
        self.responses: list[Response] = []
        self.phone_addr: tuple[str, int] | None = None
        self.subscribe: Request | None = None
        self.expires: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._got = asyncio.Event()
        self._seq = 0

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.sock.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data, addr = await loop.sock_recvfrom(self.sock, 65535)
            msg = parse_message(data)
            if isinstance(msg, Response):
                self.responses.append(msg)
            else:
                self.requests.append(msg)
                self.phone_addr = addr
                await self._answer(msg, addr)
            self._got.set()

    async def _answer(self, req: Request, addr: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        if req.method == "REGISTER":
            resp = make_response(req, 200, to_tag="reg")
            resp.headers.add("Contact", f"{req.headers.get('Contact')};expires=600")
        elif req.method == "SUBSCRIBE":
            verdict = self.verifier.verify("SUBSCRIBE", req.headers.get_all("Authorization"),
                                           time.time())
            if not verdict.ok:
                resp = make_response(req, 401, to_tag="vm")
                for value in self.verifier.challenges(time.time()):
                    resp.headers.add("WWW-Authenticate", value)
            else:
                resp = make_response(req, 202, to_tag="vm")
                resp.headers.add("Contact", f"<sip:vm@127.0.0.1:{self.port}>")
                resp.headers.add("Expires", req.headers.get("Expires") or "0")
                self.subscribe = req
                self.expires.append(req.headers.get("Expires") or "")
        else:
            resp = make_response(req, 405, to_tag="x")
        await loop.sock_sendto(self.sock, bytes(resp), addr)

    async def wait(self, predicate: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            self._got.clear()
            await asyncio.wait_for(self._got.wait(), max(0.01, deadline - time.monotonic()))

    async def notify(
        self, body: bytes, state: str = "active;expires=600", *, unsolicited: bool = False,
        sock: socket.socket | None = None, to_user: str = "alice",
    ) -> Response:
        """Send a NOTIFY (in the subscription's dialog, or out of any) and return the answer."""
        assert self.phone_addr is not None
        sock = sock or self.sock
        self._seq += 1
        host, port = self.phone_addr
        me = sock.getsockname()[1]
        if unsolicited:
            dialog = (f"From: <sip:vm@example.test>;tag=u{self._seq}\r\n"
                      f"To: <sip:{to_user}@example.test>\r\nCall-ID: unsol-{self._seq}\r\n"
                      f"CSeq: 1 NOTIFY\r\n")
        else:
            sub = self.subscribe
            assert sub is not None
            dialog = (f"From: <sip:alice@example.test>;tag=vm\r\nTo: {sub.headers.get('From')}\r\n"
                      f"Call-ID: {sub.call_id}\r\nCSeq: {self._seq} NOTIFY\r\n"
                      f"Contact: <sip:vm@127.0.0.1:{self.port}>\r\n"
                      f"Subscription-State: {state}\r\n")
        msg = (
            f"NOTIFY sip:{to_user}@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-n{self._seq};rport\r\n"
            f"Max-Forwards: 70\r\n{dialog}Event: message-summary\r\n"
            f"Content-Type: application/simple-message-summary\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        loop = asyncio.get_running_loop()
        if sock is self.sock:
            count = len(self.responses)
            await loop.sock_sendto(sock, msg, (host, port))
            await self.wait(lambda: len(self.responses) > count)
            return self.responses[-1]
        await loop.sock_sendto(sock, msg, (host, port))
        data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
        resp = parse_message(data)
        assert isinstance(resp, Response)
        return resp


def _store(port: int, **extra: Any) -> ConfigStore:
    store = ConfigStore(":memory:", lines=2)
    values = {
        "line_enable": True, "user_id": "alice", "password": "alice-secret",
        "proxy": f"127.0.0.1:{port}", "sip_transport": "UDP", "use_dns_srv": False,
        "mwi_enable": True, **extra,
    }
    store.update({(k, 1): v for k, v in values.items()})
    return store


def _phone(store: ConfigStore) -> Phone:
    return Phone(store, PhoneOptions(system_ca=False, tls_port=None, tcp_port=None, history=False))


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


SUMMARY = b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@example.test\r\n" \
          b"Voice-Message: 2/8 (1/0)\r\n"


async def test_subscribe_with_digest_then_counts_then_cleared_then_unsubscribe() -> None:
    notifier = Notifier()
    notifier.start()
    store = _store(notifier.port)
    phone = _phone(store)
    try:
        async with phone:
            await notifier.wait(lambda: notifier.subscribe is not None)
            sub = notifier.subscribe
            assert sub is not None
            # the line registered first, then subscribed over the same address
            methods = [r.method for r in notifier.requests]
            assert methods.index("REGISTER") < methods.index("SUBSCRIBE")
            assert sub.headers.get("Event") == "message-summary"
            assert sub.headers.get("Accept") == "application/simple-message-summary"
            assert str(sub.uri) == "sip:alice@127.0.0.1"  # the line's AoR at its proxy
            assert "Authorization" in sub.headers  # answered the 401
            await _until(lambda: phone.lines[1].mwi.subscription == "active")

            assert (await notifier.notify(SUMMARY)).status_code == 200
            mwi = phone.lines[1].mwi
            assert (mwi.messages_waiting, mwi.new, mwi.old, mwi.new_urgent) == (True, 2, 8, 1)
            assert mwi.source == "subscription" and mwi.updated is not None
            status = phone.status()["lines"][0]["mwi"]
            assert status["new"] == 2 and status["messages_waiting"] is True

            cleared = b"Messages-Waiting: no\r\nVoice-Message: 0/10\r\n"
            assert (await notifier.notify(cleared)).status_code == 200
            assert (mwi.messages_waiting, mwi.new, mwi.old) == (False, 0, 10)

            # a malformed summary is refused, the state stays
            assert (await notifier.notify(b"Messages-Waiting: perhaps\r\n")).status_code == 400
            assert (mwi.messages_waiting, mwi.old) == (False, 10)

            # switching MWI off unsubscribes (Expires: 0 in the dialog)
            store.set("mwi_enable", False, 1)
            await notifier.wait(lambda: notifier.expires[-1:] == ["0"])
            assert notifier.subscribe is not None
            assert notifier.subscribe.call_id == sub.call_id
            await _until(lambda: phone.lines[1].mwi.subscription == "off")
            # what the ended subscription said is not shown any more
            assert phone.lines[1].mwi.updated is None and phone.lines[1].mwi.old == 0
    finally:
        notifier.close()
        store.close()


async def test_unsolicited_notify_only_from_the_registrar_flow() -> None:
    notifier = Notifier()
    notifier.start()
    store = _store(notifier.port, mwi_enable=False)
    phone = _phone(store)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    stranger.setblocking(False)
    try:
        async with phone:
            assert await phone.wait_registered(1, 10)
            assert not any(r.method == "SUBSCRIBE" for r in notifier.requests)
            # from anywhere else: 481, nothing shown
            refused = await notifier.notify(SUMMARY, unsolicited=True, sock=stranger)
            assert refused.status_code == 481
            assert phone.lines[1].mwi.updated is None
            # for another user over the right flow: 481
            other = await notifier.notify(SUMMARY, unsolicited=True, to_user="bob")
            assert other.status_code == 481
            # over the registration flow, for the line's user: shown
            ok = await notifier.notify(SUMMARY, unsolicited=True)
            assert ok.status_code == 200
            mwi = phone.lines[1].mwi
            assert (mwi.messages_waiting, mwi.new, mwi.old) == (True, 2, 8)
            assert mwi.source == "unsolicited"
            bad = await notifier.notify(b"Voice-Message: 1/1\r\n", unsolicited=True)
            assert bad.status_code == 400
    finally:
        stranger.close()
        notifier.close()
        store.close()


async def test_a_voice_mail_server_elsewhere_subscribes_and_passes_restrict_source_ip() -> None:
    """Voice_Mail_Server set (MWI Enable left off) subscribes there; the line's Restrict Source
    IP (on: it has a proxy) lets that server's NOTIFYs in its subscription through, and
    nothing else of it."""
    registrar = Notifier()
    try:
        vm = Notifier("127.0.0.2")
    except OSError:
        registrar.close()
        pytest.skip("no 127.0.0.2 here")
    registrar.start()
    vm.start()
    store = _store(registrar.port, mwi_enable=False, voice_mail_server=f"127.0.0.2:{vm.port}")
    phone = _phone(store)
    try:
        async with phone:
            assert phone.lines[1].config.restrict_source_ip
            await vm.wait(lambda: vm.subscribe is not None)
            assert vm.subscribe is not None and str(vm.subscribe.uri).endswith(f"2:{vm.port}")
            await _until(lambda: phone.lines[1].mwi.subscription == "active")
            assert (await vm.notify(SUMMARY)).status_code == 200
            assert phone.lines[1].mwi.new == 2
            # the same server outside the subscription is a stranger: dropped, not answered
            count = len(vm.responses)
            with pytest.raises(TimeoutError):
                await vm.notify(SUMMARY, unsolicited=True)
            assert len(vm.responses) == count
            assert phone.lines[1].as_dict()["source_restriction"]["refused"] == 1
    finally:
        vm.close()
        registrar.close()
        store.close()


async def test_server_without_the_package_is_not_asked_again() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    store = _store(port, register=False)
    phone = _phone(store)
    loop = asyncio.get_running_loop()
    try:
        async with phone:
            data, addr = await asyncio.wait_for(loop.sock_recvfrom(sock, 65535), 10)
            req = parse_message(data)
            assert isinstance(req, Request) and req.method == "SUBSCRIBE"
            await loop.sock_sendto(sock, bytes(make_response(req, 489, to_tag="x")), addr)
            await _until(lambda: phone.lines[1].mwi.subscription == "given-up")
            assert "489" in (phone.lines[1].mwi.reason or "")
    finally:
        sock.close()
        store.close()


def test_mailbox_uri_from_the_settings() -> None:
    def cfg(**values: Any) -> LineConfig:
        store = ConfigStore(":memory:", lines=1)
        base = {"line_enable": True, "user_id": "alice", "proxy": "example.test"}
        store.update({(k, 1): v for k, v in {**base, **values}.items()})
        return LineConfig.from_store(store, 1)

    assert str(cfg().mailbox_uri) == "sips:alice@example.test"
    assert str(cfg(mailbox_id="8000").mailbox_uri) == "sips:8000@example.test"
    assert str(cfg(voice_mail_server="vm.example.test:5071", sip_transport="UDP").mailbox_uri) \
        == "sip:alice@vm.example.test:5071"
    assert str(cfg(voice_mail_server="sip:vm@vm.example.test").mailbox_uri) \
        == "sip:vm@vm.example.test"
    assert str(cfg(voice_mail_server="sips:vm.example.test", mailbox_id="9").mailbox_uri) \
        == "sips:9@vm.example.test"
    assert not cfg().subscribes_mwi  # off by default
    assert cfg(mwi_enable=True).subscribes_mwi
    assert cfg(voice_mail_server="vm.example.test").subscribes_mwi  # a server says subscribe
    store = ConfigStore(":memory:", lines=1)
    with pytest.raises(SettingError):
        store.update({("voice_mail_server", 1): "sip:"})
    with pytest.raises(SettingError):
        store.update({("mailbox_id", 1): "a b"})


def test_mwi_status_and_flow_matching() -> None:
    status = MwiStatus()
    status.apply(MessageSummary(True, None, {"voice-message": MessageCounts(3, 1, 1, 0)}),
                 "subscription", when=5.0)
    assert status.as_dict()["new"] == 3 and status.as_dict()["updated"] == 5.0
    status.apply(MessageSummary(False), "unsolicited")
    assert (status.new, status.old, status.messages_waiting) == (0, 0, False)
    src = Address("tls", "127.0.0.1", 5061, 7)
    assert same_flow(src, "TLS:127.0.0.1:5061")
    assert not same_flow(src, "TLS:127.0.0.1:5062")
    assert not same_flow(src, "TCP:127.0.0.1:5061")
    assert same_flow(Address("udp", "::1", 5060), "UDP:[::1]:5060")
    assert not same_flow(None, "UDP:127.0.0.1:5060")


def test_voicemail_text() -> None:
    from sippa.app.mwi import voicemail_text

    status = MwiStatus()
    assert voicemail_text(None) == "" and voicemail_text(status.as_dict()) == ""
    status.subscription = "backoff"
    status.reason = "no response (timeout)"
    assert voicemail_text(status.as_dict()) == "Voicemail: backoff (no response (timeout))"
    status.apply(MessageSummary(True, None, {"voice-message": MessageCounts(1, 0)}), "x")
    assert voicemail_text(status.as_dict()) == "Voicemail: 1 new"
    status.apply(MessageSummary(False, None, {"voice-message": MessageCounts(0, 4)}), "x")
    assert voicemail_text(status.as_dict()) == "Voicemail: no new messages (4 old)"


@pytest.mark.parametrize("event", ["presence", "keep-alive", None])
async def test_notify_of_a_package_we_do_not_subscribe_to_gets_489(event: str | None) -> None:
    """RFC 6665 §8.2.1: not 200 for an event the phone knows nothing of."""
    store = ConfigStore(":memory:", lines=1)
    store.update({("line_enable", 1): True, ("user_id", 1): "alice"})  # no proxy: direct
    phone = _phone(store)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        async with phone:
            host, port = phone.local["udp"]
            me = sock.getsockname()[1]
            header = f"Event: {event}\r\n" if event else ""
            msg = (
                f"NOTIFY sip:alice@{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-ev{event}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:x@127.0.0.1>;tag=1\r\n"
                f"To: <sip:alice@{host}>\r\nCall-ID: ev-{event}\r\nCSeq: 1 NOTIFY\r\n"
                f"{header}Subscription-State: active\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            await loop.sock_sendto(sock, msg, (host, port))
            resp = parse_message(await asyncio.wait_for(loop.sock_recv(sock, 65535), 5))
            assert isinstance(resp, Response) and resp.status_code == 489
    finally:
        sock.close()
        store.close()
