"""RFC 3262 (100rel / PRACK) between two sippa phones through Kamailio.

No Debian peer implements PRACK (baresip 1.0 does not; Kamailio only relays it), so the peer
for PRACK is a second sippa phone, with Kamailio (registrar, digest, record-routing proxy) in the
path and its log as the witness: the callee's 180 goes reliably (Require: 100rel, RSeq), the
caller's PRACK is relayed in the early dialog and answered 200, and the callee's 2xx follows.
A callee with 100rel off sends its 180 unreliably, and answers an INVITE that requires 100rel
with 420 and ``Unsupported: 100rel``; turning the setting back on applies to the next call.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from sippa.app.call import CallState
from sippa.app.phone import Phone
from tests.interop.phone.conftest import phone_for, phone_store
from tests.peers.certs import LabCerts
from tests.peers.fixtures import KamailioFactory
from tests.peers.kamailio import Kamailio

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


@pytest.fixture
def kam(kamailio_factory: KamailioFactory) -> Kamailio:
    """A Kamailio of this module's own (workers=3 makes its settings distinct): in the shared
    one, a bob that a stopped baresip left in the location table would fork our INVITEs and
    hold every final answer until that dead branch timed out."""
    return kamailio_factory(auth_mode="sha256-md5", workers=3)


def _phone(kam: Kamailio, certs: LabCerts, user: str, rtp: int, **line: object) -> Phone:
    store = phone_store(
        user_id=user,
        proxy="example.test",
        outbound_proxy=f"{kam.host}:{kam.tls_port}",
        use_outbound_proxy=True,
        sip_transport="TLS",
        password=f"{user}-secret",
        register_expires=300,
        secure_call_option="Mandatory",
        **line,
    )
    store.update({("rtp_port_min", 0): rtp, ("rtp_port_max", 0): rtp + 999})
    return phone_for(store, ca_files=[certs.ca.cert], tls_port=None)


async def _incoming(phone: Phone, timeout: float = 10.0) -> object:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        calls = [c for c in phone.calls.values()
                 if c.direction == "incoming" and c.state is CallState.INCOMING]
        if calls:
            return calls[-1]
        await asyncio.sleep(0.02)
    raise TimeoutError("no incoming call")


async def _until(predicate: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.02)


def _messages(phone: Phone, call_id: str, direction: str, start: str) -> list[str]:
    return [m.text for m in phone.trace(call_id)
            if m.direction == direction and m.first_line.startswith(start)]


async def test_reliable_180_is_pracked_through_kamailio(
    kam: Kamailio, lab_certs: LabCerts
) -> None:
    kamailio = kam
    alice = _phone(kamailio, lab_certs, "alice", 46000)
    bob = _phone(kamailio, lab_certs, "bob", 47000)
    async with bob, alice:
        assert await bob.wait_registered(1, 10)
        assert await alice.wait_registered(1, 10)
        mark = kamailio.log_mark()
        call = await alice.dial("bob")
        b_call = await _incoming(bob)
        await alice.wait_call(call.id, lambda c: c.rel100 or c.is_over, 10)
        assert call.rel100 and not call.is_over, call.as_dict()
        assert b_call.rel100 and b_call.as_dict()["rel100"]  # type: ignore[attr-defined]
        # the caller offered it, the callee's 180 came reliably and was PRACKed
        invite = _messages(alice, call.id, "out", "INVITE ")[-1]
        assert re.search(r"^Supported: .*100rel", invite, re.M | re.I), invite
        ringing = _messages(alice, call.id, "in", "SIP/2.0 180")
        assert ringing and "Require: 100rel" in ringing[0], ringing
        rseq = re.search(r"^RSeq: (\d+)", ringing[0], re.M)
        cseq = re.search(r"^CSeq: (\d+) INVITE", ringing[0], re.M)
        assert rseq and cseq
        prack = _messages(alice, call.id, "out", "PRACK ")
        assert len(prack) == 1
        assert f"RAck: {rseq.group(1)} {cseq.group(1)} INVITE" in prack[0]
        # the callee got the PRACK and answered it; so did the caller get the 200
        def prack_ok() -> list[str]:
            return [m for m in _messages(alice, call.id, "in", "SIP/2.0 200")
                    if re.search(r"^CSeq: \d+ PRACK", m, re.M)]

        await _until(prack_ok, "no 200 for the PRACK")
        assert _messages(bob, b_call.id, "in", "PRACK ")  # type: ignore[attr-defined]
        assert "kamailio" not in prack_ok()[0].lower()  # the callee's answer, relayed
        # Kamailio relayed both: the reliable 180 and the PRACK in the record-routed dialog
        lines = kamailio.log_lines(mark)
        assert any(f"LAB-100REL 180 reliable rseq={rseq.group(1)} require=100rel" in line
                   for line in lines), lines[-20:]
        assert any("LAB-REQ PRACK " in line for line in lines), lines[-20:]
        await bob.answer(b_call.id)  # type: ignore[attr-defined]
        await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 10)
        assert call.state is CallState.ACTIVE and call.security().padlock, call.as_dict()
        await alice.hangup(call.id)
        await bob.wait_call(b_call.id, lambda c: c.is_over, 5)  # type: ignore[attr-defined]


async def test_callee_with_100rel_off_then_on(kam: Kamailio, lab_certs: LabCerts) -> None:
    kamailio = kam
    alice = _phone(kamailio, lab_certs, "alice", 46000)
    bob = _phone(kamailio, lab_certs, "bob", 47000, sip_100rel_enable=False)
    async with bob, alice:
        assert await bob.wait_registered(1, 10)
        assert await alice.wait_registered(1, 10)

        # 1. offered but not used: the 180 is unreliable, nothing is PRACKed
        mark = kamailio.log_mark()
        call = await alice.dial("bob")
        b_call = await _incoming(bob)
        await alice.wait_call(call.id, lambda c: c.state is CallState.RINGING or c.is_over, 10)
        ringing = _messages(alice, call.id, "in", "SIP/2.0 180")
        assert ringing and "RSeq" not in ringing[0]
        assert not call.rel100 and not b_call.rel100  # type: ignore[attr-defined]
        await alice.hangup(call.id)
        await bob.wait_call(b_call.id, lambda c: c.is_over, 5)  # type: ignore[attr-defined]
        assert not any("LAB-REQ PRACK" in line for line in kamailio.log_lines(mark))

        # 2. required: 420 Bad Extension with Unsupported: 100rel, and no call at the callee
        core = alice.core
        assert core is not None
        plain = core.invite

        def requiring(*args: object, **kw: object) -> str:
            return plain(*args, headers=[("Require", "100rel")], **kw)  # type: ignore[arg-type]

        core.invite = requiring  # type: ignore[method-assign]
        mark = kamailio.log_mark()
        before = len(bob.calls)
        call = await alice.dial("bob")
        await alice.wait_call(call.id, lambda c: c.is_over, 10)
        core.invite = plain  # type: ignore[method-assign]
        assert call.status_code == 420, call.as_dict()
        bad = _messages(alice, call.id, "in", "SIP/2.0 420")
        assert bad and re.search(r"^Unsupported: 100rel", bad[0], re.M), bad
        assert any("LAB-100REL 420 unsupported=100rel" in line
                   for line in kamailio.log_lines(mark))
        assert len(bob.calls) == before

        # 3. the setting applies live: the next call's 180 is reliable and PRACKed
        bob.store.update({("sip_100rel_enable", 1): True})
        for _ in range(100):
            if bob.lines[1].config.rel100:
                break
            await asyncio.sleep(0.02)
        assert bob.lines[1].as_dict()["rel100"]
        mark = kamailio.log_mark()
        call = await alice.dial("bob")
        b_call = await _incoming(bob)
        await alice.wait_call(call.id, lambda c: c.rel100 or c.is_over, 10)
        assert call.rel100 and b_call.rel100, call.as_dict()  # type: ignore[attr-defined]
        await _until(lambda: any("LAB-REQ PRACK" in line for line in kamailio.log_lines(mark)),
                     "Kamailio relayed no PRACK")
        await alice.hangup(call.id)
        await bob.wait_call(b_call.id, lambda c: c.is_over, 5)  # type: ignore[attr-defined]
