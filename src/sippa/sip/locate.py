"""Locating SIP servers (RFC 3263) as a sans-IO generator flow (L0).

The flow yields :class:`DnsQuery` events and receives :class:`DnsAnswer` values; its return
value is a :class:`LocateResult` with the ordered failover list of :class:`Target` s (try the
next one on a timeout, a transport error or a 503, RFC 3263 §4.3). The runtime answers the
queries (``sippa.net.dns.locate``); tests answer them from canned data::

    flow = locate(LocateRequest.from_uri(uri, transport="AUTO"), rand=randbelow)
    query = next(flow)
    while True:
        try:
            query = flow.send(answer_for(query))
        except StopIteration as done:
            result = done.value
            break

Decisions, RFC 3263 §4.1 (transport) and §4.2 (port and address):

- the target is the URI's ``maddr`` if present, else its host (§4);
- numeric IP host: no DNS at all; an explicit port: A/AAAA only;
- a transport fixed by the URI (``;transport=``) or by the "SIP Transport" setting (UDP, TCP,
  TLS): SRV for that transport's prefix (``_sips._tcp``, ``_sip._tcp``, ``_sip._udp``; the
  reviewed firmware only ever used ``_sip._udp``), then A/AAAA of the host on the default port;
- AUTO: NAPTR first (SIPS URIs keep only ``SIPS+D2T``); when TLS is offered, only TLS targets
  are kept, so that an attacker who blocks TLS cannot downgrade the line to UDP/TCP; without
  NAPTR, SRV for ``_sips._tcp`` then ``_sip._tcp`` and ``_sip._udp``; then A/AAAA;
- SRV targets in priority order, weighted random within a priority (RFC 2782), with the
  randomness injected (``rand(n)`` returns an int in ``[0, n)``).

The name a TLS certificate must match is always the SIP domain, the host of the URI
(RFC 5922 §4), never a host name learned from NAPTR or SRV: every target carries it as
``tls_server_name``.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sippa.errors import LocalProtocolError

__all__ = [
    "DEFAULT_PORTS",
    "DnsAnswer",
    "DnsQuery",
    "DnsStatus",
    "LocateFlow",
    "LocateRequest",
    "LocateResult",
    "NaptrRecord",
    "SrvRecord",
    "Target",
    "Transport",
    "TransportChoice",
    "locate",
    "order_naptr",
    "order_srv",
    "sip_domain",
    "srv_prefix",
]


class Transport(enum.StrEnum):
    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"


class TransportChoice(enum.StrEnum):
    """The "SIP Transport" setting."""

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"
    AUTO = "AUTO"


# RFC 3261 §19.1.2: 5060 for UDP/TCP, 5061 for TLS
DEFAULT_PORTS = {Transport.UDP: 5060, Transport.TCP: 5060, Transport.TLS: 5061}
# RFC 3263 §4.1 NAPTR services we support
_NAPTR_SERVICES = {"SIPS+D2T": Transport.TLS, "SIP+D2T": Transport.TCP, "SIP+D2U": Transport.UDP}
_SRV_PREFIXES = {
    Transport.TLS: "_sips._tcp",
    Transport.TCP: "_sip._tcp",
    Transport.UDP: "_sip._udp",
}
# without NAPTR: transports tried in this order of preference (most secure first)
_AUTO_ORDER = (Transport.TLS, Transport.TCP, Transport.UDP)
# limits against hostile or broken zones
MAX_QUERIES = 40
MAX_RECORDS = 16


class DnsStatus(enum.StrEnum):
    OK = "ok"  # records in the answer
    NXDOMAIN = "nxdomain"  # the name does not exist
    NODATA = "nodata"  # the name exists, no record of that type
    ERROR = "error"  # timeout, SERVFAIL, REFUSED...


@dataclass(frozen=True, slots=True)
class DnsQuery:
    """The flow asks the runtime for these records."""

    name: str
    """Absolute-or-relative domain name (no trailing dot needed)."""
    rdtype: str
    """"NAPTR", "SRV", "A" or "AAAA"."""


@dataclass(frozen=True, slots=True)
class NaptrRecord:
    order: int
    preference: int
    flags: str
    service: str
    regexp: str
    replacement: str


@dataclass(frozen=True, slots=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """The runtime's answer to a :class:`DnsQuery`."""

    status: DnsStatus
    records: tuple[NaptrRecord | SrvRecord | str, ...] = ()
    """NAPTR/SRV records, or addresses (str) for A/AAAA."""
    error: str = ""
    """What went wrong, for ``ERROR``."""


@dataclass(frozen=True, slots=True)
class Target:
    """One place to send requests to, in failover order."""

    transport: Transport
    address: str
    """IP address (IPv6 without brackets)."""
    port: int
    tls_server_name: str
    """The SIP domain: the name (or IP) the server certificate must match (RFC 5922 §4)."""
    hostname: str
    """The host name the address came from (SRV target or URI host), for logs only."""


class _UriLike(Protocol):
    @property
    def scheme(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int | None: ...
    def param(self, name: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class LocateRequest:
    """What to locate, and the line's settings."""

    scheme: str
    """"sip" or "sips"."""
    host: str
    """Host of the proxy or AoR URI (IPv6 without brackets)."""
    port: int | None = None
    uri_transport: str | None = None
    """The URI's ``transport`` parameter, if any."""
    transport: TransportChoice = TransportChoice.AUTO
    """The "SIP Transport" setting."""
    use_srv: bool = True
    """"Use DNS SRV": NAPTR and SRV lookups (otherwise A/AAAA only)."""
    srv_auto_prefix: bool = True
    """"DNS SRV Auto Prefix": prefix the host with the transport's SRV label; when off the host
    is used as the SRV name as given (e.g. ``_sips._tcp.example.test``)."""
    address_types: tuple[str, ...] = ("A", "AAAA")
    """Address records to ask for, in order of preference."""
    maddr: str | None = None
    """The URI's ``maddr`` parameter: where to send instead of the host (RFC 3263 §4)."""

    @classmethod
    def from_uri(
        cls,
        uri: _UriLike,
        *,
        transport: str | TransportChoice = TransportChoice.AUTO,
        use_srv: bool = True,
        srv_auto_prefix: bool = True,
        address_types: tuple[str, ...] = ("A", "AAAA"),
    ) -> LocateRequest:
        """From a parsed SIP/SIPS URI (``sippa.sip.uri.Uri``) and the line's settings."""
        return cls(
            scheme=uri.scheme.lower(),
            host=uri.host,
            port=uri.port,
            uri_transport=uri.param("transport"),
            transport=TransportChoice(str(transport).upper()),
            use_srv=use_srv,
            srv_auto_prefix=srv_auto_prefix,
            address_types=address_types,
            maddr=uri.param("maddr"),
        )


@dataclass(frozen=True, slots=True)
class LocateResult:
    """The ordered failover list, or why it is empty."""

    targets: tuple[Target, ...]
    error: str | None = None
    """Why no target was found (None when there are targets)."""
    trace: tuple[str, ...] = field(default=())
    """The decisions taken, one line each (for logs and the CLI)."""


LocateFlow = Generator[DnsQuery, DnsAnswer, LocateResult]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def sip_domain(host: str) -> str:
    """The identity of the server for RFC 5922: the URI host, lower case, no trailing dot."""
    return host.strip().strip("[]").rstrip(".").lower()


def srv_prefix(transport: Transport) -> str:
    """RFC 3263 §4.2 SRV label for a transport: _sips._tcp, _sip._tcp or _sip._udp."""
    return _SRV_PREFIXES[transport]


def order_srv(records: Sequence[SrvRecord], rand: Callable[[int], int]) -> list[SrvRecord]:
    """RFC 2782 ordering: by priority; within one, weighted random selection."""
    out: list[SrvRecord] = []
    for prio in sorted({r.priority for r in records}):
        # "arrange all SRV RRs (that have not been ordered yet) in any order, except that
        # all those with weight 0 are placed at the beginning of the list"
        group = [r for r in records if r.priority == prio and r.weight == 0]
        group += [r for r in records if r.priority == prio and r.weight != 0]
        while group:
            total = sum(r.weight for r in group)
            # "choose a uniform random number between 0 and the sum computed (inclusive)"
            pick = rand(total + 1) if total else 0
            running = 0
            for i, r in enumerate(group):
                running += r.weight
                if running >= pick:
                    out.append(group.pop(i))
                    break
    return out


def order_naptr(records: Sequence[NaptrRecord], *, sips: bool) -> list[tuple[Transport, str]]:
    """RFC 3263 §4.1: usable NAPTR records as (transport, SRV name), best first.

    Keeps flag "s" records whose service we support (SIPS URIs: ``SIPS+D2T`` only), sorted by
    order then preference; if TLS is offered, only the TLS records (no downgrade).
    """
    usable = []
    for r in sorted(records, key=lambda r: (r.order, r.preference)):
        transport = _NAPTR_SERVICES.get(r.service.upper())
        if transport is None or r.flags.lower() != "s" or not r.replacement:
            continue
        if sips and transport is not Transport.TLS:
            continue  # RFC 3263 §4.1: a SIPS URI discards non-SIPS services
        usable.append((transport, r.replacement.rstrip(".")))
    if any(t is Transport.TLS for t, _ in usable):
        usable = [(t, n) for t, n in usable if t is Transport.TLS]
    return usable


class _Flow:
    """State of one locate() run: query budget and trace."""

    def __init__(self, request: LocateRequest) -> None:
        self.request = request
        self.queries = 0
        self.trace: list[str] = []
        self._addresses: dict[str, list[str]] = {}

    def ask(self, name: str, rdtype: str) -> Generator[DnsQuery, DnsAnswer, DnsAnswer]:
        if self.queries >= MAX_QUERIES:
            self.trace.append(f"query budget exhausted, {rdtype} {name} not asked")
            return DnsAnswer(DnsStatus.ERROR, error="too many DNS queries")
        self.queries += 1
        answer = yield DnsQuery(name, rdtype)
        summary = (
            answer.status.value
            if answer.status is not DnsStatus.OK
            else (f"{len(answer.records)} record(s)")
        )
        self.trace.append(f"{rdtype} {name}: {summary}{' ' + answer.error if answer.error else ''}")
        return answer

    def addresses(self, host: str) -> Generator[DnsQuery, DnsAnswer, list[str]]:
        """RFC 3263 §4.2: the A/AAAA records of a host (IP literals pass through)."""
        if _is_ip(host):
            return [host]
        if host in self._addresses:  # several SRV records may name the same host
            return self._addresses[host]
        out: list[str] = []
        for rdtype in self.request.address_types:
            answer = yield from self.ask(host, rdtype)
            if answer.status is DnsStatus.NXDOMAIN:
                break
            out += [a for a in answer.records[:MAX_RECORDS] if isinstance(a, str) and _is_ip(a)]
        self._addresses[host] = out
        return out

    def srv_targets(
        self, name: str, transport: Transport, domain: str, rand: Callable[[int], int]
    ) -> Generator[DnsQuery, DnsAnswer, tuple[list[Target], bool]]:
        """Targets from the SRV records of ``name``; second value: were there records?"""
        answer = yield from self.ask(name, "SRV")
        records = [r for r in answer.records[:MAX_RECORDS] if isinstance(r, SrvRecord)]
        if not records:
            return [], False
        # RFC 2782: a single record with target "." means "service decidedly not available"
        if len(records) == 1 and records[0].target.rstrip(".") == "":
            self.trace.append(f"SRV {name}: service not available (target '.')")
            return [], True
        targets = []
        for r in order_srv(records, rand):
            host = r.target.rstrip(".")
            if not host:
                continue
            for address in (yield from self.addresses(host)):
                targets.append(Target(transport, address, r.port, domain, host))
        return targets, True

    def host_targets(
        self, host: str, transport: Transport, port: int | None, domain: str
    ) -> Generator[DnsQuery, DnsAnswer, list[Target]]:
        port = port if port is not None else DEFAULT_PORTS[transport]
        return [
            Target(transport, address, port, domain, host)
            for address in (yield from self.addresses(host))
        ]


def _fixed_transport(request: LocateRequest) -> Transport | None:
    """RFC 3263 §4.1: the transport from the URI parameter, else the setting (None = AUTO)."""
    sips = request.scheme == "sips"
    param = (request.uri_transport or "").lower()
    if param:
        if param == "udp":
            if sips:
                raise LocalProtocolError("a sips: URI cannot use transport=udp")
            return Transport.UDP
        if param == "tcp":
            # RFC 3261 §26.2.2: sips with transport=tcp means TLS over TCP
            return Transport.TLS if sips else Transport.TCP
        if param == "tls":
            return Transport.TLS
        raise LocalProtocolError(f"unsupported transport {param!r} in URI")
    try:
        setting = TransportChoice(str(request.transport).upper())
    except ValueError:
        raise LocalProtocolError(f"unknown SIP transport {request.transport!r}") from None
    if setting is TransportChoice.AUTO:
        return None
    chosen = Transport(setting.value)
    if sips and chosen is not Transport.TLS:
        raise LocalProtocolError(f"a sips: URI needs TLS, the line is set to {chosen.value}")
    return chosen


def locate(request: LocateRequest, rand: Callable[[int], int]) -> LocateFlow:
    """The RFC 3263 flow: yields DNS queries, returns the ordered targets."""
    scheme = request.scheme.lower()
    if scheme not in ("sip", "sips"):
        raise LocalProtocolError(f"cannot locate a {scheme}: URI")
    identity = sip_domain(request.host)
    if not identity:
        raise LocalProtocolError("URI without host")
    # RFC 3263 §4: TARGET is the maddr parameter if present, else the host; the identity to
    # check stays the URI's host (RFC 5922 §4)
    host = sip_domain(request.maddr) if request.maddr else identity
    sips = scheme == "sips"
    fixed = _fixed_transport(request)
    default = Transport.TLS if sips else Transport.UDP
    flow = _Flow(request)
    trace = flow.trace

    def done(targets: list[Target], error: str | None = None) -> LocateResult:
        unique: list[Target] = []
        for t in targets:
            if all(
                (t.transport, t.address, t.port) != (u.transport, u.address, u.port) for u in unique
            ):
                unique.append(t)
        if not unique and error is None:
            error = f"no address found for {host}"
        return LocateResult(tuple(unique), None if unique else error, tuple(trace))

    # §4.1/§4.2: a numeric IP needs no DNS
    if _is_ip(host):
        transport = fixed or default
        port = request.port or DEFAULT_PORTS[transport]
        trace.append(f"numeric host: {transport.value} {host}:{port}")
        return done([Target(transport, host, port, identity, host)])

    # §4.2: explicit port -> A/AAAA only
    if request.port is not None:
        transport = fixed or default
        trace.append(f"explicit port {request.port}: A/AAAA only, {transport.value}")
        return done((yield from flow.host_targets(host, transport, request.port, identity)))

    if not request.use_srv:
        transport = fixed or default
        trace.append(f"DNS SRV off: A/AAAA of {host}, {transport.value}")
        return done((yield from flow.host_targets(host, transport, None, identity)))

    if not request.srv_auto_prefix:
        # the configured name is the SRV name itself, e.g. _sips._tcp.example.test
        labels = host.split(".")
        named = None
        if len(labels) > 2 and labels[0].startswith("_") and labels[1].startswith("_"):
            named = {v: k for k, v in _SRV_PREFIXES.items()}.get(".".join(labels[:2]))
            domain = ".".join(labels[2:])
        else:
            domain = host
        if request.maddr:
            domain = identity
        transport = fixed or named or default
        if named is not None and fixed is not None and named is not fixed:
            raise LocalProtocolError(f"SRV name {host} does not match transport {fixed.value}")
        trace.append(f"SRV auto prefix off: SRV {host} as given, {transport.value}")
        targets, had = yield from flow.srv_targets(host, transport, domain, rand)
        if had:
            return done(targets, None if targets else f"SRV {host}: no usable target")
        return done((yield from flow.host_targets(domain, transport, None, domain)))

    if fixed is not None:
        # §4.2: transport known, no port -> SRV for that transport, else A/AAAA
        name = f"{srv_prefix(fixed)}.{host}"
        targets, had = yield from flow.srv_targets(name, fixed, identity, rand)
        if had:
            return done(targets, None if targets else f"SRV {name}: no usable target")
        trace.append(f"no SRV: A/AAAA of {host}, default port")
        return done((yield from flow.host_targets(host, fixed, None, identity)))

    # AUTO: §4.1 NAPTR
    answer = yield from flow.ask(host, "NAPTR")
    if answer.status is DnsStatus.NXDOMAIN:
        return done([], f"{host} does not exist (NXDOMAIN)")
    naptrs = [r for r in answer.records[:MAX_RECORDS] if isinstance(r, NaptrRecord)]
    if naptrs:
        usable = order_naptr(naptrs, sips=sips)
        if not usable:
            wanted = "SIPS+D2T" if sips else "SIP(S)+D2T/D2U"
            return done([], f"NAPTR {host}: no supported service ({wanted})")
        trace.append("NAPTR order: " + ", ".join(f"{t.value} {n}" for t, n in usable))
        targets = []
        for transport, srv_name in usable:
            found, _ = yield from flow.srv_targets(srv_name, transport, identity, rand)
            targets += found
        return done(targets, f"NAPTR {host}: no SRV target answered")

    # no NAPTR: SRV for each transport, most secure first; TLS found -> TLS only
    targets = []
    for transport in _AUTO_ORDER:
        if sips and transport is not Transport.TLS:
            break
        found, _ = yield from flow.srv_targets(
            f"{srv_prefix(transport)}.{host}", transport, identity, rand
        )
        targets += found
        if found and transport is Transport.TLS:
            break  # TLS offered: no downgrade to TCP/UDP
    if targets:
        return done(targets)
    trace.append(f"no NAPTR/SRV: A/AAAA of {host}, {default.value} default port")
    return done((yield from flow.host_targets(host, default, None, identity)))
