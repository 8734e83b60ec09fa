"""Alternate proxy and fallback (Cisco [Alternate Outbound Proxy], [Proxy Fallback Intvl])
against two Kamailio instances on loopback.

The primary Kamailio is down (its TLS port closed): alice registers through the alternate, over
TLS checked against the alternate's own name, and calls bob, who is registered there. The
primary comes back and the fallback interval is shortened live (3600 s to 2 s): alice is on the
primary again within it and has un-REGISTERed from the alternate, which now answers a call
to her 404.
"""

from __future__ import annotations

import asyncio

import pytest

from sippa.app.call import CallState
from sippa.app.phone import Phone
from tests.interop.phone.conftest import phone_for, phone_store
from tests.peers.certs import LabCerts
from tests.peers.fixtures import KamailioFactory
from tests.peers.kamailio import Kamailio

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

FALLBACK = 2


def _phone(certs: LabCerts, user: str, rtp: int, outbound: Kamailio, **line: object) -> Phone:
    store = phone_store(
        user_id=user,
        proxy="example.test",
        outbound_proxy=f"{outbound.host}:{outbound.tls_port}",
        use_outbound_proxy=True,
        sip_transport="TLS",
        password=f"{user}-secret",
        register_expires=300,
        **line,
    )
    store.update({("rtp_port_min", 0): rtp, ("rtp_port_max", 0): rtp + 999})
    return phone_for(store, ca_files=[certs.ca.cert], tls_port=None)


async def _line(phone: Phone, predicate: object, what: str, timeout: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        line = phone.lines[1].as_dict()
        if predicate(line):  # type: ignore[operator]
            return line
        assert loop.time() < deadline, f"{what}: {line}"
        await asyncio.sleep(0.05)


async def test_alternate_then_fallback_to_the_primary(
    kamailio_factory: KamailioFactory, lab_certs: LabCerts
) -> None:
    # two Kamailios of this test's own (settings no other test uses): fresh location tables
    primary = kamailio_factory(auth_mode="sha256-md5", workers=2)
    alternate = kamailio_factory(auth_mode="sha256-md5", workers=5)
    await asyncio.to_thread(primary.stop)
    try:
        bob = _phone(lab_certs, "bob", 47000, alternate)
        alice = _phone(
            lab_certs, "alice", 46000, primary,
            alternate_outbound_proxy=f"{alternate.host}:{alternate.tls_port}",
            proxy_fallback_intvl=3600,
        )
        async with bob, alice:
            assert await bob.wait_registered(1, 10)
            line = await _line(alice, lambda d: d["registered"], "not registered", 10)
            assert line["registered_via"] == "alternate", line
            assert line["registrar"] == f"tls:127.0.0.1:{alternate.tls_port}", line
            assert "proxy failed" in str(line["registered_via_reason"]), line
            tls = line["tls"]
            assert isinstance(tls, dict) and tls["verified"], line
            # Restrict Source IP accepts the alternate's address
            allowed = line["source_restriction"]["allowed"]  # type: ignore[index]
            assert any("127.0.0.1" in str(a) for a in allowed), line

            # calls go where the line is registered: to bob through the alternate
            call = await alice.dial("bob")
            await alice.wait_call(call.id, lambda c: c.state is CallState.RINGING
                                  or c.is_over, 10)
            assert call.state is CallState.RINGING, call.as_dict()
            await alice.hangup(call.id)

            # the primary comes back: alice moves there within the fallback interval
            mark = alternate.log_mark()
            await asyncio.to_thread(primary.start)
            # a shorter Proxy Fallback Intvl applies live (no re-registration)
            alice.store.update({("proxy_fallback_intvl", 1): FALLBACK})
            line = await _line(
                alice, lambda d: d["registered"] and d["registered_via"] == "primary",
                "not back on the primary", FALLBACK + 8,
            )
            assert line["registrar"] == f"tls:127.0.0.1:{primary.tls_port}", line
            assert line["registered_via_reason"] is None
            # ... and left the alternate (Expires: 0): bob's call to her there finds nobody
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while not any("REGISTER" in x and "alice" in x for x in alternate.log_lines(mark)):
                assert loop.time() < deadline, alternate.log_lines(mark)[-20:]
                await asyncio.sleep(0.05)
            back = await bob.dial("alice")
            await bob.wait_call(back.id, lambda c: c.is_over, 10)
            assert back.is_over and back.state is not CallState.ACTIVE, back.as_dict()
            assert "404" in str(back.as_dict()), back.as_dict()
    finally:
        await asyncio.to_thread(primary.ensure_running)
