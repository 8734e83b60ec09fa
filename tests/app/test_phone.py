"""The Phone on loopback: two in-process phones (and the echo service) through the real stack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sippa.app.call import CallState
from sippa.app.echo import EchoService
from sippa.app.phone import CallChanged, CallError, Phone, PhoneOptions
from sippa.app.store import ConfigStore
from sippa.media import ToneSource, WavRecorder
from tests.media.tonecheck import analyse_wav

pytestmark = pytest.mark.timeout(60)


def _store(path: Path | str = ":memory:", **line1: Any) -> ConfigStore:
    store = ConfigStore(path, lines=2)
    changes = {("rtp_port_min", 0): 40000, ("rtp_port_max", 0): 44999}
    for key, value in line1.items():
        changes[(key, 1)] = value
    store.update(changes)
    return store


@pytest.fixture
async def echo(tmp_path: Path) -> AsyncIterator[EchoService]:
    service = EchoService(tmp_path / "echo")
    await service.start()
    yield service
    await service.stop()


def _phone(store: ConfigStore, echo: EchoService | None = None, **kw: Any) -> Phone:
    options = PhoneOptions(system_ca=False, tls_port=None, **kw)
    if echo is not None:
        options.extra_ca_pem.append(echo.pem)
        options.aliases["echo"] = echo.uri
    return Phone(store, options)


async def test_echo_call_is_secure_and_echoes_audio(echo: EchoService, tmp_path: Path) -> None:
    store = _store(tmp_path / "a.db")
    phone = _phone(store, echo)
    events: list[CallChanged] = []
    phone.subscribe(lambda ev: events.append(ev) if isinstance(ev, CallChanged) else None)
    async with phone:
        rec = tmp_path / "heard.wav"
        call = await phone.dial("echo", source=ToneSource(700), sink=WavRecorder(rec))
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 10)
        sec = call.security()
        assert sec.padlock, sec.reasons
        assert sec.transport == "TLS"
        assert sec.tls_version in ("TLSv1.2", "TLSv1.3")
        assert sec.cipher and sec.peer_subject and "sippa echo" in sec.peer_subject
        assert sec.srtp_suite is not None
        await asyncio.sleep(1.5)
        status = phone.status()
        assert status["calls"][0]["security"]["padlock"] is True
        await phone.hangup(call.id)
        await phone.wait_call(call.id, lambda c: c.is_over, 5)
        assert call.end_reason == "hung up by us"
    report = analyse_wav(rec)
    assert report.holds(700, min_active=0.5), report
    assert {e.state for e in events} >= {"dialing", "active", "ended"}
    store.close()


async def test_echo_without_trust_has_no_padlock(echo: EchoService, tmp_path: Path) -> None:
    """TLS validation fails without the echo certificate: the call cannot even start."""
    store = _store()
    phone = _phone(store)
    phone.options.aliases["echo"] = echo.uri
    async with phone:
        call = await phone.dial("echo")
        await phone.wait_call(call.id, lambda c: c.is_over, 10)
        assert call.answered is None
        assert not call.security().padlock
        assert call.end_reason and "cannot reach tls:127.0.0.1" in call.end_reason
        assert "certificate" in call.end_reason.lower(), call.end_reason


async def test_validation_off_means_no_padlock(echo: EchoService) -> None:
    store = _store(tls_name_validate=False, line_enable=True, user_id="alice")
    phone = _phone(store)
    async with phone:
        phone._insecure_names.add("127.0.0.1")
        phone.options.aliases["echo"] = echo.uri
        call = await phone.dial("echo")
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 10)
        sec = call.security()
        assert not sec.padlock
        assert sec.media_encrypted
        assert any("not checked" in r or "not validated" in r for r in sec.reasons), sec.reasons
        await phone.hangup(call.id)


async def test_mandatory_plain_udp_keys_refused_before_sending(tmp_path: Path) -> None:
    """Mandatory + keys only over TLS + a UDP leg: the call is refused with the reason."""
    store = _store(line_enable=True, user_id="alice", secure_call_option="Mandatory",
                   sip_transport="UDP")
    phone = _phone(store)
    async with phone:
        with pytest.raises(CallError, match="only be sent over TLS"):
            await phone.dial("sip:bob@127.0.0.1:5")


async def test_two_phones_over_tls_answer_hold_dtmf_hangup(tmp_path: Path) -> None:
    from sippa.app.echo import make_self_signed

    cert, a_cert = make_self_signed(tmp_path / "b"), make_self_signed(tmp_path / "a")
    b_store = _store(line_enable=True, user_id="bob", secure_call_option="Mandatory")
    bob = Phone(b_store, PhoneOptions(system_ca=False, tls_cert=cert.cert, tls_key=cert.key,
                                      udp_port=0, tcp_port=None, extra_ca_pem=[a_cert.pem]))
    a_store = _store(line_enable=True, user_id="alice", secure_call_option="Best Effort")
    alice = Phone(a_store, PhoneOptions(system_ca=False, tls_cert=a_cert.cert,
                                        tls_key=a_cert.key, extra_ca_pem=[cert.pem]))
    async with bob, alice:
        host, port = bob.local["tls"]
        rec_b = tmp_path / "bob.wav"
        call = await alice.dial(f"sips:bob@{host}:{port}", source=ToneSource(600))
        await asyncio.sleep(0.3)
        incoming = [c for c in bob.calls.values() if c.state is CallState.INCOMING]
        assert len(incoming) == 1
        b_call = incoming[0]
        b_call.sink = WavRecorder(rec_b)
        b_call.source = ToneSource(900)
        await alice.wait_call(call.id, lambda c: c.state is CallState.RINGING, 5)
        await bob.answer(b_call.id)
        await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 5)
        assert call.security().padlock, call.security().reasons
        # the callee's side: TLS, but the caller showed no certificate
        b_sec = b_call.security()
        assert not b_sec.padlock and b_sec.media_encrypted and b_sec.transport == "TLS"
        await asyncio.sleep(1.0)
        await alice.hold(call.id)
        await alice.wait_call(call.id, lambda c: c.state is CallState.HELD, 5)
        assert call.stream is not None and call.stream.config.direction == "sendonly"
        await alice.resume(call.id)
        await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 5)
        assert await alice.send_dtmf("159#", call.id) == "rfc4733"
        await bob.wait_call(b_call.id, lambda c: len(c.dtmf_received) >= 4, 5)
        assert "".join(b_call.dtmf_received) == "159#"
        await bob.hangup(b_call.id)
        await alice.wait_call(call.id, lambda c: c.is_over, 5)
        assert call.end_reason == "hung up by the other party"
    assert analyse_wav(rec_b).holds(600, min_active=0.5)


async def test_reject_dnd_and_busy(tmp_path: Path) -> None:
    from sippa.app.echo import make_self_signed

    cert = make_self_signed(tmp_path / "b")
    b_store = _store(line_enable=True, user_id="bob", dnd=True)
    bob = Phone(b_store, PhoneOptions(system_ca=False, tls_cert=cert.cert, tls_key=cert.key))
    alice = _phone(_store(line_enable=True, user_id="alice"), extra_ca_pem=[cert.pem])
    async with bob, alice:
        host, port = bob.local["tls"]
        call = await alice.dial(f"sips:bob@{host}:{port}")
        await alice.wait_call(call.id, lambda c: c.is_over, 5)
        assert call.status_code == 486
        # DND off, live: the store listener applies it
        b_store.set("dnd", False, 1)
        await asyncio.sleep(0.1)
        call = await alice.dial(f"sips:bob@{host}:{port}")
        await asyncio.sleep(0.3)
        ringing = [c for c in bob.calls.values() if c.state is CallState.INCOMING]
        await bob.reject(ringing[0].id, 603)
        await alice.wait_call(call.id, lambda c: c.is_over, 5)
        assert call.status_code == 603


async def test_notify_resync_must_authenticate_with_a_line_password(tmp_path: Path) -> None:
    """NOTIFY Event: resync gets 401 until it carries a line's digest credentials; forged or
    replayed credentials never trigger a resync (the Cisco "Auth Resync-Reboot" rule)."""
    import itertools
    import socket

    from sippa.sip.digest import DigestClient
    from sippa.sip.message import parse_message

    store = _store(line_enable=True, user_id="alice", password="alice-secret", register=False)
    phone = _phone(store)
    resyncs: list[float] = []

    async def resync() -> None:
        resyncs.append(1.0)

    phone.on_resync = resync
    async with phone:
        host, port = phone.local["udp"]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        me = sock.getsockname()[1]
        loop = asyncio.get_running_loop()

        async def send(cseq: int, extra: str = "") -> Any:
            msg = (
                f"NOTIFY sip:alice@{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-rs{cseq};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:pbx@127.0.0.1>;tag=p1\r\n"
                f"To: <sip:alice@{host}>\r\nCall-ID: resync-1\r\nCSeq: {cseq} NOTIFY\r\n"
                f"Event: resync\r\n{extra}Content-Length: 0\r\n\r\n"
            ).encode()
            await loop.sock_sendto(sock, msg, (host, port))
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
            return parse_message(data)

        first = await send(1)
        assert first.status_code == 401 and not resyncs
        challenges = first.headers.get_all("WWW-Authenticate")
        assert "SHA-512-256" in challenges[0]
        uri = f"sip:alice@{host}:{port}"
        wrong = DigestClient("alice", "guess", cnonce=lambda: "c0")
        bad = wrong.answer("NOTIFY", uri, b"", 401, challenges).value
        assert (await send(2, f"Authorization: {bad}\r\n")).status_code == 401
        counter = itertools.count()
        right = DigestClient("alice", "alice-secret", cnonce=lambda: f"c{next(counter)}")
        good = right.answer("NOTIFY", uri, b"", 401, challenges).value
        assert (await send(3, f"Authorization: {good}\r\n")).status_code == 200
        await asyncio.sleep(0.1)
        assert resyncs == [1.0]
        # the same credentials again are a replay
        assert (await send(4, f"Authorization: {good}\r\n")).status_code == 401
        assert resyncs == [1.0]
        # with Resync From SIP off the phone refuses outright
        store.set("resync_from_sip", False)
        assert (await send(5, f"Authorization: {good}\r\n")).status_code == 403
        sock.close()
    store.close()


async def test_new_custom_ca_bundle_applies_without_restart(
    echo: EchoService, tmp_path: Path
) -> None:
    """A bundle the Custom CA Rule installs in ca_dir is trusted after reload_trust()."""
    store = _store()
    ca_dir = tmp_path / "ca"
    ca_dir.mkdir()
    phone = _phone(store, ca_dir=ca_dir)
    phone.options.aliases["echo"] = echo.uri
    async with phone:
        refused = await phone.dial("echo")
        await phone.wait_call(refused.id, lambda c: c.is_over, 10)
        assert refused.answered is None
        (ca_dir / "custom-ca-rule.pem").write_bytes(echo.pem)
        phone.reload_trust()
        call = await phone.dial("echo")
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 10)
        assert call.security().padlock, call.security().reasons
        await phone.hangup(call.id)
        await phone.wait_call(call.id, lambda c: c.is_over, 5)
    store.close()
