"""L0: the sans-IO SIP core (RFC 3261 and friends).

No sockets, no clock, no randomness of its own: time and random values are passed in.

The names the runtime (``sippa.net``) and the application use are re-exported here:

- messages: :class:`Request`, :class:`Response`, :class:`Headers`, :func:`parse_message`,
  :func:`make_response`; :class:`Uri`, :class:`NameAddr`, :class:`Via`, :class:`CSeq`;
  :class:`StatusCode`; :class:`StreamFramer` for TCP/TLS byte streams;
- the UA core: :class:`UserAgentCore` with :class:`CoreConfig` and :class:`TimerConfig`
  (``receive(data, source, now)``, ``messages_to_send()``, ``get_timer()``,
  ``handle_timer(now)``, ``next_event()``), its events (:class:`IncomingCall`,
  :class:`CallAnswered`, ... all subclasses of :class:`Event`) and :class:`Address`;
  :class:`CallState` of a call;
- digest authentication: :class:`DigestClient` and :class:`DigestPolicy`;
- registration: :class:`Registration` with :class:`RegistrationConfig` and its events;
- RFC 3263 server location: :func:`locate` with :class:`LocateRequest` and the DNS records;
- Restrict Source IP: :class:`SourceRestriction` (the per-line check and its
  :class:`RefusedSources` counters), whose :class:`Screen` verdicts the core's ``screen`` hook
  acts on (:class:`RequestScreened` events).

Everything else stays in its module (``sippa.sip.transaction``, ``sippa.sip.dialog``, ...).
"""

from sippa.sip.core import AuthAnswer, CoreConfig, UserAgentCore, default_port
from sippa.sip.digest import DigestAnswer, DigestClient, DigestFailed, DigestPolicy
from sippa.sip.events import (
    Address,
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallRinging,
    Event,
    IncomingCall,
    MessageRejected,
    ReinviteAnswered,
    ReinviteFailed,
    ReinviteGlare,
    ReinviteReceived,
    RequestReceived,
    RequestScreened,
    ResponseReceived,
    SessionRefreshDue,
    SessionTimerChanged,
    TransactionTimeout,
    TransportError,
)
from sippa.sip.framer import StreamFramer
from sippa.sip.headers import CSeq, NameAddr, Via
from sippa.sip.invite import CallState
from sippa.sip.locate import (
    DnsAnswer,
    DnsQuery,
    DnsStatus,
    LocateRequest,
    LocateResult,
    NaptrRecord,
    SrvRecord,
    Target,
    TransportChoice,
    locate,
)
from sippa.sip.message import Headers, Request, Response, make_response, parse_message
from sippa.sip.registration import (
    AuthFailed,
    Credentials,
    LocalContact,
    Registered,
    Registration,
    RegistrationConfig,
    RegistrationEvent,
    RegistrationFailed,
    RegistrationStatus,
    RegState,
    SendFailure,
    Unregistered,
)
from sippa.sip.restrict import RefusedSources, Screen, SourceRestriction
from sippa.sip.session_timer import SessionTimer, SessionTimerConfig
from sippa.sip.status import StatusCode, reason_phrase
from sippa.sip.timers import TimerConfig
from sippa.sip.uri import Uri

__all__ = [
    "Address",
    "AuthAnswer",
    "AuthFailed",
    "CSeq",
    "CallAnswered",
    "CallConfirmed",
    "CallEnded",
    "CallRinging",
    "CallState",
    "CoreConfig",
    "Credentials",
    "DigestAnswer",
    "DigestClient",
    "DigestFailed",
    "DigestPolicy",
    "DnsAnswer",
    "DnsQuery",
    "DnsStatus",
    "Event",
    "Headers",
    "IncomingCall",
    "LocalContact",
    "LocateRequest",
    "LocateResult",
    "MessageRejected",
    "NameAddr",
    "NaptrRecord",
    "RefusedSources",
    "RegState",
    "Registered",
    "Registration",
    "RegistrationConfig",
    "RegistrationEvent",
    "RegistrationFailed",
    "RegistrationStatus",
    "ReinviteAnswered",
    "ReinviteFailed",
    "ReinviteGlare",
    "ReinviteReceived",
    "Request",
    "RequestReceived",
    "RequestScreened",
    "Response",
    "ResponseReceived",
    "Screen",
    "SendFailure",
    "SessionRefreshDue",
    "SessionTimer",
    "SessionTimerChanged",
    "SessionTimerConfig",
    "SourceRestriction",
    "SrvRecord",
    "StatusCode",
    "StreamFramer",
    "Target",
    "TimerConfig",
    "TransactionTimeout",
    "TransportChoice",
    "TransportError",
    "Unregistered",
    "Uri",
    "UserAgentCore",
    "Via",
    "default_port",
    "locate",
    "make_response",
    "parse_message",
    "reason_phrase",
]
