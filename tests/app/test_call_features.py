"""Call features between in-process phones on loopback TLS: blind transfer, SIP INFO DTMF,
call waiting, history, delayed offer, and settings applied live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from sippa.app.call import CallState
from sippa.app.echo import make_self_signed
from sippa.app.phone import CallError, LineChanged, Phone, PhoneOptions
from sippa.app.store import ConfigStore
from sippa.net.transport import Peer
from sippa.sip.core import UserAgentCore
from sippa.sip.uri import Uri

pytestmark = pytest.mark.timeout(60)


def _store(path: Path | str = ":memory:", **line1: Any) -> ConfigStore:
    store = ConfigStore(path, lines=2)
    changes: dict[tuple[str, int], Any] = {
        ("rtp_port_min", 0): 48000, ("rtp_port_max", 0): 49999, ("line_enable", 1): True,
    }
    changes.update({(k, 1): v for k, v in line1.items()})
    store.update(changes)
    return store


@pytest.fixture
async def phones(tmp_path: Path) -> AsyncIterator[dict[str, Phone]]:
    """alice, bob and carol, each with a certificate the others trust."""
    names = ("alice", "bob", "carol")
    certs = {n: make_self_signed(tmp_path / n, stem=n, common_name=n) for n in names}
    out: dict[str, Phone] = {}
    async with AsyncExitStack() as stack:
        for n in names:
            store = _store(tmp_path / f"{n}.db", user_id=n, auto_answer=(n == "carol"))
            phone = Phone(store, PhoneOptions(
                system_ca=False, tls_cert=certs[n].cert, tls_key=certs[n].key,
                extra_ca_pem=[certs[o].pem for o in names if o != n],
            ))
            await stack.enter_async_context(phone)
            out[n] = phone
        yield out


def _uri(phone: Phone, user: str) -> str:
    host, port = phone.local["tls"]
    return f"sips:{user}@{host}:{port}"


async def _ringing(phone: Phone, count: int = 1) -> list[Any]:
    for _ in range(200):
        calls = [c for c in phone.calls.values() if c.state is CallState.INCOMING]
        if len(calls) >= count:
            return calls
        await asyncio.sleep(0.02)
    raise TimeoutError("no incoming call")


async def test_blind_transfer(phones: dict[str, Phone]) -> None:
    alice, bob, carol = phones["alice"], phones["bob"], phones["carol"]
    call = await alice.dial(_uri(bob, "bob"))
    b_call = (await _ringing(bob))[0]
    await bob.answer(b_call.id)
    await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 5)
    # bob transfers alice to carol (REFER); alice calls carol and drops bob
    await bob.transfer(_uri(carol, "carol"), b_call.id)
    await alice.wait_call(call.id, lambda c: c.is_over, 10)
    assert call.end_reason == "transferred"
    new = next(c for c in alice.calls.values() if c.id != call.id)
    assert new.transfer_from == call.id
    await alice.wait_call(new.id, lambda c: c.state is CallState.ACTIVE, 5)
    assert new.remote.startswith("sips:carol@")
    assert new.security().padlock
    await bob.wait_call(b_call.id, lambda c: c.is_over, 5)
    await alice.hangup(new.id)


async def test_info_dtmf_when_the_line_says_so(phones: dict[str, Phone]) -> None:
    alice, bob = phones["alice"], phones["bob"]
    alice.store.set("dtmf_tx_method", "INFO", 1)
    await asyncio.sleep(0.05)
    call = await alice.dial(_uri(bob, "bob"))
    b_call = (await _ringing(bob))[0]
    await bob.answer(b_call.id)
    await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 5)
    assert await alice.send_dtmf("9*", call.id) == "info"
    await bob.wait_call(b_call.id, lambda c: len(c.dtmf_received) == 2, 5)
    assert b_call.dtmf_received == ["9", "*"]
    with pytest.raises(CallError, match="bad DTMF"):
        await alice.send_dtmf("x", call.id)
    await alice.hangup(call.id)


async def test_call_waiting_and_busy(phones: dict[str, Phone]) -> None:
    alice, bob = phones["alice"], phones["bob"]
    first = await alice.dial(_uri(bob, "bob"))
    await _ringing(bob)
    second = await alice.dial(_uri(bob, "bob"))
    ringing = await _ringing(bob, 2)
    assert len(ringing) == 2  # call waiting: two calls on the line
    third = await alice.dial(_uri(bob, "bob"))
    await alice.wait_call(third.id, lambda c: c.is_over, 5)
    assert third.status_code == 486
    await alice.hangup(first.id)
    await alice.hangup(second.id)
    await alice.wait_call(second.id, lambda c: c.is_over, 5)
    # without call waiting the second call is busy
    bob.store.set("cw_setting", False)
    await asyncio.sleep(0.05)
    first = await alice.dial(_uri(bob, "bob"))
    await _ringing(bob)
    second = await alice.dial(_uri(bob, "bob"))
    await alice.wait_call(second.id, lambda c: c.is_over, 5)
    assert second.status_code == 486
    await alice.hangup(first.id)
    await alice.wait_call(first.id, lambda c: c.is_over, 5)
    history = alice.history.recent(10) if alice.history else []
    assert [h.status_code for h in history][:2] == [487, 486]


async def test_delayed_offer_incoming(phones: dict[str, Phone]) -> None:
    """An INVITE without SDP: our offer goes in the 200, the answer comes in the ACK."""
    alice, carol = phones["alice"], phones["carol"]
    assert alice.core is not None
    core: UserAgentCore = alice.core
    # alice's core sends an offer-less INVITE directly (her Phone never does): carol answers
    host, port = carol.local["tls"]
    assert alice.endpoint is not None
    alice.endpoint.expect_identity(Peer.of("TLS", host, port), host)
    handle = core.invite(Uri.parse(f"sips:carol@{host}:{port}"), alice._now())
    alice._pump()
    for _ in range(200):
        incoming = [c for c in carol.calls.values() if c.direction == "incoming"]
        if incoming and incoming[0].delayed_offer and incoming[0].negotiator.local_sdp:
            break
        await asyncio.sleep(0.02)
    assert incoming[0].delayed_offer
    assert incoming[0].state is CallState.ACTIVE  # carol auto-answers with an offer
    core.hangup(handle, alice._now())
    alice._pump()


async def test_settings_apply_live_and_lines_report(tmp_path: Path) -> None:
    store = _store(user_id="dave")
    phone = Phone(store, PhoneOptions(system_ca=False, tls_port=None))
    seen: list[LineChanged] = []
    phone.subscribe(lambda ev: seen.append(ev) if isinstance(ev, LineChanged) else None)
    async with phone:
        assert phone.lines[1].config.user_id == "dave"
        store.update({("user_id", 1): "erin", ("display_name", 1): "Erin"})
        for _ in range(100):
            if phone.lines[1].config.user_id == "erin":
                break
            await asyncio.sleep(0.01)
        assert phone.lines[1].config.display_name == "Erin"
        assert any(ev.line == 1 and ev.status["aor"] == "sips:erin@127.0.0.1" for ev in seen)
        status = phone.status()["lines"][0]
        assert status["state"] == "direct" and not status["registered"]
        with pytest.raises(CallError, match="no line 7"):
            await phone.dial("x@127.0.0.1", line=7)


@pytest.mark.parametrize(
    ("transport", "keys_only_over_tls", "want_suite", "want_reason"),
    [
        ("UDP", True, False, "media is not encrypted"),
        ("UDP", False, True, "SRTP keys travelled without TLS"),
        ("TCP", False, True, "SRTP keys travelled without TLS"),
    ],
)
async def test_plain_transports_never_get_the_padlock(
    transport: str, keys_only_over_tls: bool, want_suite: bool, want_reason: str
) -> None:
    bob_store = _store(user_id="bob", sip_transport=transport, auto_answer=True,
                       mediasec_over_tls_only=keys_only_over_tls)
    alice_store = _store(user_id="alice", sip_transport=transport,
                         mediasec_over_tls_only=keys_only_over_tls)
    bob = Phone(bob_store, PhoneOptions(system_ca=False, tls_port=None))
    alice = Phone(alice_store, PhoneOptions(system_ca=False, tls_port=None))
    async with bob, alice:
        host, port = bob.local[transport.lower()]
        target = f"sip:bob@{host}:{port}" + (";transport=tcp" if transport == "TCP" else "")
        call = await alice.dial(target)
        await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 5)
        assert call.state is CallState.ACTIVE, call.as_dict()
        sec = call.security()
        assert not sec.padlock and not sec.signalling_secure
        assert sec.transport == transport
        assert any(f"SIP over {transport}" in r for r in sec.reasons)
        assert any(want_reason in r for r in sec.reasons), sec.reasons
        assert (sec.srtp_suite is not None) is want_suite
        await alice.hangup(call.id)
        await alice.wait_call(call.id, lambda c: c.is_over, 5)


async def test_incoming_calls_reach_the_line_they_name(phones: dict[str, Phone],
                                                        tmp_path: Path) -> None:
    alice, bob = phones["alice"], phones["bob"]
    bob.store.update({("line_enable", 2): True, ("user_id", 2): "bob2"})
    await asyncio.sleep(0.05)
    seen: list[bytes] = []
    assert alice.core is not None
    original = alice.core.receive

    def spy(data: bytes, source: Any, now: float) -> None:
        seen.append(data)
        original(data, source, now)

    alice.core.receive = spy  # type: ignore[method-assign]
    call = await alice.dial(_uri(bob, "bob2"))
    incoming = (await _ringing(bob))[0]
    assert incoming.line == 2
    # bob answers as the line that was called: its Contact names bob2, not line 1's bob
    for _ in range(100):
        ringing = [m for m in seen if m.startswith(b"SIP/2.0 180")]
        if ringing:
            break
        await asyncio.sleep(0.02)
    contact = next(ln for ln in ringing[0].split(b"\r\n") if ln.startswith(b"Contact:"))
    assert b"bob2@" in contact and b"<sips:bob@" not in contact
    await bob.reject(incoming.id, 603)
    await alice.wait_call(call.id, lambda c: c.is_over, 5)
    assert call.status_code == 603 and call.end_reason == "rejected (603)"


async def test_call_forward_answers_302_and_the_caller_follows_it(
    phones: dict[str, Phone],
) -> None:
    alice, bob, carol = phones["alice"], phones["bob"], phones["carol"]
    seen: list[bytes] = []
    assert alice.endpoint is not None and alice.core is not None
    core = alice.core
    original = core.receive

    def spy(data: bytes, source: Any, now: float) -> None:
        seen.append(data)
        original(data, source, now)

    core.receive = spy  # type: ignore[method-assign]
    bob.store.set("cfwd_all_dest_line", _uri(carol, "carol"), 1)
    await asyncio.sleep(0.05)
    call = await alice.dial(_uri(bob, "bob"))
    handle = call.id
    # RFC 3261 §8.1.3.4: alice calls the Contact of the 302 on the same call; carol answers
    await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 5)
    moved = next(m for m in seen if m.startswith(b"SIP/2.0 302"))
    assert f"Contact: <{_uri(carol, 'carol')}>".encode() in moved
    assert bob.history is not None
    assert bob.history.recent(1)[0].end_reason == f"forwarded to {_uri(carol, 'carol')}"
    assert call.id == handle and alice.calls[handle] is call
    assert call.redirected_from == [_uri(bob, "bob")]
    assert call.remote == _uri(carol, "carol")
    assert call.as_dict()["redirected_from"] == [_uri(bob, "bob")]
    assert call.security().padlock
    c_call = next(c for c in carol.calls.values() if c.state is CallState.ACTIVE)
    await alice.hangup(call.id)
    await carol.wait_call(c_call.id, lambda c: c.is_over, 5)
    assert alice.history is not None and len(alice.history.recent(10)) == 1


@pytest.mark.parametrize("through_carol", [False, True], ids=["b-to-b", "b-to-c-to-b"])
async def test_a_redirect_loop_stops_at_the_first_repeated_target(
    phones: dict[str, Phone], through_carol: bool
) -> None:
    alice, bob, carol = phones["alice"], phones["bob"], phones["carol"]
    if through_carol:
        bob.store.set("cfwd_all_dest_line", _uri(carol, "carol"), 1)
        carol.store.set("cfwd_all_dest_line", _uri(bob, "bob"), 1)
    else:
        bob.store.set("cfwd_all_dest_line", _uri(bob, "bob"), 1)
    await asyncio.sleep(0.05)
    call = await alice.dial(_uri(bob, "bob"))
    await alice.wait_call(call.id, lambda c: c.is_over, 10)
    # RFC 3261 §8.1.3.4: a URI joins the target set once
    assert call.status_code == 302
    assert call.end_reason is not None and "already tried" in call.end_reason
    assert call.redirected_from == ([_uri(bob, "bob")] if through_carol else [])
    assert bob.history is not None and carol.history is not None
    forwarded = len(bob.history.recent(20)) + len(carol.history.recent(20))
    assert forwarded == (2 if through_carol else 1)  # each INVITE was answered by one 302


async def test_the_redirect_limit_counts_3xx_responses(
    phones: dict[str, Phone], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sippa.app import phone as phone_module

    monkeypatch.setattr(phone_module, "MAX_REDIRECTS", 2)
    alice, bob, carol = phones["alice"], phones["bob"], phones["carol"]
    # a chain of distinct targets: bob -> carol -> bob2 -> carol2
    bob.store.update({("line_enable", 2): True, ("user_id", 2): "bob2"})
    carol.store.update({("line_enable", 2): True, ("user_id", 2): "carol2"})
    bob.store.set("cfwd_all_dest_line", _uri(carol, "carol"), 1)
    carol.store.set("cfwd_all_dest_line", _uri(bob, "bob2"), 1)
    bob.store.set("cfwd_all_dest_line", _uri(carol, "carol2"), 2)
    await asyncio.sleep(0.05)
    call = await alice.dial(_uri(bob, "bob"))
    await alice.wait_call(call.id, lambda c: c.is_over, 10)
    assert call.status_code == 302
    assert call.end_reason is not None and "too many times" in call.end_reason
    assert call.redirected_from == [_uri(bob, "bob"), _uri(carol, "carol")]
    assert call.remote == _uri(bob, "bob2")


async def _redirect_by_hand(bob: Phone, status: int, *contacts: str) -> None:
    """bob answers the ringing call with ``status`` and a ``Contact: <c>`` for each contact."""
    b_call = (await _ringing(bob))[0]
    assert bob.core is not None
    bob.core.redirects[b_call.id] = contacts
    bob.core.reject(b_call.id, bob._now(), status)
    bob._pump()


async def test_the_next_contact_of_a_redirect_is_tried_when_one_fails(
    phones: dict[str, Phone],
) -> None:
    alice, bob, carol = phones["alice"], phones["bob"], phones["carol"]
    carol.store.set("dnd", True, 1)  # carol answers 486
    bob.store.update({("line_enable", 2): True, ("user_id", 2): "bob2"})
    await asyncio.sleep(0.05)
    call = await alice.dial(_uri(bob, "bob"))
    first = (await _ringing(bob))[0]
    # RFC 3261 §8.1.3.4: the 302 names carol first, then bob's other line; bob's own URI
    # (already tried) is not called again
    await _redirect_by_hand(bob, 302, _uri(bob, "bob"), _uri(carol, "carol"), _uri(bob, "bob2"))
    for _ in range(200):  # carol is busy: alice moves on to bob
        again = [c for c in bob.calls.values()
                 if c.state is CallState.INCOMING and c.id != first.id]
        if again:
            break
        await asyncio.sleep(0.02)
    [b_call] = again
    await bob.answer(b_call.id)
    await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 5)
    assert call.state is CallState.ACTIVE, call.as_dict()
    assert call.redirected_from == [_uri(bob, "bob"), _uri(carol, "carol")]
    assert call.remote == _uri(bob, "bob2") and b_call.line == 2
    assert carol.history is not None
    assert carol.history.recent(1)[0].end_reason == "do not disturb"
    await alice.hangup(call.id)
    await bob.wait_call(b_call.id, lambda c: c.is_over, 5)


async def test_an_unreachable_redirect_target_moves_on_to_the_next(
    phones: dict[str, Phone],
) -> None:
    import socket

    alice, bob = phones["alice"], phones["bob"]
    bob.store.update({("line_enable", 2): True, ("user_id", 2): "bob2"})
    with socket.socket() as s:  # a port where nothing listens: the TLS connection is refused
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    await asyncio.sleep(0.05)
    call = await alice.dial(_uri(bob, "bob"))
    first = (await _ringing(bob))[0]
    nowhere = f"sips:nobody@127.0.0.1:{closed}"
    await _redirect_by_hand(bob, 302, nowhere, _uri(bob, "bob2"))
    for _ in range(250):
        again = [c for c in bob.calls.values()
                 if c.state is CallState.INCOMING and c.id != first.id]
        if again or call.is_over:
            break
        await asyncio.sleep(0.02)
    assert not call.is_over, call.end_reason
    [b_call] = again
    assert b_call.line == 2
    assert call.redirected_from == [_uri(bob, "bob"), nowhere]
    await bob.reject(b_call.id, 486)
    await alice.wait_call(call.id, lambda c: c.is_over, 5)
    assert call.status_code == 486


async def test_a_6xx_from_a_redirect_target_ends_the_call(phones: dict[str, Phone]) -> None:
    alice, bob, carol = phones["alice"], phones["bob"], phones["carol"]
    carol.store.set("auto_answer", False, 1)
    await asyncio.sleep(0.05)
    bob.store.update({("line_enable", 2): True, ("user_id", 2): "bob2"})
    await asyncio.sleep(0.05)
    call = await alice.dial(_uri(bob, "bob"))
    await _redirect_by_hand(bob, 302, _uri(carol, "carol"), _uri(bob, "bob2"))
    c_call = (await _ringing(carol))[0]
    await carol.reject(c_call.id, 603)  # §21.6: declined everywhere
    await alice.wait_call(call.id, lambda c: c.is_over, 5)
    assert call.status_code == 603 and call.end_reason == "rejected (603)"
    await asyncio.sleep(0.2)
    assert not [c for c in bob.calls.values() if not c.is_over]  # bob was not tried again


async def test_305_use_proxy_is_not_followed(phones: dict[str, Phone]) -> None:
    alice, bob, carol = phones["alice"], phones["bob"], phones["carol"]
    call = await alice.dial(_uri(bob, "bob"))
    await _redirect_by_hand(bob, 305, _uri(carol, "carol"))
    await alice.wait_call(call.id, lambda c: c.is_over, 5)
    assert call.status_code == 305 and call.redirected_from == []
    assert call.end_reason is not None and "Use Proxy is not followed" in call.end_reason
    await asyncio.sleep(0.1)
    assert not carol.calls


async def test_a_sips_call_is_not_redirected_to_sip(phones: dict[str, Phone]) -> None:
    alice, bob, carol = phones["alice"], phones["bob"], phones["carol"]
    host, port = carol.local["tls"]
    call = await alice.dial(_uri(bob, "bob"))
    await _redirect_by_hand(bob, 302, f"sip:carol@{host}:{port};transport=tls")
    await alice.wait_call(call.id, lambda c: c.is_over, 5)
    assert call.status_code == 302 and call.redirected_from == []
    assert call.end_reason is not None and "downgrade the sips call" in call.end_reason
    await asyncio.sleep(0.1)
    assert not carol.calls


async def test_a_redirect_to_a_non_sip_scheme_is_not_followed(phones: dict[str, Phone]) -> None:
    alice, bob = phones["alice"], phones["bob"]
    call = await alice.dial(_uri(bob, "bob"))
    await _redirect_by_hand(bob, 301, "mailto:carol@example.com")
    await alice.wait_call(call.id, lambda c: c.is_over, 5)
    assert call.status_code == 301 and call.redirected_from == []
    assert call.end_reason is not None and "no acceptable target" in call.end_reason


async def test_early_media_before_the_answer(phones: dict[str, Phone], tmp_path: Path) -> None:
    from sippa.media import ToneSource, WavRecorder
    from tests.media.tonecheck import analyse_wav

    alice, bob = phones["alice"], phones["bob"]
    heard = tmp_path / "early.wav"
    call = await alice.dial(_uri(bob, "bob"), sink=WavRecorder(heard))
    b_call = (await _ringing(bob))[0]
    b_call.source = ToneSource(750)
    assert bob.core is not None and b_call.negotiator.local_sdp is not None
    # bob's side sends 183 Session Progress with its answer and starts media (a ringback)
    bob.core.ringing(b_call.id, bob._now(), 183, body=bytes(b_call.negotiator.local_sdp))
    bob._pump()
    bob._start_media(b_call)
    await alice.wait_call(call.id, lambda c: c.stream is not None, 5)
    assert call.state is CallState.RINGING and call.answered is None
    await asyncio.sleep(1.0)
    assert call.stream is not None and call.stream.stats().packets_received > 20
    await bob.answer(b_call.id)
    await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 5)
    await alice.hangup(call.id)
    await alice.wait_call(call.id, lambda c: c.is_over, 5)
    assert analyse_wav(heard).holds(750, min_active=0.5)


async def test_old_ended_calls_are_forgotten(phones: dict[str, Phone],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sippa.app.phone as phone_module

    monkeypatch.setattr(phone_module, "KEEP_ENDED_CALLS", 2)
    alice, bob = phones["alice"], phones["bob"]
    bob.store.set("dnd", True, 1)
    await asyncio.sleep(0.05)
    ids = []
    for _ in range(4):
        call = await alice.dial(_uri(bob, "bob"))
        await alice.wait_call(call.id, lambda c: c.is_over, 5)
        ids.append(call.id)
    assert list(alice.calls) == ids[-2:]
    assert alice.history is not None and len(alice.history.recent(10)) == 4
