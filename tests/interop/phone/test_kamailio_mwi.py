"""The voicemail light against a real notifier: Kamailio's presence + presence_mwi.

The phone registers over TLS (digest), subscribes to message-summary for its own AoR over that
flow (digest again), and the test, playing the voicemail system, PUBLISHes summaries to
Kamailio, which NOTIFYs the phone: the line shows the counts, then a second PUBLISH clears
them; stopping the phone unsubscribes (Expires: 0)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from sippa.app.phone import Phone
from tests.interop.phone.conftest import phone_for, phone_store
from tests.peers.certs import LabCerts
from tests.peers.fixtures import KamailioFactory
from tests.peers.kamailio import Kamailio

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

WAITING = (b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@example.test\r\n"
           b"Voice-Message: 2/8 (1/2)\r\n")
CLEARED = b"Messages-Waiting: no\r\nMessage-Account: sip:alice@example.test\r\n" \
          b"Voice-Message: 0/10\r\n"


@pytest.fixture
def kam(kamailio_factory: KamailioFactory) -> Kamailio:
    return kamailio_factory(auth_mode="sha256-md5", mwi=True)


def _alice(kamailio: Kamailio, certs: LabCerts, retry: int = 30) -> Phone:
    store = phone_store(
        proxy="example.test",
        outbound_proxy=f"{kamailio.host}:{kamailio.tls_port}",
        use_outbound_proxy=True,
        sip_transport="TLS",
        password="alice-secret",
        register_expires=300,
        mwi_enable=True,
    )
    store.update({("reg_retry_intvl", 0): retry, ("reg_retry_long_intvl", 0): 4 * retry})
    return phone_for(store, ca_files=[certs.ca.cert], tls_port=None)


async def _until(what: str, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_kamailio_notifies_counts_and_clears_them(kam: Kamailio, lab_certs: LabCerts
                                                        ) -> None:
    mark = kam.log_mark()
    phone = _alice(kam, lab_certs)
    async with phone:
        assert await phone.wait_registered(1, 10)
        line = phone.lines[1]
        await _until("an active subscription", lambda: line.mwi.subscription == "active")
        # the SUBSCRIBE was digest-authenticated like the REGISTER
        assert any(e.ok and e.method == "SUBSCRIBE" for e in kam.auth_log(mark))

        status = await asyncio.to_thread(kam.publish_mwi, "alice", WAITING)
        assert status.startswith("SIP/2.0 200"), status
        await _until("the counts", lambda: line.mwi.new == 2)
        mwi = line.mwi
        assert (mwi.messages_waiting, mwi.new, mwi.old, mwi.new_urgent, mwi.old_urgent) == (
            True, 2, 8, 1, 2)
        assert mwi.source == "subscription" and mwi.updated is not None
        assert mwi.account == "sip:alice@example.test"
        shown = phone.status()["lines"][0]["mwi"]
        assert shown["messages_waiting"] is True and shown["new"] == 2

        status = await asyncio.to_thread(kam.publish_mwi, "alice", CLEARED)
        assert status.startswith("SIP/2.0 200"), status
        await _until("the light off", lambda: not line.mwi.messages_waiting)
        assert (line.mwi.new, line.mwi.old) == (0, 10)
    # stopping the phone unsubscribed: Kamailio saw a SUBSCRIBE with Expires: 0
    lines = kam.log_lines(mark)
    assert any("LAB-MWI SUBSCRIBE" in x and "expires=0" in x for x in lines), "\n".join(
        x for x in lines if "LAB-MWI" in x)


async def test_subscription_comes_back_after_kamailio_restarts(kam: Kamailio,
                                                              lab_certs: LabCerts) -> None:
    """Kamailio forgets its subscriptions (kept in memory) when restarted: the phone
    re-registers over a new flow, refreshes with its new Contact, gets 481, subscribes anew,
    and the next PUBLISH reaches it."""
    phone = _alice(kam, lab_certs, retry=1)  # retries after 1-2 s (re-register, re-subscribe)
    async with phone:
        assert await phone.wait_registered(1, 10)
        line = phone.lines[1]
        await _until("an active subscription", lambda: line.mwi.subscription == "active")
        first = line.voicemail.subscription.call_id if line.voicemail else None
        mark = kam.log_mark()
        await asyncio.to_thread(kam.restart)
        await _until("a new subscription", lambda: (
            line.voicemail is not None and line.voicemail.subscription.call_id != first
            and line.mwi.subscription == "active"), timeout=30)
        status = await asyncio.to_thread(kam.publish_mwi, "alice", WAITING)
        assert status.startswith("SIP/2.0 200"), status
        await _until("the counts", lambda: line.mwi.new == 2)
        assert any("LAB-MWI SUBSCRIBE" in x for x in kam.log_lines(mark))
