"""The asyncio pump of one SIP endpoint (in the style of aioquic's ``asyncio/protocol.py``).

:class:`Endpoint` owns a :class:`~sippa.net.transport.TransportLayer` and a sans-IO UA core.
It has no SIP logic: it feeds what the transports receive into ``core.receive()``, transmits
what ``core.messages_to_send()`` yields, re-arms ONE timer from ``core.get_timer()``, and hands
the core's events to the user's callback. A failed send or a broken connection goes back to the
core as a transport error and out as a :class:`FlowLost` notice (registrations re-register).

Destinations the core gives as :class:`~sippa.sip.events.Address` carry IP addresses here:
server location (RFC 3263) happens before, in the registrar driver or the app, which also tells
the endpoint which TLS identity (the SIP domain, RFC 5922) a peer must prove
(:meth:`Endpoint.expect_identity`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sippa.net.dns import Resolver, locate
from sippa.net.tls import explain_tls_error
from sippa.net.transport import Flow, Peer, TransportError, TransportLayer, TransportSettings
from sippa.sip.events import Address, Event
from sippa.sip.locate import LocateRequest, TransportChoice

__all__ = ["Core", "Endpoint", "FlowLost", "address_of", "describe_error", "peer_of"]

log = logging.getLogger(__name__)


class Core(Protocol):
    """What the pump needs from the sans-IO UA core (``sippa.sip.core.UserAgentCore``)."""

    def receive(self, data: bytes, source: Address, now: float) -> None: ...

    def messages_to_send(self) -> list[tuple[bytes, Address]]: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...

    def next_event(self) -> Event | None: ...


@dataclass(frozen=True, slots=True)
class FlowLost:
    """A TCP/TLS connection broke or could not be made (the transport's own report)."""

    peer: Peer
    """The remote end."""
    reason: str
    """Why (TLS refusal reasons included)."""
    outgoing: bool
    """True when we had opened it."""


def peer_of(address: Address) -> Peer:
    """The transport-layer peer of a core address."""
    return Peer.of(address.transport, address.host, address.port)


def address_of(flow: Flow) -> Address:
    """The core address of a received message's flow (with its connection id)."""
    return Address(flow.transport.lower(), flow.peer.host, flow.peer.port, flow.connection)


class Endpoint:
    """Pumps one core over the transports: feed, drain events, transmit, re-arm one timer."""

    def __init__(
        self,
        core: Core | None = None,
        *,
        on_event: Callable[[Event | FlowLost], None] | None = None,
        settings: TransportSettings | None = None,
        tls_client: Callable[[str | None], ssl.SSLContext] | None = None,
        tls_server: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        resolver: Resolver | None = None,
    ) -> None:
        self.core = core
        self.resolver = resolver
        self.on_event = on_event or (lambda ev: None)
        self.clock = clock
        self.transports = TransportLayer(
            self._received,
            self._transport_failed,
            settings=settings,
            tls_client=tls_client,
            tls_server=tls_server,
        )
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._identities: dict[Peer, str] = {}
        self._resolved: dict[Peer, Peer] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._handlers: list[Callable[[bytes, Flow], bool]] = []
        self._flow_listeners: list[Callable[[FlowLost], None]] = []
        self.on_message: Callable[[str, bytes, Flow], None] | None = None
        """Told of every message received (``"in"``) and sent (``"out"``) with its flow
        (the phone's SIP trace); it must not raise."""
        self._closed = False

    # -- set-up --------------------------------------------------------------------------
    async def listen(self, transport: str, host: str, port: int = 0) -> tuple[str, int]:
        """Listen for requests (port 0: ephemeral); returns the bound address."""
        return await self.transports.listen(transport, host, port)

    def expect_identity(self, peer: Peer, server_name: str | None) -> None:
        """TLS connections to ``peer`` must prove ``server_name`` (the SIP domain)."""
        if server_name is None:
            self._identities.pop(peer, None)
        else:
            self._identities[peer] = server_name

    async def connect(self, peer: Peer) -> Flow:
        """Open (or reuse) the flow to ``peer`` before a request goes out on it.

        For UDP this is our socket of the right address family (opened on demand)."""
        if peer.transport == "UDP":
            flow = self._udp_flow(peer)
            if flow is None:
                await self.listen("UDP", "::" if ":" in peer.host else "0.0.0.0", 0)  # noqa: S104
                flow = self._udp_flow(peer)
            if flow is None:
                raise OSError(f"no UDP socket for {peer}")
            return flow
        conn = await self.transports.connect(peer, server_name=self._identities.get(peer))
        if conn.flow is None:
            raise ConnectionError(f"connection to {peer} closed at once")
        return conn.flow

    def _udp_flow(self, peer: Peer) -> Flow | None:
        for host, port in self.transports.listening("UDP"):
            if (":" in host) == (":" in peer.host):
                wildcard = ipaddress.ip_address(host).is_unspecified
                # Via and Contact must carry a routable address, never 0.0.0.0/::
                local = _source_address(peer.host) if wildcard else host
                return Flow(peer, local, port)
        return None

    def add_handler(self, handler: Callable[[bytes, Flow], bool]) -> None:
        """Offer every received message to ``handler`` first; True means it was consumed.

        Used by drivers that run their own client transactions (registrations)."""
        self._handlers.append(handler)

    def remove_handler(self, handler: Callable[[bytes, Flow], bool]) -> None:
        if handler in self._handlers:
            self._handlers.remove(handler)

    def add_flow_listener(self, listener: Callable[[FlowLost], None]) -> None:
        """Be told about every broken or refused flow."""
        self._flow_listeners.append(listener)

    def remove_flow_listener(self, listener: Callable[[FlowLost], None]) -> None:
        if listener in self._flow_listeners:
            self._flow_listeners.remove(listener)

    # -- the pump ------------------------------------------------------------------------
    def _received(self, data: bytes, flow: Flow) -> None:
        self._trace("in", data, flow)
        for handler in list(self._handlers):
            if handler(data, flow):
                return
        if self.core is None:
            log.debug("%s: no core, message dropped", flow.peer)
            return
        self.core.receive(data, address_of(flow), self.clock())
        self.pump()

    def _transport_failed(self, error: TransportError) -> None:
        for name in [n for n, p in self._resolved.items() if p == error.peer]:
            del self._resolved[name]  # locate again next time (RFC 3263 §4.3 failover)
        self._notify_core_of_failure(error.peer)
        self._flow_lost(FlowLost(error.peer, error.reason, error.outgoing))
        self.pump()

    def _flow_lost(self, notice: FlowLost) -> None:
        for listener in list(self._flow_listeners):
            try:
                listener(notice)
            except Exception:
                log.exception("flow listener failed")
        self.on_event(notice)

    def _notify_core_of_failure(self, peer: Peer) -> None:
        if self.core is None:
            return
        # Transactions waiting on the broken connection fail now (RFC 3261 §8.1.3.1).
        report = getattr(self.core, "transport_error", None)
        if callable(report):
            report(Address(peer.transport.lower(), peer.host, peer.port), self.clock())

    def pump(self) -> None:
        """Transmit, drain events, re-arm the timer. Call after every command to the core."""
        if self._closed or self.core is None:
            return
        for data, destination in self.core.messages_to_send():
            self._transmit(data, destination)
        while (event := self.core.next_event()) is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("event handler failed on %r", type(event).__name__)
        self._arm_timer()

    def _arm_timer(self) -> None:
        when = self.core.get_timer() if self.core is not None else None
        if when == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(loop.time() + max(0.0, when - self.clock()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        if self.core is not None:
            self.core.handle_timer(self.clock())
        self.pump()

    def _transmit(self, data: bytes, destination: Address) -> None:
        peer = peer_of(destination)
        peer = self._resolved.get(peer, peer)
        if destination.connection is not None or peer.transport != "UDP":
            # Reuse the connection the message belongs to (RFC 3261 §18.2.2, RFC 5626).
            try:
                flow = self.transports.send_on(data, peer)
                if flow is not None:
                    self._trace("out", data, flow)
                    return
            except ConnectionError:
                pass
        task = asyncio.ensure_future(self._send(data, peer, destination))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, data: bytes, peer: Peer, destination: Address) -> None:
        try:
            if not _is_ip(peer.host):
                peer = await self._resolve(peer)
            flow = await self.transports.send(data, peer, server_name=self._identities.get(peer))
        except (OSError, ssl.SSLError, TimeoutError, ValueError) as exc:
            # ValueError: the ssl module refusing a connection it cannot check
            reason = describe_error(exc)
            log.info("%s: send failed: %s", peer, reason)
            self._flow_lost(FlowLost(peer, reason, True))
            report = getattr(self.core, "transport_error", None)
            if callable(report):
                report(destination, self.clock())
            self.pump()
        else:
            self._trace("out", data, flow)

    def _trace(self, direction: str, data: bytes, flow: Flow) -> None:
        if self.on_message is not None:
            try:
                self.on_message(direction, data, flow)
            except Exception:
                log.exception("message listener failed")

    async def _resolve(self, peer: Peer) -> Peer:
        """A name from a URI: RFC 3263 with the transport fixed; the first target wins and
        TLS must prove the name itself (RFC 5922 §4)."""
        if self.resolver is None:
            raise OSError(f"cannot resolve {peer.host}: no DNS resolver configured")
        request = LocateRequest(
            scheme="sips" if peer.transport == "TLS" else "sip",
            host=peer.host,
            port=peer.port,
            transport=TransportChoice(peer.transport),
        )
        result = await locate(request, self.resolver)
        if not result.targets:
            raise OSError(f"cannot locate {peer.host}: {result.error or 'no targets'}")
        target = result.targets[0]
        resolved = Peer.of(target.transport.value, target.address, target.port)
        self._resolved[peer] = resolved
        if resolved.transport == "TLS" and resolved not in self._identities:
            self._identities[resolved] = target.tls_server_name
        return resolved

    async def close(self) -> None:
        """Stop the timer, the pending sends and every socket."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._sending):
            task.cancel()
        await self.transports.close()


def _source_address(host: str) -> str:
    """The local address the kernel routes to ``host`` from (no packet is sent)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((host, 9))
        return str(probe.getsockname()[0])


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def describe_error(exc: BaseException) -> str:
    """A line-status reason for a failed flow (TLS refusals explained by net-tls)."""
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return str(explain_tls_error(exc))
    if isinstance(exc, TimeoutError):
        return str(exc) or "connect timed out"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"
