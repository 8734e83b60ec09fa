"""The dnspython resolver against an in-process DNS server on loopback (no third-party peer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import dns.message
import dns.rcode
import dns.rrset
import pytest

from sippa.net.dns import Resolver, locate, parse_server
from sippa.sip.locate import DnsQuery, DnsStatus, LocateRequest, NaptrRecord, SrvRecord, Transport

ZONE = {
    ("example.test.", "NAPTR"): ['10 10 "s" "SIPS+D2T" "" _sips._tcp.example.test.'],
    ("_sips._tcp.example.test.", "SRV"): ["10 20 5061 sip.example.test."],
    ("sip.example.test.", "A"): ["192.0.2.10"],
    ("sip.example.test.", "AAAA"): ["2001:db8::10"],
}
NAMES = {name for name, _ in ZONE}


class FakeDns(asyncio.DatagramProtocol):
    """Answers from ZONE; 'refused.test' -> REFUSED, 'silent.test' -> no answer at all."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.seen: list[str] = []

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        query = dns.message.from_wire(data)
        q = query.question[0]
        name, rdtype = q.name.to_text(), dns.rdatatype.to_text(q.rdtype)
        self.seen.append(f"{rdtype} {name}")
        if name == "silent.test.":
            return
        response = dns.message.make_response(query)
        if name == "refused.test.":
            response.set_rcode(dns.rcode.REFUSED)
        elif (name, rdtype) in ZONE:
            response.answer.append(dns.rrset.from_text(name, 60, "IN", rdtype, *ZONE[name, rdtype]))
        elif name not in NAMES:
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def fake_dns() -> AsyncIterator[tuple[FakeDns, int]]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(FakeDns, local_addr=("127.0.0.1", 0))
    try:
        yield proto, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


async def test_record_types(fake_dns) -> None:
    _, port = fake_dns
    r = Resolver("127.0.0.1", port, timeout=1, lifetime=2)
    naptr = await r.query(DnsQuery("example.test", "NAPTR"))
    assert naptr.status is DnsStatus.OK
    assert naptr.records == (NaptrRecord(10, 10, "s", "SIPS+D2T", "", "_sips._tcp.example.test"),)
    srv = await r.query(DnsQuery("_sips._tcp.example.test", "SRV"))
    assert srv.records == (SrvRecord(10, 20, 5061, "sip.example.test"),)
    assert (await r.query(DnsQuery("sip.example.test", "A"))).records == ("192.0.2.10",)
    assert (await r.query(DnsQuery("sip.example.test.", "AAAA"))).records == ("2001:db8::10",)


async def test_nxdomain_nodata_and_errors_are_distinct(fake_dns) -> None:
    proto, port = fake_dns
    r = Resolver("127.0.0.1", port, timeout=0.2, lifetime=0.5)
    assert (await r.query(DnsQuery("nothere.test", "A"))).status is DnsStatus.NXDOMAIN
    assert (await r.query(DnsQuery("sip.example.test", "SRV"))).status is DnsStatus.NODATA
    refused = await r.query(DnsQuery("refused.test", "A"))
    assert refused.status is DnsStatus.ERROR and "REFUSED" in refused.error
    silent = await r.query(DnsQuery("silent.test", "A"))
    assert silent.status is DnsStatus.ERROR and "timeout" in silent.error
    assert (await r.query(DnsQuery("x.test", "MX"))).status is DnsStatus.ERROR
    assert "A silent.test." in proto.seen


async def test_locate_driver(fake_dns) -> None:
    proto, port = fake_dns
    r = Resolver("127.0.0.1", port, timeout=1, lifetime=2)
    result = await locate(LocateRequest("sips", "example.test"), r)
    assert [(t.transport, t.address, t.port, t.tls_server_name) for t in result.targets] == [
        (Transport.TLS, "192.0.2.10", 5061, "example.test"),
        (Transport.TLS, "2001:db8::10", 5061, "example.test"),
    ]
    assert proto.seen[:2] == ["NAPTR example.test.", "SRV _sips._tcp.example.test."]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
    ],
)
def test_parse_server(text: str, expected: tuple[str, int]) -> None:
    assert parse_server(text) == expected


@pytest.mark.parametrize("text", ["dns.example:53", "127.0.0.1:0", "127.0.0.1:70000"])
def test_parse_server_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_server(text)
