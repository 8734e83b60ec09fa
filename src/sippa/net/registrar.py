"""The driver of one line's registration: RFC 3263 location, flows, the REGISTER transaction.

:class:`LineRegistrar` runs a :class:`~sippa.sip.registration.Registration` (what to send and
when) over an :class:`~sippa.net.endpoint.Endpoint` (how): it locates the registrar with
:func:`sippa.net.dns.locate`, opens the flow to the chosen target (TLS checked against the
SIP domain, RFC 5922), builds the REGISTER for that flow's local address, runs it through a
non-INVITE client transaction (:mod:`sippa.sip.transaction`: retransmissions over UDP, Timer F)
and feeds the outcome back. A flow that breaks (Kamailio restarted, TLS dropped) makes the
line register again at once.

With an alternate proxy (Cisco [Alternate Proxy] / [Alternate Outbound Proxy]) the target list
is the proxy's targets followed by the alternate's (each located by RFC 3263 on its own name,
TLS checked against its own name): when all of the proxy's fail, the line registers through the
alternate; when it moves back to the proxy ([Proxy Fallback Intvl]) it un-REGISTERs from the
alternate.

The status of the line (:class:`LineStatus`) says registered or not and why, with the flow's
transport and TLS details and the digest algorithm used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sippa.errors import ProtocolError
from sippa.net.dns import Resolver, locate
from sippa.net.endpoint import Endpoint, FlowLost, describe_error
from sippa.net.tls import TlsInfo
from sippa.net.transport import Flow, Peer
from sippa.sip.events import Address
from sippa.sip.locate import LocateRequest, Target, TransportChoice
from sippa.sip.message import Request, Response, parse_message
from sippa.sip.registration import (
    Authorize,
    LocalContact,
    Registered,
    Registration,
    RegistrationConfig,
    RegistrationEvent,
    RegistrationFailed,
    RegState,
    SendFailure,
    Unregistered,
)
from sippa.sip.timers import TimerConfig
from sippa.sip.transaction import (
    ClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    Transaction,
    response_key,
)
from sippa.sip.uri import Uri

__all__ = ["LineRegistrar", "LineStatus"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LineStatus:
    """What the line shows (and what ``sippa register`` prints)."""

    registered: bool = False
    state: str = "idle"
    reason: str | None = None
    """Why the last attempt failed (TLS refusal reasons included); None after success."""
    status_code: int | None = None
    expires: int | None = None
    """Granted lifetime of the current binding, seconds."""
    transport: str | None = None
    target: str | None = None
    """``transport:address:port`` of the registrar that answered."""
    tls: TlsInfo | None = None
    algorithm: str | None = None
    """Digest algorithm of the last successful REGISTER."""
    auth_info: str | None = None
    """The registrar's own report when it sends one (the lab's X-Lab-Auth header)."""
    local: str | None = None
    """Our ``address:port`` on the flow."""
    server: str | None = None
    """``primary`` or ``alternate``: whose target the line registered through."""
    server_reason: str | None = None
    """Why the line is on the alternate proxy (the proxy's failure)."""
    locate_trace: tuple[str, ...] = ()


class _TU:
    """The transaction user of one REGISTER client transaction (sends over the endpoint)."""

    def __init__(self, owner: LineRegistrar) -> None:
        self.owner = owner
        self.outcome: asyncio.Future[Response | tuple[SendFailure, str]] = (
            asyncio.get_running_loop().create_future()
        )

    def send_message(
        self, txn: Transaction, message: Request | Response, destination: Address
    ) -> None:
        self.owner._send(bytes(message))

    def response_received(self, txn: ClientTransaction, response: Response, now: float) -> None:
        if response.status_code >= 200 and not self.outcome.done():
            self.outcome.set_result(response)

    def ack_received(self, txn: InviteServerTransaction, ack: Request, now: float) -> None:
        return None

    def transaction_timeout(self, txn: Transaction, now: float) -> None:
        if not self.outcome.done():
            self.outcome.set_result((SendFailure.TIMEOUT, "no response (timeout)"))

    def transaction_transport_error(self, txn: Transaction, now: float) -> None:
        if not self.outcome.done():
            self.outcome.set_result((SendFailure.TRANSPORT, "transport error"))

    def transaction_terminated(self, txn: Transaction) -> None:
        return None


@dataclass
class LineRegistrar:
    """Registers one line over ``endpoint`` until :meth:`stop`."""

    endpoint: Endpoint
    config: RegistrationConfig
    authorize: Authorize | None
    resolver: Resolver
    proxy: Uri | None = None
    """Outbound proxy / registrar location; default: the AoR's domain (RFC 3263 on it)."""
    alternate: Uri | None = None
    """Alternate (outbound) proxy, used when every target of ``proxy`` fails."""
    transport: TransportChoice = TransportChoice.AUTO
    use_srv: bool = True
    """"Use DNS SRV": NAPTR/SRV lookups (else A/AAAA of the host only)."""
    srv_auto_prefix: bool = True
    """"DNS SRV Auto Prefix": the SRV name gets the transport's prefix."""
    timers: TimerConfig = field(default_factory=TimerConfig)
    name: str = "line"
    clock: Callable[[], float] = time.monotonic
    on_event: Callable[[RegistrationEvent], None] | None = None
    on_located: Callable[[list[Target]], None] | None = None
    """Told the targets each time RFC 3263 location answers (Restrict Source IP follows them)."""
    status: LineStatus = field(default_factory=LineStatus)

    def __post_init__(self) -> None:
        self.registration = Registration(
            self.config, secrets.randbits, self.authorize, prefix=f"[{self.name}]"
        )
        self.targets: list[Target] = []
        self._flow: Flow | None = None
        self._peer: Peer | None = None
        self._txn: NonInviteClientTransaction | None = None
        self._tu: _TU | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._stopping = False
        self._outcomes = 0
        self._sends: set[asyncio.Future[Flow]] = set()
        self.primary_count: int | None = None
        """How many of :attr:`targets` are the proxy's (None: no alternate located)."""

    # -- control -------------------------------------------------------------------------
    def start(self) -> None:
        """Start registering in the background."""
        self.endpoint.add_handler(self._on_message)
        self.endpoint.add_flow_listener(self._on_flow_lost)
        self.registration.start(self.clock())
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self, timeout: float = 5.0, *, unregister: bool = True) -> None:
        """Un-REGISTER (Expires: 0) when registered, then stop (``unregister=False``: leave
        the binding to expire by itself)."""
        if self._task is None:
            return
        self._stopping = True
        if unregister:
            self.registration.stop(self.clock())
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._until_stopped(), timeout)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._task = None
        if self._peer is not None:
            self.endpoint.transports.pin(self._peer, False)
        self.endpoint.remove_handler(self._on_message)
        self.endpoint.remove_flow_listener(self._on_flow_lost)

    def set_fallback_interval(self, seconds: float) -> None:
        """A new [Proxy Fallback Intvl], live: a pending try of the proxy comes no later than
        ``seconds`` from now."""
        self.registration.set_fallback_interval(seconds, self.clock())
        self._wake.set()

    @property
    def flow(self) -> Flow | None:
        """The flow the registration uses now (None before the first attempt)."""
        return self._flow

    async def _until_stopped(self) -> None:
        async with self._changed:
            await self._changed.wait_for(
                lambda: self.registration.status.state is RegState.STOPPED
            )

    async def wait(self, predicate: Callable[[LineStatus], bool], timeout: float) -> LineStatus:
        """Wait until ``predicate(status)`` holds (raises TimeoutError)."""

        async def waiter() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self.status))

        await asyncio.wait_for(waiter(), timeout)
        return self.status

    async def wait_outcome(self, timeout: float) -> LineStatus:
        """Wait for the next registration result (registered, or failed)."""
        seen = self._outcomes
        return await self.wait(lambda st: self._outcomes > seen, timeout)

    # -- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        reg = self.registration
        try:
            while True:
                target = reg.wants_send()
                if target is not None:
                    await self._attempt(target)
                    await self._publish()
                    release = reg.take_release()
                    if release is not None:
                        await self._release(release)
                    continue
                if self._stopping and reg.status.state is RegState.STOPPED:
                    await self._publish()
                    return
                when = reg.get_timer()
                self._wake.clear()
                delay = None if when is None else max(0.0, when - self.clock())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                reg.handle_timer(self.clock())
                await self._publish()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("[%s] registration driver failed", self.name)
            raise

    async def _attempt(self, index: int) -> None:
        reg = self.registration
        # Locate afresh for each new attempt on the first target (not for a digest retry).
        relocate = not self.targets or (index == 0 and reg.fresh_attempt)
        if relocate and not await self._locate():
            return
        if index >= len(self.targets):
            index = 0
        target = self.targets[index]
        peer = Peer.of(target.transport.value, target.address, target.port)
        self.endpoint.expect_identity(
            peer, target.tls_server_name if peer.transport == "TLS" else None
        )
        try:
            flow = await self.endpoint.connect(peer)
        except (OSError, TimeoutError) as exc:
            reason = describe_error(exc)
            log.info("[%s] %s: %s", self.name, peer, reason)
            reg.send_failed(SendFailure.TRANSPORT, f"{peer}: {reason}", self.clock())
            return
        if self._peer is not None and self._peer != peer:
            self.endpoint.transports.pin(self._peer, False)
        self._flow, self._peer = flow, peer
        self.endpoint.transports.pin(peer)
        local = LocalContact(flow.transport, flow.local_host, flow.local_port)
        request = reg.build_request(local, self.clock())
        outcome = await self._transact(request, flow)
        now = self.clock()
        if isinstance(outcome, Response):
            self._note_response(outcome, flow)
            reg.response_received(outcome, now)
        else:
            kind, reason = outcome
            reg.send_failed(kind, f"{peer}: {reason}", now)

    async def _locate_one(self, where: Uri) -> tuple[list[Target], str | None, tuple[str, ...]]:
        aor = self.config.aor
        # A sips AoR or a sips proxy both demand TLS all the way (RFC 3261 §19.1.1).
        secure = "sips" in (aor.scheme, where.scheme)
        request = LocateRequest.from_uri(
            where.replace(scheme="sips" if secure else "sip"),
            transport=self.transport,
            use_srv=self.use_srv,
            srv_auto_prefix=self.srv_auto_prefix,
        )
        result = await locate(request, self.resolver)
        error = None
        if not result.targets:
            error = f"cannot locate {where.host}: {result.error or 'no targets'}"
        return list(result.targets), error, result.trace

    async def _locate(self) -> bool:
        where = self.proxy or self.config.aor
        primary, error, trace = await self._locate_one(where)
        alternate: list[Target] = []
        if self.alternate is not None:
            alternate, alt_error, alt_trace = await self._locate_one(self.alternate)
            trace += alt_trace
            if error is not None and alt_error is not None:
                error = f"{error}; alternate: {alt_error}"
        self.status.locate_trace = trace
        if not primary and not alternate:
            self.registration.set_targets(1)
            self.registration.send_failed(
                SendFailure.TRANSPORT, error or "no targets", self.clock()
            )
            return False
        self.targets = primary + alternate
        self.primary_count = len(primary) if alternate else None
        self.registration.set_targets(len(self.targets), self.primary_count)
        if not primary:
            self.registration.status.alternate_reason = f"proxy failed: {error}"
        if self.on_located is not None:
            try:
                self.on_located(list(self.targets))
            except Exception:
                log.exception("[%s] on_located failed", self.name)
        return True

    async def _release(self, index: int) -> None:
        """Un-REGISTER the binding left at the alternate proxy's target ``index`` (once,
        best effort: it expires by itself otherwise)."""
        reg = self.registration
        if index >= len(self.targets):
            return
        aside = Registration(self.config, secrets.randbits, self.authorize,
                             prefix=f"[{self.name}]")
        aside.call_id, aside.from_tag, aside.cseq = reg.call_id, reg.from_tag, reg.cseq
        aside.set_targets(len(self.targets), reg.primary)
        aside.release(index, self.clock())
        saved = self._flow, self._peer
        try:
            while (wanted := aside.wants_send()) is not None:
                target = self.targets[wanted]
                peer = Peer.of(target.transport.value, target.address, target.port)
                self.endpoint.expect_identity(
                    peer, target.tls_server_name if peer.transport == "TLS" else None
                )
                try:
                    flow = await self.endpoint.connect(peer)
                except (OSError, TimeoutError) as exc:
                    aside.send_failed(SendFailure.TRANSPORT, describe_error(exc), self.clock())
                    break
                self._flow, self._peer = flow, peer
                local = LocalContact(flow.transport, flow.local_host, flow.local_port)
                outcome = await self._transact(aside.build_request(local, self.clock()), flow)
                if isinstance(outcome, Response):
                    aside.response_received(outcome, self.clock())
                else:
                    aside.send_failed(outcome[0], outcome[1], self.clock())
        finally:
            self._flow, self._peer = saved
            reg.cseq = max(reg.cseq, aside.cseq)
        while (event := aside.next_event()) is not None:
            if isinstance(event, Unregistered):
                log.info("[%s] alternate proxy: %s", self.name, event.reason)

    async def _transact(
        self, request: Request, flow: Flow
    ) -> Response | tuple[SendFailure, str]:
        tu = _TU(self)
        destination = Address(flow.transport.lower(), flow.peer.host, flow.peer.port)
        txn = NonInviteClientTransaction(
            request, destination, tu, self.timers, f"{self.name}-{request.cseq.seq}"
        )
        self._txn, self._tu = txn, tu
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def arm() -> None:
            nonlocal handle
            if handle is not None:
                handle.cancel()
                handle = None
            when = txn.get_timer()
            if when is not None:
                handle = loop.call_at(loop.time() + max(0.0, when - self.clock()), fire)

        def fire() -> None:
            txn.handle_timer(self.clock())
            arm()

        try:
            txn.start(self.clock())
            arm()
            return await tu.outcome
        finally:
            if handle is not None:
                handle.cancel()
            self._txn = self._tu = None

    # -- inputs from the endpoint --------------------------------------------------------
    def _send(self, data: bytes) -> None:
        peer = self._peer
        if peer is None:
            return
        try:
            if self.endpoint.transports.send_on(data, peer) is None:
                task = asyncio.ensure_future(self.endpoint.transports.send(data, peer))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)
                task.add_done_callback(self._sent)
        except (OSError, ConnectionError) as exc:
            self._fail_txn(describe_error(exc))

    def _sent(self, task: asyncio.Future[Flow]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._fail_txn(describe_error(task.exception()))  # type: ignore[arg-type]

    def _fail_txn(self, reason: str) -> None:
        tu = self._tu
        if tu is not None and not tu.outcome.done():
            tu.outcome.set_result((SendFailure.TRANSPORT, reason))

    def _on_message(self, data: bytes, flow: Flow) -> bool:
        txn = self._txn
        if txn is None or not data.startswith(b"SIP/2.0 ") or txn.branch.encode() not in data:
            return False
        try:
            message = parse_message(data)
        except ProtocolError as exc:
            log.info("[%s] bad response from %s: %s", self.name, flow.peer, exc.reason)
            return True
        if not isinstance(message, Response) or response_key(message) != txn.key:
            return False
        self._flow = flow if flow.peer == self._peer else self._flow
        txn.receive_response(message, self.clock())
        return True

    def _on_flow_lost(self, notice: FlowLost) -> None:
        if notice.peer != self._peer:
            return
        tu = self._tu
        if tu is not None and not tu.outcome.done():
            tu.outcome.set_result((SendFailure.TRANSPORT, notice.reason))
            return
        self.registration.flow_lost(notice.reason, self.clock())
        self._wake.set()

    # -- status --------------------------------------------------------------------------
    def _note_response(self, response: Response, flow: Flow) -> None:
        st = self.status
        st.transport = flow.transport
        st.target = f"{flow.peer}"
        st.local = f"{flow.local_host}:{flow.local_port}"
        st.tls = flow.tls
        if 200 <= response.status_code < 300:
            st.auth_info = response.headers.get("X-Lab-Auth")

    async def _publish(self) -> None:
        reg = self.registration
        while (event := reg.next_event()) is not None:
            st = self.status
            self._outcomes += 1
            if isinstance(event, Registered):
                st.expires = event.expires
                st.algorithm = event.algorithm
                st.reason = None
                st.status_code = event.response.status_code
                alt = reg.status.alternate
                st.server = "alternate" if alt else "primary"
                st.server_reason = reg.status.alternate_reason if alt else None
                log.info("[%s] registered for %ds via %s", self.name, event.expires, st.target)
            elif isinstance(event, RegistrationFailed):
                st.reason = event.reason
                st.status_code = event.status_code
                log.info("[%s] registration failed: %s", self.name, event.reason)
            elif isinstance(event, Unregistered):
                st.reason = None if event.reason == "unregistered" else event.reason
            if self.on_event is not None:
                self.on_event(event)
        self.status.registered = reg.status.registered
        self.status.state = reg.status.state.value
        async with self._changed:
            self._changed.notify_all()
