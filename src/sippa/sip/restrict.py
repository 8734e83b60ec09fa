"""Restrict Source IP: refuse requests that do not come from a line's own servers.

A phone on a public address is found by SIP scanners (SIPVicious "friendly-scanner" and its
kin), which send INVITEs and OPTIONS straight to its port: the phone rings with caller "100" at
3 a.m. (a "ghost call"). The Cisco ATA setting ``Restrict_Source_IP_n_`` drops SIP that does
not come from the addresses the line's proxy and outbound proxy resolve to; this module is
that check, sans-IO.

:class:`SourceRestriction` keeps, per line, whether the restriction is on, the IP addresses
its proxy and outbound proxy resolved to (RFC 3263; each origin is replaced when DNS answers
anew) and the connections of its registration flows, and decides for a request that matches
no dialog and no transaction (the UA core asks, :attr:`UserAgentCore.screen
<sippa.sip.core.UserAgentCore>`):

- :attr:`Screen.ACCEPT` when the line is not restricted, has no proxy at all (direct IP
  calling must keep working), or the source is one of its addresses or flows;
- :attr:`Screen.DROP` over UDP: no response at all. A response would confirm to the scanner
  that a SIP phone lives here, and a UDP source can be forged, so answering would also reflect
  traffic at whoever's address was forged;
- :attr:`Screen.FORBID` over TCP/TLS: a stateless 403. The handshake proved the source (no
  reflection), the open port already told a scanner something listens, and a legitimate peer
  that is not in the set (a proxy node missing from DNS) gets a clear error instead of
  retransmitting into silence for 32 s.

Refused requests are counted per line with the last source, method and time, so the line
status shows scanner traffic instead of ghost rings. Requests inside an existing dialog or
transaction never get here: the core matches them first (a BYE from the far end of a direct
call, a CANCEL of a ringing INVITE, retransmissions).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from sippa.sip.events import Address

__all__ = ["RefusedSources", "Screen", "SourceRestriction", "normalize_host"]

ORIGINS = ("registrar", "proxy", "outbound_proxy")
"""Where a line's allowed addresses come from: the targets the registration uses, and the
line's proxy and outbound proxy located by the application."""


class Screen(enum.Enum):
    """What to do with an out-of-dialog request."""

    ACCEPT = "accept"
    DROP = "drop"
    """Silently: no response (UDP)."""
    FORBID = "forbid"
    """A stateless 403 (TCP/TLS)."""


def normalize_host(host: str) -> str:
    """An IP address in one spelling (compressed IPv6, IPv4-mapped IPv6 as IPv4, no zone or
    brackets); anything else lower-cased as it is."""
    text = host.strip().strip("[]").split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return host.strip().lower()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return ip.compressed


@dataclass(frozen=True, slots=True)
class RefusedSources:
    """What a line's restriction refused so far (shown in the line status)."""

    count: int = 0
    """Requests dropped or refused with 403."""
    last_source: str | None = None
    """``transport:host:port`` of the last one."""
    last_method: str | None = None
    """Its method (INVITE, OPTIONS...)."""
    last_at: float | None = None
    """When (the ``now`` the core was given)."""


@dataclass(slots=True)
class _Rule:
    restricted: bool = False
    applies: bool = False
    hosts: dict[str, frozenset[str]] = field(default_factory=dict)  # origin -> addresses
    connections: frozenset[int] = frozenset()
    refused: RefusedSources = field(default_factory=RefusedSources)

    @property
    def allowed(self) -> frozenset[str]:
        return frozenset().union(*self.hosts.values()) if self.hosts else frozenset()


class SourceRestriction:
    """The per-line source restriction and its counters (see the module docstring)."""

    def __init__(self) -> None:
        self._rules: dict[int, _Rule] = {}

    def _rule(self, line: int) -> _Rule:
        return self._rules.setdefault(line, _Rule())

    # --- configuration ---------------------------------------------------------------------------
    def configure(self, line: int, *, restricted: bool, has_proxy: bool) -> None:
        """The line's setting, and whether it has a proxy or outbound proxy at all.

        Without one the restriction does not apply: such a line is called directly (the
        echo line, peer-to-peer calls) and has no server to restrict to. A line WITH a proxy
        whose addresses are not known yet (DNS pending or failed) accepts nothing from
        outside a dialog: the restriction fails closed."""
        rule = self._rule(line)
        rule.restricted, rule.applies = restricted, has_proxy
        if not has_proxy:
            rule.hosts.clear()
            rule.connections = frozenset()

    def set_addresses(self, line: int, origin: str, hosts: Iterable[str]) -> None:
        """The addresses ``origin`` (one of :data:`ORIGINS`) resolved to, replacing what it
        resolved to before (DNS answered anew); an empty set forgets the origin."""
        if origin not in ORIGINS:
            raise ValueError(f"unknown origin {origin!r}")
        addresses = frozenset(normalize_host(h) for h in hosts if h)
        rule = self._rule(line)
        if addresses:
            rule.hosts[origin] = addresses
        else:
            rule.hosts.pop(origin, None)

    def set_connections(self, line: int, connections: Iterable[int]) -> None:
        """The TCP/TLS connections of the line's registration (RFC 5626 flows): a request on
        one of them is accepted whatever its source address."""
        self._rule(line).connections = frozenset(connections)

    def forget(self, line: int) -> None:
        """Drop the line's addresses and flows (its counters stay)."""
        rule = self._rule(line)
        rule.hosts.clear()
        rule.connections = frozenset()

    # --- the check --------------------------------------------------------------------------
    def active(self, line: int) -> bool:
        """True when the line's out-of-dialog requests are checked."""
        rule = self._rules.get(line)
        return rule is not None and rule.restricted and rule.applies

    def allowed(self, line: int) -> frozenset[str]:
        """The source addresses the line accepts now."""
        rule = self._rules.get(line)
        return rule.allowed if rule is not None else frozenset()

    def flows(self, line: int) -> frozenset[int]:
        """The registration connections the line accepts requests on."""
        rule = self._rules.get(line)
        return rule.connections if rule is not None else frozenset()

    def check(self, line: int, method: str, source: Address, now: float) -> Screen:
        """Decide for an out-of-dialog ``method`` request from ``source`` routed to ``line``;
        a refusal is counted."""
        rule = self._rules.get(line)
        if rule is None or not rule.restricted or not rule.applies:
            return Screen.ACCEPT
        if source.connection is not None and source.connection in rule.connections:
            return Screen.ACCEPT
        if normalize_host(source.host) in rule.allowed:
            return Screen.ACCEPT
        rule.refused = RefusedSources(
            rule.refused.count + 1,
            f"{source.transport}:{_host_port(source)}",
            method,
            now,
        )
        return Screen.DROP if source.transport == "udp" else Screen.FORBID

    def refused(self, line: int) -> RefusedSources:
        """What the line refused so far."""
        rule = self._rules.get(line)
        return rule.refused if rule is not None else RefusedSources()


def _host_port(address: Address) -> str:
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"{host}:{address.port}"
