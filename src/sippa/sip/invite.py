"""The INVITE session (RFC 3261 §13-15, §9, §14): one call, caller or callee side.

The session drives dialogs and transactions but knows nothing of SDP: offers and answers are opaque
bodies carried in and out, and every step is reported as an event so a negotiator above can drive
it (the PJSIP split between invite session and SDP negotiator). Transactions are owned by the
:class:`SessionHost` (the UA core); the session asks it to send and is told what came back.

The call state machine is the table below; re-INVITEs, 2xx retransmission (§13.3.1.4), the ACK for
2xx (§13.2.2.4), CANCEL (§9), glare (§14.1) and session timers (RFC 4028: Session-Expires on every
INVITE/UPDATE, the 422 retry, refresh and expiry) are handled around it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.sip.dialog import Dialog
from sippa.sip.events import (
    Address,
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallRinging,
    Event,
    ReinviteAnswered,
    ReinviteFailed,
    ReinviteGlare,
    ReinviteReceived,
    SessionRefreshDue,
    SessionTimerChanged,
)
from sippa.sip.headers import NameAddr
from sippa.sip.message import Headers, Request, Response, make_response
from sippa.sip.prack import OPTION_TAG as REL100
from sippa.sip.prack import RAck, first_rseq, is_reliable_provisional
from sippa.sip.session_timer import (
    MIN_SE_FLOOR,
    SessionTimer,
    SessionTimerConfig,
    UasDecision,
    parse_min_se,
    request_headers,
    supports_timer,
    uac_timer,
    uas_decision,
)
from sippa.sip.timers import TimerConfig, Timers
from sippa.sip.transaction import (
    ClientTransaction,
    InviteClientTransaction,
    ServerTransaction,
    Transaction,
)
from sippa.sip.uri import Uri

__all__ = ["CallEvent", "CallState", "InviteSession", "SessionHost", "glare_delay"]

log = logging.getLogger(__name__)


class CallState(Enum):
    """States of an INVITE session."""

    CALLING = "calling"  # UAC: INVITE sent, nothing (or only 100) back
    INCOMING = "incoming"  # UAS: INVITE received, nothing sent but 100
    EARLY = "early"  # a provisional went out (UAS) or came in (UAC)
    CONNECTING = "connecting"  # UAS: 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"  # established
    TERMINATING = "terminating"  # our BYE is pending
    TERMINATED = "terminated"


class CallEvent(Enum):
    """Inputs of the call state machine."""

    PROVISIONAL = "1xx received"
    ANSWERED = "2xx received"
    FAILED = "300-699 received"
    TIMEOUT = "INVITE timed out"
    RINGING_SENT = "1xx sent"
    ANSWER_SENT = "2xx sent"
    REJECT_SENT = "300-699 sent"
    CANCELLED = "CANCEL received"
    ACK = "ACK received"
    ACK_TIMEOUT = "no ACK for 64*T1"
    BYE_SENT = "BYE sent"
    BYE_RECEIVED = "BYE received"
    BYE_DONE = "BYE completed"


C = CallState
V = CallEvent
CALL_TABLE: dict[tuple[CallState, CallEvent], CallState] = {
    # caller (§13.2)
    (C.CALLING, V.PROVISIONAL): C.EARLY,
    (C.EARLY, V.PROVISIONAL): C.EARLY,
    (C.CALLING, V.ANSWERED): C.CONFIRMED,
    (C.EARLY, V.ANSWERED): C.CONFIRMED,
    (C.CALLING, V.FAILED): C.TERMINATED,
    (C.EARLY, V.FAILED): C.TERMINATED,
    (C.CALLING, V.TIMEOUT): C.TERMINATED,
    (C.EARLY, V.TIMEOUT): C.TERMINATED,
    # callee (§13.3)
    (C.INCOMING, V.RINGING_SENT): C.EARLY,
    (C.EARLY, V.RINGING_SENT): C.EARLY,
    (C.INCOMING, V.ANSWER_SENT): C.CONNECTING,
    (C.EARLY, V.ANSWER_SENT): C.CONNECTING,
    (C.INCOMING, V.REJECT_SENT): C.TERMINATED,
    (C.EARLY, V.REJECT_SENT): C.TERMINATED,
    (C.INCOMING, V.CANCELLED): C.TERMINATED,
    (C.EARLY, V.CANCELLED): C.TERMINATED,
    (C.INCOMING, V.BYE_RECEIVED): C.TERMINATED,  # §15.1.2: BYE on the early dialog
    (C.EARLY, V.BYE_RECEIVED): C.TERMINATED,
    (C.CONNECTING, V.ACK): C.CONFIRMED,
    (C.CONNECTING, V.ACK_TIMEOUT): C.TERMINATING,  # §13.3.1.4: BYE
    # both (§15)
    (C.CONNECTING, V.BYE_RECEIVED): C.TERMINATED,
    (C.CONFIRMED, V.BYE_SENT): C.TERMINATING,
    (C.CONFIRMED, V.BYE_RECEIVED): C.TERMINATED,
    (C.TERMINATING, V.BYE_RECEIVED): C.TERMINATING,
    (C.TERMINATING, V.ACK): C.TERMINATING,
    (C.TERMINATING, V.BYE_DONE): C.TERMINATED,
}
del C, V

# §13.2.2.4: headers of the INVITE that its ACK for a 2xx repeats.
_CREDENTIAL_HEADERS = ("Authorization", "Proxy-Authorization")

# §14.1: glare retry delays, in units of 10 ms.
GLARE_OWNER = (2.1, 4.0)
GLARE_OTHER = (0.0, 2.0)


# RFC 4028: how long after SessionRefreshDue the application is asked again if no re-INVITE
# went out (an offer of its own was pending, say); a refresh under way stops the asking.
REFRESH_ASK_AGAIN = 10.0


def glare_delay(owner: bool, rand: float) -> float:
    """§14.1 retry delay: 2.1-4 s if we own the Call-ID, else 0-2 s; ``rand`` in [0, 1).

    ``owner``: "the UAC is the owner of the Call-ID of the dialog ID (meaning it generated the
    value)" - :attr:`InviteSession.owns_call_id`, which is True for the caller of the initial
    INVITE since outgoing INVITEs get their Call-ID generated locally (§8.1.1.4).
    """
    low, high = GLARE_OWNER if owner else GLARE_OTHER
    return round(low + (high - low) * rand, 2)


class SessionHost(Protocol):
    """What an INVITE session needs from the UA core."""

    @property
    def timer_config(self) -> TimerConfig:
        """T1/T2/T4 in force."""

    @property
    def session_timer_config(self) -> SessionTimerConfig:
        """Our RFC 4028 preferences (Session-Expires, Min-SE)."""

    def start_transaction(
        self, request: Request, next_hop: Uri | None, owner: InviteSession, now: float
    ) -> ClientTransaction:
        """Add a Via with a new branch, start a client transaction for ``request``."""

    def send_cancel(
        self, txn: InviteClientTransaction, owner: InviteSession, now: float
    ) -> ClientTransaction:
        """Send the CANCEL of ``txn`` (§9.1) in its own client transaction."""

    def send_stateless(self, request: Request, next_hop: Uri) -> tuple[Request, Address]:
        """Add a Via with a new branch and send ``request`` outside any transaction (ACK 2xx)."""

    def resend(self, message: Request, destination: Address) -> None:
        """Send ``message`` again, unchanged."""

    def send_response(self, txn: ServerTransaction, response: Response, now: float) -> None:
        """Send ``response`` through ``txn`` (directly if ``txn`` already terminated)."""

    def emit(self, event: Event) -> None:
        """Queue an event for the application."""

    def new_tag(self) -> str:
        """A fresh random tag."""

    def random(self) -> float:
        """A random float in [0, 1) (glare timer)."""

    def contact(self, transport: str) -> NameAddr:
        """Our Contact for ``transport``."""

    def session_ended(self, session: InviteSession) -> None:
        """The session is terminated; forget it."""


@dataclass(slots=True)
class _Reliable1xx:
    """A reliable provisional we retransmit until its PRACK arrives (RFC 3262 §3)."""

    txn: ServerTransaction
    response: Response
    rseq: int
    interval: float


@dataclass(slots=True)
class _Pending2xx:
    """A 2xx we retransmit until its ACK arrives (§13.3.1.4)."""

    txn: ServerTransaction
    response: Response
    cseq: int
    interval: float
    initial: bool


class InviteSession:
    """One call. Create with :meth:`outgoing` (UAC) or :meth:`incoming` (UAS)."""

    def __init__(self, host: SessionHost, handle: str, *, is_uac: bool, call_id: str) -> None:
        self.host = host
        self.handle = handle
        self.is_uac = is_uac
        self.call_id = call_id
        self.owns_call_id = is_uac
        """§14.1: True if we generated the Call-ID of the dialog (glare timer). An outgoing
        INVITE always gets a Call-ID generated here (§8.1.1.4: ``UserAgentCore.invite`` takes
        none from the caller), and an incoming one brings the peer's: so the caller owns it."""
        self.state = CallState.CALLING if is_uac else CallState.INCOMING
        self.timers = Timers()
        self.dialog: Dialog | None = None
        """The established dialog (UAS: the early one from the start)."""
        self.early_dialogs: dict[str, Dialog] = {}
        """UAC: early dialogs by remote tag (forking gives several)."""
        self.end_reason: tuple[str, int | None] | None = None
        self.redirect_contacts: tuple[str, ...] = ()
        """UAC: the Contacts of a 3xx that ended the call, best first (§8.1.3.4)."""
        # UAC
        self.invite: Request | None = None
        self.invite_txn: InviteClientTransaction | None = None
        self.cancel_requested = False
        self.cancel_sent = False
        self.acks: dict[tuple[str, int], tuple[Request, Address]] = {}
        """ACKs sent for 2xx, by (remote tag, CSeq), re-sent on 2xx retransmissions."""
        self.awaiting_ack_body = False
        self._unacked_2xx: Response | None = None
        self.fork_dialogs: dict[str, Dialog] = {}
        self.bye_txn: ClientTransaction | None = None
        # UAS
        self.server_txn: ServerTransaction | None = None
        self.pending_2xx: _Pending2xx | None = None
        self.bye_deferred = False
        # re-INVITE
        self.reinvite_txn: ClientTransaction | None = None
        self.reinvite_offer: tuple[bytes, str | None] | None = None
        self.reinvite_in: ServerTransaction | None = None
        # session timer (RFC 4028)
        config = host.session_timer_config
        self.session_timer: SessionTimer | None = None
        """The session timer in force, None if the call has none."""
        self.min_se = config.floor
        """The Min-SE we send: ours, raised by a 422 (§7.3)."""
        self.se_interval = max(config.session_expires, self.min_se) if config.enabled else 0
        """The Session-Expires of our next initial INVITE (§7.1)."""
        self.peer_supports_timer = False
        """The peer listed ``timer`` in a Supported or Require."""
        self.retried_422 = False
        """UAC: our INVITE was re-sent once after a 422; a second 422 ends the call."""
        self.next_hop: Uri | None = None
        """UAC: where the initial INVITE went (its 422 retry goes there too)."""
        self.uas_timer: UasDecision | None = None
        """UAS: the session timer for our 2xx to the pending INVITE, re-INVITE or UPDATE."""
        self.peer_allows_update = False
        """The peer listed UPDATE in an Allow: our refreshes are UPDATEs without a body."""
        self.update_txn: ClientTransaction | None = None
        """Our session-refresh UPDATE in progress."""
        self.update_422 = False
        """Our refresh UPDATE was re-sent once after a 422."""
        # reliable provisional responses (RFC 3262)
        self.rel100 = False
        """UAC: our INVITE said Supported: 100rel. UAS: 100rel is on for us and the INVITE
        allows (Supported) or demands (Require) it: our 18x go reliably."""
        self.rel100_used = False
        """A reliable provisional went out (UAS) or was PRACKed (UAC)."""
        self.rseqs: dict[str, int] = {}
        """UAC: the last in-order RSeq received, by early dialog (remote tag) (§4)."""
        self.prack_txns: set[ClientTransaction] = set()
        """UAC: our PRACKs still waiting for their final response."""
        self.rseq: int | None = None
        """UAS: the RSeq of our last reliable provisional (§3)."""
        self.rel_pending: _Reliable1xx | None = None
        """UAS: the reliable provisional not PRACKed yet (at most one at a time, §3)."""
        self.rel_queue: list[tuple[int, str | None, bytes, str | None]] = []
        """UAS: provisionals that wait for the PRACK of the pending one (§3)."""
        self.held_answer: tuple[bytes, str | None] | None = None
        """UAS: our 2xx (its body), held until the pending provisional is PRACKed (§3)."""

    def __repr__(self) -> str:
        return f"<InviteSession {self.handle} {self.state.value}>"

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def outgoing(
        cls,
        host: SessionHost,
        handle: str,
        invite: Request,
        next_hop: Uri | None,
        now: float,
        *,
        rel100: bool = False,
    ) -> InviteSession:
        """Start a call: send ``invite`` (complete but for Via) towards ``next_hop``;
        ``rel100`` offers reliable provisional responses (RFC 3262 §4: Supported: 100rel)."""
        session = cls(host, handle, is_uac=True, call_id=invite.call_id)
        session.next_hop = next_hop
        session.rel100 = rel100
        for name, value in session._timer_request_headers():
            invite.headers.add(name, value)
        if rel100:
            # one Supported header with every tag (some proxies look at the first one only)
            tags = [t for t in invite.headers.get_all("Supported") if t.strip()]
            invite.headers.set("Supported", ", ".join([*tags, REL100]))
        txn = host.start_transaction(invite, next_hop, session, now)
        if not isinstance(txn, InviteClientTransaction):  # pragma: no cover - host contract
            raise LocalProtocolError("INVITE needs an INVITE client transaction", 500)
        session.invite = txn.request  # as sent, with its Via
        session.invite_txn = txn
        return session

    @classmethod
    def incoming(
        cls, host: SessionHost, handle: str, txn: ServerTransaction, now: float
    ) -> InviteSession:
        """A call from an INVITE server transaction (§13.3.1); raises RemoteProtocolError if
        the INVITE cannot create a dialog."""
        request = txn.request
        session = cls(host, handle, is_uac=False, call_id=request.call_id)
        session.server_txn = txn
        contact = host.contact(txn.destination.transport)
        if contact.uri.scheme == "sips" and not request.uri.is_secure:
            # RFC 5630 §4.1: a sip: request (even over TLS) gets a sip: Contact with
            # transport=tls; peers such as baresip drop the dialog on a sips: Contact here
            uri = contact.uri.replace(scheme="sip").with_params(transport="tls")
            contact = NameAddr(contact.display_name, uri, contact.params)
        # §12.1.1: secure when a sips Request-URI arrived over TLS
        secure = txn.destination.transport == "tls" and request.uri.is_secure
        session.dialog = Dialog.create_uas(request, host.new_tag(), contact, secure=secure)
        return session

    # --- state --------------------------------------------------------------------------------
    def _fire(self, event: CallEvent) -> CallState:
        old = self.state
        new = CALL_TABLE.get((old, event))
        if new is None:
            raise LocalProtocolError(
                f"call {self.handle}: no transition from {old.value} on {event.value}", 500
            )
        self._set_state(new, event)
        return old

    def _set_state(self, new: CallState, event: CallEvent) -> None:
        old = self.state
        if old is not new:
            log.info("[%s] %s: %s -> %s", self.call_id, event.value, old.value, new.value)
        self.state = new
        if new is CallState.TERMINATED and old is not CallState.TERMINATED:
            self.timers.stop_all()
            reason, status = self.end_reason or ("terminated", None)
            self.host.emit(CallEnded(self.handle, reason, status, self.redirect_contacts))
            self.host.session_ended(self)

    @property
    def terminated(self) -> bool:
        """True once the call is over."""
        return self.state is CallState.TERMINATED

    def _end_with(self, reason: str, status: int | None) -> None:
        if self.end_reason is None:
            self.end_reason = (reason, status)

    def matches(self, local_tag: str | None, remote_tag: str | None) -> bool:
        """True if an in-dialog message with these tags belongs to this session."""
        dialogs = [self.dialog] if self.dialog is not None else []
        dialogs += list(self.fork_dialogs.values())
        if self.state in (CallState.CALLING, CallState.EARLY):
            dialogs += list(self.early_dialogs.values())  # UAC: requests on early dialogs
        return any(
            d.local_tag == (local_tag or "") and d.remote_tag == (remote_tag or "") for d in dialogs
        )

    # --- timers -------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        """The earliest deadline of the session, or None."""
        return None if self.terminated else self.timers.earliest()

    def handle_timer(self, now: float) -> None:
        """Fire the session's due timers."""
        for name in self.timers.pop_due(now):
            if self.terminated:
                return
            if name == "2xx":
                self._retransmit_2xx(now)
            elif name == "2xx-giveup":
                self._ack_timeout(now)
            elif name == "glare":
                self._retry_reinvite(now)
            elif name == "se-refresh":
                self._refresh_due(now)
            elif name == "se-expire":
                self._session_expired(now)
            elif name == "rel1xx":
                self._retransmit_reliable(now)
            elif name == "rel1xx-giveup":
                self._reliable_timeout(now)

    # --- session timer (RFC 4028) -------------------------------------------------------------
    def _timer_request_headers(self) -> list[tuple[str, str]]:
        """§7.1/§7.4: Supported, Session-Expires and Min-SE for an INVITE or UPDATE we send."""
        config = self.host.session_timer_config
        return request_headers(config, self.min_se, self.session_timer, self.se_interval)

    def note_peer(self, message: Request | Response) -> None:
        """Remember what the peer supports (timer) and allows (UPDATE) from its messages."""
        if supports_timer(message):
            self.peer_supports_timer = True
        allow = message.headers.get_all("Allow")
        if allow:
            self.peer_allows_update = any(m.strip().upper() == "UPDATE" for m in allow)

    def _set_session_timer(self, timer: SessionTimer | None, now: float) -> None:
        """Start (or restart: a refresh succeeded) or stop the session timer (§10)."""
        self.timers.stop("se-refresh")
        self.timers.stop("se-expire")
        self.session_timer = timer
        expires_at: float | None = None
        if timer is not None:
            if timer.local_refresher:
                self.timers.start("se-refresh", now, timer.refresh_after)
            # both sides: the refresher too ends a session whose refreshes all failed
            self.timers.start("se-expire", now, timer.expire_after)
            expires_at = now + timer.interval
            log.info(
                "[%s] session timer %d s, refresher %s",
                self.call_id, timer.interval, "us" if timer.local_refresher else "peer",
            )
        self.host.emit(
            SessionTimerChanged(
                self.handle,
                timer.interval if timer else None,
                timer.local_refresher if timer else None,
                expires_at,
            )
        )

    def _refresh_due(self, now: float) -> None:
        """§10: we refresh at half the interval; the application sends the re-INVITE."""
        if self.state is not CallState.CONFIRMED or self.session_timer is None:
            return
        busy = (
            self.reinvite_txn is not None
            or self.update_txn is not None
            or self.reinvite_in is not None
            or self.pending_2xx is not None
            or self.timers.running("glare")
            or self.awaiting_ack_body
        )
        if busy:
            # an INVITE in progress refreshes the session when it succeeds; look again soon
            self.timers.start("se-refresh", now, 1.0)
            return
        if self.peer_allows_update:
            # RFC 4028 §7.4 / RFC 3311: an UPDATE without a body refreshes the session and
            # leaves the media alone; the peer said it takes UPDATE
            self._send_update(now)
            return
        # otherwise a re-INVITE, whose offer the application makes (the same media again);
        # asked again every few seconds until one is under way (or the session expires)
        self.host.emit(SessionRefreshDue(self.handle))
        self.timers.start("se-refresh", now, REFRESH_ASK_AGAIN)

    def _send_update(self, now: float) -> None:
        if self.dialog is None:  # pragma: no cover - CONFIRMED has a dialog
            return
        request = self.dialog.create_request(
            "UPDATE", extra=tuple(self._timer_request_headers())
        )
        self.update_txn = self.host.start_transaction(request, self.dialog.next_hop(), self, now)
        log.info("[%s] session refresh: UPDATE", self.call_id)

    def _on_update_response(self, response: Response, now: float) -> None:
        """The final response to our refresh UPDATE (RFC 4028 §10)."""
        status = response.status_code
        if status < 200:
            return
        self.update_txn = None
        if status < 300:
            if self.dialog is not None:
                self.dialog.refresh_target(response)
            self._refresh_answered(response, now)
            return
        if status == 422 and not self.update_422 and self._reinvite_422(response, update=True):
            self.update_422 = True
            self._send_update(now)
        elif status == 491:
            # RFC 3311 §5.1 glare: try again after the §14.1 delay
            self.timers.start("se-refresh", now, glare_delay(self.owns_call_id, self.host.random()))
        elif status in (408, 481):
            # §10: "If the session refresh request transaction times out or generates a 408
            # or 481 response, then the UAC sends a BYE request"
            self._end_with("timeout" if status == 408 else "dialog-gone", status)
            self._send_bye(now)
        else:
            log.info("[%s] refresh UPDATE got %d: the session may expire", self.call_id, status)

    def _session_expired(self, now: float) -> None:
        """§10: no refresh arrived (or ours all failed): end the session with BYE."""
        if self.state is not CallState.CONFIRMED:
            return
        log.warning("[%s] session expired without a refresh: BYE", self.call_id)
        self._end_with("session-expired", None)
        self._send_bye(now)

    def _retry_422(self, response: Response, now: float) -> bool:
        """§7.3: re-send the INVITE once with the larger Min-SE of a 422 (new CSeq, same
        Call-ID and From tag). False when there is nothing better to ask for."""
        if not self.host.session_timer_config.enabled or self.invite is None:
            return False
        if self.retried_422 or self.cancel_requested:
            return False
        try:
            wanted = parse_min_se(response.headers.get("Min-SE") or "")
        except RemoteProtocolError:
            log.info("[%s] 422 without a usable Min-SE: not retried", self.call_id)
            return False
        wanted = max(wanted, MIN_SE_FLOOR)
        if wanted <= self.se_interval:
            return False  # asking again for the same interval would loop
        self.retried_422 = True
        self.min_se = max(self.min_se, wanted)
        self.se_interval = wanted
        original = self.invite
        headers = Headers()
        for name, value in original.headers:
            if name in ("Via", "Session-Expires", "Min-SE"):
                continue
            headers.add(name, f"{original.cseq.seq + 1} INVITE" if name == "CSeq" else value)
        for name, value in self._timer_request_headers():
            if name != "Supported":  # kept from the original
                headers.add(name, value)
        retry = Request("INVITE", original.uri, headers, original.body)
        txn = self.host.start_transaction(retry, self.next_hop, self, now)
        if not isinstance(txn, InviteClientTransaction):  # pragma: no cover - host contract
            raise LocalProtocolError("INVITE needs an INVITE client transaction", 500)
        log.info("[%s] 422: INVITE again with Session-Expires %d", self.call_id, wanted)
        self.invite, self.invite_txn = txn.request, txn
        self.early_dialogs.clear()
        self.rseqs.clear()
        return True

    # --- UAC: responses -----------------------------------------------------------------------
    def on_response(self, txn: ClientTransaction, response: Response, now: float) -> None:
        """A response for one of our client transactions (§13.2.2)."""
        status = response.status_code
        if response.cseq.method == "INVITE" and 200 <= status < 300:
            key = (response.to.tag or "", response.cseq.seq)
            if key in self.acks:
                ack, destination = self.acks[key]
                self.host.resend(ack, destination)  # §13.2.2.4: ACK every 2xx retransmission
                return
        if self.terminated:
            return
        if txn is self.invite_txn:
            self._on_invite_response(response, now)
        elif txn is self.reinvite_txn:
            self._on_reinvite_response(response, now)
        elif txn is self.update_txn:
            self._on_update_response(response, now)
        elif txn is self.bye_txn and status >= 200:
            self._bye_done(status)
        elif txn in self.prack_txns and status >= 200:
            self.prack_txns.discard(txn)
            if status >= 300:
                # RFC 3262 §4: the PRACK is a request in the early dialog like any other; its
                # failure does not end the INVITE, whose own final response decides the call
                log.info("[%s] our PRACK got %d; the call goes on", self.call_id, status)
        # responses to CANCEL and to BYEs of dropped forks need nothing

    def _on_invite_response(self, response: Response, now: float) -> None:
        status = response.status_code
        tag = response.to.tag or ""
        if status < 200:
            if self.cancel_requested and not self.cancel_sent:
                self._send_cancel(now)  # §9.1: now that a provisional arrived
            if status == 100:
                return
            if tag and self.invite is not None:
                dialog = self.early_dialogs.get(tag)
                if dialog is None:
                    self.early_dialogs[tag] = Dialog.create_uac(self.invite, response)
                else:
                    dialog.refresh_target(response)
            rseq = is_reliable_provisional(response) if self.rel100 and tag else None
            if rseq is not None and not self._prack(tag, rseq, response, now):
                return  # a retransmission, or out of order: not processed (RFC 3262 §4)
            if self.state in (CallState.CALLING, CallState.EARLY):
                self._fire(CallEvent.PROVISIONAL)
                self.host.emit(
                    CallRinging(
                        self.handle,
                        status,
                        response.reason,
                        response.body,
                        response.content_type,
                    )
                )
            return
        if status < 300:
            self._on_invite_2xx(response, now)
            return
        # 300-699: the transaction sent the ACK (§17.1.1.3)
        early = self.state in (CallState.CALLING, CallState.EARLY)
        if status == 422 and early and self._retry_422(response, now):
            return
        if self.state in (CallState.CALLING, CallState.EARLY):
            reason = "cancelled" if self.cancel_requested and status == 487 else "rejected"
            if status < 400:
                self.redirect_contacts = redirect_targets(response)
            self._end_with(reason, status)
            self._fire(CallEvent.FAILED)

    def _prack(self, tag: str, rseq: int, response: Response, now: float) -> bool:
        """RFC 3262 §4: PRACK a reliable provisional on its early dialog when it is the next in
        order (the first of the dialog: any RSeq); False for one that must not be processed."""
        last = self.rseqs.get(tag)
        if last is not None and rseq != last + 1:
            log.debug("[%s] reliable %d RSeq %d after %d: ignored",
                      self.call_id, response.status_code, rseq, last)
            return False
        dialog = self.early_dialogs.get(tag)
        if dialog is None or self.state not in (CallState.CALLING, CallState.EARLY):
            return False
        self.rseqs[tag] = rseq
        rack = RAck(rseq, response.cseq.seq, response.cseq.method)
        prack = dialog.create_request("PRACK", extra=(("RAck", str(rack)),))
        self.prack_txns.add(self.host.start_transaction(prack, dialog.next_hop(), self, now))
        self.rel100_used = True
        log.info("[%s] PRACK for reliable %d (RSeq %d)", self.call_id, response.status_code, rseq)
        return True

    def _on_invite_2xx(self, response: Response, now: float) -> None:
        if self.invite is None:  # pragma: no cover - UAC only
            return
        tag = response.to.tag or ""
        if self.dialog is None and self.state in (CallState.CALLING, CallState.EARLY):
            dialog = self.early_dialogs.pop(tag, None)
            if dialog is None:
                dialog = Dialog.create_uac(self.invite, response)
            dialog.confirm(response)
            self.dialog = dialog
            self._fire(CallEvent.ANSWERED)
            self.note_peer(response)
            config = self.host.session_timer_config
            if config.enabled:  # RFC 4028 §7.2
                timer = uac_timer(response, config, None, peer_supports=self.peer_supports_timer)
                self._set_session_timer(timer, now)
            if self.invite.body or self.cancel_requested:
                self._send_ack(dialog, self.invite, response, b"", None)
            else:
                # delayed offer: the 2xx carries the offer, the ACK must carry the answer
                self.awaiting_ack_body = True
                self._unacked_2xx = response
            if self.cancel_requested:
                # §9.1: the CANCEL lost the race; end the call we did not want any more
                self._end_with("cancelled", response.status_code)
                self._send_bye(now)
                return
            self.host.emit(
                CallAnswered(self.handle, response, response.body, response.content_type)
            )
            return
        if self.dialog is not None and tag == self.dialog.remote_tag:
            return  # retransmission before our (delayed) ACK went out
        # §13.2.2.4: a 2xx from another fork: ACK it, then BYE that dialog
        if tag in self.fork_dialogs:
            return
        fork = Dialog.create_uac(self.invite, response)
        self.fork_dialogs[tag] = fork
        self._send_ack(fork, self.invite, response, b"", None)
        bye = fork.create_request("BYE")
        self.host.start_transaction(bye, fork.next_hop(), self, now)
        log.info("[%s] 2xx from fork %r: ACK + BYE", self.call_id, tag)

    def _send_ack(
        self,
        dialog: Dialog,
        invite: Request,
        response: Response,
        body: bytes,
        content_type: str | None,
    ) -> None:
        """ACK a 2xx to ``invite`` (the INVITE as sent, with any credentials)."""
        ack = dialog.create_ack(response.cseq.seq, body, content_type)
        # §13.2.2.4: "The ACK MUST contain the same credentials as the INVITE" (after a 401/407
        # the INVITE that got the 2xx is the retry the core sent with them).
        for name in _CREDENTIAL_HEADERS:
            for value in invite.headers.get_all(name):
                ack.headers.add(name, value)
        sent, destination = self.host.send_stateless(ack, dialog.next_hop())
        self.acks[(dialog.remote_tag, response.cseq.seq)] = (sent, destination)

    def ack(self, body: bytes, content_type: str | None = None) -> None:
        """Send the ACK carrying the answer to an offer received in a 2xx (delayed offer)."""
        if (
            not self.awaiting_ack_body
            or self.dialog is None
            or self._unacked_2xx is None
            or self.invite is None
        ):
            raise LocalProtocolError(f"call {self.handle} is not waiting for an ACK body", 500)
        self.awaiting_ack_body = False
        self._send_ack(self.dialog, self.invite, self._unacked_2xx, body, content_type)
        self._unacked_2xx = None

    def on_stray_2xx(self, response: Response) -> None:
        """A 2xx whose transaction is gone (Timer M fired): ACK it again if we know it."""
        key = (response.to.tag or "", response.cseq.seq)
        if key in self.acks:
            ack, destination = self.acks[key]
            self.host.resend(ack, destination)

    def on_timeout(self, txn: Transaction, now: float, *, transport: bool = False) -> None:
        """A transaction of ours timed out, or (``transport``) could not be sent: §8.1.3.1
        treats the first as 408 and the second as 503."""
        if self.terminated:
            return
        status, reason = (503, "transport-error") if transport else (408, "timeout")
        if txn is self.invite_txn and self.state in (CallState.CALLING, CallState.EARLY):
            self._end_with(reason, status)
            self._fire(CallEvent.TIMEOUT)
        elif txn is self.reinvite_txn:
            self.reinvite_txn = None
            self.host.emit(ReinviteFailed(self.handle, status))
            # §14.1: a 408 to a re-INVITE (or an unreachable peer) ends the dialog
            self._end_with(reason, status)
            self._send_bye(now)
        elif txn is self.update_txn:
            self.update_txn = None
            self._end_with(reason, status)  # RFC 4028 §10: the refresh failed
            self._send_bye(now)
        elif txn is self.bye_txn:
            self._bye_done(status)
        elif txn in self.prack_txns:
            self.prack_txns.discard(txn)  # RFC 3262 §4: the INVITE decides the call
            log.info("[%s] our PRACK got no answer (%d); the call goes on", self.call_id, status)
        elif txn is self.server_txn and self.state is CallState.CONNECTING:
            self._ack_timeout(now)

    # --- UAC: commands ------------------------------------------------------------------------
    def cancel(self, now: float) -> None:
        """Cancel our pending INVITE (§9.1); waits for a provisional before sending."""
        if not self.is_uac:
            raise LocalProtocolError("only the caller can CANCEL", 500)
        if self.state is CallState.CONFIRMED:
            self._end_with("cancelled", None)
            self.bye(now)
            return
        if self.state not in (CallState.CALLING, CallState.EARLY) or self.cancel_requested:
            return
        self.cancel_requested = True
        if self.invite_txn is not None and self.invite_txn.provisional_seen:
            self._send_cancel(now)

    def _send_cancel(self, now: float) -> None:
        if self.invite_txn is None or self.invite_txn.terminated:
            return
        self.cancel_sent = True
        self.host.send_cancel(self.invite_txn, self, now)

    # --- UAS: commands ------------------------------------------------------------------------
    def _uas_response(
        self, status: int, reason: str | None, body: bytes, content_type: str | None
    ) -> tuple[ServerTransaction, Response]:
        if self.server_txn is None or self.dialog is None:
            raise LocalProtocolError("not an incoming call", 500)
        txn = self.server_txn
        response = make_response(
            txn.request,
            status,
            reason,
            to_tag=self.dialog.local_tag,
            record_route=status < 300,
        )
        if status < 300 and self.dialog.local_contact is not None:
            response.headers.add("Contact", str(self.dialog.local_contact))
        if body:
            response.headers.add("Content-Type", content_type or "application/sdp")
            response.body = body
        return txn, response

    def ringing(
        self,
        now: float,
        status: int = 180,
        body: bytes = b"",
        content_type: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Send a provisional (180 Ringing, 183 with early media...) on the incoming INVITE."""
        if not 100 < status < 200:
            raise LocalProtocolError(f"{status} is not a provisional status", 500)
        if self.held_answer is not None:
            raise LocalProtocolError(f"call {self.handle} is already answered", 500)
        self._fire(CallEvent.RINGING_SENT)
        if self.rel100:
            if self.rel_pending is not None:
                # §3: "the UAS MUST NOT send a second reliable provisional response until the
                # first is acknowledged"
                self.rel_queue.append((status, reason, body, content_type))
                return
            self._send_reliable(now, status, reason, body, content_type)
            return
        txn, response = self._uas_response(status, reason, body, content_type)
        self.host.send_response(txn, response, now)

    # --- reliable provisionals, UAS side (RFC 3262 §3) ----------------------------------------
    def _send_reliable(
        self, now: float, status: int, reason: str | None, body: bytes, content_type: str | None
    ) -> None:
        txn, response = self._uas_response(status, reason, body, content_type)
        self.rseq = first_rseq(self.host.random()) if self.rseq is None else self.rseq + 1
        response.headers.add("Require", REL100)
        response.headers.add("RSeq", str(self.rseq))
        t1 = self.host.timer_config.t1
        self.rel_pending = _Reliable1xx(txn, response, self.rseq, t1)
        self.rel100_used = True
        self.host.send_response(txn, response, now)
        # §3: retransmitted at T1, doubling each time, for 64*T1
        self.timers.start("rel1xx", now, t1)
        self.timers.start("rel1xx-giveup", now, 64 * t1)

    def _retransmit_reliable(self, now: float) -> None:
        pending = self.rel_pending
        if pending is None or pending.txn.final_sent:
            return
        self.host.send_response(pending.txn, pending.response, now)
        pending.interval *= 2
        self.timers.start("rel1xx", now, pending.interval)

    def _stop_reliable(self) -> None:
        self.rel_pending = None
        self.rel_queue.clear()
        self.held_answer = None
        self.timers.stop("rel1xx")
        self.timers.stop("rel1xx-giveup")

    def _reliable_timeout(self, now: float) -> None:
        """§3: no PRACK for 64*T1: "the UAS SHOULD reject the original request with a 5xx"."""
        if self.rel_pending is None:
            return
        log.warning("[%s] no PRACK for our reliable provisional: 504", self.call_id)
        self._stop_reliable()
        if self.state in (CallState.INCOMING, CallState.EARLY):
            txn, response = self._uas_response(504, "No PRACK", b"", None)
            self._end_with("prack-timeout", 504)
            self.host.send_response(txn, response, now)
            self._fire(CallEvent.REJECT_SENT)

    def _on_prack(self, txn: ServerTransaction, request: Request, now: float) -> None:
        """§3: a PRACK in our early dialog: 200 if it acknowledges the pending reliable
        provisional (481 otherwise), then the next provisional or the held 2xx goes out."""
        try:
            rack = RAck.parse(request.headers.get("RAck") or "")
        except RemoteProtocolError as exc:
            self.host.send_response(txn, txn.make_response(exc.status_code), now)
            return
        pending = self.rel_pending
        if pending is None or rack != RAck(
            pending.rseq, pending.response.cseq.seq, pending.response.cseq.method
        ):
            # "If the PRACK does not match any unacknowledged reliable provisional response,
            # the UAS MUST respond to the PRACK with a 481"
            self.host.send_response(txn, txn.make_response(481), now)
            return
        self.rel_pending = None
        self.timers.stop("rel1xx")
        self.timers.stop("rel1xx-giveup")
        if request.body:
            # §5: an offer in a PRACK needs our answer in its 200; our provisionals carry no
            # offer and the INVITE's is answered in the 2xx: a PRACK offer is not taken
            log.info("[%s] PRACK with a body: 488 (the provisional counts as PRACKed)",
                     self.call_id)
            self.host.send_response(txn, txn.make_response(488), now)
        else:
            self.host.send_response(txn, txn.make_response(200), now)
        log.info("[%s] PRACK for RSeq %d", self.call_id, rack.rseq)
        if self.held_answer is not None:
            body, content_type = self.held_answer
            self.held_answer = None
            self.rel_queue.clear()
            self.answer(now, body, content_type)
        elif self.rel_queue and self.state is CallState.EARLY:
            self._send_reliable(now, *self.rel_queue.pop(0))

    def answer(self, now: float, body: bytes = b"", content_type: str | None = None) -> None:
        """Accept the incoming call with a 200 (§13.3.1.4); retransmitted until the ACK.

        RFC 3262 §3: while a reliable provisional waits for its PRACK the 2xx is held and
        goes out when the PRACK arrives."""
        if self.held_answer is not None:
            raise LocalProtocolError(f"call {self.handle} is already answered", 500)
        if self.rel_pending is not None and self.state in (CallState.INCOMING, CallState.EARLY):
            log.info("[%s] 2xx held until the PRACK", self.call_id)
            self.held_answer = (body, content_type)
            return
        self._fire(CallEvent.ANSWER_SENT)
        txn, response = self._uas_response(200, None, body, content_type)
        decision, self.uas_timer = self.uas_timer, None
        if decision is not None:
            for name, value in decision.response_headers():
                response.headers.add(name, value)
        self.host.send_response(txn, response, now)
        self._start_2xx(txn, response, now, initial=True)
        if decision is not None and self.host.session_timer_config.enabled:
            self._set_session_timer(decision.timer, now)

    def reject(self, now: float, status: int = 486, reason: str | None = None) -> None:
        """Refuse the incoming call with a 300-699 (§13.3.1.3)."""
        if not 300 <= status < 700:
            raise LocalProtocolError(f"{status} is not a rejection status", 500)
        if (self.state, CallEvent.REJECT_SENT) not in CALL_TABLE:
            raise LocalProtocolError(
                f"call {self.handle} is {self.state.value}: cannot reject", 500
            )
        self._stop_reliable()
        txn, response = self._uas_response(status, reason, b"", None)
        self._end_with("rejected", status)
        self.host.send_response(txn, response, now)
        self._fire(CallEvent.REJECT_SENT)

    def on_cancel(self, now: float) -> None:
        """A CANCEL matched our INVITE server transaction (§9.2); the core sent its 200."""
        if self.state not in (CallState.INCOMING, CallState.EARLY) or self.server_txn is None:
            return  # final response already sent: no effect
        self._stop_reliable()
        txn, response = self._uas_response(487, None, b"", None)
        self._end_with("cancelled", 487)
        self.host.send_response(txn, response, now)
        self._fire(CallEvent.CANCELLED)

    # --- 2xx retransmission (§13.3.1.4) -------------------------------------------------------
    def _start_2xx(
        self, txn: ServerTransaction, response: Response, now: float, *, initial: bool
    ) -> None:
        config = self.host.timer_config
        self.pending_2xx = _Pending2xx(txn, response, response.cseq.seq, config.t1, initial)
        self.timers.start("2xx", now, config.t1)
        self.timers.start("2xx-giveup", now, 64 * config.t1)

    def _retransmit_2xx(self, now: float) -> None:
        pending = self.pending_2xx
        if pending is None:
            return
        self.host.send_response(pending.txn, pending.response, now)
        pending.interval = self.host.timer_config.backoff(pending.interval, cap=True)
        self.timers.start("2xx", now, pending.interval)

    def _ack_timeout(self, now: float) -> None:
        pending = self.pending_2xx
        self.pending_2xx = None
        self.timers.stop("2xx")
        self.timers.stop("2xx-giveup")
        log.warning("[%s] no ACK for our 2xx: ending the call with BYE", self.call_id)
        # §13.3.1.4: the dialog is confirmed, but the session is ended with a BYE
        self._end_with("ack-timeout", None)
        if self.state is CallState.CONNECTING:
            self._fire(CallEvent.ACK_TIMEOUT)
            self._send_bye(now, from_state_change=True)
        elif pending is not None and not pending.initial:
            self._send_bye(now)

    def on_ack(self, ack: Request, now: float) -> None:
        """An ACK for a 2xx of ours (§13.3.1.4): stop retransmitting."""
        pending = self.pending_2xx
        if pending is None or ack.cseq.seq != pending.cseq:
            return  # a retransmitted ACK, or a stale one
        self.pending_2xx = None
        self.timers.stop("2xx")
        self.timers.stop("2xx-giveup")
        if pending.initial and self.state is CallState.CONNECTING:
            self._fire(CallEvent.ACK)
            self.host.emit(CallConfirmed(self.handle, ack.body, ack.content_type))
            if self.bye_deferred:
                self.bye(now)

    # --- in-dialog requests -------------------------------------------------------------------
    def on_request(self, txn: ServerTransaction, request: Request, now: float) -> bool:
        """An in-dialog request (§12.2.2). Returns False for methods the core should pass to
        the application (INFO, NOTIFY, REFER, MESSAGE, OPTIONS...)."""
        if self.terminated:
            return False
        dialog = self.dialog
        if dialog is None:
            early = self.early_dialogs.get(request.from_.tag or "") if self.is_uac else None
            if early is None:
                return False
            return self._on_early_request(early, txn, request, now)
        dialog.receive_request(request)  # may raise RemoteProtocolError(500)
        if request.method == "PRACK":
            if self.is_uac:
                raise RemoteProtocolError("no reliable provisional of ours", 481)
            self._on_prack(txn, request, now)
            return True
        if request.method == "BYE":
            self._on_bye(txn, request, now)
            return True
        if request.method in ("INVITE", "UPDATE"):
            self._on_reinvite(txn, request, now)
            return True
        return False

    def _on_early_request(
        self, early: Dialog, txn: ServerTransaction, request: Request, now: float
    ) -> bool:
        """UAC: a request from the callee on an early dialog, our INVITE still pending."""
        if request.method in ("BYE", "UPDATE", "PRACK"):
            # §15: the callee MUST NOT send a BYE on an early dialog; early UPDATE (RFC 3311)
            # is not supported: both are refused as before early dialogs were matched; and a
            # PRACK acknowledges nothing of ours (we send no provisional as caller)
            raise RemoteProtocolError("no such dialog", 481)
        early.receive_request(request)  # may raise RemoteProtocolError(500)
        if request.method == "INVITE":
            # §14.2: "A UAS that receives an INVITE on a dialog while an INVITE it had sent on
            # that dialog is in progress MUST return a 491 (Request Pending) response"
            self.host.send_response(txn, txn.make_response(491), now)
            return True
        return False

    def _reject_500_retry_after(self, txn: ServerTransaction, now: float) -> None:
        """§14.2: 500 with a Retry-After "randomly chosen value of between 0 and 10 seconds"."""
        response = txn.make_response(500)
        response.headers.add("Retry-After", str(min(10, int(self.host.random() * 11))))
        self.host.send_response(txn, response, now)

    def _on_bye(self, txn: ServerTransaction, request: Request, now: float) -> None:
        # §15.1.2: 200 to the BYE, 487 to any pending INVITE
        self.host.send_response(txn, txn.make_response(200), now)
        if self.state is CallState.TERMINATING:
            return
        self._end_with("bye-remote", None)
        early = self.state in (CallState.INCOMING, CallState.EARLY)
        if early and self.server_txn is not None and not self.server_txn.final_sent:
            self._stop_reliable()
            _, response = self._uas_response(487, None, b"", None)
            self.host.send_response(self.server_txn, response, now)
        if self.reinvite_in is not None and not self.reinvite_in.final_sent:
            self.host.send_response(self.reinvite_in, self.reinvite_in.make_response(487), now)
            self.reinvite_in = None
        self.pending_2xx = None
        self._fire(CallEvent.BYE_RECEIVED)

    def _on_reinvite(self, txn: ServerTransaction, request: Request, now: float) -> None:
        invite = request.method == "INVITE"
        # UAS: our final response to the initial INVITE is still to be sent
        early = self.state in (CallState.INCOMING, CallState.EARLY)
        if self.state not in (CallState.CONFIRMED, CallState.CONNECTING) and not (early and invite):
            self.host.send_response(txn, txn.make_response(500 if invite else 491), now)
            return
        if self.reinvite_txn is not None or (invite and self.awaiting_ack_body):
            # §14.2: an INVITE of ours is in progress on this dialog (a re-INVITE, or the
            # initial INVITE whose ACK still waits for the application's answer): 491
            self.host.send_response(txn, txn.make_response(491), now)
            return
        if early or self.reinvite_in is not None or self.pending_2xx is not None:
            # §14.2: an earlier INVITE of theirs is still in progress: 500 + Retry-After 0-10 s
            self._reject_500_retry_after(txn, now)
            return
        self.note_peer(request)
        try:
            decision = uas_decision(request, self.host.session_timer_config)
        except RemoteProtocolError as exc:
            self.host.send_response(txn, txn.make_response(exc.status_code), now)
            return
        if decision.too_small is not None:
            # RFC 4028 §9 (a refresh too): 422 with our Min-SE; the session stays as it was
            response = txn.make_response(422)
            response.headers.add("Min-SE", str(decision.too_small))
            self.host.send_response(txn, response, now)
            return
        self.uas_timer = decision
        if self.dialog is not None:
            self.dialog.refresh_target(request)  # §12.2.2 target refresh
        self.reinvite_in = txn
        self.host.emit(
            ReinviteReceived(self.handle, request.method, request.body, request.content_type)
        )

    def accept_reinvite(
        self, now: float, body: bytes = b"", content_type: str | None = None
    ) -> None:
        """Answer the pending re-INVITE/UPDATE with 200 (and our answer)."""
        txn = self.reinvite_in
        if txn is None or self.dialog is None:
            raise LocalProtocolError(f"call {self.handle} has no pending re-INVITE", 500)
        self.reinvite_in = None
        response = txn.make_response(200, to_tag=self.dialog.local_tag)
        if self.dialog.local_contact is not None:
            response.headers.add("Contact", str(self.dialog.local_contact))
        decision, self.uas_timer = self.uas_timer, None
        if decision is not None:
            for name, value in decision.response_headers():
                response.headers.add(name, value)
        if body:
            response.headers.add("Content-Type", content_type or "application/sdp")
            response.body = body
        self.host.send_response(txn, response, now)
        if txn.method == "INVITE":
            self._start_2xx(txn, response, now, initial=False)
        if decision is not None and self.host.session_timer_config.enabled:
            # RFC 4028 §10: the peer's refresh (re-INVITE or UPDATE) restarts the timer
            self._set_session_timer(decision.timer, now)

    def reject_reinvite(self, now: float, status: int = 488) -> None:
        """Refuse the pending re-INVITE/UPDATE; the old session stays (§14.2)."""
        txn = self.reinvite_in
        if txn is None:
            raise LocalProtocolError(f"call {self.handle} has no pending re-INVITE", 500)
        self.reinvite_in = None
        self.uas_timer = None
        self.host.send_response(txn, txn.make_response(status), now)

    # --- outgoing re-INVITE (§14.1) -----------------------------------------------------------
    def reinvite(self, now: float, body: bytes = b"", content_type: str | None = None) -> None:
        """Send a re-INVITE with a new offer (opaque ``body``)."""
        if self.state is not CallState.CONFIRMED or self.dialog is None:
            raise LocalProtocolError(f"call {self.handle} is not established", 500)
        if self.reinvite_txn is not None or self.timers.running("glare"):
            raise LocalProtocolError(f"call {self.handle} has a re-INVITE pending", 491)
        self.reinvite_offer = (body, content_type)
        self._send_reinvite(now)

    def _send_reinvite(self, now: float) -> None:
        if self.dialog is None or self.reinvite_offer is None:  # pragma: no cover
            return
        body, content_type = self.reinvite_offer
        # RFC 4028 §7.4: every re-INVITE is a session refresh and says so
        request = self.dialog.create_request(
            "INVITE",
            body=body,
            content_type=content_type,
            extra=tuple(self._timer_request_headers()),
        )
        self.reinvite_txn = self.host.start_transaction(request, self.dialog.next_hop(), self, now)

    def _retry_reinvite(self, now: float) -> None:
        if self.state is not CallState.CONFIRMED or self.reinvite_txn is not None:
            return
        if self.reinvite_in is not None or self.pending_2xx is not None:
            # the peer's re-INVITE is still in progress: wait another round (§14.1)
            self.timers.start("glare", now, glare_delay(self.owns_call_id, self.host.random()))
            return
        self._send_reinvite(now)

    def _on_reinvite_response(self, response: Response, now: float) -> None:
        status = response.status_code
        if status < 200 or self.dialog is None:
            return
        txn, self.reinvite_txn = self.reinvite_txn, None
        if status < 300:
            self.dialog.refresh_target(response)
            if txn is not None:
                self._send_ack(self.dialog, txn.request, response, b"", None)
            self.reinvite_offer = None
            self._refresh_answered(response, now)
            self.host.emit(ReinviteAnswered(self.handle, response.body, response.content_type))
        elif status == 422 and self._reinvite_422(response):
            self._send_reinvite(now)  # RFC 4028 §7.4: once more, with the larger interval
        elif status == 491:
            # §14.1: glare; retry after a random delay that depends on who owns the Call-ID
            # (who generated it: see owns_call_id)
            delay = glare_delay(self.owns_call_id, self.host.random())
            self.timers.start("glare", now, delay)
            self.host.emit(ReinviteGlare(self.handle, now + delay))
        else:
            self.reinvite_offer = None
            self.host.emit(ReinviteFailed(self.handle, status))
            if status in (408, 481):
                # §14.1 / §12.2.1.2: the dialog is gone or unreachable
                self._end_with("timeout" if status == 408 else "dialog-gone", status)
                self._send_bye(now)

    def _refresh_answered(self, response: Response, now: float) -> None:
        """RFC 4028 §7.4: the 2xx to our re-INVITE or UPDATE sets the timer from now on."""
        self.note_peer(response)
        config = self.host.session_timer_config
        if config.enabled:
            timer = uac_timer(
                response, config, self.session_timer, peer_supports=self.peer_supports_timer
            )
            self._set_session_timer(timer, now)

    def timer_request_headers(self) -> list[tuple[str, str]]:
        """Session-timer headers for an UPDATE the application sends in this dialog."""
        return self._timer_request_headers()

    def _reinvite_422(self, response: Response, *, update: bool = False) -> bool:
        """Take the Min-SE of a 422 to our re-INVITE or UPDATE (§7.4); False if it asks
        nothing new."""
        if not self.host.session_timer_config.enabled:
            return False
        if not update and self.reinvite_offer is None:
            return False
        try:
            wanted = max(parse_min_se(response.headers.get("Min-SE") or ""), MIN_SE_FLOOR)
        except RemoteProtocolError:
            return False
        current = self.session_timer.interval if self.session_timer else self.se_interval
        if wanted <= current:
            return False
        self.min_se = max(self.min_se, wanted)
        self.se_interval = wanted
        if self.session_timer is not None:
            self.session_timer = SessionTimer(wanted, self.session_timer.local_refresher)
        return True

    # --- the application's own in-dialog requests ----------------------------------------------
    def in_dialog_response(self, method: str, response: Response, now: float) -> None:
        """Final response to an in-dialog request the application sent (INFO, UPDATE...)."""
        status = response.status_code
        if self.dialog is not None and method == "UPDATE" and 200 <= status < 300:
            self.dialog.refresh_target(response)  # §12.2: UPDATE is a target refresh
            if self.state is CallState.CONFIRMED:
                self._refresh_answered(response, now)  # and a session refresh (RFC 4028)
        elif status in (408, 481):
            self.in_dialog_failure(status, now)

    def in_dialog_failure(self, status: int, now: float) -> None:
        """§12.2.1.2: a 481 or 408 to an in-dialog request ends the dialog (with a BYE)."""
        if self.state is not CallState.CONFIRMED:
            return
        self._end_with("timeout" if status == 408 else "dialog-gone", status)
        self._send_bye(now)

    # --- BYE (§15) ----------------------------------------------------------------------------
    def bye(self, now: float) -> None:
        """Hang up an established call."""
        if self.state is CallState.CONNECTING:
            # §15: the callee must not send BYE before the ACK arrived or the 2xx timed out
            self.bye_deferred = True
            return
        if self.state is not CallState.CONFIRMED:
            raise LocalProtocolError(f"call {self.handle} is {self.state.value}: cannot BYE", 500)
        self._send_bye(now)

    def _send_bye(self, now: float, *, from_state_change: bool = False) -> None:
        if self.dialog is None or self.bye_txn is not None:
            return
        if not from_state_change:
            if self.state is not CallState.CONFIRMED:
                return
            self._fire(CallEvent.BYE_SENT)
        self._end_with("bye-local", None)
        if self.reinvite_in is not None and not self.reinvite_in.final_sent:
            self.host.send_response(self.reinvite_in, self.reinvite_in.make_response(487), now)
            self.reinvite_in = None
        self.timers.stop("glare")
        bye = self.dialog.create_request("BYE")
        self.bye_txn = self.host.start_transaction(bye, self.dialog.next_hop(), self, now)

    def _bye_done(self, status: int) -> None:
        """Our BYE got its final response (or timed out: 408/503)."""
        if self.end_reason is None or self.end_reason[0] == "bye-local":
            self.end_reason = ("bye-local", status)
        if self.state is CallState.TERMINATING:
            self._fire(CallEvent.BYE_DONE)

    def hangup(self, now: float) -> None:
        """End the call whatever its state: CANCEL, reject (603), or BYE."""
        if self.state in (CallState.CALLING, CallState.EARLY) and self.is_uac:
            self.cancel(now)
        elif self.state in (CallState.INCOMING, CallState.EARLY):
            self.reject(now, 603)
        elif self.state in (CallState.CONNECTING, CallState.CONFIRMED):
            self.bye(now)

    def replace_transaction(self, old: ClientTransaction, new: ClientTransaction) -> None:
        """The core re-sent ``old``'s request with credentials as ``new`` (401/407)."""
        if old is self.invite_txn and isinstance(new, InviteClientTransaction):
            self.invite_txn = new
            self.invite = new.request
        elif old is self.reinvite_txn:
            self.reinvite_txn = new
        elif old is self.bye_txn:
            self.bye_txn = new
        elif old is self.update_txn:
            self.update_txn = new
        elif old in self.prack_txns:
            self.prack_txns.discard(old)
            self.prack_txns.add(new)


def redirect_targets(response: Response) -> tuple[str, ...]:
    """The Contact URIs of a 3xx, highest q first (RFC 3261 §8.1.3.4, §16.7 step 6 order;
    no q counts as 1.0); ties keep their order. A malformed Contact header gives none."""
    try:
        contacts = response.contacts
    except RemoteProtocolError:
        return ()
    ranked = [
        (-(c.q if c.q is not None and 0.0 <= c.q <= 1.0 else 1.0), n, str(c.uri))
        for n, c in enumerate(contacts)
        if not c.is_star
    ]
    return tuple(uri for _, _, uri in sorted(ranked))
