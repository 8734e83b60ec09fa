"""RFC 4028 session timers against Kamailio's ``sst`` module (with ``dialog``): sst's Min-SE
(120 s) is above the phone's Session Expires (90 s), so Kamailio answers the INVITE with 422; the
phone must ask again with 120 s, reach the callee registered to the same Kamailio and, being the
refresher, send a refresh through Kamailio at half the interval.

- baresip as callee (as in the other phone interop tests): it does not do RFC 4028, so sst adds
  ``Session-Expires: 120;refresher=uac`` to its 2xx (§8.2) and the phone refreshes with a
  re-INVITE (baresip allows no UPDATE) that baresip answers;
- a second sippa phone as callee: both ends keep the timer (refresher us / peer);
- the callee as refresher (the caller's timers off): sst adds its Session-Expires to the INVITE
  and the callee's bodiless UPDATE refreshes pass through Kamailio.

A refresh is due after 60 s: the tests move the refresher's SIP clock (the endpoint's clock,
which every core timer runs on) 61 s ahead instead of waiting, so the refresh that Kamailio
relays and the callee answers is real, only sent earlier. Nothing else is shortened: the
settings keep the RFC floor of 90 s."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sippa.app.call import CallState
from sippa.app.phone import Phone
from tests.interop.phone.conftest import make_baresip, phone_for, phone_store, wait_for
from tests.peers.baresip import Baresip
from tests.peers.certs import LabCerts
from tests.peers.fixtures import KamailioFactory
from tests.peers.kamailio import Kamailio

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

SST_MIN_SE = 120


@pytest.fixture
def kam(kamailio_factory: KamailioFactory) -> Kamailio:
    """Kamailio with sst (min_se 120) and MD5 digest (what baresip 1.0 can answer)."""
    return kamailio_factory(auth_mode="md5", sst_min_se=SST_MIN_SE)


@pytest.fixture
def baresip_bob(kam: Kamailio, tmp_path: Path) -> Iterator[Baresip]:
    """baresip registered to Kamailio as bob@example.test (over UDP), SRTP mandatory."""
    account = (
        "<sip:bob@example.test>;auth_pass=bob-secret;"
        f'outbound="sip:{kam.host}:{kam.sip_port};transport=udp";regint=300;'
        "answermode=auto;mediaenc=srtp-mand;audio_codecs=PCMU,PCMA"
    )
    peer = make_baresip(tmp_path / "bob", user="bob", account=account)
    with peer:
        registered = re.compile(r"SIP/2.0 200 OK[^#]{0,600}CSeq: \d+ REGISTER")
        wait_for(lambda: bool(registered.search(peer.log_text())), 10, "baresip registration")
        yield peer


def _phone(kam: Kamailio, certs: LabCerts, user: str, rtp: int, *, session_expires: int = 1800,
           **line: object) -> Phone:
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
    store.update({("rtp_port_min", 0): rtp, ("rtp_port_max", 0): rtp + 999,
                  ("session_expires", 0): session_expires, ("min_se", 0): 90})
    return phone_for(store, ca_files=[certs.ca.cert], tls_port=None)


def _sent_invites(phone: Phone, call_id: str) -> list[str]:
    return [m.text for m in phone.trace(call_id)
            if m.direction == "out" and m.first_line.startswith("INVITE ")]


async def test_422_from_sst_then_refresh_to_baresip(
    kam: Kamailio, lab_certs: LabCerts, baresip_bob: Baresip
) -> None:
    phone = _phone(kam, lab_certs, "alice", 46000, session_expires=90)
    async with phone:
        assert await phone.wait_registered(1, 10)
        mark = kam.log_mark()
        call = await phone.dial("bob")
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 15)
        assert call.state is CallState.ACTIVE, (call.as_dict(), kam.log_text()[-3000:])
        sst = [line for line in kam.log_lines(mark) if "LAB-SST" in line]
        assert "LAB-SST 422 sent by sst for se=90" in sst[1], sst
        invites = _sent_invites(phone, call.id)
        assert "Session-Expires: 90\r\n" in invites[0]
        assert "Session-Expires: 120\r\n" in invites[-1]
        ok = next(m.text for m in phone.trace(call.id)
              if m.direction == "in" and m.first_line.startswith("SIP/2.0 200"))
        assert "baresip" in ok and f"Session-Expires: {SST_MIN_SE};refresher=uac" in ok
        timer = call.as_dict()["session_timer"]
        assert timer is not None and timer["interval"] == SST_MIN_SE and timer["refresher"] == "us"
        refresh_mark = kam.log_mark()
        _shift_clock(phone, SST_MIN_SE / 2 + 1)
        await phone.wait_call(call.id, lambda c: c.session_refreshes >= 1 or c.is_over, 10)
        assert not call.is_over, call.as_dict()
        assert any("LAB-SST refresh INVITE se=120;refresher=uac" in line
                   for line in kam.log_lines(refresh_mark))
        # baresip answered the re-offer: same media, the call goes on with its padlock
        oks = [m for m in phone.trace(call.id)
               if m.direction == "in" and m.first_line.startswith("SIP/2.0 200")
               and "CSeq: 4 INVITE" in m.text]
        assert oks and "baresip" in oks[0].text
        assert call.state is CallState.ACTIVE and call.security().padlock
        await phone.hangup(call.id)
        await phone.wait_call(call.id, lambda c: c.is_over, 5)


async def test_422_from_sst_then_refresh_through_kamailio(
    kam: Kamailio, lab_certs: LabCerts
) -> None:
    phone = _phone(kam, lab_certs, "alice", 46000, session_expires=90)
    bob = _phone(kam, lab_certs, "bob", 47000, auto_answer=True)  # Session Expires 1800
    async with bob, phone:
        assert await bob.wait_registered(1, 10)
        assert await phone.wait_registered(1, 10)
        mark = kam.log_mark()
        call = await phone.dial("bob")
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 15)
        assert call.state is CallState.ACTIVE, (call.as_dict(), kam.log_text()[-3000:])
        sst = [line for line in kam.log_lines(mark) if "LAB-SST" in line]
        # Kamailio saw 90 s, refused it with its Min-SE, then relayed the retry asking 120 s
        assert "LAB-SST INVITE se=90 " in sst[0] and "LAB-SST 422 sent by sst" in sst[1], sst
        assert "LAB-SST INVITE se=120 " in sst[-1], sst
        rejected = [m.text for m in phone.trace(call.id)
                    if m.direction == "in" and m.first_line.startswith("SIP/2.0 422")]
        assert len(rejected) == 1 and f"Min-SE: {SST_MIN_SE}" in rejected[0], rejected
        assert "kamailio-interop-lab" in rejected[0]  # Kamailio's own answer, not baresip's
        invites = _sent_invites(phone, call.id)
        assert "Session-Expires: 90\r\n" in invites[0]
        assert "Session-Expires: 120\r\n" in invites[-1] and "Min-SE: 120\r\n" in invites[-1]
        timer = call.as_dict()["session_timer"]
        assert timer is not None and timer["interval"] == SST_MIN_SE, call.as_dict()
        assert timer["refresher"] == "us"
        incoming = [c for c in bob.calls.values() if c.direction == "incoming"]
        assert len(incoming) == 1  # the INVITE that got 422 never reached the callee
        b_call = incoming[0]
        assert b_call.as_dict()["session_timer"]["refresher"] == "peer"
        # the refresh is scheduled at half the interval, not before
        core = phone.core
        assert core is not None and phone.endpoint is not None
        deadline = core.get_timer()
        assert deadline is not None
        assert deadline - phone.endpoint.clock() <= SST_MIN_SE / 2

        refresh_mark = kam.log_mark()
        _shift_clock(phone, SST_MIN_SE / 2 + 1)
        await phone.wait_call(call.id, lambda c: c.session_refreshes >= 1 or c.is_over, 10)
        assert not call.is_over, call.as_dict()
        refreshes = [line for line in kam.log_lines(refresh_mark)
                     if "LAB-SST refresh INVITE" in line]
        assert refreshes and "se=120;refresher=uac" in refreshes[0], refreshes
        await bob.wait_call(b_call.id, lambda c: c.session_refreshes >= 1, 5)
        assert call.state is CallState.ACTIVE and call.security().padlock
        assert call.as_dict()["session_timer"]["refreshes"] == 1
        await phone.hangup(call.id)
        await phone.wait_call(call.id, lambda c: c.is_over, 5)
        await bob.wait_call(b_call.id, lambda c: c.is_over, 5)


async def _until_acked(phone: Phone, call_id: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any(m.direction == "in" and m.first_line.startswith("ACK ")
                  for m in phone.trace(call_id)):
        assert loop.time() < deadline, "the callee never got the ACK"
        await asyncio.sleep(0.02)


def _shift_clock(phone: Phone, seconds: float) -> None:
    endpoint = phone.endpoint
    assert endpoint is not None
    base = endpoint.clock
    endpoint.clock = lambda: base() + seconds
    endpoint._timer_at = None  # the same deadline is nearer now
    endpoint._arm_timer()


async def test_callee_refreshes_with_update_through_kamailio(
    kam: Kamailio, lab_certs: LabCerts
) -> None:
    """The caller has session timers off (and allows UPDATE): sst asks for its Min-SE in the
    INVITE, the callee takes the refresher role (§9: refresher=uas, no Require) and refreshes
    with an UPDATE without SDP, relayed by Kamailio and answered 200 by the caller."""
    phone = _phone(kam, lab_certs, "alice", 46000, session_expires=0)
    bob = _phone(kam, lab_certs, "bob", 47000, session_expires=SST_MIN_SE, auto_answer=True)
    async with bob, phone:
        assert await bob.wait_registered(1, 10)
        assert await phone.wait_registered(1, 10)
        call = await phone.dial("bob")
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 15)
        assert call.state is CallState.ACTIVE, call.as_dict()
        invite = _sent_invites(phone, call.id)[0]
        assert "Session-Expires" not in invite and "UPDATE" in invite  # Allow: ... UPDATE
        assert call.as_dict()["session_timer"] is None  # timers off at alice
        b_call = next(c for c in bob.calls.values() if c.direction == "incoming")
        received = [m.text for m in bob.trace(b_call.id)
                    if m.direction == "in" and m.first_line.startswith("INVITE ")]
        assert f"Session-Expires: {SST_MIN_SE}" in received[0]  # added by sst
        assert b_call.as_dict()["session_timer"]["refresher"] == "us"
        # the ACK must have reached bob before its clock jumps: else its 2xx times out (§13.3.1.4)
        await _until_acked(bob, b_call.id)
        mark = kam.log_mark()
        _shift_clock(bob, SST_MIN_SE / 2 + 1)
        await bob.wait_call(b_call.id, lambda c: c.session_refreshes >= 1 or c.is_over, 10)
        assert not b_call.is_over and not call.is_over, b_call.as_dict()
        relayed = [line for line in kam.log_lines(mark) if "LAB-SST refresh UPDATE" in line]
        assert relayed and f"se={SST_MIN_SE};refresher=uac" in relayed[0], relayed
        answered = [m.text for m in bob.trace(b_call.id)
                    if m.direction == "in" and m.first_line.startswith("SIP/2.0 200")
                    and "UPDATE" in m.text.split("CSeq:", 1)[1].split("\r\n", 1)[0]]
        assert answered, [m.first_line for m in bob.trace(b_call.id)]
        await phone.hangup(call.id)
        await bob.wait_call(b_call.id, lambda c: c.is_over, 5)
