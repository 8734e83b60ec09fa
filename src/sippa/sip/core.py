"""The UA core: one sans-IO object per SIP endpoint (RFC 3261 §8, §18 and the TU of §17).

The asyncio runtime pumps it the aioquic way::

    core.receive(data, source, now)          # every datagram / framed stream message
    core.handle_timer(now)                   # when get_timer() is due
    for data, destination in core.messages_to_send(): ...
    while (event := core.next_event()) is not None: ...

Commands (``invite``, ``answer``, ``bye``, ``send_request``, ``respond``...) queue messages the
same way. The core owns the transaction tables (§17.1.3/§17.2.3 matching), stamps ``received``
and ``rport`` on incoming requests (§18.2.1, RFC 3581), sends responses where §18.2.2 says,
turns malformed requests into the error response their RemoteProtocolError names, and routes
everything else to INVITE sessions (:mod:`sippa.sip.invite`) or to the application as events.
Time comes in as ``now``; tags, branches and Call-IDs come from the injected ``ids`` callable;
the glare timer's randomness from ``rand``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sippa.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from sippa.sip.events import (
    Address,
    Event,
    IncomingCall,
    MessageRejected,
    RequestReceived,
    RequestScreened,
    ResponseReceived,
    TransactionTimeout,
    TransportError,
)
from sippa.sip.headers import NameAddr, Via
from sippa.sip.invite import CallState, InviteSession
from sippa.sip.message import (
    Headers,
    InvalidMessage,
    Request,
    Response,
    make_response,
    parse_message,
    validate_request,
)
from sippa.sip.prack import OPTION_TAG as REL100
from sippa.sip.prack import supports_100rel
from sippa.sip.restrict import Screen
from sippa.sip.session_timer import (
    OPTION_TAG,
    SessionTimer,
    SessionTimerConfig,
    uas_decision,
)
from sippa.sip.timers import TimerConfig, is_reliable
from sippa.sip.transaction import (
    MAGIC_COOKIE,
    ClientTransaction,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
    Transaction,
    response_key,
    server_key,
)
from sippa.sip.uri import Uri

__all__ = [
    "AuthAnswer",
    "Authorize",
    "CoreConfig",
    "ScreenRequest",
    "UserAgentCore",
    "default_port",
]

log = logging.getLogger(__name__)

DEFAULT_METHODS = (
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "UPDATE",
    "INFO",
    "MESSAGE",
    "NOTIFY",
    "REFER",
    "PRACK",
)
# §8.2.2.3: Require is not checked for these
_NO_REQUIRE_CHECK = ("ACK", "CANCEL")
# How many times one request is re-sent with credentials before the 401/407 is passed up.
MAX_AUTH_ATTEMPTS = 2


def default_port(transport: str) -> int:
    """5061 for TLS (and WSS), 5060 otherwise (§19.1.2)."""
    return 5061 if transport.lower() in ("tls", "wss") else 5060


class AuthAnswer(Protocol):
    """Credentials for a challenged request (``sippa.sip.digest.DigestAnswer`` fits)."""

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """``(Authorization | Proxy-Authorization, value)``, one per answered realm."""


Authorize = Callable[[Request, Response], AuthAnswer]
"""Answers the 401/407 challenge for a request and raises a ProtocolError when it cannot
(``sippa.sip.digest.DigestClient(...).authorize`` is one)."""

ScreenRequest = Callable[[Request, Address, float], Screen]
"""Decides for a request that matches no transaction and no dialog, from its source
(``request, source, now``): accept it, drop it silently, or answer 403 statelessly
(Restrict Source IP, :mod:`sippa.sip.restrict`)."""


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """Settings of one UA core."""

    local: tuple[Address, ...]
    """Our listening addresses, one per transport (Via sent-by and Contact use them)."""
    aor: NameAddr
    """Our identity (From of out-of-dialog requests), without tag."""
    contact_user: str | None = None
    """User part of our Contact URI."""
    timers: TimerConfig = field(default_factory=TimerConfig)
    """T1/T2/T4 (RFC 3261 §17)."""
    user_agent: str | None = "sippa"
    """User-Agent header value, None for none."""
    outbound_proxy: Uri | None = None
    """Pre-loaded route for out-of-dialog requests (§8.1.2); ``;lr`` is added."""
    methods: tuple[str, ...] = DEFAULT_METHODS
    """Methods we accept (Allow); others get 405 (§8.2.1)."""
    supported: tuple[str, ...] = ()
    """Option tags we support; a Require of anything else gets 420 (§8.2.2.3)."""
    session_timer: SessionTimerConfig = field(default_factory=SessionTimerConfig)
    """RFC 4028 session timers (off by default; on, ``timer`` counts as supported)."""
    rel100: bool = False
    """RFC 3262 reliable provisionals: offered in our INVITEs (Supported: 100rel) and used on
    incoming calls that allow them; on, ``100rel`` counts as supported. A phone decides it
    per line with :attr:`UserAgentCore.rel100_for`."""


class UserAgentCore:
    """One SIP endpoint, sans-IO. See the module docstring for the pumping loop."""

    def __init__(
        self,
        config: CoreConfig,
        *,
        ids: Callable[[], str],
        rand: Callable[[], float],
        authorize: Authorize | None = None,
    ) -> None:
        if not config.local:
            raise LocalProtocolError("CoreConfig.local needs at least one address", 500)
        self.config = config
        self._ids = ids
        self._rand = rand
        self.authorize = authorize
        """Digest answerer for 401/407 (``None``: challenges are passed up)."""
        self.screen: ScreenRequest | None = None
        """Source screen for requests outside any dialog (``None``: every source is accepted).
        It runs before a transaction exists, so a refused request leaves no state and gets no
        100 Trying, 405, 420 or 481."""
        self.rel100_for: Callable[[Request], bool] | None = None
        """Whether 100rel is on for an incoming request (the called line's setting); None:
        ``config.rel100`` for all."""
        self._out: list[tuple[bytes, Address]] = []
        self._events: deque[Event] = deque()
        self._clients: dict[tuple[str, str], ClientTransaction] = {}
        self._servers: dict[tuple[object, ...], ServerTransaction] = {}
        self._transactions: dict[str, Transaction] = {}  # handle -> current transaction
        self._live: dict[Transaction, None] = {}  # every live transaction, in creation order
        self._owners: dict[str, InviteSession] = {}  # transaction handle -> session
        self._in_dialog: dict[str, InviteSession] = {}  # app's in-dialog requests -> session
        self._sessions: dict[str, InviteSession] = {}
        self._by_call_id: dict[str, list[InviteSession]] = {}
        self._merged: dict[tuple[str | None, str, int, str], tuple[object, ...]] = {}
        self._auth_attempts: dict[str, int] = {}
        self._own_auth: set[str] = set()  # send_prepared handles whose owner answers 401/407
        self._counter = 0

    # --- pumping -------------------------------------------------------------------------------
    def messages_to_send(self) -> list[tuple[bytes, Address]]:
        """Everything queued for the network since the last call."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        """The next event for the application, or None."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The earliest deadline of all transactions and calls."""
        deadlines = [t.get_timer() for t in self._live]
        deadlines += [s.get_timer() for s in self._sessions.values()]
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire everything due at ``now``."""
        for txn in list(self._live):
            deadline = txn.get_timer()
            if deadline is not None and deadline <= now:
                txn.handle_timer(now)
        for session in list(self._sessions.values()):
            deadline = session.get_timer()
            if deadline is not None and deadline <= now:
                session.handle_timer(now)

    def transport_error(self, destination: Address, now: float) -> None:
        """The runtime could not reach ``destination``: fail the transactions using it."""
        for txn in list(self._live):
            if txn.destination.same_peer(destination):
                txn.transport_error(now)

    # --- receiving ----------------------------------------------------------------------------
    def receive(self, data: bytes, source: Address, now: float) -> None:
        """One complete SIP message from ``source`` (§18.2.1, §18.1.2)."""
        try:
            message = parse_message(data)
            if isinstance(message, Request):
                validate_request(message)
        except InvalidMessage as exc:
            partial = exc.message if isinstance(exc.message, Request) else None
            self._reject(partial, exc, source)
            return
        except RemoteProtocolError as exc:
            self._reject(None, exc, source)
            return
        if isinstance(message, Response):
            try:
                self._receive_response(message, now)
            except RemoteProtocolError as exc:
                log.info("dropping response from %s: %s", source, exc.reason)
            return
        try:
            self._receive_request(message, source, now)
        except RemoteProtocolError as exc:
            self._reject(message, exc, source)

    def _reject(self, request: Request | None, exc: ProtocolError, source: Address) -> None:
        """Answer a request we cannot process statelessly with ``exc.status_code`` (§8.2)."""
        answered = False
        if request is not None and request.method != "ACK":
            try:
                response = make_response(request, exc.status_code, to_tag=self._ids())
                self._out.append((bytes(response), self._response_address(request, source)))
                answered = True
            except (ProtocolError, ValueError):
                answered = False  # no usable Via / Call-ID: drop it
        log.info("rejected message from %s: %s (%d)", source, exc.reason, exc.status_code)
        self._events.append(MessageRejected(source, exc.status_code, exc.reason, answered))

    def _stamp_via(self, request: Request, source: Address) -> None:
        """§18.2.1 ``received`` and RFC 3581 ``rport`` on the top Via."""
        via = request.top_via
        changes: dict[str, str | None] = {}
        if via.rport is not None:
            # RFC 3581 §4: rport gets the source port, and received is always added
            changes["rport"] = str(source.port)
            changes["received"] = source.host
        elif via.host.lower() != source.host.lower():
            changes["received"] = source.host
        if not changes:
            return
        vias = request.headers.get_all("Via")
        vias[0] = str(via.with_params(**changes))
        rebuilt = Headers(("Via", v) for v in vias)
        for name, value in request.headers:
            if name != "Via":
                rebuilt.add(name, value)
        request.headers = rebuilt

    def _response_address(self, request: Request, source: Address) -> Address:
        """Where responses to ``request`` go (§18.2.2, RFC 3581 §4)."""
        via = request.top_via
        transport = source.transport  # the transport it arrived on, whatever the Via claims
        if is_reliable(transport):
            # over the connection the request came on
            return Address(source.transport, source.host, source.port, source.connection)
        if via.maddr:
            return Address(transport, via.maddr, via.port or default_port(transport))
        rport = via.rport
        host = via.received or via.host
        port = rport if isinstance(rport, int) and rport is not True else None
        return Address(transport, host, port or via.port or default_port(transport))

    def _is_ours(self, via: Via) -> bool:
        return any(
            via.host.lower() == a.host.lower()
            and (via.port or default_port(via.transport)) == a.port
            for a in self.config.local
        )

    def _receive_response(self, response: Response, now: float) -> None:
        via = response.top_via
        # §18.1.2: the top Via must name us; §8.1.3.3: exactly one Via
        if not self._is_ours(via) or len(response.vias) != 1:
            log.info("dropping response for sent-by %s", via.host_port)
            return
        txn = self._clients.get(response_key(response))
        if txn is not None:
            txn.receive_response(response, now)
            return
        if response.cseq.method == "INVITE" and 200 <= response.status_code < 300:
            # a 2xx retransmission after Timer M: the session ACKs it again (§13.2.2.4)
            session = self._find_session(response.call_id, response.from_.tag, response.to.tag)
            if session is not None:
                session.on_stray_2xx(response)
            return
        log.debug("stray response %d %s dropped", response.status_code, response.cseq)

    def _receive_request(self, request: Request, source: Address, now: float) -> None:
        self._stamp_via(request, source)
        if request.method == "ACK":
            self._receive_ack(request, now)
            return
        txn = self._servers.get(server_key(request))
        if txn is not None:
            txn.receive_request(request, now)  # a retransmission (§17.2.3)
            return
        if not self._screened_in(request, source, now):
            return
        if request.method == "CANCEL":
            self._receive_cancel(request, source, now)
            return
        txn = self._new_server_transaction(request, source, now)
        try:
            self._dispatch(txn, request, source, now)
        except RemoteProtocolError as exc:
            if txn.terminated or txn.final_sent:
                log.info("[%s] error after the final response: %s", request.call_id, exc.reason)
                return
            log.info("[%s] answering %d: %s", request.call_id, exc.status_code, exc.reason)
            txn.respond(txn.make_response(exc.status_code, to_tag=self._ids()), now)

    def _screened_in(self, request: Request, source: Address, now: float) -> bool:
        """Ask the source screen about a request that belongs to no dialog and no transaction;
        False when it was refused (dropped, or answered 403 without a transaction)."""
        if self.screen is None:
            return True
        if request.method == "CANCEL":
            invite = self._servers.get(server_key(request, "INVITE"))
            if isinstance(invite, InviteServerTransaction):
                return True  # cancels a request that was let in
        elif request.to.tag is not None and self._find_session(
            request.call_id, request.to.tag, request.from_.tag
        ):
            return True  # in a dialog (a BYE from the far end of the call...)
        verdict = self.screen(request, source, now)
        if verdict is Screen.ACCEPT:
            return True
        answered = verdict is Screen.FORBID
        if answered:
            response = make_response(request, 403, to_tag=self._ids())
            self._out.append((bytes(response), self._response_address(request, source)))
        log.debug("[%s] %s from %s refused by the source screen (%s)",
                  request.call_id, request.method, source, verdict.value)
        self._events.append(RequestScreened(request, source, answered))
        return False

    def _receive_ack(self, ack: Request, now: float) -> None:
        txn = self._servers.get(server_key(ack))
        if isinstance(txn, InviteServerTransaction):
            two543 = not (ack.top_via.branch or "").startswith(MAGIC_COOKIE)
            if not two543 or txn.response_to_tag == ack.to.tag:
                txn.receive_request(ack, now)  # ACK for a non-2xx (§17.2.1) or RFC 6026
                return
        # §13.3.1.4: the ACK for a 2xx is its own transaction; the dialog takes it
        session = self._find_session(ack.call_id, ack.to.tag, ack.from_.tag)
        if session is not None:
            session.on_ack(ack, now)
        else:
            log.debug("[%s] ACK matches nothing, dropped", ack.call_id)

    def _receive_cancel(self, cancel: Request, source: Address, now: float) -> None:
        txn = self._new_server_transaction(cancel, source, now)
        invite = self._servers.get(server_key(cancel, "INVITE"))
        if not isinstance(invite, InviteServerTransaction):
            txn.respond(txn.make_response(481, to_tag=self._ids()), now)  # §9.2
            return
        # §9.2: 200 to the CANCEL; the session sends 487 on the INVITE if it is still pending
        to_tag = invite.response_to_tag or self._ids()
        txn.respond(txn.make_response(200, to_tag=to_tag), now)
        session = self._owners.get(invite.handle)
        if session is not None:
            session.on_cancel(now)

    def _dispatch(
        self, txn: ServerTransaction, request: Request, source: Address, now: float
    ) -> None:
        method = request.method
        if method not in self.config.methods:
            response = txn.make_response(405, to_tag=self._ids())
            response.headers.add("Allow", ", ".join(self.config.methods))  # §8.2.1
            txn.respond(response, now)
            return
        required = [tag for value in request.headers.get_all("Require") for tag in value.split(",")]
        supported = self.config.supported
        if self.config.session_timer.enabled:
            supported = (*supported, OPTION_TAG)
        rel100 = self._rel100_on(request)
        if rel100:
            supported = (*supported, REL100)  # else Require: 100rel gets 420 (RFC 3262 §3)
        unsupported = [t.strip() for t in required if t.strip() not in supported]
        if unsupported and method not in _NO_REQUIRE_CHECK:
            response = txn.make_response(420, to_tag=self._ids())  # §8.2.2.3
            response.headers.add("Unsupported", ", ".join(unsupported))
            txn.respond(response, now)
            return
        to_tag = request.to.tag
        if to_tag is not None:
            session = self._find_session(request.call_id, to_tag, request.from_.tag)
            if session is not None:
                if not session.on_request(txn, request, now):
                    self._events.append(
                        RequestReceived(txn.handle, request, session.handle, source)
                    )
                return
            if method in ("INVITE", "BYE", "UPDATE", "PRACK"):
                raise RemoteProtocolError("no such dialog", 481)  # §12.2.2
            self._events.append(RequestReceived(txn.handle, request, None, source))
            return
        # §8.2.2.2: a request merged by a forking proxy upstream gets 482
        merge_key = (request.from_.tag, request.call_id, request.cseq.seq, method)
        first = self._merged.get(merge_key)
        if first is not None and first != txn.key:
            raise RemoteProtocolError("merged request", 482)
        self._merged[merge_key] = txn.key
        if method == "INVITE":
            # RFC 4028 §9: an interval below our Min-SE gets 422 before any call is made
            decision = uas_decision(request, self.config.session_timer)  # 400 if malformed
            if decision.too_small is not None:
                response = txn.make_response(422, to_tag=self._ids())
                response.headers.add("Min-SE", str(decision.too_small))
                txn.respond(response, now)
                return
            handle = self._handle("call")
            session = InviteSession.incoming(self, handle, txn, now)
            session.uas_timer = decision
            session.rel100 = rel100 and supports_100rel(request)  # RFC 3262 §3
            session.note_peer(request)
            self._add_session(session)
            self._owners[txn.handle] = session
            self._events.append(IncomingCall(handle, request, request.body, request.content_type))
        elif method in ("BYE", "UPDATE", "PRACK"):
            raise RemoteProtocolError("no such dialog", 481)
        else:
            self._events.append(RequestReceived(txn.handle, request, None, source))

    def _rel100_on(self, request: Request) -> bool:
        if self.rel100_for is not None:
            return self.rel100_for(request)
        return self.config.rel100

    # --- transactions -------------------------------------------------------------------------
    def _handle(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self._counter}"

    def _new_server_transaction(
        self, request: Request, source: Address, now: float
    ) -> ServerTransaction:
        destination = self._response_address(request, source)
        cls = InviteServerTransaction if request.method == "INVITE" else NonInviteServerTransaction
        txn = cls(request, destination, self, self.config.timers, self._handle("st"))
        self._servers[txn.key] = txn
        self._transactions[txn.handle] = txn
        self._live[txn] = None
        txn.start(now)
        return txn

    def _local(self, transport: str) -> Address:
        for address in self.config.local:
            if address.transport == transport.lower():
                return address
        return self.config.local[0]

    def _destination(self, uri: Uri) -> Address:
        """The transport address for a next-hop URI (RFC 3263 is the runtime's business)."""
        transport = uri.transport or ("tls" if uri.is_secure else "udp")
        host = uri.param("maddr") or uri.host
        return Address(transport, host, uri.port or default_port(transport))

    def _with_via(self, request: Request, transport: str) -> Request:
        """``request`` with a new top Via (new branch, rport asked, §8.1.1.7, RFC 3581)."""
        local = self._local(transport)
        branch = MAGIC_COOKIE + self._ids()
        via = Via(transport.upper(), local.host, local.port, (("branch", branch), ("rport", None)))
        headers = Headers([("Via", str(via))])
        for name, value in request.headers:
            headers.add(name, value)
        if "Max-Forwards" not in headers:
            headers.add("Max-Forwards", "70")
        if self.config.user_agent and "User-Agent" not in headers:
            headers.add("User-Agent", self.config.user_agent)
        return Request(request.method, request.uri, headers, request.body)

    def _start_client(
        self,
        request: Request,
        next_hop: Uri | None,
        now: float,
        *,
        handle: str | None = None,
        destination: Address | None = None,
    ) -> ClientTransaction:
        if destination is None:
            destination = self._destination(next_hop if next_hop is not None else request.uri)
            request = self._with_via(request, destination.transport)
        cls = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        txn = cls(request, destination, self, self.config.timers, handle or self._handle("ct"))
        self._clients[txn.key] = txn
        self._transactions[txn.handle] = txn
        self._live[txn] = None
        txn.start(now)
        return txn

    # TransactionUser ---------------------------------------------------------------------------
    def send_message(
        self, txn: Transaction, message: Request | Response, destination: Address
    ) -> None:
        """Queue a transaction's message."""
        self._out.append((bytes(message), destination))

    def response_received(self, txn: ClientTransaction, response: Response, now: float) -> None:
        """A client transaction passes a response up (§17.1)."""
        if (
            response.status_code in (401, 407)
            and txn.handle not in self._own_auth
            and self._retry_with_credentials(txn, response, now)
        ):
            return
        session = self._owners.get(txn.handle)
        if session is not None:
            session.on_response(txn, response, now)
            return
        self._events.append(ResponseReceived(txn.handle, response))
        session = self._in_dialog.get(txn.handle)
        if session is not None and response.status_code >= 200:
            session.in_dialog_response(txn.method, response, now)

    def ack_received(self, txn: InviteServerTransaction, ack: Request, now: float) -> None:
        """An ACK matched an INVITE server transaction in Accepted (RFC 2543 peers)."""
        session = self._owners.get(txn.handle)
        if session is not None:
            session.on_ack(ack, now)

    def transaction_timeout(self, txn: Transaction, now: float) -> None:
        """Timer B/F/H fired."""
        session = self._owners.get(txn.handle)
        if session is not None:
            session.on_timeout(txn, now)
        elif isinstance(txn, ClientTransaction):
            self._events.append(TransactionTimeout(txn.handle, txn.method))
            session = self._in_dialog.get(txn.handle)
            if session is not None:
                session.in_dialog_failure(408, now)
        else:
            # Timer H of an INVITE the core itself rejected (420, 481...): nothing to report
            log.info("[%s] no ACK for our %s", txn.request.call_id, txn.handle)

    def transaction_transport_error(self, txn: Transaction, now: float) -> None:
        """A transaction could not send (§8.1.3.1: a 503 for calls)."""
        session = self._owners.get(txn.handle)
        if session is not None:
            session.on_timeout(txn, now, transport=True)
        else:
            self._events.append(TransportError(txn.handle, txn.destination))

    def transaction_terminated(self, txn: Transaction) -> None:
        """Forget a terminated transaction."""
        self._live.pop(txn, None)
        if isinstance(txn, ClientTransaction):
            if self._clients.get(txn.key) is txn:
                del self._clients[txn.key]
        elif isinstance(txn, ServerTransaction) and self._servers.get(txn.key) is txn:
            del self._servers[txn.key]
            if txn.request.to.tag is None:
                request = txn.request
                key = (request.from_.tag, request.call_id, request.cseq.seq, request.method)
                if self._merged.get(key) == txn.key:
                    del self._merged[key]
        if self._transactions.get(txn.handle) is txn:
            del self._transactions[txn.handle]
            self._owners.pop(txn.handle, None)
            self._in_dialog.pop(txn.handle, None)
            self._auth_attempts.pop(txn.handle, None)
            self._own_auth.discard(txn.handle)

    def _retry_with_credentials(
        self, txn: ClientTransaction, response: Response, now: float
    ) -> bool:
        """Re-send a challenged request with credentials and a new CSeq (§22.2, §8.1.3.5)."""
        if self.authorize is None or response.status_code not in (401, 407):
            return False
        attempts = self._auth_attempts.get(txn.handle, 0)
        if attempts >= MAX_AUTH_ATTEMPTS:
            return False
        original = txn.request
        try:
            answer = self.authorize(original, response)
        except ProtocolError as exc:
            log.info("[%s] cannot answer the challenge: %s", original.call_id, exc.reason)
            return False
        session = self._owners.get(txn.handle)
        dialog = session.dialog if session is not None else None
        if session is not None and dialog is None and original.to.tag is not None:
            dialog = session.early_dialogs.get(original.to.tag)  # a PRACK (RFC 3262)
        if dialog is not None and original.to.tag is not None:
            seq = dialog.next_seq()  # in-dialog: the dialog's next number (§12.2.1.1)
        else:
            seq = original.cseq.seq + 1  # §8.1.3.5: same Call-ID, CSeq + 1
        # §22.3: credentials for other realms stay; the answered kinds are replaced
        replaced = {"Via"} | {name.lower() for name, _ in answer.headers}
        headers = Headers()
        for name, value in original.headers:
            if name == "Via" or name.lower() in replaced:
                continue
            headers.add(name, f"{seq} {original.method}" if name == "CSeq" else value)
        for name, value in answer.headers:
            headers.add(name, value)
        retry = Request(original.method, original.uri, headers, original.body)
        # the same handle: the application sees one request and its final answer
        new = self._start_client(
            self._with_via(retry, txn.destination.transport),
            None,
            now,
            handle=txn.handle,
            destination=txn.destination,
        )
        self._auth_attempts[new.handle] = attempts + 1
        if session is not None:
            self._owners[new.handle] = session
            session.replace_transaction(txn, new)
        return True

    # --- SessionHost (for InviteSession) -------------------------------------------------------
    @property
    def timer_config(self) -> TimerConfig:
        """T1/T2/T4 in force."""
        return self.config.timers

    @property
    def session_timer_config(self) -> SessionTimerConfig:
        """RFC 4028 preferences."""
        return self.config.session_timer

    def start_transaction(
        self, request: Request, next_hop: Uri | None, owner: InviteSession, now: float
    ) -> ClientTransaction:
        """Start a client transaction owned by a session."""
        txn = self._start_client(request, next_hop, now)
        self._owners[txn.handle] = owner
        return txn

    def send_cancel(
        self, txn: InviteClientTransaction, owner: InviteSession, now: float
    ) -> ClientTransaction:
        """CANCEL of ``txn`` (§9.1): same branch, same destination, own transaction."""
        cancel = self._start_client(txn.cancel(), None, now, destination=txn.destination)
        self._owners[cancel.handle] = owner
        return cancel

    def send_stateless(self, request: Request, next_hop: Uri) -> tuple[Request, Address]:
        """Send ``request`` (an ACK for a 2xx) outside any transaction, with a new branch."""
        destination = self._destination(next_hop)
        request = self._with_via(request, destination.transport)
        self._out.append((bytes(request), destination))
        return request, destination

    def resend(self, message: Request, destination: Address) -> None:
        """Send ``message`` again (an ACK for a retransmitted 2xx)."""
        self._out.append((bytes(message), destination))

    def send_response(self, txn: ServerTransaction, response: Response, now: float) -> None:
        """Send ``response`` through ``txn``; straight to its address if ``txn`` is over."""
        if txn.terminated:
            self._out.append((bytes(response), txn.destination))
        else:
            txn.respond(response, now)

    def emit(self, event: Event) -> None:
        """Queue an event."""
        self._events.append(event)

    def new_tag(self) -> str:
        """A fresh tag from the injected id source."""
        return self._ids()

    def random(self) -> float:
        """A float in [0, 1) from the injected source."""
        return self._rand()

    def contact(self, transport: str) -> NameAddr:
        """Our Contact on ``transport``."""
        local = self._local(transport)
        scheme = "sips" if local.transport == "tls" else "sip"
        params: tuple[tuple[str, str | None], ...] = ()
        if local.transport not in ("udp", "tls"):
            params = (("transport", local.transport),)
        uri = Uri(scheme, self.config.contact_user, None, local.host, local.port, params)
        return NameAddr(None, uri)

    def session_ended(self, session: InviteSession) -> None:
        """Forget a terminated session."""
        self._sessions.pop(session.handle, None)
        same = self._by_call_id.get(session.call_id, [])
        if session in same:
            same.remove(session)
        if not same:
            self._by_call_id.pop(session.call_id, None)

    def _add_session(self, session: InviteSession) -> None:
        self._sessions[session.handle] = session
        self._by_call_id.setdefault(session.call_id, []).append(session)

    def _find_session(
        self, call_id: str, local_tag: str | None, remote_tag: str | None
    ) -> InviteSession | None:
        for session in self._by_call_id.get(call_id, ()):
            if session.matches(local_tag, remote_tag):
                return session
        return None

    def _session(self, call: str) -> InviteSession:
        session = self._sessions.get(call)
        if session is None:
            raise LocalProtocolError(f"no such call {call!r}", 500)
        return session

    # --- commands -----------------------------------------------------------------------------
    def _new_request(
        self,
        method: str,
        uri: Uri,
        *,
        to: NameAddr | None,
        from_: NameAddr | None,
        call_id: str | None,
        cseq: int,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        content_type: str | None,
        contact: bool,
    ) -> tuple[Request, Uri | None]:
        """An out-of-dialog request (§8.1.1) and its next hop (outbound proxy, §8.1.2)."""
        local_uri = from_ if from_ is not None else self.config.aor
        fields = Headers()
        fields.add("From", str(local_uri.with_tag(self._ids())))
        fields.add("To", str(to if to is not None else NameAddr(None, uri)))
        fields.add("Call-ID", call_id or f"{self._ids()}@{self.config.local[0].host}")
        fields.add("CSeq", f"{cseq} {method}")
        fields.add("Max-Forwards", "70")
        next_hop: Uri | None = None
        proxy = self.config.outbound_proxy
        if proxy is not None:
            loose = proxy if proxy.has_param("lr") else proxy.with_params(lr=None)
            fields.add("Route", f"<{loose}>")
            next_hop = loose
        transport = self._destination(next_hop or uri).transport
        if contact:
            fields.add("Contact", str(self.contact(transport)))
        if method in ("INVITE", "OPTIONS", "UPDATE"):
            fields.add("Allow", ", ".join(self.config.methods))
        for name, value in headers:
            fields.add(name, value)
        if body:
            fields.add("Content-Type", content_type or "application/sdp")
        return Request(method, uri, fields, body), next_hop

    def invite(
        self,
        target: Uri,
        now: float,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        to: NameAddr | None = None,
        from_: NameAddr | None = None,
        headers: Iterable[tuple[str, str]] = (),
        handle: str | None = None,
        rel100: bool | None = None,
    ) -> str:
        """Call ``target`` with an (opaque) offer ``body``; returns the call handle.

        ``rel100`` offers reliable provisional responses (RFC 3262; None: ``config.rel100``).

        An empty ``body`` makes a delayed-offer call: the 2xx brings the offer and the answer
        goes in the ACK (``ack()``). ``handle`` reuses the handle of a call that is over (the
        new INVITE after a 3xx, RFC 3261 §8.1.3.4, stays the same call for the application).
        """
        if handle is not None and handle in self._sessions:
            raise LocalProtocolError(f"call {handle} is still going", 500)
        request, next_hop = self._new_request(
            "INVITE",
            target,
            to=to,
            from_=from_,
            call_id=None,
            cseq=1,
            headers=headers,
            body=body,
            content_type=content_type,
            contact=True,
        )
        handle = handle or self._handle("call")
        session = InviteSession.outgoing(
            self, handle, request, next_hop, now,
            rel100=self.config.rel100 if rel100 is None else rel100,
        )
        self._add_session(session)
        return handle

    def set_contact_user(self, call: str, user: str | None) -> None:
        """The user part of our Contact in ``call``'s dialog, before we answer it: a UA with
        several identities (the lines of a phone) answers as the one that was called."""
        dialog = self._session(call).dialog
        if dialog is not None and dialog.local_contact is not None:
            contact = dialog.local_contact
            dialog.local_contact = NameAddr(
                contact.display_name, contact.uri.replace(user=user), contact.params
            )

    def ringing(
        self,
        call: str,
        now: float,
        status: int = 180,
        *,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> None:
        """Send a provisional response on an incoming call (183 with early media...)."""
        self._session(call).ringing(now, status, body, content_type)

    def answer(
        self, call: str, now: float, *, body: bytes = b"", content_type: str | None = None
    ) -> None:
        """Answer an incoming call with 200 and our answer (or offer) ``body``."""
        self._session(call).answer(now, body, content_type)

    def reject(self, call: str, now: float, status: int = 486) -> None:
        """Refuse an incoming call."""
        self._session(call).reject(now, status)

    def ack(self, call: str, *, body: bytes, content_type: str | None = None) -> None:
        """Send the ACK with our answer for a delayed-offer call (after CallAnswered)."""
        self._session(call).ack(body, content_type)

    def cancel(self, call: str, now: float) -> None:
        """Cancel an outgoing call (§9.1)."""
        self._session(call).cancel(now)

    def bye(self, call: str, now: float) -> None:
        """Hang up an established call (§15)."""
        self._session(call).bye(now)

    def hangup(self, call: str, now: float) -> None:
        """End a call whatever its state (CANCEL, 603, or BYE)."""
        self._session(call).hangup(now)

    def reinvite(
        self, call: str, now: float, *, body: bytes = b"", content_type: str | None = None
    ) -> None:
        """Send a re-INVITE with a new offer (§14.1); glare is retried automatically."""
        self._session(call).reinvite(now, body, content_type)

    def accept_reinvite(
        self, call: str, now: float, *, body: bytes = b"", content_type: str | None = None
    ) -> None:
        """Answer the peer's re-INVITE/UPDATE with 200 and our answer."""
        self._session(call).accept_reinvite(now, body, content_type)

    def reject_reinvite(self, call: str, now: float, status: int = 488) -> None:
        """Refuse the peer's re-INVITE/UPDATE; the session stays as it was."""
        self._session(call).reject_reinvite(now, status)

    def session_timer(self, call: str) -> SessionTimer | None:
        """The RFC 4028 session timer of a live call, None if it has none."""
        session = self._sessions.get(call)
        return session.session_timer if session is not None else None

    def reliable_provisionals(self, call: str) -> bool:
        """True once a reliable provisional (RFC 3262) went out or was PRACKed on ``call``."""
        session = self._sessions.get(call)
        return session is not None and session.rel100_used

    def call_state(self, call: str) -> CallState | None:
        """The state of a call, None if the handle is unknown or the call is over."""
        session = self._sessions.get(call)
        return session.state if session is not None else None

    def send_request(
        self,
        method: str,
        uri: Uri,
        now: float,
        *,
        call: str | None = None,
        to: NameAddr | None = None,
        from_: NameAddr | None = None,
        call_id: str | None = None,
        cseq: int = 1,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> str:
        """Send a non-INVITE request in a client transaction; returns its handle.

        With ``call`` the request goes inside that call's dialog (INFO, REFER, NOTIFY...) and
        ``uri``/``to``/``from_``/``call_id``/``cseq`` are taken from the dialog.
        """
        if method in ("INVITE", "ACK", "CANCEL"):
            raise LocalProtocolError(f"use the call commands for {method}", 500)
        if call is not None:
            session = self._session(call)
            dialog = session.dialog
            if dialog is None or session.state is not CallState.CONFIRMED:
                raise LocalProtocolError(f"call {call} has no established dialog", 500)
            extra = tuple(headers)
            if method == "UPDATE" and not any(n.lower() in ("session-expires", "x")
                                              for n, _ in extra):
                extra += tuple(session.timer_request_headers())  # RFC 4028 §7.4
            request = dialog.create_request(
                method, body=body, content_type=content_type, extra=extra
            )
            txn = self._start_client(request, dialog.next_hop(), now)
            self._in_dialog[txn.handle] = session
            return txn.handle
        request, next_hop = self._new_request(
            method,
            uri,
            to=to,
            from_=from_,
            call_id=call_id,
            cseq=cseq,
            headers=headers,
            body=body,
            content_type=content_type,
            contact=method in ("REGISTER", "SUBSCRIBE", "REFER", "NOTIFY"),
        )
        return self._start_client(request, next_hop, now).handle

    def send_prepared(
        self, request: Request, next_hop: Uri, now: float, *, own_auth: bool = True
    ) -> str:
        """Send a request built elsewhere (a subscription's SUBSCRIBE, which keeps its own
        dialog) in a client transaction towards ``next_hop``; returns its handle.

        The core adds the Via (and Max-Forwards, User-Agent). Its responses, timeout and
        transport error come as the events of :meth:`send_request`. With ``own_auth`` a
        401/407 is passed up (the request's owner answers it, with its own CSeq), else the
        core retries with credentials as for its own requests.
        """
        handle = self._start_client(request, next_hop, now).handle
        if own_auth:
            self._own_auth.add(handle)
        return handle

    def respond(
        self,
        transaction: str,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> None:
        """Answer a request reported by :class:`RequestReceived`."""
        txn = self._transactions.get(transaction)
        if not isinstance(txn, ServerTransaction) or txn.terminated:
            raise LocalProtocolError(f"no pending server transaction {transaction!r}", 500)
        response = txn.make_response(status, reason, to_tag=self._ids())
        for name, value in headers:
            response.headers.add(name, value)
        if body:
            response.headers.add("Content-Type", content_type or "application/sdp")
            response.body = body
        txn.respond(response, now)
