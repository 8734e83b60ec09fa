"""Every record of the lab zone, served by a real dnsmasq, through our resolver and locate flow."""

from __future__ import annotations

import pytest

from sippa.net.dns import Resolver, locate
from sippa.sip.locate import (
    DnsQuery,
    DnsStatus,
    LocateRequest,
    NaptrRecord,
    SrvRecord,
    Transport,
)
from sippa.sip.uri import Uri
from tests.peers.dnsmasq import Dnsmasq
from tests.peers.kamailio import Kamailio

pytestmark = pytest.mark.interop


@pytest.fixture
def resolver(dnsmasq: Dnsmasq) -> Resolver:
    return Resolver(dnsmasq.host, dnsmasq.port, timeout=1.0, lifetime=3.0)


async def test_every_lab_record(resolver: Resolver, kamailio: Kamailio) -> None:
    sip, tls, evil = kamailio.sip_port, kamailio.tls_port, kamailio.evil_port

    async def records(name: str, rdtype: str) -> set[object]:
        answer = await resolver.query(DnsQuery(name, rdtype))
        assert answer.status is DnsStatus.OK, (name, rdtype, answer)
        return set(answer.records)

    assert await records("example.test", "NAPTR") == {
        NaptrRecord(10, 10, "s", "SIPS+D2T", "", "_sips._tcp.example.test"),
        NaptrRecord(20, 10, "s", "SIP+D2T", "", "_sip._tcp.example.test"),
        NaptrRecord(30, 10, "s", "SIP+D2U", "", "_sip._udp.example.test"),
    }
    assert await records("_sips._tcp.example.test", "SRV") == {
        SrvRecord(10, 10, tls, "sip.example.test")
    }
    assert await records("_sip._tcp.example.test", "SRV") == {
        SrvRecord(10, 10, sip, "sip.example.test")
    }
    assert await records("_sip._udp.example.test", "SRV") == {
        SrvRecord(10, 10, sip, "sip.example.test")
    }
    for host in ("sip.example.test", "evil.example.test", "aonly.example.test"):
        assert await records(host, "A") == {"127.0.0.1"}
    assert await records("redirect.example.test", "NAPTR") == {
        NaptrRecord(10, 10, "s", "SIPS+D2T", "", "_sips._tcp.redirect.example.test")
    }
    assert await records("_sips._tcp.redirect.example.test", "SRV") == {
        SrvRecord(10, 10, evil, "evil.example.test")
    }
    assert await records("_sips._tcp.evil.example.test", "SRV") == {
        SrvRecord(10, 10, evil, "evil.example.test")
    }
    for proto in ("_sip._udp", "_sip._tcp"):
        assert await records(f"{proto}.srvonly.example.test", "SRV") == {
            SrvRecord(10, 10, sip, "sip.example.test")
        }
    no_naptr = await resolver.query(DnsQuery("srvonly.example.test", "NAPTR"))
    assert no_naptr.status in {DnsStatus.NODATA, DnsStatus.NXDOMAIN}
    assert (await resolver.query(DnsQuery("sip.example.test", "AAAA"))).status is DnsStatus.NODATA
    nx = await resolver.query(DnsQuery("nothere.example.test", "A"))
    assert nx.status is DnsStatus.NXDOMAIN
    outside = await resolver.query(DnsQuery("www.example.com", "A"))
    assert outside.status is DnsStatus.ERROR and "REFUSED" in outside.error


@pytest.mark.parametrize(
    ("uri", "setting", "expected"),
    [
        # (transport, port attribute of kamailio or a number, SRV/host name, tls identity)
        ("sips:alice@example.test", "AUTO", [("TLS", "tls_port", "sip.example.test")]),
        ("sip:alice@example.test", "AUTO", [("TLS", "tls_port", "sip.example.test")]),
        ("sip:alice@example.test", "UDP", [("UDP", "sip_port", "sip.example.test")]),
        ("sip:alice@example.test", "TCP", [("TCP", "sip_port", "sip.example.test")]),
        ("sip:alice@example.test", "TLS", [("TLS", "tls_port", "sip.example.test")]),
        ("sips:alice@redirect.example.test", "AUTO", [("TLS", "evil_port", "evil.example.test")]),
        ("sips:x@evil.example.test", "AUTO", [("TLS", "evil_port", "evil.example.test")]),
        (
            "sip:alice@srvonly.example.test",
            "AUTO",
            [("TCP", "sip_port", "sip.example.test"), ("UDP", "sip_port", "sip.example.test")],
        ),
        ("sip:alice@aonly.example.test", "AUTO", [("UDP", 5060, "aonly.example.test")]),
        ("sips:alice@aonly.example.test", "AUTO", [("TLS", 5061, "aonly.example.test")]),
        ("sip:alice@sip.example.test:5099", "AUTO", [("UDP", 5099, "sip.example.test")]),
    ],
)
async def test_locate_through_dnsmasq(
    resolver: Resolver, kamailio: Kamailio, uri: str, setting: str, expected: list[tuple]
) -> None:
    parsed = Uri.parse(uri)
    result = await locate(LocateRequest.from_uri(parsed, transport=setting), resolver)
    assert result.error is None, result.trace
    got = [(t.transport, t.address, t.port, t.hostname, t.tls_server_name) for t in result.targets]
    want = [
        (
            Transport(tr),
            "127.0.0.1",
            getattr(kamailio, port) if isinstance(port, str) else port,
            host,
            parsed.host,  # RFC 5922: always the SIP domain, never the SRV target
        )
        for tr, port, host in expected
    ]
    assert got == want


async def test_nxdomain_through_dnsmasq(resolver: Resolver) -> None:
    result = await locate(LocateRequest("sip", "nothere.example.test"), resolver)
    assert result.targets == ()
    assert result.error is not None and "NXDOMAIN" in result.error


async def test_refused_zone_gives_no_target(resolver: Resolver) -> None:
    result = await locate(LocateRequest("sip", "example.com", transport="UDP"), resolver)
    assert result.targets == ()
    assert any("REFUSED" in line for line in result.trace)
