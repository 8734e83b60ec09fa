"""Busy lamp field against a real notifier: Kamailio's presence + presence_dialoginfo, fed by
pua_dialoginfo with the calls Kamailio itself relays (no test-made PUBLISH).

alice (sippa, TLS, digest) has line key 1 = ``fnc=blf+sd+cp;sub=bob@$PROXY;nme=Bob`` and
subscribes to bob's dialog state over her registration flow. bob is a baresip registered to
the same Kamailio (answering by hand). alice calls bob: Kamailio PUBLISHes bob's early dialog
(ringing), then the confirmed one (busy), then its end (idle), and NOTIFYs alice each time."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sippa.app.blf import BlfStatus
from sippa.app.phone import Phone
from sippa.sip.dialog_info import Lamp
from tests.interop.phone.conftest import (
    baresip_command,
    make_baresip,
    phone_for,
    phone_store,
    wait_for,
)
from tests.peers.baresip import Baresip
from tests.peers.certs import LabCerts
from tests.peers.fixtures import KamailioFactory
from tests.peers.kamailio import Kamailio

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]


@pytest.fixture
def kam(kamailio_factory: KamailioFactory) -> Kamailio:
    # MD5 only: baresip 1.0 gives up on any SHA-256 challenge (see test_kamailio_phone.py)
    return kamailio_factory(auth_mode="md5", blf=True)


@pytest.fixture
def bob(kam: Kamailio, tmp_path: Path) -> Iterator[Baresip]:
    """baresip registered as bob@example.test over UDP; calls ring until told to answer."""
    account = (
        "<sip:bob@example.test>;auth_pass=bob-secret;"
        f'outbound="sip:{kam.host}:{kam.sip_port};transport=udp";regint=300;'
        "answermode=manual;audio_codecs=PCMU,PCMA"
    )
    peer = make_baresip(tmp_path / "bob", user="bob", account=account)
    with peer:
        registered = re.compile(r"SIP/2.0 200 OK[^#]{0,600}CSeq: \d+ REGISTER")
        wait_for(lambda: bool(registered.search(peer.log_text())), 10, "baresip registration")
        yield peer


def _alice(kamailio: Kamailio, certs: LabCerts) -> Phone:
    store = phone_store(
        proxy="example.test",
        outbound_proxy=f"{kamailio.host}:{kamailio.tls_port}",
        use_outbound_proxy=True,
        sip_transport="TLS",
        password="alice-secret",
        register_expires=300,
    )
    store.update({("extended_function_1", 0): "fnc=blf+sd+cp;sub=bob@$PROXY;nme=Bob"})
    return phone_for(store, ca_files=[certs.ca.cert], tls_port=None)


async def _until(what: str, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_key_follows_bobs_call_ringing_busy_idle(
    kam: Kamailio, bob: Baresip, lab_certs: LabCerts
) -> None:
    mark = kam.log_mark()
    phone = _alice(kam, lab_certs)
    async with phone:
        assert await phone.wait_registered(1, 10)
        line = phone.lines[1]
        (key,) = line.blf
        assert isinstance(key, BlfStatus)
        assert (key.label, key.uri) == ("Bob", "sips:bob@example.test")
        await _until("an active subscription", lambda: key.subscription == "active")
        await _until("the idle lamp", lambda: key.lamp is Lamp.IDLE)
        # the SUBSCRIBE was digest-authenticated like the REGISTER
        assert any(e.ok and e.method == "SUBSCRIBE" for e in kam.auth_log(mark))

        call = await phone.dial("bob")
        await _until("bob's key ringing", lambda: key.lamp is Lamp.RINGING)
        shown = phone.status()["lines"][0]["blf"][0]
        assert shown["lamp"] == "ringing" and shown["label"] == "Bob"

        await asyncio.to_thread(baresip_command, bob.ctrl_port, "accept")
        await _until("bob's key busy", lambda: key.lamp is Lamp.BUSY)

        await phone.hangup(call.id)
        await _until("bob's key idle again", lambda: key.lamp is Lamp.IDLE)
    # Kamailio itself published bob's dialogs (pua_dialoginfo), and alice unsubscribed
    lines = kam.log_lines(mark)
    assert any("LAB-MWI PUBLISH" in x and "event=dialog" in x for x in lines)
    assert any("LAB-MWI SUBSCRIBE" in x and "event=dialog" in x and "expires=0" in x
               for x in lines), "\n".join(x for x in lines if "LAB-MWI" in x)
