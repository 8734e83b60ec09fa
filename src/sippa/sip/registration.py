"""Registration of one line with its registrar (RFC 3261 §10.2), sans-IO.

:class:`Registration` decides *what* to send and *when*; its driver (``sippa.net.registrar``)
decides *how*: it resolves the registrar (RFC 3263), opens the flow, and runs the REGISTER
through a client transaction. The loop between them::

    reg.start(now)
    target = reg.wants_send()              # index into the driver's target list, or None
    req = reg.build_request(local, now)    # once the flow to that target is open
    reg.response_received(resp, now) / reg.send_failed(kind, reason, now) / reg.flow_lost(...)
    reg.get_timer() / reg.handle_timer(now) / reg.next_event()

It implements: digest retry on 401/407 (through an injected :data:`Authorize`), 423 Interval
Too Brief (§10.2.8, Min-Expires), refresh before expiry at 50-90% of the granted time, back-off
with jitter after failures (RFC 5626 §4.5), failover to the next target on timeout, transport
error or 503 (RFC 3263 §4.3), re-registration when the flow breaks (RFC 5626 §4.4.1), and
un-REGISTER (Expires: 0) on stop (§10.2.2). An alternate proxy (Cisco [Alternate Proxy]) is
the tail of the target list (``set_targets(count, primary=n)``): failover walks from the
proxy's targets into the alternate's; registered there, the line tries the proxy again every
[Proxy Fallback Intvl] and, back on it, hands the driver the alternate target to un-REGISTER
(:meth:`Registration.take_release`). Randomness (tags, branches, Call-ID, jitter) comes in
through ``random_bits``; time through ``now``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from sippa.errors import LocalProtocolError, ProtocolError
from sippa.sip.headers import CSeq, NameAddr, Via
from sippa.sip.message import Headers, Request, Response
from sippa.sip.uri import Uri

__all__ = [
    "AuthFailed",
    "Authorize",
    "Credentials",
    "LocalContact",
    "RegState",
    "Registered",
    "Registration",
    "RegistrationConfig",
    "RegistrationEvent",
    "RegistrationFailed",
    "RegistrationStatus",
    "SendFailure",
    "Unregistered",
]

log = logging.getLogger(__name__)


class RegState(Enum):
    """States of one line's registration."""

    IDLE = "idle"
    REGISTERING = "registering"
    REGISTERED = "registered"
    REFRESHING = "refreshing"
    BACKOFF = "backoff"
    UNREGISTERING = "unregistering"
    STOPPED = "stopped"


class _In(Enum):
    """Inputs of the state machine."""

    START = "start"
    SUCCESS = "2xx"
    RETRY = "retry same target"  # 401/407 answered, 423 corrected
    FAILOVER = "next target"
    FAILURE = "failure"
    TIMER = "timer"
    FLOW_LOST = "flow lost"
    STOP = "stop"
    RELEASE = "release"  # un-REGISTER a binding left behind (the alternate proxy's)


S, In = RegState, _In
# State table: (state, input) -> next state. Anything missing is a bug in the driver.
TRANSITIONS: dict[tuple[RegState, _In], RegState] = {
    (S.IDLE, In.START): S.REGISTERING,
    (S.STOPPED, In.START): S.REGISTERING,
    (S.IDLE, In.RELEASE): S.UNREGISTERING,
    (S.REGISTERING, In.SUCCESS): S.REGISTERED,
    (S.REGISTERING, In.RETRY): S.REGISTERING,
    (S.REGISTERING, In.FAILOVER): S.REGISTERING,
    (S.REGISTERING, In.FAILURE): S.BACKOFF,
    (S.REGISTERING, In.FLOW_LOST): S.REGISTERING,
    (S.REGISTERING, In.STOP): S.STOPPED,
    (S.REGISTERED, In.TIMER): S.REFRESHING,
    (S.REGISTERED, In.FLOW_LOST): S.REFRESHING,
    (S.REGISTERED, In.STOP): S.UNREGISTERING,
    (S.REFRESHING, In.SUCCESS): S.REGISTERED,
    (S.REFRESHING, In.RETRY): S.REFRESHING,
    (S.REFRESHING, In.FAILOVER): S.REFRESHING,
    (S.REFRESHING, In.FAILURE): S.BACKOFF,
    (S.REFRESHING, In.FLOW_LOST): S.REFRESHING,
    (S.REFRESHING, In.STOP): S.UNREGISTERING,
    (S.BACKOFF, In.TIMER): S.REGISTERING,
    (S.BACKOFF, In.FLOW_LOST): S.BACKOFF,
    (S.BACKOFF, In.STOP): S.STOPPED,
    (S.UNREGISTERING, In.SUCCESS): S.STOPPED,
    (S.UNREGISTERING, In.RETRY): S.UNREGISTERING,
    (S.UNREGISTERING, In.FAILOVER): S.STOPPED,
    (S.UNREGISTERING, In.FAILURE): S.STOPPED,
    (S.UNREGISTERING, In.FLOW_LOST): S.UNREGISTERING,
    (S.UNREGISTERING, In.STOP): S.UNREGISTERING,
    (S.STOPPED, In.STOP): S.STOPPED,
    (S.STOPPED, In.FLOW_LOST): S.STOPPED,
}
del S, In

# Statuses after which the next SRV target is tried (RFC 3263 §4.3; 503 per RFC 3261 §21.5.4).
_FAILOVER_STATUS = {503}


class SendFailure(Enum):
    """Why a REGISTER got no response."""

    TIMEOUT = "timeout"
    """Timer F fired (RFC 3261 §17.1.2.2)."""
    TRANSPORT = "transport"
    """The flow could not be made or broke (connection refused, TLS refused, ...)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """An answer to a digest challenge, ready to put into the request."""

    headers: tuple[tuple[str, str], ...] = field(repr=False)
    """``(Authorization or Proxy-Authorization, value)``, one per answered realm (§22.3);
    never logged: the values carry the digest response."""
    algorithm: str
    """Digest algorithm used (``SHA-256``, ``MD5``, ...)."""

    @classmethod
    def single(cls, header: str, value: str, algorithm: str) -> Credentials:
        return cls(((header, value),), algorithm)

    @property
    def header(self) -> str:
        """Name of the first header."""
        return self.headers[0][0]

    @property
    def value(self) -> str:
        """Value of the first header."""
        return self.headers[0][1]


class AuthFailed(ProtocolError):
    """The challenge cannot be answered (no acceptable algorithm, e.g. MD5 refused)."""


Authorize = Callable[[Request, Response], Credentials]
"""Answers the challenge in a 401/407 for a request; raises :class:`AuthFailed`."""


@dataclass(frozen=True, slots=True)
class LocalContact:
    """Our end of the flow to the registrar: goes into Via and Contact."""

    transport: str
    """``UDP``, ``TCP`` or ``TLS``."""
    host: str
    """Our address on the flow (IPv6 without brackets)."""
    port: int
    """Our port on the flow."""


@dataclass(slots=True)
class RegistrationConfig:
    """Settings of one line's registration (Cisco profile names in brackets)."""

    aor: Uri
    """Address of record, e.g. ``sips:alice@example.test`` ([User ID] @ [Proxy])."""
    registrar: Uri | None = None
    """Request-URI of REGISTER; default: the AoR's domain (RFC 3261 §10.2)."""
    expires: int = 3600
    """Requested registration lifetime in seconds ([Register Expires])."""
    refresh_min: float = 0.5
    """Earliest refresh, as a fraction of the granted lifetime."""
    refresh_max: float = 0.9
    """Latest refresh, as a fraction of the granted lifetime."""
    retry_base: float = 30.0
    """Back-off base after a failure, seconds (RFC 5626 §4.5 base-time; [Reg Retry Intvl])."""
    retry_max: float = 1200.0
    """Back-off ceiling, seconds (RFC 5626 §4.5 max-time, 1800 there; [Reg Retry Long
    Intvl], 1200 by default)."""
    max_auth_rounds: int = 2
    """Challenges answered in a row before giving up (wrong password loops otherwise)."""
    user_agent: str | None = "sippa"
    """User-Agent header value (None: none)."""
    display_name: str | None = None
    """Display name in From/To ([Display Name])."""
    fallback_interval: float = 3600.0
    """Registered through the alternate proxy, try the proxy again after this many seconds
    ([Proxy Fallback Intvl])."""


@dataclass(frozen=True, slots=True)
class Registered:
    """The registrar accepted our binding."""

    expires: int
    """Granted lifetime, seconds."""
    target: int
    """Index of the target that answered."""
    algorithm: str | None
    """Digest algorithm used for this registration (None: not challenged)."""
    response: Response
    """The 2xx."""


@dataclass(frozen=True, slots=True)
class RegistrationFailed:
    """A registration attempt failed; the next attempt is at ``retry_at`` (None: stopped)."""

    reason: str
    """Why, human readable (status line, timeout, TLS refusal...)."""
    status_code: int | None
    """The SIP status when a final response caused it."""
    retry_at: float | None
    """Absolute time of the next attempt."""


@dataclass(frozen=True, slots=True)
class Unregistered:
    """The binding was removed (or the line stopped)."""

    reason: str
    """``unregistered`` after our Expires: 0 succeeded, else why it could not be confirmed."""


RegistrationEvent = Registered | RegistrationFailed | Unregistered


@dataclass(slots=True)
class RegistrationStatus:
    """What a line shows: registered or not, and why."""

    state: RegState = RegState.IDLE
    registered: bool = False
    reason: str | None = None
    """Last failure reason (None when the last attempt succeeded)."""
    status_code: int | None = None
    expires_at: float | None = None
    """Absolute time the binding runs out."""
    target: int | None = None
    algorithm: str | None = None
    failures: int = 0
    """Consecutive failed attempts (drives the back-off)."""
    next_attempt: float | None = None
    alternate: bool = False
    """Registered (or last registered) through the alternate proxy's targets."""
    alternate_reason: str | None = None
    """Why the line left the proxy for the alternate (the proxy's last failure)."""
    fallback_at: float | None = None
    """When the proxy is tried again while registered through the alternate."""


@dataclass(slots=True)
class _Attempt:
    target: int
    auth_rounds: int = 0
    credentials: Credentials | None = None
    unregister: bool = False
    last_request: Request | None = None
    algorithm: str | None = None


@dataclass(slots=True)
class Registration:
    """One line's registration state machine. See the module docstring for the loop."""

    config: RegistrationConfig
    random_bits: Callable[[int], int]
    """Returns a uniformly random int of the given number of bits (``secrets.randbits``)."""
    authorize: Authorize | None = None
    """Answers 401/407 challenges; None means a challenge is a failure."""
    prefix: str = ""
    """Log prefix, e.g. ``[ext1]``."""
    status: RegistrationStatus = field(default_factory=RegistrationStatus)
    targets: int = 1
    """How many targets the driver has (SRV failover walks through them)."""
    primary: int | None = None
    """How many of them are the proxy's; the rest are the alternate proxy's (None: all)."""
    call_id: str = ""
    from_tag: str = ""
    cseq: int = 0
    _attempt: _Attempt | None = None
    _send_wanted: bool = False
    _timer: float | None = None
    _events: deque[RegistrationEvent] = field(default_factory=deque)
    _target: int = 0
    _contact: Uri | None = None
    _registered_at: int | None = None
    _release: int | None = None

    def __post_init__(self) -> None:
        # RFC 3261 §10.2.4: one Call-ID for all REGISTERs of this UA to this registrar.
        self.call_id = self._token(96)
        self.from_tag = self._token(64)

    # -- commands ------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Begin registering (first target)."""
        self._set_state(_In.START)
        self.status.failures = 0
        self._target = 0
        self._begin(now)

    def stop(self, now: float) -> None:
        """Un-REGISTER (Expires: 0, §10.2.2) if registered, else just stop."""
        state = self.status.state
        self._set_state(_In.STOP)
        self._timer = None
        if self.status.state is RegState.UNREGISTERING:
            if state is not RegState.UNREGISTERING:
                self._attempt = _Attempt(self._target, unregister=True)
                self._send_wanted = True
        else:
            self._send_wanted = False
            self._attempt = None
            self.status.registered = False
            self._events.append(Unregistered("stopped"))

    def release(self, target: int, now: float) -> None:
        """Only un-REGISTER (Expires: 0) at ``target``: the binding a line left behind at the
        alternate proxy when it moved back (run on a fresh :class:`Registration` that shares
        the Call-ID, From tag and CSeq of the line's; §10.2.2)."""
        self._set_state(_In.RELEASE)
        self._target = target
        self._attempt = _Attempt(target, unregister=True)
        self._send_wanted = True
        self._timer = None

    def set_targets(self, count: int, primary: int | None = None) -> None:
        """The driver (re)located the registrar: ``count`` targets in order, the first
        ``primary`` of them the proxy's and the rest the alternate proxy's (None: no
        alternate)."""
        self.targets = max(1, count)
        self.primary = None if primary is None or primary >= self.targets else max(0, primary)
        if self._target >= self.targets:
            self._target = 0

    def set_fallback_interval(self, seconds: float, now: float) -> None:
        """A new [Proxy Fallback Intvl]: a pending fallback comes no later than ``seconds``
        from ``now``."""
        self.config.fallback_interval = seconds
        fallback = self.status.fallback_at
        if fallback is not None:
            self.status.fallback_at = min(fallback, now + max(1.0, seconds))

    def is_alternate(self, target: int) -> bool:
        """True when target ``target`` belongs to the alternate proxy."""
        return self.primary is not None and target >= self.primary

    def take_release(self) -> int | None:
        """The alternate target to un-REGISTER from, once, after moving back to the proxy."""
        release, self._release = self._release, None
        return release

    # -- what to do next -----------------------------------------------------------------
    def wants_send(self) -> int | None:
        """Index of the target a REGISTER should go to now, or None."""
        if self._send_wanted and self._attempt is not None:
            return self._attempt.target
        return None

    @property
    def fresh_attempt(self) -> bool:
        """True when the due REGISTER starts a new attempt (not a digest or 423 retry)."""
        a = self._attempt
        return a is not None and a.last_request is None

    def build_request(self, local: LocalContact, now: float) -> Request:
        """The REGISTER to send over a flow whose local end is ``local``."""
        attempt = self._attempt
        if attempt is None or not self._send_wanted:
            raise LocalProtocolError("no REGISTER is due")
        self._send_wanted = False
        cfg = self.config
        self.cseq += 1
        aor = cfg.aor.replace(params=(), headers=())
        registrar = cfg.registrar or aor.replace(user=None, password=None)
        transport = local.transport.upper()
        contact_uri = _contact_uri(aor, local)
        expires = 0 if attempt.unregister else cfg.expires
        headers = Headers()
        # RFC 3581 §3: ask for rport so the response finds our NAT binding / source port.
        via = Via(transport, local.host, local.port, (("branch", self._branch()), ("rport", None)))
        headers.add("Via", str(via))
        headers.add("Max-Forwards", "70")
        name = NameAddr(cfg.display_name, aor, ())
        headers.add("From", str(name.with_tag(self.from_tag)))
        headers.add("To", str(name))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", str(CSeq(self.cseq, "REGISTER")))
        headers.add("Contact", f"<{contact_uri}>")
        headers.add("Expires", str(expires))
        if attempt.credentials is not None:
            for field_name, value in attempt.credentials.headers:
                headers.add(field_name, value)
        if cfg.user_agent:
            headers.add("User-Agent", cfg.user_agent)
        headers.add("Content-Length", "0")
        request = Request("REGISTER", registrar, headers)
        attempt.last_request = request
        self._contact = contact_uri
        return request

    def get_timer(self) -> float | None:
        """Absolute time at which :meth:`handle_timer` must be called, or None."""
        fallback = self.status.fallback_at
        if fallback is not None and self.status.state is RegState.REGISTERED:
            return fallback if self._timer is None else min(self._timer, fallback)
        return self._timer

    def next_event(self) -> RegistrationEvent | None:
        return self._events.popleft() if self._events else None

    # -- inputs --------------------------------------------------------------------------
    def handle_timer(self, now: float) -> None:
        fallback = self.status.fallback_at
        if (
            fallback is not None
            and now >= fallback
            and self.status.state is RegState.REGISTERED
        ):
            # [Proxy Fallback Intvl]: registered through the alternate, try the proxy again;
            # failover brings the line back to the alternate if the proxy still fails.
            log.info("%s trying the proxy again (fallback interval)", self.prefix)
            self.status.fallback_at = None
            self._timer = None
            self._target = 0
            self._set_state(_In.TIMER)
            self._begin(now)
            return
        if self._timer is None or now < self._timer:
            return
        self._timer = None
        if self.status.state in (RegState.REGISTERED, RegState.BACKOFF):
            if self.status.state is RegState.BACKOFF:
                self._target = 0
            self._set_state(_In.TIMER)
            self._begin(now)

    def response_received(self, response: Response, now: float) -> None:
        """A final response to our last REGISTER (provisionals are ignored)."""
        attempt = self._attempt
        code = response.status_code
        if attempt is None or code < 200 or attempt.last_request is None:
            return
        if self._send_wanted:
            return  # stale: a newer REGISTER is already due
        if 200 <= code < 300:
            self._succeeded(attempt, response, now)
        elif code in (401, 407):
            self._challenged(attempt, response, now)
        elif code == 423 and not attempt.unregister:
            self._too_brief(attempt, response, now)
        elif code in _FAILOVER_STATUS:
            self._failover(f"{code} {response.reason}", code, now, response)
        else:
            self._failed(f"{code} {response.reason}", code, now)

    def send_failed(self, kind: SendFailure, reason: str, now: float) -> None:
        """The REGISTER got no response: Timer F or a transport error (RFC 3263 §4.3)."""
        if self._attempt is None or self.status.state in (RegState.IDLE, RegState.STOPPED):
            return
        self._send_wanted = False
        text = "no response (timeout)" if kind is SendFailure.TIMEOUT else reason
        self._failover(text, None, now, None)

    def flow_lost(self, reason: str, now: float) -> None:
        """The connection our binding lives on broke: register again (RFC 5626 §4.4.1)."""
        state = self.status.state
        if state is RegState.REGISTERED:
            log.info("%s flow lost (%s): re-registering", self.prefix, reason)
            self._set_state(_In.FLOW_LOST)
            self._begin(now)
        elif state in (RegState.REGISTERING, RegState.REFRESHING) and not self._send_wanted:
            self.send_failed(SendFailure.TRANSPORT, reason, now)

    # -- internals -----------------------------------------------------------------------
    def _begin(self, now: float) -> None:
        self._attempt = _Attempt(self._target)
        self._send_wanted = True
        self._timer = None
        self.status.target = self._target

    def _succeeded(self, attempt: _Attempt, response: Response, now: float) -> None:
        if attempt.unregister:
            self._set_state(_In.SUCCESS)
            self._attempt = None
            self.status.registered = False
            self.status.expires_at = None
            self._events.append(Unregistered("unregistered"))
            return
        granted = self._granted_expires(response)
        if granted <= 0:
            self._failed("registrar granted no lifetime", response.status_code, now)
            return
        self._set_state(_In.SUCCESS)
        self._attempt = None
        st = self.status
        st.registered = True
        st.reason = None
        st.status_code = response.status_code
        st.failures = 0
        st.expires_at = now + granted
        st.algorithm = attempt.algorithm
        st.target = attempt.target
        previous, self._registered_at = self._registered_at, attempt.target
        st.alternate = self.is_alternate(attempt.target)
        if st.alternate:
            st.fallback_at = now + max(1.0, self.config.fallback_interval)
        else:
            st.fallback_at = None
            st.alternate_reason = None
            if previous is not None and self.is_alternate(previous):
                self._release = previous  # back on the proxy: leave the alternate
        # Refresh between refresh_min and refresh_max of the granted time (spread out).
        span = self.config.refresh_max - self.config.refresh_min
        fraction = self.config.refresh_min + span * self._uniform()
        self._timer = now + granted * fraction
        st.next_attempt = self._timer
        self._events.append(Registered(granted, attempt.target, attempt.algorithm, response))

    def _challenged(self, attempt: _Attempt, response: Response, now: float) -> None:
        request = attempt.last_request
        assert request is not None
        if self.authorize is None:
            self._failed(
                f"{response.status_code} {response.reason} (no credentials)",
                response.status_code,
                now,
            )
            return
        if attempt.auth_rounds >= self.config.max_auth_rounds:
            self._failed(
                f"{response.status_code} {response.reason}: credentials refused",
                response.status_code,
                now,
            )
            return
        try:
            creds = self.authorize(request, response)
        except ProtocolError as exc:
            reason = f"{response.status_code} {response.reason}: {exc.reason}"
            self._failed(reason, response.status_code, now)
            return
        attempt.auth_rounds += 1
        attempt.credentials = creds
        attempt.algorithm = creds.algorithm
        self._set_state(_In.RETRY)
        self._send_wanted = True

    def _too_brief(self, attempt: _Attempt, response: Response, now: float) -> None:
        # RFC 3261 §10.2.8: retry with an expiration >= Min-Expires.
        value = (response.headers.get("Min-Expires") or "").strip()
        if not value.isdigit() or int(value) <= self.config.expires or int(value) > 2**31:
            self._failed(
                "423 Interval Too Brief without a usable Min-Expires", response.status_code, now
            )
            return
        self.config.expires = int(value)
        attempt.credentials = None
        attempt.auth_rounds = 0
        self._set_state(_In.RETRY)
        self._send_wanted = True

    def _failover(
        self, reason: str, code: int | None, now: float, response: Response | None
    ) -> None:
        attempt = self._attempt
        if attempt is not None and attempt.unregister:
            self._failed(reason, code, now)
            return
        nxt = (attempt.target if attempt else self._target) + 1
        if nxt < self.targets:
            log.info(
                "%s target %d failed (%s): trying target %d", self.prefix, nxt - 1, reason, nxt
            )
            if nxt == self.primary:
                log.info("%s the proxy failed (%s): trying the alternate proxy", self.prefix,
                         reason)
                self.status.alternate_reason = f"proxy failed: {reason}"
            self._target = nxt
            self._set_state(_In.FAILOVER)
            self._begin(now)
            self.status.reason = reason
            return
        retry_after = None
        if response is not None:
            value = (response.headers.get("Retry-After") or "").split(";")[0].strip()
            retry_after = int(value) if value.isdigit() else None
        self._failed(reason, code, now, minimum=retry_after)

    def _failed(
        self, reason: str, code: int | None, now: float, minimum: int | None = None
    ) -> None:
        attempt = self._attempt
        st = self.status
        st.reason = reason
        st.status_code = code
        if attempt is not None and attempt.unregister:
            self._set_state(_In.FAILURE)
            self._attempt = None
            st.registered = False
            self._events.append(Unregistered(f"un-REGISTER not confirmed: {reason}"))
            return
        self._set_state(_In.FAILURE)
        self._attempt = None
        st.registered = False
        st.expires_at = None
        st.fallback_at = None
        st.failures += 1
        delay = self._backoff(st.failures)
        if minimum is not None:
            delay = max(delay, float(minimum))
        self._timer = now + delay
        st.next_attempt = self._timer
        self._target = 0
        log.info("%s registration failed: %s; retry in %.1fs", self.prefix, reason, delay)
        self._events.append(RegistrationFailed(reason, code, self._timer))

    def _backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failed attempts (RFC 5626 §4.5).

        RFC 5626 §4.5: the upper bound is "W = min (max-time, (base-time * (2 ^
        consecutive-failures)))", counting the failure just seen, and the retry delay is "a
        uniform random time between 50 and 100% of the upper-bound wait time": with base-time
        30 s the first retry comes 30-60 s after the first failure. A line has one flow, so
        every failure is one of "all of the flows": the lower base-time applies ([Reg Retry
        Intvl], 30 s); max-time is [Reg Retry Long Intvl] (1200 s; the RFC's default is 1800).
        """
        cfg = self.config
        exponent = min(failures, 32)  # the cap is reached long before; keeps the float finite
        wait = min(cfg.retry_max, cfg.retry_base * 2.0**exponent)
        return wait * (0.5 + 0.5 * self._uniform())

    def _granted_expires(self, response: Response) -> int:
        # RFC 3261 §10.2.4: the expires of our Contact in the 2xx, else the Expires header.
        contact = self._contact
        try:
            contacts = response.contacts
        except ProtocolError:
            contacts = []
        for c in contacts:
            matches = contact is not None and not c.is_star and _same_binding(c.uri, contact)
            if matches and c.expires is not None:
                return c.expires
        value = (response.headers.get("Expires") or "").strip()
        if value.isdigit():
            return int(value)
        if len(contacts) == 1 and contacts[0].expires is not None:
            return contacts[0].expires
        return self.config.expires

    def _set_state(self, event: _In) -> None:
        old = self.status.state
        new = TRANSITIONS.get((old, event))
        if new is None:
            raise LocalProtocolError(
                f"registration: no transition from {old.value} on {event.value}"
            )
        if new is not old:
            log.debug("%s registration %s -> %s", self.prefix, old.value, new.value)
        self.status.state = new

    def _uniform(self) -> float:
        return self.random_bits(32) / 2**32

    def _token(self, bits: int) -> str:
        return f"{self.random_bits(bits):0{bits // 4}x}"

    def _branch(self) -> str:
        # RFC 3261 §8.1.1.7: branches start with the magic cookie.
        return "z9hG4bK" + self._token(64)


def _contact_uri(aor: Uri, local: LocalContact) -> Uri:
    """Our Contact for the flow whose local end is ``local``: where requests reach this line.

    Over TLS it is a ``sips`` URI without a transport parameter: RFC 3261 §26.2.2 deprecates
    ``transport=tls`` ("specific to a single hop"), and RFC 5630 makes ``sips`` the way to ask
    for TLS on every hop to us (its default transport is TCP, so TLS over TCP). A secure phone
    wants exactly that even for a ``sip`` AoR (a ``sip`` Contact with ``transport=tcp`` would let
    the last hop fall back to plain TCP), and it matches the Contact the UA core puts in
    dialogs. TCP gets ``transport=tcp`` (§19.1.4); UDP, the default, none.
    """
    transport = local.transport.upper()
    scheme = "sips" if transport == "TLS" else "sip"
    params: tuple[tuple[str, str | None], ...] = ()
    if transport not in ("UDP", "TLS"):
        params = (("transport", transport.lower()),)
    return Uri(scheme, user=aor.user, host=local.host, port=local.port, params=params)


def _same_binding(a: Uri, b: Uri) -> bool:
    """Contact match for the granted expiry: user, host and port (registrars add params)."""
    return (a.user, a.host.lower(), a.port) == (b.user, b.host.lower(), b.port)
