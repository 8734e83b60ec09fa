"""What the UA core tells its user, and the address type it speaks in.

Every event is a frozen, slotted dataclass; one class per occurrence. ``call`` fields are the
opaque call handles returned by :meth:`sippa.sip.core.UserAgentCore.invite` or carried by
:class:`IncomingCall`; ``transaction`` fields are the opaque handles returned by
:meth:`~sippa.sip.core.UserAgentCore.send_request` or carried by :class:`RequestReceived`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sippa.sip.message import Request, Response

__all__ = [
    "Address",
    "CallAnswered",
    "CallConfirmed",
    "CallEnded",
    "CallRinging",
    "Event",
    "IncomingCall",
    "MessageRejected",
    "ReinviteAnswered",
    "ReinviteFailed",
    "ReinviteGlare",
    "ReinviteReceived",
    "RequestReceived",
    "RequestScreened",
    "ResponseReceived",
    "SessionRefreshDue",
    "SessionTimerChanged",
    "TransactionTimeout",
    "TransportError",
]


@dataclass(frozen=True, slots=True)
class Address:
    """Where a message came from or goes to.

    For outgoing requests ``host`` may be a DNS name taken from a URI; the runtime resolves it
    (RFC 3263). For anything received it is the literal source IP.
    """

    transport: str
    """Lower-case transport name: "udp", "tcp", "tls" (or "ws"/"wss")."""
    host: str
    """IP address or host name, IPv6 without brackets."""
    port: int
    """Port number."""
    connection: int | None = None
    """Opaque id of the TCP/TLS connection a message arrived on; replies reuse it when set."""

    def same_peer(self, other: Address) -> bool:
        """True if both name the same transport, host and port (the connection id is ignored)."""
        return (self.transport, self.host.lower(), self.port) == (
            other.transport,
            other.host.lower(),
            other.port,
        )


# --- INVITE sessions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A new INVITE arrived; answer with ``core.answer()``/``core.reject()``/``core.ringing()``."""

    call: str
    """Handle of the new call."""
    request: Request
    """The INVITE as received (From, To, P-Asserted-Identity... are there)."""
    body: bytes
    """The offer (opaque; usually SDP), possibly empty (offer expected in the 2xx then)."""
    content_type: str | None
    """Content-Type of ``body``."""


@dataclass(frozen=True, slots=True)
class CallRinging:
    """Our INVITE got a provisional response (180 Ringing, 183 Session Progress...)."""

    call: str
    """Handle of the call."""
    status_code: int
    """The 1xx status (100 Trying is not reported)."""
    reason: str
    """Its reason phrase."""
    body: bytes
    """Early-media answer if any (opaque), else empty."""
    content_type: str | None
    """Content-Type of ``body``."""


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """Our INVITE was answered with a 2xx; the ACK has been sent (RFC 3261 §13.2.2.4)."""

    call: str
    """Handle of the call."""
    response: Response
    """The 2xx that established the dialog."""
    body: bytes
    """The answer (or the offer, if the INVITE had none), opaque."""
    content_type: str | None
    """Content-Type of ``body``."""


@dataclass(frozen=True, slots=True)
class CallConfirmed:
    """The ACK for our 2xx arrived: the incoming call is fully established (§13.3.1.4)."""

    call: str
    """Handle of the call."""
    body: bytes
    """Body of the ACK (the answer when our 2xx carried the offer), opaque, often empty."""
    content_type: str | None
    """Content-Type of ``body``."""


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call is over; the handle is no longer valid."""

    call: str
    """Handle of the call."""
    reason: str
    """Why: "bye-local", "bye-remote", "rejected" (a 300-699 either way), "cancelled",
    "timeout" (no answer, or 408 in the dialog), "transport-error" (503, §8.1.3.1),
    "ack-timeout" (§13.3.1.4), "dialog-gone" (481 in the dialog), "session-expired" (RFC 4028
    §10: nobody refreshed the session, we sent BYE)."""
    status: int | None = None
    """The SIP status that ended it (final response of a failed INVITE, 487...), if any."""
    contacts: tuple[str, ...] = ()
    """A 3xx that ended our INVITE: its Contact URIs, highest q first (RFC 3261 §8.1.3.4)."""


@dataclass(frozen=True, slots=True)
class ReinviteReceived:
    """The peer sent a re-INVITE (or UPDATE) in an established call; answer with
    ``core.accept_reinvite()`` or ``core.reject_reinvite()``."""

    call: str
    """Handle of the call."""
    method: str
    """"INVITE" or "UPDATE"."""
    body: bytes
    """The new offer (opaque), possibly empty."""
    content_type: str | None
    """Content-Type of ``body``."""


@dataclass(frozen=True, slots=True)
class ReinviteAnswered:
    """Our re-INVITE got its 2xx (ACK already sent)."""

    call: str
    """Handle of the call."""
    body: bytes
    """The answer (opaque)."""
    content_type: str | None
    """Content-Type of ``body``."""


@dataclass(frozen=True, slots=True)
class ReinviteFailed:
    """Our re-INVITE was rejected or timed out; the previous session stays in force (§14.1)."""

    call: str
    """Handle of the call."""
    status: int
    """Final status (408 for a timeout)."""


@dataclass(frozen=True, slots=True)
class ReinviteGlare:
    """Our re-INVITE met 491 Request Pending; it is re-sent automatically at ``retry_at``."""

    call: str
    """Handle of the call."""
    retry_at: float
    """Absolute time of the retry (§14.1: 2.1-4 s for the Call-ID owner, else 0-2 s)."""


@dataclass(frozen=True, slots=True)
class SessionTimerChanged:
    """The session timer of a call (RFC 4028) was set, refreshed or turned off."""

    call: str
    """Handle of the call."""
    interval: int | None
    """The session interval in seconds; None: the call has no session timer (any more)."""
    local_refresher: bool | None
    """True if we send the refreshes, False if the peer does; None without a timer."""
    expires_at: float | None
    """Absolute time (the core's clock) when the session expires without a refresh."""


@dataclass(frozen=True, slots=True)
class SessionRefreshDue:
    """We are the refresher, half the session interval is over (RFC 4028 §10) and the peer
    does not allow UPDATE (else the core refreshes by itself with an UPDATE without a body):
    send a refresh with ``core.reinvite()`` and the current offer, unchanged (RFC 3264 §8:
    same o= version). Without one the call ends with BYE shortly before the interval runs
    out."""

    call: str
    """Handle of the call."""


# --- generic requests -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A request outside any INVITE session logic (OPTIONS, MESSAGE, NOTIFY, INFO, REFER...).

    Answer it with ``core.respond(transaction, status)``."""

    transaction: str
    """Handle of the server transaction."""
    request: Request
    """The request (Via already stamped with received/rport)."""
    call: str | None
    """Handle of the call whose dialog it belongs to, if any."""
    source: Address | None = None
    """Where it came from (transport, source address and port, connection id)."""


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response to a request sent with ``core.send_request()`` (provisional or final)."""

    transaction: str
    """Handle of the client transaction."""
    response: Response
    """The response."""


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """A client transaction timed out (Timer B or F) or a server one never saw its ACK
    (Timer H)."""

    transaction: str
    """Handle of the transaction."""
    method: str
    """Method of the request."""


@dataclass(frozen=True, slots=True)
class TransportError:
    """Sending failed for a transaction (reported by the runtime via ``core.transport_error``)."""

    transaction: str
    """Handle of the transaction."""
    destination: Address
    """The destination that failed."""


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """An incoming message was malformed; a response was sent when one could be built."""

    source: Address
    """Where it came from."""
    status: int
    """The status of the RemoteProtocolError (400, 505, ...)."""
    reason: str
    """Human-readable reason."""
    answered: bool
    """True if an error response was sent back."""


@dataclass(frozen=True, slots=True)
class RequestScreened:
    """An out-of-dialog request was refused by the source screen (Restrict Source IP,
    :mod:`sippa.sip.restrict`): dropped without a response, or answered with 403."""

    request: Request
    """The request (Via stamped)."""
    source: Address
    """Where it came from."""
    answered: bool
    """True if a 403 was sent back (TCP/TLS), False if it was dropped silently (UDP)."""


Event = (
    IncomingCall
    | CallRinging
    | CallAnswered
    | CallConfirmed
    | CallEnded
    | ReinviteReceived
    | ReinviteAnswered
    | ReinviteFailed
    | ReinviteGlare
    | SessionTimerChanged
    | SessionRefreshDue
    | RequestReceived
    | ResponseReceived
    | TransactionTimeout
    | TransportError
    | MessageRejected
    | RequestScreened
)
