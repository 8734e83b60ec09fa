"""The per-call SIP trace: bounds, redaction, and a real call to the echo service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sippa.app.call import CallState
from sippa.app.echo import EchoService, make_self_signed
from sippa.app.phone import CallError, Phone, PhoneOptions
from sippa.app.store import ConfigStore
from sippa.app.trace import TraceStore, message_head, redact

pytestmark = pytest.mark.timeout(60)

LOCAL = ("127.0.0.1", 5061)
REMOTE = ("::1", 5070)


def _msg(first: str, call_id: str, cseq: str, *extra: str, body: str = "") -> bytes:
    lines = [first, "Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKx", f"Call-ID: {call_id}",
             f"CSeq: {cseq}", *extra, f"Content-Length: {len(body)}", "", body]
    return "\r\n".join(lines).encode()


def _record(store: TraceStore, data: bytes, direction: str = "out", now: float = 1.0) -> object:
    return store.record(direction, data, now=now, transport="tls", local=LOCAL, remote=REMOTE)


def test_message_head_reads_compact_forms() -> None:
    data = b"SIP/2.0 180 Ringing\r\ni: abc@h\r\ncseq:  7 invite\r\n\r\n"
    assert message_head(data) == ("SIP/2.0 180 Ringing", "abc@h", "INVITE")
    assert message_head(b"\r\n\r\n") == ("", None, None)


def test_only_invite_dialogs_start_a_trace() -> None:
    store = TraceStore()
    assert _record(store, _msg("REGISTER sip:x SIP/2.0", "reg", "1 REGISTER")) is None
    assert _record(store, _msg("OPTIONS sip:x SIP/2.0", "opt", "1 OPTIONS")) is None
    assert _record(store, b"\r\n\r\n") is None
    assert len(store) == 0
    entry = _record(store, _msg("INVITE sip:x SIP/2.0", "c1", "1 INVITE"))
    assert entry is not None
    _record(store, _msg("SIP/2.0 200 OK", "c1", "1 INVITE"), "in", 2.0)
    _record(store, _msg("BYE sip:x SIP/2.0", "c1", "2 BYE"), "out", 3.0)
    entries = store.get("c1")
    assert [e.label for e in entries] == ["INVITE", "200 OK", "BYE"]
    assert [e.direction for e in entries] == ["out", "in", "out"]
    first = entries[0]
    assert (first.transport, first.local, first.remote) == ("TLS", "127.0.0.1:5061", "[::1]:5070")
    assert first.as_dict()["label"] == "INVITE"
    assert store.get("unknown") == []


def test_bounds_on_messages_and_calls() -> None:
    store = TraceStore(max_calls=3, max_messages=5)
    for n in range(12):
        _record(store, _msg("INFO sip:x SIP/2.0" if n else "INVITE sip:x SIP/2.0", "long",
                            f"{n + 1} {'INFO' if n else 'INVITE'}"), now=float(n))
    kept = store.get("long")
    assert len(kept) == 5
    assert [e.time for e in kept] == [7.0, 8.0, 9.0, 10.0, 11.0]  # the oldest went first
    for n in range(4):
        _record(store, _msg("INVITE sip:x SIP/2.0", f"c{n}", "1 INVITE"))
    assert store.call_ids() == ["c1", "c2", "c3"]
    assert store.get("long") == []
    with pytest.raises(ValueError, match="at least"):
        TraceStore(max_calls=0)


def test_bound_on_characters_per_call() -> None:
    store = TraceStore(max_messages=100, max_call_text=3000)
    big = "x" * 800  # about 940 characters a message: three fit
    _record(store, _msg("INVITE sip:x SIP/2.0", "big", "1 INVITE", body=big), now=0.0)
    for n in range(1, 6):
        _record(store, _msg("INFO sip:x SIP/2.0", "big", f"{n + 1} INFO", body=big), now=n)
    kept = store.get("big")
    assert sum(len(e.text) for e in kept) <= 3000
    assert [e.time for e in kept] == [3.0, 4.0, 5.0]  # the newest whole messages stay
    huge = _msg("INFO sip:x SIP/2.0", "big", "9 INFO", body="y" * 20000)
    entry = _record(store, huge, now=9.0)
    assert entry is not None and len(entry.text) == 8192  # one message is cut, and kept alone
    assert store.get("big") == [entry]


def test_digest_response_and_sdes_keys_are_masked() -> None:
    key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    auth = ('Authorization: Digest username="alice", realm="r", nonce="n1", uri="sip:x", '
            'response="6629fae49393a05397450978507c4ef1", algorithm=MD5')
    proxy = "Proxy-Authorization: Digest username=bob,realm=r,response=0123abcd,nonce=n2"
    sdp = (f"v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 "
           f"inline:{key}|2^20|1:32\r\na=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:{key}ZZ\r\n")
    store = TraceStore()
    entry = store.record(
        "out", _msg("INVITE sip:x SIP/2.0", "sec", "2 INVITE", auth, proxy, body=sdp),
        now=1.0, transport="udp", local=LOCAL, remote=REMOTE,
    )
    assert entry is not None
    for secret in (key, "6629fae49393a05397450978507c4ef1", "0123abcd"):
        assert secret not in entry.text
    assert 'response=***' in entry.text and "response=***," in entry.text
    assert "inline:***|2^20|1:32" in entry.text
    assert 'username="alice"' in entry.text and 'nonce="n1"' in entry.text  # the rest stays
    assert redact("To: <sip:bob:s3cret@h:5060;transport=tls>") == (
        "To: <sip:bob:***@h:5060;transport=tls>"
    )
    for kept in ("Contact: <sip:bob@[::1]:5060>", "Record-Route: <sip:[::1]:5061;lr>"):
        assert redact(kept) == kept
    for kept in ("Contact: <sip:bob@h:5060>", "Route: <sip:10.0.0.1:5060;lr>",
                 "Via: SIP/2.0/UDP h:5060;branch=z9hG4bK1", "m=audio 4000 RTP/SAVP 0"):
        assert redact(kept) == kept
    # a header that merely has a parameter named response is not an Authorization header
    assert redact("X-Note: response=keep\r\n") == "X-Note: response=keep\r\n"


@pytest.fixture
async def echo(tmp_path: Path) -> AsyncIterator[EchoService]:
    service = EchoService(tmp_path / "echo")
    await service.start()
    yield service
    await service.stop()


async def test_echo_call_trace_holds_the_dialog_in_order(
    echo: EchoService, tmp_path: Path
) -> None:
    store = ConfigStore(tmp_path / "a.db", lines=1)
    store.update({("rtp_port_min", 0): 40000, ("rtp_port_max", 0): 44999})
    options = PhoneOptions(system_ca=False, tls_port=None, history=False)
    options.extra_ca_pem.append(echo.pem)
    options.aliases["echo"] = echo.uri
    phone = Phone(store, options)
    async with phone:
        with pytest.raises(CallError):
            phone.trace("nope")
        call = await phone.dial("echo")
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 10)
        await phone.hangup(call.id)
        await phone.wait_call(call.id, lambda c: c.is_over, 5)
        for _ in range(50):  # the 200 to our BYE may still be on its way
            if phone.trace(call.id)[-1].label.startswith("200"):
                break
            await asyncio.sleep(0.02)
        entries = phone.trace(call.id)
        assert phone.traced_calls() == [call.id]
    store.close()
    flow = [(e.direction, e.label) for e in entries]
    provisional = {("in", "100 Trying"), ("in", "180 Ringing"), ("in", "183 Session Progress")}
    assert flow[0] == ("out", "INVITE")
    # the echo service is a sippa phone: 100rel on both sides, its 180 is PRACKed (RFC 3262)
    # and its 2xx waits for the PRACK
    assert [f for f in flow if f not in provisional] == [
        ("out", "INVITE"), ("out", "PRACK"), ("in", "200 OK"), ("in", "200 OK"), ("out", "ACK"),
        ("out", "BYE"), ("in", "200 OK"),
    ], flow
    assert flow.index(("out", "PRACK")) > flow.index(("in", "180 Ringing"))
    assert flow.index(("in", "200 OK")) > max(flow.index(p) for p in provisional & set(flow))
    assert {e.transport for e in entries} == {"TLS"}
    assert len({e.remote for e in entries}) == 1  # one TLS connection, one peer
    invite = entries[0].text
    assert invite.startswith("INVITE ") and "a=crypto:" in invite
    assert "inline:***" in invite  # the SDES key we offered is not in the trace
    assert all("inline:***" in e.text for e in entries if "a=crypto:" in e.text)
    assert [e.time for e in entries] == sorted(e.time for e in entries)


async def test_callee_traces_incoming_calls_and_refusals(tmp_path: Path) -> None:
    cert = make_self_signed(tmp_path / "b")
    b_store = ConfigStore(":memory:", lines=1)
    b_store.update({("line_enable", 1): True, ("user_id", 1): "bob", ("dnd", 1): True,
                    ("rtp_port_min", 0): 40000, ("rtp_port_max", 0): 44999})
    a_store = ConfigStore(":memory:", lines=1)
    a_store.update({("line_enable", 1): True, ("user_id", 1): "alice",
                    ("rtp_port_min", 0): 40000, ("rtp_port_max", 0): 44999})
    bob = Phone(b_store, PhoneOptions(system_ca=False, tls_cert=cert.cert, tls_key=cert.key,
                                      history=False))
    alice = Phone(a_store, PhoneOptions(system_ca=False, tls_port=None, history=False,
                                        extra_ca_pem=[cert.pem]))
    async with bob, alice:
        host, port = bob.local["tls"]
        refused = await alice.dial(f"sips:bob@{host}:{port}")
        await alice.wait_call(refused.id, lambda c: c.is_over, 5)
        b_store.set("dnd", False, 1)
        await asyncio.sleep(0.1)
        call = await alice.dial(f"sips:bob@{host}:{port}")
        for _ in range(100):
            ringing = [c for c in bob.calls.values() if c.state is CallState.INCOMING]
            if ringing:
                break
            await asyncio.sleep(0.02)
        await bob.answer(ringing[0].id)
        await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 5)
        await alice.hangup(call.id)
        await bob.wait_call(ringing[0].id, lambda c: c.is_over, 5)
        await asyncio.sleep(0.1)
        traced = bob.traced_calls()
        assert len(traced) == 2 and traced[0] == ringing[0].id
        incoming = [(e.direction, e.label) for e in bob.trace(ringing[0].id)]
        first_refused = [(e.direction, e.label) for e in bob.trace(traced[1])]
        caller = [(e.direction, e.label) for e in alice.trace(call.id)]
    a_store.close()
    b_store.close()
    assert incoming[0] == ("in", "INVITE")
    assert ("out", "180 Ringing") in incoming and ("in", "ACK") in incoming
    assert incoming[-2:] == [("in", "BYE"), ("out", "200 OK")], incoming
    # the caller saw the same dialog from the other side
    assert caller[0] == ("out", "INVITE") and caller[-2:] == [("out", "BYE"), ("in", "200 OK")]
    assert first_refused[0] == ("in", "INVITE")
    assert ("out", "486 Busy Here") in first_refused, first_refused
