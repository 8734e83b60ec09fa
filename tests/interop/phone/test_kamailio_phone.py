"""sippa's Phone with a real Kamailio: a line registers over TLS with SHA-256, calls baresip
registered to the same Kamailio (SRTP mandatory) and is called by it; audio both ways."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sippa.app.call import CallState
from sippa.app.phone import Phone
from sippa.media import ToneSource, WavRecorder
from tests.interop.phone.conftest import (
    TONE_BARESIP,
    TONE_SIPPA,
    BaresipEvents,
    baresip_command,
    finished_recording,
    make_baresip,
    phone_for,
    phone_store,
    wait_for,
)
from tests.media.tonecheck import analyse_wav
from tests.peers.baresip import Baresip
from tests.peers.certs import LabCerts
from tests.peers.fixtures import KamailioFactory
from tests.peers.kamailio import Kamailio

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]


@pytest.fixture
def kam(kamailio_factory: KamailioFactory) -> Kamailio:
    """Kamailio challenging with MD5 only: baresip 1.0 (libre) gives up on a 401 that carries
    any SHA-256 challenge ("Function not implemented"), whatever the order."""
    return kamailio_factory(auth_mode="md5")


@pytest.fixture
def bob(kam: Kamailio, tmp_path: Path) -> Iterator[Baresip]:
    """baresip registered to Kamailio as bob@example.test (over UDP), SRTP mandatory."""
    kamailio = kam
    account = (
        "<sip:bob@example.test>;auth_pass=bob-secret;"
        f'outbound="sip:{kamailio.host}:{kamailio.sip_port};transport=udp";regint=300;'
        "answermode=auto;mediaenc=srtp-mand;audio_codecs=PCMU,PCMA"
    )
    peer = make_baresip(tmp_path / "bob", user="bob", account=account)
    with peer:
        registered = re.compile(r"SIP/2.0 200 OK[^#]{0,600}CSeq: \d+ REGISTER")
        wait_for(lambda: bool(registered.search(peer.log_text())), 10, "baresip registration")
        yield peer


def _alice(kamailio: Kamailio, certs: LabCerts, **line: object) -> Phone:
    store = phone_store(
        proxy="example.test",
        outbound_proxy=f"{kamailio.host}:{kamailio.tls_port}",
        use_outbound_proxy=True,
        sip_transport="TLS",
        password="alice-secret",
        register_expires=300,
        secure_call_option="Mandatory",
        **line,
    )
    return phone_for(store, ca_files=[certs.ca.cert], tls_port=None)


async def test_line_registers_over_tls_with_sha256(kamailio: Kamailio, lab_certs: LabCerts
                                                   ) -> None:
    mark = kamailio.log_mark()
    phone = _alice(kamailio, lab_certs)
    async with phone:
        assert await phone.wait_registered(1, 10)
        line = phone.status()["lines"][0]
        assert line["registered"] and line["state"] == "registered"
        assert line["transport"] == "TLS" and line["digest_algorithm"] == "SHA-256"
        assert line["tls"]["verified"] and line["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
        assert "sip.example.test" in line["tls"]["peer_subject"]
    entry = kamailio.wait_auth(mark)
    assert entry.user == "alice" and entry.alg == "SHA-256" and entry.proto == "tls"


async def test_call_bob_through_kamailio_and_be_called(
    kam: Kamailio, lab_certs: LabCerts, bob: Baresip, tmp_path: Path
) -> None:
    kamailio = kam
    heard = tmp_path / "alice-heard.wav"
    phone = _alice(kamailio, lab_certs, auto_answer=True)
    async with phone:
        assert await phone.wait_registered(1, 10)
        mark = kamailio.log_mark()
        call = await phone.dial("bob", source=ToneSource(TONE_SIPPA), sink=WavRecorder(heard))
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 15)
        assert call.state is CallState.ACTIVE, call.as_dict()
        assert call.remote == "sips:bob@example.test"
        sec = call.security()
        assert sec.padlock, sec.reasons
        assert sec.transport == "TLS" and "sip.example.test" in (sec.peer_subject or "")
        assert sec.srtp_suite is not None
        invite_auth = [e for e in kamailio.auth_log(mark) if e.method == "INVITE" and e.ok]
        assert invite_auth and invite_auth[0].user == "alice"
        await asyncio.sleep(2.0)
        await phone.hangup(call.id)
        await phone.wait_call(call.id, lambda c: c.is_over, 5)
        assert analyse_wav(heard).holds(TONE_BARESIP, min_active=1.0)
        assert analyse_wav(finished_recording(bob)).holds(TONE_SIPPA, min_active=1.0)

        # and bob calls alice: Kamailio sends the INVITE down alice's registration flow
        heard_in = tmp_path / "alice-heard-in.wav"
        phone.options.incoming_media = lambda c: (ToneSource(TONE_SIPPA), WavRecorder(heard_in))
        baresip_command(bob.ctrl_port, "dial", "sip:alice@example.test")
        # ctrl_tcp reports events on its latest connection only: connect after the command
        events = BaresipEvents(bob.ctrl_port)
        deadline = asyncio.get_running_loop().time() + 15
        while not any(c.direction == "incoming" and c.state is CallState.ACTIVE
                      for c in phone.calls.values()):
            assert asyncio.get_running_loop().time() < deadline, bob.log_text()[-3000:]
            await asyncio.sleep(0.05)
        incoming = next(c for c in phone.calls.values() if c.direction == "incoming")
        sec = incoming.security()
        # it came over our own validated TLS connection to Kamailio, keys included
        assert sec.padlock, sec.reasons
        await asyncio.sleep(2.0)
        await phone.hangup(incoming.id)
        await phone.wait_call(incoming.id, lambda c: c.is_over, 5)
        wait_for(lambda: bool(events.of_type("CALL_CLOSED")), 5, f"CALL_CLOSED {events.events}")
        events.close()
    assert analyse_wav(heard_in).holds(TONE_BARESIP, min_active=1.0)


async def test_saved_settings_re_register_the_line(kamailio: Kamailio, lab_certs: LabCerts
                                                   ) -> None:
    phone = _alice(kamailio, lab_certs)
    async with phone:
        assert await phone.wait_registered(1, 10)
        phone.store.set("password", "wrong-secret", 1)  # saved: the line re-registers at once
        for _ in range(200):
            line = phone.status()["lines"][0]
            if not line["registered"] and line["reason"]:
                break
            await asyncio.sleep(0.05)
        assert not line["registered"] and line["reason"], line
        phone.store.set("password", "alice-secret", 1)
        for _ in range(200):
            if phone.status()["lines"][0]["registered"]:
                break
            await asyncio.sleep(0.05)
        assert phone.status()["lines"][0]["registered"]
