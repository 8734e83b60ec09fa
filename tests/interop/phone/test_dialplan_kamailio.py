"""Cisco dial plans through Kamailio: the Request-URI that leaves the phone is the rewritten
number, and Kamailio routes it to the user of that number.

Alice's line has ``(<9:>xxx.|!1900xxxxxxx)``; a second sippa phone registers as user ``555``.
Alice dials ``9555``: Kamailio's log shows an INVITE for ``sip:555@example.test`` (not 9555)
and the location lookup routes it to the phone registered as 555, which answers; the call has
the padlock. A barred number never reaches Kamailio. The callee is a sippa phone because no
Debian peer registers as an arbitrary number with the lab's TLS and SRTP settings as simply.
"""

from __future__ import annotations

import asyncio

import pytest

from sippa.app.call import CallState
from sippa.app.phone import DialPlanRefused
from tests.interop.phone.test_prack_kamailio import _incoming, _phone
from tests.peers.certs import LabCerts
from tests.peers.fixtures import KamailioFactory
from tests.peers.kamailio import Kamailio

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

PLAN = "(<9:>xxx.|!1900xxxxxxx)"


@pytest.fixture
def kam(kamailio_factory: KamailioFactory) -> Kamailio:
    """A Kamailio of this module's own (md5 with workers=3 is no other test's): a shared one
    may keep bindings that earlier tests left behind."""
    return kamailio_factory(auth_mode="md5", workers=3)


async def test_rewritten_number_is_what_kamailio_routes(
    kam: Kamailio, lab_certs: LabCerts
) -> None:
    alice = _phone(kam, lab_certs, "alice", 46000, dial_plan=PLAN)
    callee = _phone(kam, lab_certs, "555", 47000)
    async with callee, alice:
        assert await callee.wait_registered(1, 10)
        assert await alice.wait_registered(1, 10)

        # a barred number is refused in the phone: nothing reaches Kamailio
        mark = kam.log_mark()
        with pytest.raises(DialPlanRefused, match="barred"):
            await alice.dial("19005551234")
        await asyncio.sleep(0.3)
        assert not any("LAB-REQ INVITE" in line for line in kam.log_lines(mark))

        # 9555 leaves as 555, and Kamailio routes it to the phone registered as 555
        mark = kam.log_mark()
        call = await alice.dial("9555")
        assert call.remote == "sips:555@example.test", call.as_dict()
        incoming = await _incoming(callee)
        lines = kam.log_lines(mark)
        invites = [line for line in lines if "LAB-REQ INVITE" in line]
        assert invites and all("INVITE sips:555@example.test" in line for line in invites), lines
        assert not any("9555" in line for line in lines), lines
        await callee.answer(incoming.id)  # type: ignore[attr-defined]
        await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 10)
        assert call.state is CallState.ACTIVE and call.security().padlock, call.as_dict()
        await alice.hangup(call.id)
        await callee.wait_call(incoming.id, lambda c: c.is_over, 5)  # type: ignore[attr-defined]
