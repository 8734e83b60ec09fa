"""SIP transports on asyncio: UDP, TCP and TLS (RFC 3261 §18), with keep-alive (RFC 5626).

One :class:`TransportLayer` per endpoint owns the listening sockets and a table of
connections keyed by the remote address and transport (:class:`Peer`). A message for a peer
that already has a connection (ours, or one the peer opened to us) goes over it: responses
and in-dialog requests reuse the flow (RFC 3261 §18.2.2, RFC 5626 §3.3). New outgoing
TCP/TLS connections start from a random local port (:mod:`sippa.net.ports`).

No SIP logic lives here: complete messages (one datagram, or one message cut out of a stream
by :class:`~sippa.sip.framer.StreamFramer`) are handed to ``on_message`` with their
:class:`Flow`; a connection that breaks is reported to ``on_error`` as a
:class:`TransportError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sippa.errors import RemoteProtocolError
from sippa.net.ports import PortRange, connect_from_random_port
from sippa.net.tls import TlsInfo, tls_info
from sippa.sip.framer import StreamFramer

__all__ = [
    "STREAM_TRANSPORTS",
    "TRANSPORTS",
    "Connection",
    "Flow",
    "Peer",
    "TransportError",
    "TransportLayer",
    "TransportSettings",
    "normalize_host",
]

log = logging.getLogger(__name__)

TRANSPORTS = ("UDP", "TCP", "TLS")
STREAM_TRANSPORTS = ("TCP", "TLS")
# RFC 5626 §4.4.1: a keep-alive ping is a double CRLF, its pong a single CRLF.
PING = b"\r\n\r\n"
PONG = b"\r\n"
# Largest UDP payload; bigger SIP messages must go over a stream (RFC 3261 §18.1.1).
MAX_DATAGRAM = 65507


def normalize_host(host: str) -> str:
    """The canonical text of an IP address (IPv6 compressed, no brackets); names unchanged."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.lower()


@dataclass(frozen=True, slots=True)
class Peer:
    """A remote transport address: the key of the connection table."""

    transport: str
    """``UDP``, ``TCP`` or ``TLS`` (the Via transport token)."""
    host: str
    """Remote IP address (IPv6 without brackets)."""
    port: int
    """Remote port."""

    @classmethod
    def of(cls, transport: str, host: str, port: int) -> Peer:
        return cls(transport.upper(), normalize_host(host), int(port))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.lower()}:{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Flow:
    """How a message travelled: remote peer plus our local address (for Via and Contact)."""

    peer: Peer
    """The remote end."""
    local_host: str
    """Our address on this flow."""
    local_port: int
    """Our port on this flow (the listening port for UDP, the source port for TCP/TLS)."""
    tls: TlsInfo | None = None
    """Negotiated TLS parameters when ``peer.transport == "TLS"``."""
    connection: int | None = None
    """Id of the TCP/TLS connection (unique per transport layer); None for UDP."""

    @property
    def transport(self) -> str:
        return self.peer.transport


@dataclass(frozen=True, slots=True)
class TransportError:
    """A flow failed: connect refused or timed out, TLS refused, connection lost, keep-alive."""

    peer: Peer
    """The remote end of the failed flow."""
    reason: str
    """Human-readable cause (TLS refusal reasons included)."""
    outgoing: bool = True
    """True for a connection we opened (a registration flow), False for an accepted one."""


@dataclass(slots=True)
class TransportSettings:
    """Knobs of the transport layer."""

    keepalive_interval: float = 90.0
    """Seconds between CRLF keep-alive pings on connections we opened (0 = off).
    Each interval is drawn between 80% and 100% of this (RFC 5626 §4.4.1)."""
    keepalive_timeout: float = 10.0
    """Seconds to wait for the pong before the flow counts as failed (RFC 5626 §4.4.1)."""
    idle_timeout: float = 600.0
    """Close connections that carried no SIP message for this long (0 = never); pinned
    connections (registration flows) are kept."""
    connect_timeout: float = 10.0
    """TCP connect plus TLS handshake deadline, seconds."""
    max_message_size: int = 65535
    """Largest SIP message accepted on a stream or in a datagram; bigger ones are refused."""
    max_connections: int = 512
    """Accepted connections beyond this are closed at once (resource exhaustion)."""
    tcp_ports: PortRange | None = None
    """Local port range for outgoing TCP/TLS ("SIP TCP Port Min/Max"); None = ephemeral."""
    jitter: Callable[[], float] = field(default=lambda: secrets.randbelow(1 << 30) / (1 << 30))
    """Uniform [0, 1) source for keep-alive spreading."""


class Connection(asyncio.Protocol):
    """One TCP or TLS connection: a framer, keep-alive and idle bookkeeping."""

    def __init__(
        self, layer: TransportLayer, transport_name: str, *, outgoing: bool, server_name: str | None
    ) -> None:
        self.layer = layer
        self.transport_name = transport_name
        self.outgoing = outgoing
        self.server_name = server_name
        self.framer = StreamFramer(max_message_size=layer.settings.max_message_size)
        self.transport: asyncio.Transport | None = None
        self.flow: Flow | None = None
        self.pinned = False
        self.closing = False
        self.close_reason: str | None = None
        self.last_rx = time.monotonic()
        self.last_message = self.last_rx
        self.pings_sent = 0
        self.pongs_received = 0
        self.pings_answered = 0
        self._ping_handle: asyncio.TimerHandle | None = None
        self._pong_deadline: asyncio.TimerHandle | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        tls: TlsInfo | None = None
        obj = transport.get_extra_info("ssl_object")
        if isinstance(obj, ssl.SSLObject):
            tls = tls_info(obj)
        self.flow = Flow(
            Peer.of(self.transport_name, peer[0], peer[1]),
            normalize_host(local[0]),
            int(local[1]),
            tls,
            next(self.layer._ids),
        )
        self.layer._register(self)
        if self.outgoing:
            self._schedule_ping()

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        if self._pong_deadline is not None:
            # Any bytes prove the flow alive; a bare CRLF is the pong (RFC 5626 §4.4.1).
            self._pong_deadline.cancel()
            self._pong_deadline = None
        before, pongs = self.framer.pings, self.framer.pongs
        try:
            messages = self.framer.feed(data)
        except RemoteProtocolError as exc:
            log.warning("%s: closing, bad stream: %s", self.flow and self.flow.peer, exc.reason)
            self.close(f"bad stream from peer: {exc.reason}")
            return
        if data == PONG or self.framer.pongs > pongs:
            self.pongs_received += 1
        for _ in range(self.framer.pings - before):
            # RFC 5626 §4.4.1: answer a double-CRLF ping with a single CRLF.
            self.pings_answered += 1
            self.write(PONG)
        for message in messages:
            self.last_message = self.last_rx
            if self.flow is not None:
                self.layer._deliver(message, self.flow)
        if self.framer.error is not None:
            # the framer handed out the messages completed before bad bytes; the stream after
            # them cannot be re-synchronised, so close now rather than on the next read
            reason = self.framer.error.reason
            log.warning("%s: closing, bad stream: %s", self.flow and self.flow.peer, reason)
            self.close(f"bad stream from peer: {reason}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        if not self.lost.done():
            self.lost.set_result(None)
        reason = self.close_reason or (f"connection lost: {exc}" if exc else "connection closed")
        self.layer._unregister(self, reason, report=not self.closing or bool(self.close_reason))

    # -- ours ----------------------------------------------------------------------------
    @property
    def peer(self) -> Peer | None:
        return self.flow.peer if self.flow else None

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError(f"connection to {self.peer} is closed")
        self.transport.write(data)

    def send_message(self, data: bytes) -> None:
        self.last_message = time.monotonic()
        self.write(data)

    def close(self, reason: str | None = None) -> None:
        """Close; with a ``reason`` the closure is reported as a transport error."""
        self.closing = True
        self.close_reason = reason
        self._cancel_timers()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self, reason: str) -> None:
        self.closing = True
        self.close_reason = reason
        self._cancel_timers()
        if self.transport is not None:
            self.transport.abort()

    def _cancel_timers(self) -> None:
        for handle in (self._ping_handle, self._pong_deadline):
            if handle is not None:
                handle.cancel()
        self._ping_handle = self._pong_deadline = None

    def _schedule_ping(self) -> None:
        interval = self.layer.settings.keepalive_interval
        if interval <= 0 or self.closing:
            return
        # RFC 5626 §4.4.1: each interval random between 80% and 100% of the setting.
        delay = interval * (0.8 + 0.2 * self.layer.settings.jitter())
        loop = asyncio.get_running_loop()
        self._ping_handle = loop.call_later(delay, self._ping)

    def _ping(self) -> None:
        self._ping_handle = None
        if self.closing or self.transport is None or self.transport.is_closing():
            return
        self.pings_sent += 1
        self.transport.write(PING)
        loop = asyncio.get_running_loop()
        self._pong_deadline = loop.call_later(
            self.layer.settings.keepalive_timeout, self._pong_missing
        )
        self._schedule_ping()

    def _pong_missing(self) -> None:
        self._pong_deadline = None
        self.abort(f"keep-alive: no pong within {self.layer.settings.keepalive_timeout:g}s")


class _Datagrams(asyncio.DatagramProtocol):
    """One UDP socket: every datagram is one SIP message (RFC 3261 §18.3 does not apply)."""

    def __init__(self, layer: TransportLayer) -> None:
        self.layer = layer
        self.transport: asyncio.DatagramTransport | None = None
        self.local_host = ""
        self.local_port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        local = transport.get_extra_info("sockname")
        self.local_host, self.local_port = normalize_host(local[0]), int(local[1])

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        peer = Peer.of("UDP", addr[0], addr[1])
        if not data.strip(b"\r\n\x00 "):
            # CRLF keep-alives over UDP (common practice): nothing to do.
            return
        if len(data) > self.layer.settings.max_message_size:
            log.warning("%s: dropped %d-byte datagram (too large)", peer, len(data))
            return
        self.layer._deliver(data, Flow(peer, self.local_host, self.local_port))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors do not say which peer; the transaction layer's timers cover it.
        log.info("udp %s:%d: %s", self.local_host, self.local_port, exc)


class TransportLayer:
    """Listeners and the connection table of one SIP endpoint."""

    def __init__(
        self,
        on_message: Callable[[bytes, Flow], None],
        on_error: Callable[[TransportError], None],
        *,
        settings: TransportSettings | None = None,
        tls_client: Callable[[str | None], ssl.SSLContext] | None = None,
        tls_server: ssl.SSLContext | None = None,
    ) -> None:
        self.on_message = on_message
        self.on_error = on_error
        self.settings = settings or TransportSettings()
        self._tls_client = tls_client
        self._tls_server = tls_server
        self.connections: dict[Peer, Connection] = {}
        self._udp: list[_Datagrams] = []
        self._servers: list[tuple[str, asyncio.Server]] = []
        self._pending: dict[Peer, asyncio.Future[Connection]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._ids = itertools.count(1)
        self._closed = False

    # -- listening -----------------------------------------------------------------------
    async def listen(self, transport: str, host: str, port: int = 0) -> tuple[str, int]:
        """Listen for SIP on ``host:port`` (port 0: an ephemeral port); return the address."""
        transport = transport.upper()
        loop = asyncio.get_running_loop()
        if transport == "UDP":
            _, proto = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=(host, port)
            )
            self._udp.append(proto)
            self._start_sweeper()
            return proto.local_host, proto.local_port
        if transport not in STREAM_TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}")
        if transport == "TLS" and self._tls_server is None:
            raise ValueError("listening on TLS needs a server certificate context")
        ctx = self._tls_server if transport == "TLS" else None
        server = await loop.create_server(
            lambda: self._accepted(transport), host, port, ssl=ctx, reuse_address=True
        )
        self._servers.append((transport, server))
        sock = server.sockets[0].getsockname()
        self._start_sweeper()
        return normalize_host(sock[0]), int(sock[1])

    def listening(self, transport: str) -> list[tuple[str, int]]:
        """Addresses we listen on for ``transport``."""
        transport = transport.upper()
        if transport == "UDP":
            return [(u.local_host, u.local_port) for u in self._udp]
        return [
            (normalize_host(s.getsockname()[0]), int(s.getsockname()[1]))
            for t, srv in self._servers
            if t == transport
            for s in srv.sockets
        ]

    def _accepted(self, transport: str) -> Connection:
        return Connection(self, transport, outgoing=False, server_name=None)

    # -- sending -------------------------------------------------------------------------
    async def send(self, data: bytes, peer: Peer, *, server_name: str | None = None) -> Flow:
        """Send one SIP message to ``peer``, reusing its connection or opening one.

        ``server_name`` is the name a TLS certificate must match (the SIP domain, RFC 5922).
        Raises :class:`OSError` (``ssl.SSLError`` included) when no flow can be made.
        """
        if peer.transport == "UDP":
            udp = self._udp_for(peer.host)
            if udp is None:
                await self.listen("UDP", "::" if ":" in peer.host else "0.0.0.0", 0)  # noqa: S104
                udp = self._udp_for(peer.host)
            assert udp is not None and udp.transport is not None
            if len(data) > MAX_DATAGRAM:
                raise OSError(f"{len(data)}-byte message does not fit a datagram")
            udp.transport.sendto(data, (peer.host, peer.port))
            return Flow(peer, udp.local_host, udp.local_port)
        conn = await self.connect(peer, server_name=server_name)
        conn.send_message(data)
        assert conn.flow is not None
        return conn.flow

    def send_on(self, data: bytes, peer: Peer) -> Flow | None:
        """Send over an existing connection to ``peer`` only; None when there is none."""
        conn = self.connections.get(peer)
        if conn is None or conn.flow is None or conn.closing:
            return None
        conn.send_message(data)
        return conn.flow

    async def connect(self, peer: Peer, *, server_name: str | None = None) -> Connection:
        """The connection to ``peer``: the existing one, or a new one from a random port."""
        conn = self.connections.get(peer)
        if conn is not None and not conn.closing:
            return conn
        pending = self._pending.get(peer)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self._pending[peer] = future
        try:
            conn = await asyncio.wait_for(
                self._open(peer, server_name), self.settings.connect_timeout
            )
        except BaseException as exc:
            if isinstance(exc, TimeoutError):
                exc = TimeoutError(f"connect to {peer} timed out")
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning
            raise exc from None
        finally:
            self._pending.pop(peer, None)
        future.set_result(conn)
        return conn

    async def _open(self, peer: Peer, server_name: str | None) -> Connection:
        if self._closed:
            raise ConnectionError("transport layer closed")
        sock = await connect_from_random_port(peer.host, peer.port, ports=self.settings.tcp_ports)
        ctx: ssl.SSLContext | None = None
        if peer.transport == "TLS":
            if self._tls_client is None:
                sock.close()
                raise ssl.SSLError("no TLS client context configured")
            # No name to check (a Contact or Via with an IP address): the certificate must
            # name that IP address (RFC 5922 §7.2: the identity is the URI's host).
            server_name = server_name or peer.host
            ctx = self._tls_client(server_name)
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                lambda: Connection(self, peer.transport, outgoing=True, server_name=server_name),
                sock=sock,
                ssl=ctx,
                server_hostname=server_name if ctx is not None else None,
                ssl_handshake_timeout=self.settings.connect_timeout if ctx else None,
            )
        except BaseException:
            sock.close()
            raise
        return conn

    def pin(self, peer: Peer, pinned: bool = True) -> None:
        """Keep (or stop keeping) the connection to ``peer`` open while idle."""
        conn = self.connections.get(peer)
        if conn is not None:
            conn.pinned = pinned

    def _udp_for(self, host: str) -> _Datagrams | None:
        v6 = ":" in host
        for udp in self._udp:
            if (":" in udp.local_host) == v6 and udp.transport is not None:
                return udp
        return None

    # -- bookkeeping ---------------------------------------------------------------------
    def _register(self, conn: Connection) -> None:
        assert conn.peer is not None
        if not conn.outgoing and len(self.connections) >= self.settings.max_connections:
            log.warning("%s: refused, %d connections open", conn.peer, len(self.connections))
            conn.close()
            return
        old = self.connections.get(conn.peer)
        self.connections[conn.peer] = conn
        self._start_sweeper()
        if old is not None and old is not conn:
            old.close()

    def _unregister(self, conn: Connection, reason: str, *, report: bool) -> None:
        peer = conn.peer
        if peer is None:
            return
        if self.connections.get(peer) is conn:
            del self.connections[peer]
        if report and not self._closed:
            log.info("%s: %s", peer, reason)
            self.on_error(TransportError(peer, reason, outgoing=conn.outgoing))

    def _deliver(self, data: bytes, flow: Flow) -> None:
        try:
            self.on_message(data, flow)
        except Exception:
            # The pump must survive anything the core does with one message.
            log.exception("%s: message handler failed", flow.peer)

    def _start_sweeper(self) -> None:
        idle = self.settings.idle_timeout
        if self._sweeper is None and idle > 0:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(max(idle / 4, 0.05), self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = time.monotonic()
        for conn in list(self.connections.values()):
            if not conn.pinned and now - conn.last_message > self.settings.idle_timeout:
                log.debug("%s: closing idle connection", conn.peer)
                conn.close()
        if not self._closed:
            self._start_sweeper()

    async def close(self) -> None:
        """Close every listener and connection (no transport errors are reported)."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for udp in self._udp:
            if udp.transport is not None:
                udp.transport.close()
        self._udp.clear()
        for _, server in self._servers:
            server.close()
        conns = list(self.connections.values())
        for conn in conns:
            conn.close()
        # A TLS close waits for the peer's close_notify: give it a moment, then abort.
        pending = [c.lost for c in conns if not c.lost.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=1.0)
            for conn in conns:
                if conn.lost in late:
                    conn.abort("closing")
            if late:
                await asyncio.wait(late, timeout=1.0)
        with contextlib.suppress(Exception):
            for _, server in self._servers:
                await server.wait_closed()
        self._servers.clear()
        # let connection_lost callbacks run
        await asyncio.sleep(0)
