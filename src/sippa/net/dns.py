"""Asynchronous DNS for RFC 3263 with dnspython (L1).

:class:`Resolver` answers the :class:`~sippa.sip.locate.DnsQuery` events of the sans-IO
locate flow against a configurable server and port (the tests use dnsmasq on a high port), or
the system's resolver configuration. NXDOMAIN, no data and failures (timeout, SERVFAIL,
REFUSED) are kept apart. :func:`locate` drives the flow to its list of targets.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from sippa.sip.locate import (
    DnsAnswer,
    DnsQuery,
    DnsStatus,
    LocateRequest,
    LocateResult,
    NaptrRecord,
    SrvRecord,
)
from sippa.sip.locate import locate as locate_flow

__all__ = ["Resolver", "locate", "parse_server"]

_TYPES = {"NAPTR", "SRV", "A", "AAAA"}


def parse_server(text: str, default_port: int = 53) -> tuple[str, int]:
    """``"127.0.0.1:5353"``, ``"[::1]:5353"``, ``"::1"`` or ``"127.0.0.1"`` -> (address, port)."""
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = int(p)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"DNS server must be an IP address: {text!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"DNS server port out of range: {text!r}")
    return host, port


class Resolver:
    """DNS queries through dnspython's asyncio resolver.

    ``server`` None uses /etc/resolv.conf; otherwise only that server (``port``) is asked.
    ``timeout`` bounds one try, ``lifetime`` the whole query (retries included).
    """

    def __init__(
        self,
        server: str | None = None,
        port: int = 53,
        *,
        timeout: float = 2.0,
        lifetime: float = 5.0,
    ) -> None:
        if server is None:
            self._resolver = dns.asyncresolver.Resolver()
        else:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [server]
            self._resolver.port = port
        self._resolver.timeout = timeout
        self._resolver.lifetime = lifetime

    @property
    def nameservers(self) -> list[str]:
        return [str(n) for n in self._resolver.nameservers]

    async def query(self, query: DnsQuery) -> DnsAnswer:
        """Answer one query; never raises for DNS failures (they become ``DnsStatus.ERROR``)."""
        rdtype = query.rdtype.upper()
        if rdtype not in _TYPES:
            return DnsAnswer(DnsStatus.ERROR, error=f"unsupported record type {rdtype}")
        try:
            name = dns.name.from_text(query.name)
            answer = await self._resolver.resolve(
                name, rdtype, raise_on_no_answer=False, search=False
            )
        except dns.resolver.NXDOMAIN:
            return DnsAnswer(DnsStatus.NXDOMAIN)
        except dns.exception.Timeout as exc:
            return DnsAnswer(DnsStatus.ERROR, error=f"timeout ({exc})")
        except dns.resolver.NoNameservers as exc:
            return DnsAnswer(DnsStatus.ERROR, error=f"no server answered ({exc})")
        except dns.exception.DNSException as exc:
            return DnsAnswer(DnsStatus.ERROR, error=f"{type(exc).__name__}: {exc}")
        if answer.rrset is None:
            return DnsAnswer(DnsStatus.NODATA)
        records: list[NaptrRecord | SrvRecord | str] = []
        for rd in answer.rrset:
            if rd.rdtype == dns.rdatatype.NAPTR:
                records.append(
                    NaptrRecord(
                        order=int(rd.order),
                        preference=int(rd.preference),
                        flags=rd.flags.decode(errors="replace"),
                        service=rd.service.decode(errors="replace"),
                        regexp=rd.regexp.decode(errors="replace"),
                        replacement=rd.replacement.to_text(omit_final_dot=True),
                    )
                )
            elif rd.rdtype == dns.rdatatype.SRV:
                records.append(
                    SrvRecord(
                        priority=int(rd.priority),
                        weight=int(rd.weight),
                        port=int(rd.port),
                        target=rd.target.to_text(omit_final_dot=True),
                    )
                )
            elif rd.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                records.append(str(rd.address))
        if not records:
            return DnsAnswer(DnsStatus.NODATA)
        return DnsAnswer(DnsStatus.OK, tuple(records))


async def locate(
    request: LocateRequest,
    resolver: Resolver,
    rand: Callable[[int], int] = secrets.randbelow,
) -> LocateResult:
    """Run the RFC 3263 flow (:func:`sippa.sip.locate.locate`) against ``resolver``."""
    flow = locate_flow(request, rand)
    try:
        query = next(flow)
        while True:
            answer = await resolver.query(query)
            query = flow.send(answer)
    except StopIteration as done:
        result: LocateResult = done.value
        return result
