"""The line's "Use DNS SRV" setting reaches the registration: off means A/AAAA of the proxy
host only, so a domain that has only NAPTR/SRV records cannot be located."""

from __future__ import annotations

import pytest

from sippa.net.dns import Resolver
from sippa.net.endpoint import Endpoint
from sippa.net.registrar import LineRegistrar
from sippa.sip.locate import TransportChoice
from sippa.sip.registration import RegistrationConfig
from sippa.sip.timers import TimerConfig
from sippa.sip.uri import Uri
from tests.peers.dnsmasq import Dnsmasq

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("use_srv", [True, False])
async def test_use_dns_srv_setting_decides_the_lookup(
    kamailio, dnsmasq: Dnsmasq, use_srv: bool
) -> None:
    endpoint = Endpoint()
    config = RegistrationConfig(Uri.parse("sip:alice@srvonly.example.test"), retry_base=5)
    reg = LineRegistrar(
        endpoint,
        config,
        None,
        Resolver(dnsmasq.host, dnsmasq.port, timeout=1, lifetime=2),
        transport=TransportChoice.TCP,
        use_srv=use_srv,
        timers=TimerConfig(t1=0.05, t2=0.2),
    )
    try:
        reg.start()
        status = await reg.wait_outcome(10)
        trace = " ".join(reg.status.locate_trace)
        if use_srv:
            # found through _sip._tcp.srvonly.example.test (Kamailio then asks for credentials)
            assert "_sip._tcp.srvonly.example.test" in trace, trace
            assert reg.targets and reg.targets[0].port == kamailio.sip_port
        else:
            assert trace.startswith("DNS SRV off") and "_sip._" not in trace, trace
            assert not status.registered
            assert status.reason and "cannot locate srvonly.example.test" in status.reason
    finally:
        await reg.stop(unregister=False)
        await endpoint.close()
