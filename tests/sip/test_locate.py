"""RFC 3263 server location with canned DNS answers: every branch of the flow."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sippa.errors import LocalProtocolError
from sippa.sip.locate import (
    MAX_QUERIES,
    DnsAnswer,
    DnsQuery,
    DnsStatus,
    LocateRequest,
    LocateResult,
    NaptrRecord,
    SrvRecord,
    Target,
    Transport,
    locate,
    order_naptr,
    order_srv,
    srv_prefix,
)
from sippa.sip.uri import Uri

Record = NaptrRecord | SrvRecord | str


class Zone:
    """A canned zone: (name, type) -> records; names without a type answer NODATA."""

    def __init__(self, records: dict[tuple[str, str], list[Record]] | None = None) -> None:
        self.records = records or {}
        self.errors: dict[tuple[str, str], str] = {}
        self.queries: list[DnsQuery] = []

    def answer(self, q: DnsQuery) -> DnsAnswer:
        self.queries.append(q)
        key = (q.name, q.rdtype)
        if key in self.errors:
            return DnsAnswer(DnsStatus.ERROR, error=self.errors[key])
        if key in self.records:
            return DnsAnswer(DnsStatus.OK, tuple(self.records[key]))
        if any(name == q.name for name, _ in self.records):
            return DnsAnswer(DnsStatus.NODATA)
        return DnsAnswer(DnsStatus.NXDOMAIN)

    @property
    def asked(self) -> list[tuple[str, str]]:
        return [(q.name, q.rdtype) for q in self.queries]


def run(request: LocateRequest, zone: Zone, rand=lambda n: 0) -> LocateResult:
    flow = locate(request, rand)
    try:
        query = next(flow)
        while True:
            query = flow.send(zone.answer(query))
    except StopIteration as done:
        return done.value


def lab_zone(sip: int = 5060, tls: int = 5061, evil: int = 5062) -> Zone:
    """The interop lab's zone (tests/peers/dns/dnsmasq.conf.in) as canned data."""
    n = NaptrRecord
    return Zone(
        {
            ("example.test", "NAPTR"): [
                n(30, 10, "s", "SIP+D2U", "", "_sip._udp.example.test"),
                n(10, 10, "s", "SIPS+D2T", "", "_sips._tcp.example.test"),
                n(20, 10, "s", "SIP+D2T", "", "_sip._tcp.example.test"),
            ],
            ("_sips._tcp.example.test", "SRV"): [SrvRecord(10, 10, tls, "sip.example.test")],
            ("_sip._tcp.example.test", "SRV"): [SrvRecord(10, 10, sip, "sip.example.test")],
            ("_sip._udp.example.test", "SRV"): [SrvRecord(10, 10, sip, "sip.example.test")],
            ("sip.example.test", "A"): ["127.0.0.1"],
            ("evil.example.test", "A"): ["127.0.0.1"],
            ("aonly.example.test", "A"): ["127.0.0.1"],
            ("redirect.example.test", "NAPTR"): [
                n(10, 10, "s", "SIPS+D2T", "", "_sips._tcp.redirect.example.test")
            ],
            ("_sips._tcp.redirect.example.test", "SRV"): [
                SrvRecord(10, 10, evil, "evil.example.test")
            ],
            ("_sips._tcp.evil.example.test", "SRV"): [SrvRecord(10, 10, evil, "evil.example.test")],
            ("_sip._udp.srvonly.example.test", "SRV"): [SrvRecord(10, 10, sip, "sip.example.test")],
            ("_sip._tcp.srvonly.example.test", "SRV"): [SrvRecord(10, 10, sip, "sip.example.test")],
            ("srvonly.example.test", "TXT"): ["exists"],
        }
    )


def t(transport: Transport, port: int, domain: str, host: str = "sip.example.test") -> Target:
    return Target(transport, "127.0.0.1", port, domain, host)


# ---- numeric hosts and explicit ports (§4.1, §4.2) --------------------------------------------
@pytest.mark.parametrize(
    ("uri", "transport", "port"),
    [
        ("sip:alice@127.0.0.1", Transport.UDP, 5060),
        ("sips:alice@127.0.0.1", Transport.TLS, 5061),
        ("sip:127.0.0.1:5070;transport=tcp", Transport.TCP, 5070),
        ("sip:[::1];transport=tls", Transport.TLS, 5061),
        ("sips:[2001:db8::1]:7000;transport=tcp", Transport.TLS, 7000),
    ],
)
def test_numeric_host_needs_no_dns(uri: str, transport: Transport, port: int) -> None:
    zone = Zone()
    parsed = Uri.parse(uri)
    result = run(LocateRequest.from_uri(parsed), zone)
    assert zone.queries == []
    assert result.targets == (Target(transport, parsed.host, port, parsed.host, parsed.host),)
    # an IP-address proxy is validated against the IP (SAN), not a name
    assert result.targets[0].tls_server_name == parsed.host


def test_numeric_host_with_transport_setting() -> None:
    result = run(LocateRequest("sip", "127.0.0.1", transport="TCP"), Zone())
    assert result.targets[0].transport is Transport.TCP


@pytest.mark.parametrize(
    ("uri", "setting", "transport"),
    [
        ("sip:example.test:5099", "AUTO", Transport.UDP),
        ("sips:example.test:5099", "AUTO", Transport.TLS),
        ("sip:example.test:5099;transport=tcp", "AUTO", Transport.TCP),
        ("sip:example.test:5099", "TLS", Transport.TLS),
    ],
)
def test_explicit_port_asks_only_addresses(uri: str, setting: str, transport: Transport) -> None:
    zone = Zone({("example.test", "A"): ["192.0.2.1"], ("example.test", "AAAA"): ["2001:db8::5"]})
    result = run(LocateRequest.from_uri(Uri.parse(uri), transport=setting), zone)
    assert zone.asked == [("example.test", "A"), ("example.test", "AAAA")]
    assert [(x.transport, x.address, x.port) for x in result.targets] == [
        (transport, "192.0.2.1", 5099),
        (transport, "2001:db8::5", 5099),
    ]


def test_address_preference_order() -> None:
    zone = Zone({("h.test", "A"): ["192.0.2.1"], ("h.test", "AAAA"): ["2001:db8::5"]})
    req = LocateRequest("sip", "h.test", port=5060, address_types=("AAAA", "A"))
    assert [x.address for x in run(req, zone).targets] == ["2001:db8::5", "192.0.2.1"]


def test_use_dns_srv_off_asks_only_addresses() -> None:
    zone = lab_zone()
    result = run(LocateRequest("sips", "example.test", use_srv=False), zone)
    assert zone.asked == [("example.test", "A"), ("example.test", "AAAA")]
    assert result.targets == ()
    assert result.error == "no address found for example.test"
    zone = lab_zone()
    result = run(LocateRequest("sip", "sip.example.test", use_srv=False, transport="TCP"), zone)
    assert result.targets == (t(Transport.TCP, 5060, "sip.example.test"),)


# ---- transport fixed by the setting or the URI: SRV with the matching prefix (§4.2) ----------
@pytest.mark.parametrize(
    ("setting", "prefix", "port"),
    [("TLS", "_sips._tcp", 15061), ("TCP", "_sip._tcp", 15060), ("UDP", "_sip._udp", 15060)],
)
def test_srv_prefix_follows_transport(setting: str, prefix: str, port: int) -> None:
    zone = lab_zone(sip=15060, tls=15061)
    result = run(LocateRequest("sip", "example.test", transport=setting), zone)
    assert zone.asked[0] == (f"{prefix}.example.test", "SRV")
    assert ("example.test", "NAPTR") not in zone.asked
    assert result.targets == (t(Transport(setting), port, "example.test"),)


def test_srv_prefix_table() -> None:
    assert [srv_prefix(x) for x in Transport] == ["_sip._udp", "_sip._tcp", "_sips._tcp"]


def test_uri_transport_parameter_beats_setting() -> None:
    zone = lab_zone()
    req = LocateRequest.from_uri(Uri.parse("sip:example.test;transport=tcp"), transport="UDP")
    result = run(req, zone)
    assert zone.asked[0] == ("_sip._tcp.example.test", "SRV")
    assert result.targets[0].transport is Transport.TCP


def test_fixed_transport_without_srv_falls_back_to_default_port() -> None:
    zone = lab_zone()
    result = run(LocateRequest("sip", "aonly.example.test", transport="TLS"), zone)
    assert zone.asked == [
        ("_sips._tcp.aonly.example.test", "SRV"),
        ("aonly.example.test", "A"),
        ("aonly.example.test", "AAAA"),
    ]
    assert result.targets == (t(Transport.TLS, 5061, "aonly.example.test", "aonly.example.test"),)


def test_srv_dot_target_means_not_available() -> None:
    zone = Zone({("_sip._udp.x.test", "SRV"): [SrvRecord(0, 0, 0, ".")]})
    result = run(LocateRequest("sip", "x.test", transport="UDP"), zone)
    assert result.targets == ()
    assert result.error is not None and "no usable target" in result.error
    assert zone.asked == [("_sip._udp.x.test", "SRV")]  # no fallback to A records


def test_srv_auto_prefix_off_uses_the_name_as_given() -> None:
    zone = lab_zone()
    result = run(LocateRequest("sip", "_sips._tcp.example.test", srv_auto_prefix=False), zone)
    assert zone.asked[0] == ("_sips._tcp.example.test", "SRV")
    # the transport comes from the name, the identity is the domain under the labels
    assert result.targets == (t(Transport.TLS, 5061, "example.test"),)


def test_srv_auto_prefix_off_plain_name() -> None:
    zone = Zone({("_sip._udp.example.test", "SRV"): [SrvRecord(1, 1, 5070, "a.test")]})
    zone.records[("sip.example.test", "A")] = ["192.0.2.9"]
    result = run(
        LocateRequest("sip", "sip.example.test", srv_auto_prefix=False, transport="UDP"), zone
    )
    assert zone.asked[0] == ("sip.example.test", "SRV")
    assert result.targets == (
        Target(Transport.UDP, "192.0.2.9", 5060, "sip.example.test", "sip.example.test"),
    )


def test_srv_auto_prefix_off_conflicting_transport() -> None:
    with pytest.raises(LocalProtocolError):
        run(
            LocateRequest("sip", "_sip._udp.example.test", srv_auto_prefix=False, transport="TLS"),
            Zone(),
        )


# ---- AUTO: NAPTR (§4.1) -------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["sip", "sips"])
def test_auto_follows_naptr_and_prefers_tls(scheme: str) -> None:
    zone = lab_zone()
    result = run(LocateRequest(scheme, "example.test"), zone)
    assert zone.asked[:2] == [("example.test", "NAPTR"), ("_sips._tcp.example.test", "SRV")]
    # TLS offered: only TLS targets (no downgrade to TCP/UDP if TLS fails)
    assert result.targets == (t(Transport.TLS, 5061, "example.test"),)
    assert ("_sip._udp.example.test", "SRV") not in zone.asked


def test_naptr_without_tls_follows_order_then_preference() -> None:
    n = NaptrRecord
    zone = Zone(
        {
            ("d.test", "NAPTR"): [
                n(20, 10, "s", "SIP+D2U", "", "_sip._udp.d.test"),
                n(10, 20, "s", "SIP+D2T", "", "_sip._tcp.slow.d.test"),
                n(10, 10, "S", "SIP+D2T", "", "_sip._tcp.d.test"),
                n(5, 10, "u", "SIP+D2T", "!^.*$!sip:x@y!", ""),  # not an "s" record
                n(1, 10, "s", "SIP+D2S", "", "_sip._sctp.d.test"),  # SCTP: unsupported
            ],
            ("_sip._udp.d.test", "SRV"): [SrvRecord(1, 0, 5001, "u.d.test")],
            ("_sip._tcp.d.test", "SRV"): [SrvRecord(1, 0, 5002, "t.d.test")],
            ("_sip._tcp.slow.d.test", "SRV"): [SrvRecord(1, 0, 5003, "t.d.test")],
            ("u.d.test", "A"): ["192.0.2.1"],
            ("t.d.test", "A"): ["192.0.2.2"],
        }
    )
    result = run(LocateRequest("sip", "d.test"), zone)
    assert [(x.transport, x.port) for x in result.targets] == [
        (Transport.TCP, 5002),
        (Transport.TCP, 5003),
        (Transport.UDP, 5001),
    ]
    assert all(x.tls_server_name == "d.test" for x in result.targets)
    assert ("t.d.test", "A") in zone.asked and zone.asked.count(("t.d.test", "A")) == 1


def test_order_naptr_for_sips_keeps_only_sips() -> None:
    n = NaptrRecord
    recs = [
        n(1, 1, "s", "SIP+D2U", "", "_sip._udp.d"),
        n(2, 1, "s", "SIPS+D2T", "", "_sips._tcp.d"),
    ]
    assert order_naptr(recs, sips=True) == [(Transport.TLS, "_sips._tcp.d")]
    assert order_naptr(recs[:1], sips=True) == []
    assert order_naptr(recs, sips=False) == [(Transport.TLS, "_sips._tcp.d")]
    assert order_naptr(recs[:1], sips=False) == [(Transport.UDP, "_sip._udp.d")]


def test_sips_uri_with_naptr_without_tls_fails() -> None:
    zone = Zone({("d.test", "NAPTR"): [NaptrRecord(1, 1, "s", "SIP+D2U", "", "_sip._udp.d.test")]})
    result = run(LocateRequest("sips", "d.test"), zone)
    assert result.targets == ()
    assert result.error is not None and "SIPS+D2T" in result.error
    assert zone.asked == [("d.test", "NAPTR")]


def test_redirect_keeps_the_sip_domain_as_tls_identity() -> None:
    """RFC 5922 §4: the SRV target evil.example.test is NOT the identity to check."""
    result = run(LocateRequest("sips", "redirect.example.test"), lab_zone())
    assert result.targets == (
        Target(Transport.TLS, "127.0.0.1", 5062, "redirect.example.test", "evil.example.test"),
    )


def test_nxdomain_stops_at_naptr() -> None:
    zone = lab_zone()
    result = run(LocateRequest("sip", "nothere.example.test"), zone)
    assert result.targets == ()
    assert result.error is not None and "NXDOMAIN" in result.error
    assert zone.asked == [("nothere.example.test", "NAPTR")]


def test_no_naptr_tries_srv_tls_first_then_tcp_and_udp() -> None:
    zone = lab_zone()
    result = run(LocateRequest("sip", "srvonly.example.test"), zone)
    assert zone.asked[:3] == [
        ("srvonly.example.test", "NAPTR"),
        ("_sips._tcp.srvonly.example.test", "SRV"),
        ("_sip._tcp.srvonly.example.test", "SRV"),
    ]
    assert [x.transport for x in result.targets] == [Transport.TCP, Transport.UDP]
    assert {x.tls_server_name for x in result.targets} == {"srvonly.example.test"}


def test_no_naptr_tls_srv_means_tls_only() -> None:
    zone = lab_zone()
    result = run(LocateRequest("sip", "evil.example.test"), zone)
    assert [x.transport for x in result.targets] == [Transport.TLS]
    assert ("_sip._tcp.evil.example.test", "SRV") not in zone.asked


def test_sips_without_naptr_asks_only_sips_srv() -> None:
    zone = lab_zone()
    result = run(LocateRequest("sips", "srvonly.example.test"), zone)
    assert ("_sip._tcp.srvonly.example.test", "SRV") not in zone.asked
    # no _sips._tcp SRV: A record, TLS on 5061 (§4.2)
    assert zone.asked[-2:] == [("srvonly.example.test", "A"), ("srvonly.example.test", "AAAA")]
    assert result.targets == ()


@pytest.mark.parametrize(
    ("scheme", "transport", "port"), [("sip", Transport.UDP, 5060), ("sips", Transport.TLS, 5061)]
)
def test_no_naptr_no_srv_uses_address(scheme: str, transport: Transport, port: int) -> None:
    result = run(LocateRequest(scheme, "aonly.example.test"), lab_zone())
    assert result.targets == (t(transport, port, "aonly.example.test", "aonly.example.test"),)
    assert result.trace[-3].startswith("no NAPTR/SRV")


def test_dns_errors_are_reported() -> None:
    zone = lab_zone()
    zone.errors[("example.test", "NAPTR")] = "timeout"
    zone.errors[("sip.example.test", "A")] = "timeout"
    result = run(LocateRequest("sip", "example.test"), zone)
    assert result.targets == ()
    assert any("timeout" in line for line in result.trace)


def test_query_budget_bounds_hostile_zones() -> None:
    records: dict[tuple[str, str], list[Record]] = {
        ("d.test", "NAPTR"): [
            NaptrRecord(i, 0, "s", "SIP+D2U", "", f"_sip._udp.n{i}.d.test") for i in range(50)
        ]
    }
    for i in range(50):
        records[(f"_sip._udp.n{i}.d.test", "SRV")] = [
            SrvRecord(0, 1, 5060, f"h{i}-{j}.d.test") for j in range(50)
        ]
    zone = Zone(records)
    result = run(LocateRequest("sip", "d.test"), zone)
    assert len(zone.queries) <= MAX_QUERIES
    assert isinstance(result, LocateResult)


def test_duplicate_targets_are_dropped() -> None:
    zone = Zone(
        {
            ("_sip._udp.d.test", "SRV"): [
                SrvRecord(1, 0, 5060, "a.d.test"),
                SrvRecord(2, 0, 5060, "b.d.test"),
            ],
            ("a.d.test", "A"): ["192.0.2.1"],
            ("b.d.test", "A"): ["192.0.2.1"],
        }
    )
    result = run(LocateRequest("sip", "d.test", transport="UDP"), zone)
    assert [x.hostname for x in result.targets] == ["a.d.test"]


# ---- settings and URIs that cannot work ---------------------------------------------------------
@pytest.mark.parametrize(
    "request_",
    [
        LocateRequest("sips", "example.test", transport="UDP"),
        LocateRequest("sips", "example.test", transport="TCP"),
        LocateRequest("sips", "example.test", uri_transport="udp"),
        LocateRequest("sip", "example.test", uri_transport="sctp"),
        LocateRequest("sip", "example.test", transport="QUIC"),
        LocateRequest("tel", "example.test"),
        LocateRequest("sip", ""),
    ],
)
def test_impossible_requests(request_: LocateRequest) -> None:
    with pytest.raises(LocalProtocolError):
        run(request_, Zone())


def test_sips_transport_tcp_means_tls() -> None:
    zone = lab_zone()
    result = run(LocateRequest.from_uri(Uri.parse("sips:example.test;transport=tcp")), zone)
    assert zone.asked[0] == ("_sips._tcp.example.test", "SRV")
    assert result.targets[0].transport is Transport.TLS


def test_domain_is_normalised() -> None:
    result = run(LocateRequest("sips", "Example.TEST."), lab_zone())
    assert result.targets[0].tls_server_name == "example.test"


# ---- RFC 2782 ordering ---------------------------------------------------------------------------
def test_order_srv_priority_first() -> None:
    recs = [SrvRecord(20, 100, 1, "c"), SrvRecord(10, 0, 2, "a"), SrvRecord(10, 0, 3, "b")]
    assert [r.target for r in order_srv(recs, lambda n: 0)] == ["a", "b", "c"]


def test_order_srv_weighted_selection_uses_injected_randomness() -> None:
    recs = [SrvRecord(1, 10, 1, "a"), SrvRecord(1, 0, 2, "zero"), SrvRecord(1, 30, 3, "b")]
    # list order: zero(0), a(10), b(30); running sums 0, 10, 40
    calls: list[int] = []

    def rand(n: int) -> int:
        calls.append(n)
        return n - 1  # the largest value: picks the last record

    assert [r.target for r in order_srv(recs, rand)] == ["b", "a", "zero"]
    assert calls == [41, 11]  # sum inclusive: [0, 40] then [0, 10]; zero weight alone: no call
    assert [r.target for r in order_srv(recs, lambda n: 0)] == ["zero", "a", "b"]
    assert order_srv(recs, lambda n: 5)[0].target == "a"


def test_order_srv_distribution_follows_weights() -> None:
    rng = random.Random(1234)
    recs = [SrvRecord(1, 1, 1, "light"), SrvRecord(1, 9, 2, "heavy")]
    first = Counter(order_srv(recs, rng.randrange)[0].target for _ in range(4000))
    # RFC 2782 draws from [0, sum] inclusive: "heavy" wins for 2..10, i.e. 9 of 11 values
    assert 0.78 < first["heavy"] / 4000 < 0.86


@given(
    st.lists(
        st.builds(
            SrvRecord,
            st.integers(0, 3),
            st.integers(0, 20),
            st.integers(1, 65535),
            st.sampled_from(["a", "b", "c", "d"]),
        ),
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_order_srv_is_a_priority_sorted_permutation(recs: list[SrvRecord], rng) -> None:
    out = order_srv(recs, rng.randrange)
    assert Counter(out) == Counter(recs)
    assert [r.priority for r in out] == sorted(r.priority for r in recs)


def test_maddr_is_the_target_the_domain_stays_the_identity() -> None:
    zone = lab_zone()
    req = LocateRequest.from_uri(Uri.parse("sips:alice@example.test;maddr=evil.example.test"))
    result = run(req, zone)
    assert zone.asked[0] == ("evil.example.test", "NAPTR")
    assert result.targets == (
        Target(Transport.TLS, "127.0.0.1", 5062, "example.test", "evil.example.test"),
    )
    numeric = run(LocateRequest("sips", "example.test", maddr="192.0.2.7"), Zone())
    assert numeric.targets == (
        Target(Transport.TLS, "192.0.2.7", 5061, "example.test", "192.0.2.7"),
    )
