"""sippa's Phone against baresip directly over TLS (no registrar): calls both ways, SRTP audio
both ways checked by tone detection, hold/resume, DTMF, and the secure-call mismatches."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sippa.app.call import CallState
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
)
from tests.media.tonecheck import analyse_wav
from tests.peers.baresip import Baresip

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


def _target(peer: Baresip) -> str:
    return f"sips:{peer.user}@127.0.0.1:{peer.tls_port}"


async def test_call_baresip_over_tls_srtp_audio_hold_dtmf(
    baresip_tls: Baresip, tmp_path: Path
) -> None:
    store = phone_store(secure_call_option="Mandatory")
    phone = phone_for(store, ca_files=[baresip_tls.workdir / "certs" / "ca.pem"],
                      tls_port=None)
    heard = tmp_path / "sippa-heard.wav"
    events = BaresipEvents(baresip_tls.ctrl_port)
    async with phone:
        call = await phone.dial(_target(baresip_tls), source=ToneSource(TONE_SIPPA),
                                sink=WavRecorder(heard))
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 15)
        assert call.state is CallState.ACTIVE, call.as_dict()
        sec = call.security()
        assert sec.padlock, sec.reasons
        assert sec.transport == "TLS" and sec.tls_version in ("TLSv1.2", "TLSv1.3")
        assert sec.cipher and sec.peer_subject and "ua.example.test" in sec.peer_subject
        assert sec.srtp_suite in ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32",
                                  "AEAD_AES_128_GCM", "AEAD_AES_256_GCM")
        await asyncio.sleep(2.0)
        await phone.hold(call.id)
        await phone.wait_call(call.id, lambda c: c.state is CallState.HELD, 5)
        assert call.stream is not None and not call.stream.config.receives
        await asyncio.sleep(0.5)
        await phone.resume(call.id)
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 5)
        assert call.stream is not None and call.stream.config.direction == "sendrecv"
        assert await phone.send_dtmf("47", call.id) == "rfc4733"
        await asyncio.sleep(1.0)
        received = call.stream.stats().packets_received
        assert received > 100
        await phone.hangup(call.id)
        await phone.wait_call(call.id, lambda c: c.is_over, 5)
    events.close()
    keys = [e.get("param") for e in events.of_type("CALL_DTMF_START")]
    assert keys == ["4", "7"], events.events
    assert analyse_wav(heard).holds(TONE_BARESIP, min_active=1.0)
    assert analyse_wav(finished_recording(baresip_tls)).holds(TONE_SIPPA, min_active=1.0)


async def test_baresip_calls_us_over_tls(tmp_path: Path) -> None:
    with make_baresip(tmp_path / "b", tls=True, mediaenc="srtp-mand") as peer:
        certs = peer.workdir / "certs"
        store = phone_store(secure_call_option="Mandatory", auto_answer=True)
        # our TLS listener uses a certificate baresip's CA issued (for 127.0.0.1)
        phone = phone_for(store, tls_cert=certs / "ua-combined.pem", tls_key=None,
                          ca_files=[certs / "ca.pem"])
        heard = tmp_path / "heard.wav"
        phone.options.incoming_media = lambda call: (ToneSource(TONE_SIPPA),
                                                     WavRecorder(heard))
        async with phone:
            host, port = phone.local["tls"]
            baresip_command(peer.ctrl_port, "dial", f"sip:alice@{host}:{port};transport=tls")
            await _wait(lambda: any(c.state is CallState.ACTIVE for c in phone.calls.values()),
                        10)
            call = next(iter(phone.calls.values()))
            assert call.direction == "incoming"
            sec = call.security()
            assert sec.transport == "TLS" and sec.media_encrypted
            # baresip opened the connection; it showed no certificate we validated
            assert not sec.padlock
            assert any("not validated" in r for r in sec.reasons)
            await asyncio.sleep(2.0)
            baresip_command(peer.ctrl_port, "hangup")
            await phone.wait_call(call.id, lambda c: c.is_over, 5)
            assert call.end_reason == "hung up by the other party"
        assert analyse_wav(heard).holds(TONE_BARESIP, min_active=1.0)


async def _wait(predicate: object, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.05)


async def test_mandatory_line_refuses_plain_baresip(tmp_path: Path) -> None:
    with make_baresip(tmp_path / "b", tls=True, mediaenc="none") as peer:
        certs = peer.workdir / "certs"
        store = phone_store(secure_call_option="Mandatory", auto_answer=True)
        phone = phone_for(store, tls_cert=certs / "ua-combined.pem",
                          ca_files=[certs / "ca.pem"])
        async with phone:
            # we call: our RTP/SAVP offer is refused or answered without crypto -> no call
            call = await phone.dial(f"sips:ua@127.0.0.1:{peer.tls_port}")
            await phone.wait_call(call.id, lambda c: c.is_over, 10)
            assert call.answered is None or call.end_reason is not None
            assert call.end_reason and call.end_reason != "hung up by the other party"
            assert not call.security().padlock
            print("outgoing plain refusal:", call.end_reason, call.status_code)
            # it calls: its plain RTP/AVP offer gets 488 from our mandatory line
            host, port = phone.local["tls"]
            baresip_command(peer.ctrl_port, "dial", f"sip:alice@{host}:{port};transport=tls")
            await _wait(lambda: len(phone.calls) >= 2, 10)
            incoming = next(c for c in phone.calls.values() if c.direction == "incoming")
            await phone.wait_call(incoming.id, lambda c: c.is_over, 5)
            assert incoming.answered is None
            assert incoming.offer_refused is not None
            assert "SRTP is mandatory" in incoming.offer_refused
            assert incoming.status_code == 488 or incoming.end_reason


async def test_non_matching_crypto_answer_ends_the_call(tmp_path: Path) -> None:
    """We offer only a suite baresip lacks (AES_256_CM_HMAC_SHA1_80) with best effort;
    baresip answers a=crypto with a suite we never offered: the call ends with that reason."""
    with make_baresip(tmp_path / "b", tls=True, mediaenc="srtp") as peer:
        store = phone_store(secure_call_option="Best Effort")
        phone = phone_for(store, ca_files=[peer.workdir / "certs" / "ca.pem"], tls_port=None,
                          srtp_suites=("AES_256_CM_HMAC_SHA1_80",))
        async with phone:
            call = await phone.dial(f"sips:ua@127.0.0.1:{peer.tls_port}")
            await phone.wait_call(call.id, lambda c: c.is_over, 10)
            assert call.end_reason is not None
            assert "matches none of our offered crypto lines" in call.end_reason, call.end_reason
            assert not call.security().padlock


async def test_blind_transfer_of_baresip(baresip_tls: Baresip, tmp_path: Path) -> None:
    """We REFER baresip to carol (a second sippa phone); baresip calls carol, we drop out."""
    certs = baresip_tls.workdir / "certs"
    alice = phone_for(phone_store(secure_call_option="Mandatory"),
                      ca_files=[certs / "ca.pem"], tls_port=None)
    carol = phone_for(phone_store(user_id="carol", auto_answer=True),
                      tls_cert=certs / "ua-combined.pem", ca_files=[certs / "ca.pem"])
    async with alice, carol:
        call = await alice.dial(_target(baresip_tls))
        await alice.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 10)
        host, port = carol.local["tls"]
        await alice.transfer(f"sip:carol@{host}:{port};transport=tls", call.id)
        await _wait(lambda: any(c.state is CallState.ACTIVE for c in carol.calls.values()), 10)
        transferred = next(iter(carol.calls.values()))
        assert transferred.direction == "incoming" and "ua@" in transferred.remote
        await alice.wait_call(call.id, lambda c: c.is_over, 10)
        assert call.end_reason == "transferred"
        await carol.hangup(transferred.id)
        await carol.wait_call(transferred.id, lambda c: c.is_over, 5)
