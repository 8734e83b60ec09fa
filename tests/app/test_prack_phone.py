"""RFC 3262 (100rel / PRACK) through the whole phone: two phones over TLS on loopback, the
per-line 100rel setting (validated, applied live) and what the call details show."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sippa.app.call import CallState
from sippa.app.echo import make_self_signed
from sippa.app.line import LineConfig
from sippa.app.phone import Phone, PhoneOptions
from sippa.app.settings import SCHEMA, SettingError
from sippa.app.store import ConfigStore

pytestmark = pytest.mark.timeout(60)


def _store(**line: Any) -> ConfigStore:
    store = ConfigStore(":memory:", lines=2)
    changes: dict[tuple[str, int], Any] = {("rtp_port_min", 0): 45000, ("rtp_port_max", 0): 45999}
    changes.update({(key, 1): value for key, value in line.items()})
    store.update(changes)
    return store


def test_the_setting_is_per_line_validated_and_on_by_default() -> None:
    setting = SCHEMA["sip_100rel_enable"]
    assert setting.cisco_name(2) == "SIP_100REL_Enable_2_"
    assert (setting.page, setting.section) == ("Ext", "SIP Settings")
    store = ConfigStore(":memory:", lines=2)
    assert LineConfig.from_store(store, 1).rel100 is True
    store.update({("sip_100rel_enable", 2): False})
    assert LineConfig.from_store(store, 2).rel100 is False
    assert LineConfig.from_store(store, 1).rel100 is True
    with pytest.raises(SettingError):
        store.update({("sip_100rel_enable", 1): "maybe"})


@pytest.fixture
async def phones(tmp_path: Path) -> AsyncIterator[tuple[Phone, Phone]]:
    b_cert, a_cert = make_self_signed(tmp_path / "b"), make_self_signed(tmp_path / "a")
    bob = Phone(
        _store(line_enable=True, user_id="bob"),
        PhoneOptions(system_ca=False, history=False, tls_cert=b_cert.cert, tls_key=b_cert.key,
                     tcp_port=None, extra_ca_pem=[a_cert.pem]),
    )
    alice = Phone(
        _store(line_enable=True, user_id="alice"),
        PhoneOptions(system_ca=False, history=False, tls_cert=a_cert.cert, tls_key=a_cert.key,
                     tcp_port=None, extra_ca_pem=[b_cert.pem]),
    )
    async with bob, alice:
        yield alice, bob


async def _ringing(phone: Phone) -> Any:
    for _ in range(250):
        calls = [c for c in phone.calls.values() if c.state is CallState.INCOMING]
        if calls:
            return calls[-1]
        await asyncio.sleep(0.02)
    raise TimeoutError("no incoming call")


async def _call(alice: Phone, bob: Phone) -> tuple[Any, Any]:
    host, port = bob.local["tls"]
    call = await alice.dial(f"sips:bob@{host}:{port}")
    b_call = await _ringing(bob)
    await alice.wait_call(call.id, lambda c: c.state is CallState.RINGING or c.is_over, 5)
    return call, b_call


def _labels(phone: Phone, call_id: str) -> list[str]:
    return [m.label for m in phone.trace(call_id)]


async def test_reliable_ringing_then_answer(phones: tuple[Phone, Phone]) -> None:
    alice, bob = phones
    call, b_call = await _call(alice, bob)
    assert call.rel100 and b_call.rel100
    assert call.as_dict()["rel100"] is True and b_call.as_dict()["rel100"] is True
    assert bob.lines[1].as_dict()["rel100"] is True
    await bob.answer(b_call.id)
    await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 5)
    assert call.state is CallState.ACTIVE, call.as_dict()
    labels = _labels(alice, call.id)
    assert labels.index("PRACK") > labels.index("180 Ringing")
    await alice.hangup(call.id)
    await bob.wait_call(b_call.id, lambda c: c.is_over, 5)


async def test_the_setting_applies_live_on_either_side(phones: tuple[Phone, Phone]) -> None:
    alice, bob = phones
    alice.store.update({("sip_100rel_enable", 1): False})  # the caller does not offer it
    for _ in range(100):
        if not alice.lines[1].config.rel100:
            break
        await asyncio.sleep(0.02)
    call, b_call = await _call(alice, bob)
    assert not call.rel100 and not b_call.rel100
    assert "PRACK" not in _labels(alice, call.id)
    await bob.answer(b_call.id)  # nothing held: no PRACK is due
    await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 5)
    assert call.state is CallState.ACTIVE
    await alice.hangup(call.id)
    await bob.wait_call(b_call.id, lambda c: c.is_over, 5)


async def test_auto_answer_waits_for_the_prack(phones: tuple[Phone, Phone]) -> None:
    alice, bob = phones
    bob.store.update({("auto_answer", 1): True})
    for _ in range(100):
        if bob.lines[1].config.auto_answer:
            break
        await asyncio.sleep(0.02)
    host, port = bob.local["tls"]
    call = await alice.dial(f"sips:bob@{host}:{port}")
    await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 5)
    assert call.state is CallState.ACTIVE and call.rel100
    incoming = next(c for c in bob.calls.values() if c.direction == "incoming")
    sent = [m.label for m in bob.trace(incoming.id)
            if m.direction == "out" and m.label != "100 Trying"]
    # 180 (reliable), 200 for the PRACK, then the held 200 for the INVITE
    assert sent[:3] == ["180 Ringing", "200 OK", "200 OK"], sent
    await alice.hangup(call.id)


async def test_no_prack_ends_the_incoming_call_with_504(
    phones: tuple[Phone, Phone], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sippa.sip.invite import InviteSession
    from tests.app.test_session_timer_phone import shift_clock

    alice, bob = phones
    # the caller reports the reliable 180 but never PRACKs it (bob is the only UAS here)
    monkeypatch.setattr(InviteSession, "_prack", lambda self, *args: True)
    call, b_call = await _call(alice, bob)
    assert "PRACK" not in _labels(alice, call.id)
    shift_clock(bob, 33)  # past 64*T1
    await bob.wait_call(b_call.id, lambda c: c.is_over, 5)
    assert "no PRACK" in (b_call.end_reason or ""), b_call.as_dict()
    await alice.wait_call(call.id, lambda c: c.is_over, 5)
    assert call.status_code == 504
    resent = [m for m in bob.trace(b_call.id) if m.label == "180 Ringing"]
    assert len(resent) >= 2  # retransmitted meanwhile
