"""RFC 4028 session timers through the whole phone: two phones over TLS on loopback, the 422
retry, a refresh re-INVITE at half the interval, the BYE of an expired session, the settings.

The interval is at least 90 s (the RFC floor), so the tests move a phone's clock forward: the
endpoint's clock is what the SIP core's timers run on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sippa.app.call import CallState
from sippa.app.echo import make_self_signed
from sippa.app.phone import Phone, PhoneOptions
from sippa.app.settings import SettingError
from sippa.app.store import ConfigStore

pytestmark = pytest.mark.timeout(60)


def _store(**values: Any) -> ConfigStore:
    store = ConfigStore(":memory:", lines=2)
    changes: dict[tuple[str, int], Any] = {("rtp_port_min", 0): 45000, ("rtp_port_max", 0): 45999}
    for key, value in values.items():
        changes[(key, 0 if key in ("session_expires", "min_se") else 1)] = value
    store.update(changes)
    return store


def shift_clock(phone: Phone, seconds: float) -> None:
    """Move the phone's SIP clock ``seconds`` ahead and re-arm its timer."""
    endpoint = phone.endpoint
    assert endpoint is not None
    base = endpoint.clock
    endpoint.clock = lambda: base() + seconds
    endpoint._timer_at = None  # the deadline is the same, its distance is not
    endpoint._arm_timer()


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Phone, Phone, Any, Any]]:
    """Alice (Session Expires 90) calls Bob (Min SE 120): 422, retry, answered."""
    b_cert, a_cert = make_self_signed(tmp_path / "b"), make_self_signed(tmp_path / "a")
    bob = Phone(
        _store(line_enable=True, user_id="bob", min_se=120),
        PhoneOptions(system_ca=False, history=False, tls_cert=b_cert.cert, tls_key=b_cert.key,
                     tcp_port=None, extra_ca_pem=[a_cert.pem]),
    )
    alice = Phone(
        _store(line_enable=True, user_id="alice", session_expires=90),
        PhoneOptions(system_ca=False, history=False, tls_cert=a_cert.cert, tls_key=a_cert.key,
                     tcp_port=None, extra_ca_pem=[b_cert.pem]),
    )
    async with bob, alice:
        host, port = bob.local["tls"]
        call = await alice.dial(f"sips:bob@{host}:{port}")
        for _ in range(100):
            incoming = [c for c in bob.calls.values() if c.state is CallState.INCOMING]
            if incoming:
                break
            await asyncio.sleep(0.05)
        b_call = incoming[0]
        await bob.answer(b_call.id)
        await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 5)
        # bob's clock may jump only once alice's ACK is in (else its 2xx times out first)
        for _ in range(100):
            if any(m.direction == "in" and m.first_line.startswith("ACK ")
                   for m in bob.trace(b_call.id)):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("bob never got the ACK")
        yield alice, bob, call, b_call


async def test_422_retry_and_the_session_timer_is_shown(
    pair: tuple[Phone, Phone, Any, Any],
) -> None:
    alice, _bob, call, b_call = pair
    invites = [m for m in alice.trace(call.id)
               if m.direction == "out" and m.first_line.startswith("INVITE ")]
    assert len(invites) == 2
    assert any(m.first_line.startswith("SIP/2.0 422") for m in alice.trace(call.id))
    shown = call.as_dict()["session_timer"]
    assert shown["interval"] == 120 and shown["refresher"] == "us"
    assert 0 < shown["expires_in"] <= 120
    assert b_call.as_dict()["session_timer"]["refresher"] == "peer"
    status = alice.status()["calls"][0]
    assert status["session_timer"]["interval"] == 120


async def test_refresh_at_half_the_interval(pair: tuple[Phone, Phone, Any, Any]) -> None:
    alice, bob, call, b_call = pair
    shift_clock(alice, 61)  # past 120 / 2
    await alice.wait_call(call.id, lambda c: c.session_refreshes >= 1, 5)
    await bob.wait_call(b_call.id, lambda c: c.session_refreshes >= 1, 5)
    reinvites = [m for m in alice.trace(call.id)
               if m.direction == "out" and m.first_line.startswith("INVITE ")]
    assert len(reinvites) == 3 and "Session-Expires: 120;refresher=uac" in reinvites[-1].text
    assert call.state is CallState.ACTIVE and not call.is_over
    # the same media and keys were offered again: the call is unchanged
    assert call.security().srtp_suite == b_call.security().srtp_suite


async def test_unrefreshed_session_ends_with_bye(pair: tuple[Phone, Phone, Any, Any]) -> None:
    alice, bob, call, b_call = pair
    shift_clock(bob, 89)  # 120 - min(32, 120/3) = 88 s: bob gives up on alice's refreshes
    await bob.wait_call(b_call.id, lambda c: c.is_over, 5)
    await alice.wait_call(call.id, lambda c: c.is_over, 5)
    assert b_call.end_reason is not None and "session expired" in b_call.end_reason
    assert call.end_reason == "hung up by the other party"


def test_settings_are_validated() -> None:
    store = ConfigStore(":memory:", lines=1)
    assert store.get("session_expires") == 1800 and store.get("min_se") == 90
    for changes in ({("session_expires", 0): 60}, {("min_se", 0): 30},
                    {("session_expires", 0): 100, ("min_se", 0): 200}):
        with pytest.raises(SettingError):
            store.update(changes)
    store.update({("session_expires", 0): 0})  # off
    store.update({("session_expires", 0): 300, ("min_se", 0): 300})
    assert store.get("session_expires") == 300
