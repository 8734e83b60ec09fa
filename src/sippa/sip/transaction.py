"""SIP transactions (RFC 3261 §17, with the RFC 6026 corrections), sans-IO.

Four state machines, each a table at the top of this module: INVITE client (§17.1.1 + RFC 6026
"Accepted"), non-INVITE client (§17.1.2), INVITE server (§17.2.1 + RFC 6026 "Accepted") and
non-INVITE server (§17.2.2). A transaction never touches a socket or a clock: it is told ``now``,
hands messages and results to its :class:`TransactionUser`, and exposes one deadline through
``get_timer()`` that the owner honours by calling ``handle_timer(now)``.

Matching (§17.1.3 for responses, §17.2.3 for requests, with the RFC 2543 fallback for requests
whose branch lacks the ``z9hG4bK`` magic cookie) is done by the key functions below; the owner keeps
the tables of live transactions.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Protocol

from sippa.errors import LocalProtocolError
from sippa.sip.events import Address
from sippa.sip.message import Headers, Request, Response, make_response
from sippa.sip.timers import TimerConfig, Timers, is_reliable

__all__ = [
    "MAGIC_COOKIE",
    "ClientTransaction",
    "InviteClientTransaction",
    "InviteServerTransaction",
    "NonInviteClientTransaction",
    "NonInviteServerTransaction",
    "ServerTransaction",
    "Transaction",
    "TransactionError",
    "TransactionUser",
    "TxEvent",
    "TxState",
    "build_ack_for_non2xx",
    "build_cancel",
    "client_key",
    "response_key",
    "server_key",
]

log = logging.getLogger(__name__)

# RFC 3261 §8.1.1.7: branches of RFC 3261 implementations start with this cookie.
MAGIC_COOKIE = "z9hG4bK"


class TxState(Enum):
    """Transaction states of RFC 3261 §17 and RFC 6026."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class TxEvent(Enum):
    """Inputs of the transaction state machines."""

    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_FINAL = "300-699 received"  # any final for non-INVITE
    RECV_REQUEST = "request retransmission"
    RECV_ACK = "ACK received"
    SEND_1XX = "1xx from TU"
    SEND_2XX = "2xx from TU"
    SEND_FINAL = "final from TU"  # 300-699 for INVITE, 200-699 for non-INVITE
    TIMER_A = "Timer A"
    TIMER_B = "Timer B"
    TIMER_D = "Timer D"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TIMER_J = "Timer J"
    TIMER_K = "Timer K"
    TIMER_L = "Timer L"
    TIMER_M = "Timer M"
    TRANSPORT_ERROR = "transport error"


S = TxState
E = TxEvent
_Table = dict[tuple[TxState, TxEvent], TxState]

# RFC 3261 Figure 5 + RFC 6026 Figure 5 (INVITE client transaction).
INVITE_CLIENT: _Table = {
    (S.CALLING, E.TIMER_A): S.CALLING,
    (S.CALLING, E.TIMER_B): S.TERMINATED,
    (S.CALLING, E.RECV_1XX): S.PROCEEDING,
    (S.CALLING, E.RECV_2XX): S.ACCEPTED,
    (S.CALLING, E.RECV_FINAL): S.COMPLETED,
    (S.CALLING, E.TRANSPORT_ERROR): S.TERMINATED,
    (S.PROCEEDING, E.RECV_1XX): S.PROCEEDING,
    (S.PROCEEDING, E.RECV_2XX): S.ACCEPTED,
    (S.PROCEEDING, E.RECV_FINAL): S.COMPLETED,
    (S.PROCEEDING, E.TRANSPORT_ERROR): S.TERMINATED,
    (S.COMPLETED, E.RECV_1XX): S.COMPLETED,  # stray, ignored
    (S.COMPLETED, E.RECV_2XX): S.COMPLETED,  # stray, ignored
    (S.COMPLETED, E.RECV_FINAL): S.COMPLETED,  # retransmission: ACK again
    (S.COMPLETED, E.TIMER_D): S.TERMINATED,
    (S.COMPLETED, E.TRANSPORT_ERROR): S.TERMINATED,
    (S.ACCEPTED, E.RECV_1XX): S.ACCEPTED,  # stray, ignored
    (S.ACCEPTED, E.RECV_2XX): S.ACCEPTED,  # passed to the TU (it ACKs every 2xx)
    (S.ACCEPTED, E.RECV_FINAL): S.ACCEPTED,  # stray, ignored
    (S.ACCEPTED, E.TIMER_M): S.TERMINATED,
    (S.ACCEPTED, E.TRANSPORT_ERROR): S.ACCEPTED,
}

# RFC 3261 Figure 6 (non-INVITE client transaction).
NON_INVITE_CLIENT: _Table = {
    (S.TRYING, E.TIMER_E): S.TRYING,
    (S.TRYING, E.TIMER_F): S.TERMINATED,
    (S.TRYING, E.RECV_1XX): S.PROCEEDING,
    (S.TRYING, E.RECV_2XX): S.COMPLETED,
    (S.TRYING, E.RECV_FINAL): S.COMPLETED,
    (S.TRYING, E.TRANSPORT_ERROR): S.TERMINATED,
    (S.PROCEEDING, E.TIMER_E): S.PROCEEDING,
    (S.PROCEEDING, E.TIMER_F): S.TERMINATED,
    (S.PROCEEDING, E.RECV_1XX): S.PROCEEDING,
    (S.PROCEEDING, E.RECV_2XX): S.COMPLETED,
    (S.PROCEEDING, E.RECV_FINAL): S.COMPLETED,
    (S.PROCEEDING, E.TRANSPORT_ERROR): S.TERMINATED,
    (S.COMPLETED, E.RECV_1XX): S.COMPLETED,  # absorbed
    (S.COMPLETED, E.RECV_2XX): S.COMPLETED,  # absorbed
    (S.COMPLETED, E.RECV_FINAL): S.COMPLETED,  # absorbed
    (S.COMPLETED, E.TIMER_K): S.TERMINATED,
    (S.COMPLETED, E.TRANSPORT_ERROR): S.COMPLETED,
}

# RFC 3261 Figure 7 + RFC 6026 Figure 7 (INVITE server transaction).
INVITE_SERVER: _Table = {
    (S.PROCEEDING, E.RECV_REQUEST): S.PROCEEDING,  # resend the last provisional
    (S.PROCEEDING, E.RECV_ACK): S.PROCEEDING,  # an ACK before any final: ignored
    (S.PROCEEDING, E.SEND_1XX): S.PROCEEDING,
    (S.PROCEEDING, E.SEND_2XX): S.ACCEPTED,
    (S.PROCEEDING, E.SEND_FINAL): S.COMPLETED,
    (S.PROCEEDING, E.TRANSPORT_ERROR): S.TERMINATED,
    (S.COMPLETED, E.RECV_REQUEST): S.COMPLETED,  # resend the final
    (S.COMPLETED, E.RECV_ACK): S.CONFIRMED,
    (S.COMPLETED, E.TIMER_G): S.COMPLETED,
    (S.COMPLETED, E.TIMER_H): S.TERMINATED,
    (S.COMPLETED, E.TRANSPORT_ERROR): S.TERMINATED,
    (S.CONFIRMED, E.RECV_REQUEST): S.CONFIRMED,  # absorbed
    (S.CONFIRMED, E.RECV_ACK): S.CONFIRMED,  # absorbed
    (S.CONFIRMED, E.TIMER_I): S.TERMINATED,
    (S.CONFIRMED, E.TRANSPORT_ERROR): S.CONFIRMED,
    (S.ACCEPTED, E.RECV_REQUEST): S.ACCEPTED,  # absorbed (RFC 6026 §7.1)
    (S.ACCEPTED, E.RECV_ACK): S.ACCEPTED,  # passed to the TU
    (S.ACCEPTED, E.SEND_2XX): S.ACCEPTED,  # 2xx retransmission by the TU
    (S.ACCEPTED, E.TIMER_L): S.TERMINATED,
    (S.ACCEPTED, E.TRANSPORT_ERROR): S.ACCEPTED,  # reported to the TU, state kept
}

# RFC 3261 Figure 8 (non-INVITE server transaction).
NON_INVITE_SERVER: _Table = {
    (S.TRYING, E.RECV_REQUEST): S.TRYING,  # absorbed
    (S.TRYING, E.SEND_1XX): S.PROCEEDING,
    (S.TRYING, E.SEND_FINAL): S.COMPLETED,
    (S.TRYING, E.TRANSPORT_ERROR): S.TERMINATED,
    (S.PROCEEDING, E.RECV_REQUEST): S.PROCEEDING,  # resend the last provisional
    (S.PROCEEDING, E.SEND_1XX): S.PROCEEDING,
    (S.PROCEEDING, E.SEND_FINAL): S.COMPLETED,
    (S.PROCEEDING, E.TRANSPORT_ERROR): S.TERMINATED,
    (S.COMPLETED, E.RECV_REQUEST): S.COMPLETED,  # resend the final
    (S.COMPLETED, E.TIMER_J): S.TERMINATED,
    (S.COMPLETED, E.TRANSPORT_ERROR): S.TERMINATED,
}

del S, E


class TransactionError(LocalProtocolError):
    """An input the state machine has no transition for (a bug in the transaction user)."""

    def __init__(self, kind: str, state: TxState, event: TxEvent) -> None:
        super().__init__(
            f"{kind} transaction: no transition from {state.value} on {event.value}", 500
        )
        self.state = state
        self.event = event


class TransactionUser(Protocol):
    """What a transaction needs from its owner (the UA core, or a test double)."""

    def send_message(
        self, txn: Transaction, message: Request | Response, destination: Address
    ) -> None:
        """Serialise and queue ``message`` for ``destination``."""

    def response_received(self, txn: ClientTransaction, response: Response, now: float) -> None:
        """A response the TU must see (§17.1: provisional, final, and 2xx retransmissions)."""

    def ack_received(self, txn: InviteServerTransaction, ack: Request, now: float) -> None:
        """An ACK matched an INVITE server transaction in Accepted (RFC 6026 §7.1)."""

    def transaction_timeout(self, txn: Transaction, now: float) -> None:
        """Timer B, F (client) or H (server) fired."""

    def transaction_transport_error(self, txn: Transaction, now: float) -> None:
        """The transport reported a failure for this transaction."""

    def transaction_terminated(self, txn: Transaction) -> None:
        """The transaction reached Terminated; forget it."""


# --- matching ---------------------------------------------------------------------------------

ClientKey = tuple[str, str]
ServerKey = tuple[object, ...]


def client_key(branch: str, method: str) -> ClientKey:
    """Key of a client transaction: its branch and its method (§17.1.3)."""
    return (branch, method)


def response_key(response: Response) -> ClientKey:
    """Key a response matches (§17.1.3: top Via branch + CSeq method)."""
    return client_key(response.top_via.branch or "", response.cseq.method)


def server_key(request: Request, method: str | None = None) -> ServerKey:
    """Key of the server transaction ``request`` belongs to (§17.2.3).

    ``method`` overrides the matching method; ACK matches INVITE by default, and the core looks up
    the INVITE a CANCEL targets with ``method="INVITE"`` (§9.2).
    """
    via = request.top_via
    if method is None:
        method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        # §17.2.3: branch + sent-by + method
        return ("3261", branch, via.host.lower(), via.port, method)
    # §17.2.3, RFC 2543 fallback: Request-URI, To tag, From tag, Call-ID, CSeq, top Via. The To
    # tag of an ACK is the one of our response; the caller checks it (see ``ack_to_tag_matches``).
    to_tag = None if request.method in ("ACK", "CANCEL") else request.to.tag
    return (
        "2543",
        str(request.uri),
        to_tag,
        request.from_.tag,
        request.call_id,
        request.cseq.seq,
        via.transport.upper(),
        via.host.lower(),
        via.port,
        branch,
        method,
    )


# --- requests a client transaction builds -----------------------------------------------------

_COPIED_FOR_CANCEL = ("Call-ID", "From", "To", "Route")


def build_cancel(request: Request) -> Request:
    """CANCEL for a pending ``request`` (RFC 3261 §9.1).

    Same Request-URI, Call-ID, To, From, CSeq number and Route; a single Via equal to the request's
    top Via (so the same branch); method CANCEL; no body.
    """
    headers = Headers()
    headers.add("Via", str(request.top_via))
    for name in _COPIED_FOR_CANCEL:
        for value in request.headers.get_all(name):
            headers.add(name, value)
    headers.add("CSeq", f"{request.cseq.seq} CANCEL")
    headers.add("Max-Forwards", "70")
    return Request("CANCEL", request.uri, headers)


def build_ack_for_non2xx(request: Request, response: Response) -> Request:
    """ACK for a 300-699 response to ``request`` (RFC 3261 §17.1.1.3).

    Request-URI, Call-ID, From, CSeq number and Route of the INVITE; To of the response (with its
    tag); a single Via equal to the INVITE's top Via; method ACK.
    """
    headers = Headers()
    headers.add("Via", str(request.top_via))
    for name in ("Call-ID", "From"):
        for value in request.headers.get_all(name):
            headers.add(name, value)
    to = response.headers.get("To")
    if to is not None:
        headers.add("To", to)
    headers.add("CSeq", f"{request.cseq.seq} ACK")
    for value in request.headers.get_all("Route"):
        headers.add("Route", value)
    headers.add("Max-Forwards", "70")
    return Request("ACK", request.uri, headers)


# --- the machines -----------------------------------------------------------------------------


class Transaction:
    """Common part: state, table, timers, ``_set_state()``."""

    KIND = "abstract"
    TABLE: _Table = {}
    INITIAL = TxState.TERMINATED

    def __init__(
        self,
        request: Request,
        destination: Address,
        user: TransactionUser,
        config: TimerConfig,
        handle: str,
    ) -> None:
        self.request = request
        """The request that created the transaction."""
        self.destination = destination
        """Where requests (client) or responses (server) go."""
        self.user = user
        self.config = config
        self.handle = handle
        """Opaque handle used in events."""
        self.method = request.method
        self.reliable = is_reliable(destination.transport)
        self.state = self.INITIAL
        self.timers = Timers()
        self._interval = 0.0  # current retransmit interval of Timer A/E/G

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.handle} {self.method} {self.state.value}>"

    @property
    def terminated(self) -> bool:
        """True once the transaction reached Terminated."""
        return self.state is TxState.TERMINATED

    def _fire(self, event: TxEvent) -> TxState:
        """Apply ``event`` through the table; return the previous state."""
        old = self.state
        new = self.TABLE.get((old, event))
        if new is None:
            raise TransactionError(self.KIND, old, event)
        self._set_state(new, event)
        return old

    def _set_state(self, new: TxState, event: TxEvent) -> None:
        old = self.state
        if old is not new:
            log.debug(
                "[%s] %s %s: %s -> %s", self.handle, self.KIND, event.value, old.value, new.value
            )
        self.state = new
        if new is TxState.TERMINATED and old is not TxState.TERMINATED:
            self.timers.stop_all()
            self.user.transaction_terminated(self)

    def _start(self, name: str, now: float, duration: float) -> None:
        self.timers.start(name, now, duration)

    def get_timer(self) -> float | None:
        """The earliest deadline of this transaction, or None."""
        return None if self.terminated else self.timers.earliest()

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        for name in self.timers.pop_due(now):
            if self.terminated:
                return
            self._on_timer(name, now)

    def _on_timer(self, name: str, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def transport_error(self, now: float) -> None:
        """The runtime could not send to :attr:`destination`."""
        if self.terminated:
            return
        old = self.state
        self._check(TxEvent.TRANSPORT_ERROR)
        # Report it while the TU still waits for something from this transaction (§17.1.4,
        # §17.2.4), or when a 2xx could not be sent (RFC 6026 §8.7). The TU hears it before
        # the transaction is terminated and forgotten.
        if old in (TxState.CALLING, TxState.TRYING, TxState.PROCEEDING) or (
            old is TxState.ACCEPTED and isinstance(self, ServerTransaction)
        ):
            self.user.transaction_transport_error(self, now)
        if not self.terminated:
            self._fire(TxEvent.TRANSPORT_ERROR)

    def _check(self, event: TxEvent) -> None:
        if (self.state, event) not in self.TABLE:
            raise TransactionError(self.KIND, self.state, event)

    def _timeout(self, event: TxEvent, now: float) -> None:
        """Timer B, F or H: tell the TU, then terminate."""
        self._check(event)
        self.user.transaction_timeout(self, now)
        if not self.terminated:
            self._fire(event)


# --- client -----------------------------------------------------------------------------------


class ClientTransaction(Transaction):
    """Base of the two client transactions: matched by :func:`response_key`."""

    @property
    def branch(self) -> str:
        """Branch of the request's top Via."""
        return self.request.top_via.branch or ""

    @property
    def key(self) -> ClientKey:
        """Matching key (§17.1.3)."""
        return client_key(self.branch, self.method)

    def start(self, now: float) -> None:  # pragma: no cover - abstract
        """Send the request and arm the timers."""
        raise NotImplementedError

    def receive_response(self, response: Response, now: float) -> None:  # pragma: no cover
        """A response matched this transaction."""
        raise NotImplementedError

    def _send_request(self, message: Request) -> None:
        self.user.send_message(self, message, self.destination)


def _response_event(status: int) -> TxEvent:
    if status < 200:
        return TxEvent.RECV_1XX
    if status < 300:
        return TxEvent.RECV_2XX
    return TxEvent.RECV_FINAL


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.1 with RFC 6026 §8.4 (Accepted state, Timer M)."""

    KIND = "INVITE client"
    TABLE = INVITE_CLIENT
    INITIAL = TxState.CALLING

    def __init__(
        self,
        request: Request,
        destination: Address,
        user: TransactionUser,
        config: TimerConfig,
        handle: str,
    ) -> None:
        super().__init__(request, destination, user, config, handle)
        self.ack: Request | None = None
        """The ACK built for a non-2xx final response (§17.1.1.3)."""
        self.final_response: Response | None = None
        self.provisional_seen = False
        """True once any 1xx arrived (a CANCEL may only be sent then, §9.1)."""

    def start(self, now: float) -> None:
        """Send the INVITE; Timer A (unreliable) and Timer B (§17.1.1.2)."""
        self._send_request(self.request)
        a = self.config.a(self.reliable)
        if a is not None:
            self._interval = a
            self._start("A", now, a)
        self._start("B", now, self.config.b())

    def cancel(self) -> Request:
        """The CANCEL for this INVITE (§9.1); send it in its own non-INVITE transaction."""
        return build_cancel(self.request)

    def receive_response(self, response: Response, now: float) -> None:
        event = _response_event(response.status_code)
        old = self._fire(event)
        if event is TxEvent.RECV_1XX:
            if old is TxState.CALLING:
                # §17.1.1.2: no more retransmissions once a provisional arrived; Timer B only
                # guards the Calling state.
                self.timers.stop("A")
                self.timers.stop("B")
            if old in (TxState.CALLING, TxState.PROCEEDING):
                self.provisional_seen = True
                self.user.response_received(self, response, now)
        elif event is TxEvent.RECV_2XX:
            if old in (TxState.CALLING, TxState.PROCEEDING):
                self.timers.stop("A")
                self.timers.stop("B")
                self.final_response = response
                # RFC 6026 §8.4: Timer M keeps the transaction to pass 2xx retransmissions up.
                self._start("M", now, self.config.m())
            if old is not TxState.COMPLETED:
                self.user.response_received(self, response, now)
        elif old in (TxState.CALLING, TxState.PROCEEDING):
            self.timers.stop("A")
            self.timers.stop("B")
            self.final_response = response
            self.ack = build_ack_for_non2xx(self.request, response)
            self._send_request(self.ack)
            self.user.response_received(self, response, now)
            d = self.config.d(self.reliable)
            if d == 0:
                self._fire(TxEvent.TIMER_D)
            else:
                self._start("D", now, d)
        elif old is TxState.COMPLETED and self.ack is not None:
            # §17.1.1.2: a retransmitted final is ACKed again, not passed up.
            self._send_request(self.ack)

    def _on_timer(self, name: str, now: float) -> None:
        if name == "A":
            self._fire(TxEvent.TIMER_A)
            self._send_request(self.request)
            # §17.1.1.2: the interval doubles with no T2 cap for INVITE.
            self._interval = self.config.backoff(self._interval, cap=False)
            self._start("A", now, self._interval)
        elif name == "B":
            self._timeout(TxEvent.TIMER_B, now)
        elif name == "D":
            self._fire(TxEvent.TIMER_D)
        elif name == "M":
            self._fire(TxEvent.TIMER_M)


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.2."""

    KIND = "non-INVITE client"
    TABLE = NON_INVITE_CLIENT
    INITIAL = TxState.TRYING

    def start(self, now: float) -> None:
        """Send the request; Timer E (unreliable) and Timer F (§17.1.2.2)."""
        self._send_request(self.request)
        e = self.config.e(self.reliable)
        if e is not None:
            self._interval = e
            self._start("E", now, e)
        self._start("F", now, self.config.f())

    def receive_response(self, response: Response, now: float) -> None:
        old = self._fire(_response_event(response.status_code))
        if old is TxState.COMPLETED:
            return  # §17.1.2.2: retransmissions are absorbed
        if response.status_code >= 200:
            self.timers.stop("E")
            self.timers.stop("F")
            self.user.response_received(self, response, now)
            k = self.config.k(self.reliable)
            if k == 0:
                self._fire(TxEvent.TIMER_K)
            else:
                self._start("K", now, k)
        else:
            self.user.response_received(self, response, now)

    def _on_timer(self, name: str, now: float) -> None:
        if name == "E":
            old = self._fire(TxEvent.TIMER_E)
            self._send_request(self.request)
            # §17.1.2.2: doubling up to T2 while Trying, T2 once Proceeding.
            if old is TxState.PROCEEDING:
                self._interval = self.config.t2
            else:
                self._interval = self.config.backoff(self._interval, cap=True)
            self._start("E", now, self._interval)
        elif name == "F":
            self._timeout(TxEvent.TIMER_F, now)
        elif name == "K":
            self._fire(TxEvent.TIMER_K)


# --- server -----------------------------------------------------------------------------------


class ServerTransaction(Transaction):
    """Base of the two server transactions: matched by :func:`server_key`."""

    def __init__(
        self,
        request: Request,
        destination: Address,
        user: TransactionUser,
        config: TimerConfig,
        handle: str,
    ) -> None:
        super().__init__(request, destination, user, config, handle)
        self.key = server_key(request)
        self.last_response: Response | None = None
        """The last response sent (re-sent on request retransmissions)."""

    @property
    def final_sent(self) -> bool:
        """True once a final response went out."""
        return self.last_response is not None and self.last_response.status_code >= 200

    def receive_request(self, request: Request, now: float) -> None:  # pragma: no cover
        """A request (retransmission, or ACK) matched this transaction."""
        raise NotImplementedError

    def respond(self, response: Response, now: float) -> None:  # pragma: no cover - abstract
        """Send a response from the TU."""
        raise NotImplementedError

    def _send_response(self, response: Response) -> None:
        self.user.send_message(self, response, self.destination)

    def make_response(
        self, status_code: int, reason: str | None = None, *, to_tag: str | None = None
    ) -> Response:
        """A response to this transaction's request (§8.2.6)."""
        return make_response(self.request, status_code, reason, to_tag=to_tag)


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.1 with RFC 6026 §8.7 (Accepted state, Timer L).

    A 100 Trying is sent at creation (§17.2.1: the TU will not always answer within 200 ms).
    """

    KIND = "INVITE server"
    TABLE = INVITE_SERVER
    INITIAL = TxState.PROCEEDING

    def start(self, now: float, *, send_trying: bool = True) -> None:
        """Enter Proceeding, sending 100 Trying (§17.2.1)."""
        if send_trying:
            self.respond(self.make_response(100), now)

    @property
    def response_to_tag(self) -> str | None:
        """The To tag of our last response (an RFC 2543 ACK must carry it, §17.2.3)."""
        if self.last_response is None:
            return None
        return self.last_response.to.tag

    def receive_request(self, request: Request, now: float) -> None:
        if request.method == "ACK":
            old = self._fire(TxEvent.RECV_ACK)
            if old is TxState.COMPLETED:
                # §17.2.1: Confirmed; Timer I absorbs further ACK retransmissions.
                self.timers.stop("G")
                self.timers.stop("H")
                i = self.config.i(self.reliable)
                if i == 0:
                    self._fire(TxEvent.TIMER_I)
                else:
                    self._start("I", now, i)
            elif old is TxState.ACCEPTED:
                self.user.ack_received(self, request, now)
            return
        if self.state is TxState.PROCEEDING and self.last_response is None:
            return  # nothing sent yet (send_trying=False): absorb
        old = self._fire(TxEvent.RECV_REQUEST)
        if old in (TxState.PROCEEDING, TxState.COMPLETED) and self.last_response is not None:
            self._send_response(self.last_response)

    def respond(self, response: Response, now: float) -> None:
        status = response.status_code
        if status < 200:
            event = TxEvent.SEND_1XX
        elif status < 300:
            event = TxEvent.SEND_2XX
        else:
            event = TxEvent.SEND_FINAL
        old = self._fire(event)
        self.last_response = response
        self._send_response(response)
        if event is TxEvent.SEND_2XX and old is TxState.PROCEEDING:
            # RFC 6026 §8.7: Timer L; the TU retransmits the 2xx itself (§13.3.1.4).
            self._start("L", now, self.config.l())
        elif event is TxEvent.SEND_FINAL:
            g = self.config.g(self.reliable)
            if g is not None:
                self._interval = g
                self._start("G", now, g)
            self._start("H", now, self.config.h())

    def _on_timer(self, name: str, now: float) -> None:
        if name == "G":
            self._fire(TxEvent.TIMER_G)
            if self.last_response is not None:
                self._send_response(self.last_response)
            self._interval = self.config.backoff(self._interval, cap=True)
            self._start("G", now, self._interval)
        elif name == "H":
            self._timeout(TxEvent.TIMER_H, now)
        elif name == "I":
            self._fire(TxEvent.TIMER_I)
        elif name == "L":
            self._fire(TxEvent.TIMER_L)


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.2."""

    KIND = "non-INVITE server"
    TABLE = NON_INVITE_SERVER
    INITIAL = TxState.TRYING

    def start(self, now: float) -> None:
        """Nothing to send: the TU answers (§17.2.2)."""

    def receive_request(self, request: Request, now: float) -> None:
        old = self._fire(TxEvent.RECV_REQUEST)
        if old is not TxState.TRYING and self.last_response is not None:
            self._send_response(self.last_response)

    def respond(self, response: Response, now: float) -> None:
        event = TxEvent.SEND_1XX if response.status_code < 200 else TxEvent.SEND_FINAL
        self._fire(event)
        self.last_response = response
        self._send_response(response)
        if event is TxEvent.SEND_FINAL:
            j = self.config.j(self.reliable)
            if j == 0:
                self._fire(TxEvent.TIMER_J)
            else:
                self._start("J", now, j)

    def _on_timer(self, name: str, now: float) -> None:
        if name == "J":
            self._fire(TxEvent.TIMER_J)
