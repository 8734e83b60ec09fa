"""One subscription to an event package, the subscriber's side (RFC 6665), sans-IO.

:class:`Subscription` decides what to send and when; its driver sends the requests through the
UA core (``UserAgentCore.send_prepared``) and feeds back what comes::

    sub.start(now)
    if sub.wants_send():
        request, next_hop = sub.build_request(contact, now)   # SUBSCRIBE, without Via
    sub.response_received(resp, now) / sub.send_failed(reason, now)
    status = sub.notify_received(request, now)             # answer the NOTIFY with it
    sub.get_timer() / sub.handle_timer(now) / sub.next_event()
    sub.stop(now)                                          # Expires: 0 (RFC 6665 §4.1.2.3)

It implements the initial SUBSCRIBE with Event/Accept/Expires (§4.1.2.1), the dialog it
creates from the 2xx or from a NOTIFY that overtakes the 2xx (§4.1.2.4), refresh before expiry
(§4.1.2.2, at 50-90 % of the granted time, or the shorter time a NOTIFY's Subscription-State
gives), digest retry on 401/407 through an injected :data:`~sippa.sip.registration.Authorize`
(as REGISTER does), 423 with Min-Expires, NOTIFY handling with Subscription-State
active/pending/terminated and its ``reason``/``retry-after`` (§4.1.3), a new subscription with
back-off after a failure or a termination (RFC 5626 §4.5 style, like REGISTER), no retries
when the server does not know the package (489, 405, 501), and unsubscribing.

Simplifications: one dialog per subscription (a NOTIFY from a second, forked dialog gets 481);
no wait for the first NOTIFY after the 2xx; a stop while the first SUBSCRIBE is still
unanswered just stops (the server's subscription then runs out by itself).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from sippa.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from sippa.sip.dialog import Dialog
from sippa.sip.headers import NameAddr
from sippa.sip.message import Headers, Request, Response
from sippa.sip.registration import Authorize, Credentials
from sippa.sip.uri import Uri

__all__ = [
    "Notified",
    "SubState",
    "Subscribed",
    "Subscription",
    "SubscriptionConfig",
    "SubscriptionEvent",
    "SubscriptionFailed",
    "SubscriptionStatus",
    "Unsubscribed",
    "parse_subscription_state",
]

log = logging.getLogger(__name__)


class SubState(Enum):
    """States of one subscription."""

    IDLE = "idle"
    SUBSCRIBING = "subscribing"
    """The initial SUBSCRIBE is out (a new dialog)."""
    SUBSCRIBED = "subscribed"
    """Accepted; ``status.state`` says active or pending."""
    REFRESHING = "refreshing"
    """An in-dialog refresh SUBSCRIBE is out."""
    BACKOFF = "backoff"
    """Failed or terminated; a new subscription is made at the timer."""
    UNSUBSCRIBING = "unsubscribing"
    """Our SUBSCRIBE with Expires: 0 is out."""
    STOPPED = "stopped"
    GIVEN_UP = "given-up"
    """No retries until started again: the server does not know the package (489, 405, 501)
    or ended the subscription for good (``rejected``, ``noresource``, ``invariant``)."""


class _In(Enum):
    START = "start"
    SUCCESS = "2xx"
    RETRY = "retry"  # 401/407 answered, 423 corrected
    FAILURE = "failure"
    REFUSED = "package refused"
    TERMINATED = "terminated"
    TIMER = "timer"
    STOP = "stop"


S, In = SubState, _In
# State table: (state, input) -> next state. Anything missing is an illegal transition.
TRANSITIONS: dict[tuple[SubState, _In], SubState] = {
    (S.IDLE, In.START): S.SUBSCRIBING,
    (S.STOPPED, In.START): S.SUBSCRIBING,
    (S.GIVEN_UP, In.START): S.SUBSCRIBING,
    (S.SUBSCRIBING, In.SUCCESS): S.SUBSCRIBED,
    (S.SUBSCRIBING, In.RETRY): S.SUBSCRIBING,
    (S.SUBSCRIBING, In.FAILURE): S.BACKOFF,
    (S.SUBSCRIBING, In.REFUSED): S.GIVEN_UP,
    (S.SUBSCRIBING, In.TERMINATED): S.BACKOFF,
    (S.SUBSCRIBING, In.STOP): S.STOPPED,
    (S.SUBSCRIBED, In.TIMER): S.REFRESHING,
    (S.SUBSCRIBED, In.TERMINATED): S.BACKOFF,
    (S.SUBSCRIBED, In.REFUSED): S.GIVEN_UP,
    (S.SUBSCRIBED, In.STOP): S.UNSUBSCRIBING,
    (S.REFRESHING, In.SUCCESS): S.SUBSCRIBED,
    (S.REFRESHING, In.RETRY): S.REFRESHING,
    (S.REFRESHING, In.FAILURE): S.BACKOFF,
    (S.REFRESHING, In.REFUSED): S.GIVEN_UP,
    (S.REFRESHING, In.TERMINATED): S.BACKOFF,
    (S.REFRESHING, In.STOP): S.UNSUBSCRIBING,
    (S.BACKOFF, In.TIMER): S.SUBSCRIBING,
    (S.BACKOFF, In.TERMINATED): S.BACKOFF,
    (S.BACKOFF, In.STOP): S.STOPPED,
    (S.UNSUBSCRIBING, In.SUCCESS): S.STOPPED,
    (S.UNSUBSCRIBING, In.RETRY): S.UNSUBSCRIBING,
    (S.UNSUBSCRIBING, In.FAILURE): S.STOPPED,
    (S.UNSUBSCRIBING, In.REFUSED): S.STOPPED,
    (S.UNSUBSCRIBING, In.TERMINATED): S.STOPPED,
    (S.UNSUBSCRIBING, In.STOP): S.UNSUBSCRIBING,
    (S.STOPPED, In.STOP): S.STOPPED,
    (S.STOPPED, In.TERMINATED): S.STOPPED,
    (S.GIVEN_UP, In.STOP): S.STOPPED,
    (S.GIVEN_UP, In.TERMINATED): S.GIVEN_UP,
}
del S, In

# RFC 6665 §4.1.2.1 / §8.3.1 (489 Bad Event), RFC 3261 §21.4.6, §21.5.2: the server does not
# do this package; asking again changes nothing.
_REFUSED_STATUS = frozenset({405, 489, 501})
# RFC 6665 §4.1.3: termination reasons after which a new subscription is made at once (or
# after retry-after), and those after which the subscriber does not retry.
_RETRY_AT_ONCE = frozenset({"deactivated", "timeout"})
_NO_RETRY = frozenset({"rejected", "noresource", "invariant"})
# Subscription-State parameters (expires, retry-after) above this are clamped (2^31-1 is the
# largest delta-seconds RFC 3261 §27 has a use for; a phone need not believe more).
_MAX_SECONDS = 2**31 - 1


@dataclass(slots=True)
class SubscriptionConfig:
    """What to subscribe to, and how."""

    resource: Uri
    """Request-URI and To of the initial SUBSCRIBE (the mailbox, ``sip:alice@example.test``)."""
    subscriber: NameAddr
    """From: our identity (the line's AoR, display name), without tag."""
    event: str
    """The event package (``message-summary``)."""
    accept: tuple[str, ...] = ()
    """Accept: the body types we understand (``application/simple-message-summary``)."""
    expires: int = 3600
    """Requested duration, seconds."""
    refresh_min: float = 0.5
    """Earliest refresh, as a fraction of the granted duration."""
    refresh_max: float = 0.9
    """Latest refresh, as a fraction of the granted duration."""
    retry_base: float = 30.0
    """Back-off base after a failure, seconds."""
    retry_max: float = 1200.0
    """Back-off ceiling, seconds."""
    max_auth_rounds: int = 2
    """Challenges answered in a row before giving up."""
    parse_body: Callable[[bytes], object] | None = None
    """Reads a NOTIFY body (raising a ProtocolError when it is malformed); None: bodies are
    passed on as bytes."""


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The notifier accepted the SUBSCRIBE (or refresh) with a 2xx."""

    expires: int
    """Granted duration, seconds."""
    algorithm: str | None
    """Digest algorithm used (None: not challenged)."""


@dataclass(frozen=True, slots=True)
class Notified:
    """A NOTIFY of our subscription arrived (and was answered 200)."""

    state: str
    """Subscription-State: ``active``, ``pending`` or ``terminated``."""
    content: object | None
    """The body read by ``config.parse_body`` (or the raw bytes), None without a body."""
    reason: str | None = None
    """The termination reason, when terminated."""


@dataclass(frozen=True, slots=True)
class SubscriptionFailed:
    """An attempt failed or the notifier ended the subscription; next try at ``retry_at``."""

    reason: str
    status_code: int | None
    retry_at: float | None
    """Absolute time of the next attempt; None: no retry (unsupported, rejected...)."""


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """The subscription is over on our request (or the unsubscribe went unanswered)."""

    reason: str


SubscriptionEvent = Subscribed | Notified | SubscriptionFailed | Unsubscribed


@dataclass(slots=True)
class SubscriptionStatus:
    """What a subscription shows."""

    state: SubState = SubState.IDLE
    substate: str | None = None
    """Last Subscription-State value (``active``/``pending``/``terminated``), if any."""
    reason: str | None = None
    """Last failure or termination reason."""
    status_code: int | None = None
    expires_at: float | None = None
    failures: int = 0
    next_attempt: float | None = None
    algorithm: str | None = None


@dataclass(slots=True)
class _Attempt:
    unsubscribe: bool = False
    auth_rounds: int = 0
    credentials: Credentials | None = None
    last_request: Request | None = None
    algorithm: str | None = None


@dataclass(slots=True)
class Subscription:
    """One subscription (see the module docstring for the loop)."""

    config: SubscriptionConfig
    random_bits: Callable[[int], int]
    """Returns a uniformly random int of the given number of bits (``secrets.randbits``)."""
    authorize: Authorize | None = None
    """Answers 401/407 challenges; None: a challenge is a failure."""
    prefix: str = ""
    status: SubscriptionStatus = field(default_factory=SubscriptionStatus)
    call_id: str = ""
    from_tag: str = ""
    dialog: Dialog | None = None
    """The subscription's dialog once a 2xx or a NOTIFY created it."""
    _cseq: int = 0
    _attempt: _Attempt | None = None
    _send_wanted: bool = False
    _timer: float | None = None
    _events: deque[SubscriptionEvent] = field(default_factory=deque)
    _contact: NameAddr | None = None

    # -- commands ----------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Subscribe (a new dialog)."""
        self._set_state(_In.START)
        self.status.failures = 0
        self._new_dialog()

    def stop(self, now: float) -> None:
        """Unsubscribe (SUBSCRIBE with Expires: 0 in the dialog, RFC 6665 §4.1.2.3)."""
        state = self.status.state
        self._set_state(_In.STOP)
        self._timer = None
        if self.status.state is SubState.UNSUBSCRIBING:
            if state is not SubState.UNSUBSCRIBING:
                self._attempt = _Attempt(unsubscribe=True)
                self._send_wanted = True
            return
        self._attempt = None
        self._send_wanted = False
        if state is not self.status.state:
            self._events.append(Unsubscribed("stopped"))

    # -- what to do next ---------------------------------------------------------------------
    def wants_send(self) -> bool:
        """True when a SUBSCRIBE is due (call :meth:`build_request`)."""
        return self._send_wanted and self._attempt is not None

    @property
    def in_dialog(self) -> bool:
        """True when the due SUBSCRIBE goes inside the dialog (a refresh or unsubscribe)."""
        return self.dialog is not None

    def build_request(
        self, contact: NameAddr, now: float, *, outbound: Uri | None = None
    ) -> tuple[Request, Uri]:
        """The due SUBSCRIBE (without Via) and its next hop.

        ``contact`` is our Contact on the flow it will take; ``outbound`` is the pre-loaded
        route of an initial SUBSCRIBE (the line's proxy or registration flow, RFC 3261 §8.1.2);
        in-dialog requests follow the dialog's route set.
        """
        attempt = self._attempt
        if attempt is None or not self._send_wanted:
            raise LocalProtocolError("no SUBSCRIBE is due")
        self._send_wanted = False
        cfg = self.config
        expires = 0 if attempt.unsubscribe else cfg.expires
        extra: list[tuple[str, str]] = [("Event", cfg.event)]
        if cfg.accept:
            extra.append(("Accept", ", ".join(cfg.accept)))
        extra.append(("Expires", str(expires)))
        if attempt.credentials is not None:
            extra += attempt.credentials.headers
        dialog = self.dialog
        if dialog is not None:
            dialog.local_contact = contact
            request = dialog.create_request("SUBSCRIBE", extra=tuple(extra))
            self._cseq = dialog.local_seq
            next_hop = dialog.next_hop()
        else:
            self._cseq += 1
            headers = Headers()
            headers.add("From", str(cfg.subscriber.with_tag(self.from_tag)))
            headers.add("To", str(NameAddr(None, cfg.resource)))
            headers.add("Call-ID", self.call_id)
            headers.add("CSeq", f"{self._cseq} SUBSCRIBE")
            headers.add("Max-Forwards", "70")
            next_hop = cfg.resource
            if outbound is not None:
                loose = outbound if outbound.has_param("lr") else outbound.with_params(lr=None)
                headers.add("Route", f"<{loose}>")
                next_hop = loose
            headers.add("Contact", str(contact))
            for name, value in extra:
                headers.add(name, value)
            request = Request("SUBSCRIBE", cfg.resource, headers)
        attempt.last_request = request
        self._contact = contact
        return request, next_hop

    def get_timer(self) -> float | None:
        """Absolute time at which :meth:`handle_timer` must be called, or None."""
        return self._timer

    def next_event(self) -> SubscriptionEvent | None:
        return self._events.popleft() if self._events else None

    def matches(self, request: Request) -> bool:
        """True when ``request`` (a NOTIFY) names our subscription: Call-ID and our tag."""
        try:
            return request.call_id == self.call_id and request.to.tag == self.from_tag
        except ProtocolError:
            return False

    # -- inputs ------------------------------------------------------------------------------
    def handle_timer(self, now: float) -> None:
        if self._timer is None or now < self._timer:
            return
        self._timer = None
        state = self.status.state
        if state is SubState.SUBSCRIBED:
            self._set_state(_In.TIMER)
            self._attempt = _Attempt()
            self._send_wanted = True
        elif state is SubState.BACKOFF:
            self._set_state(_In.TIMER)
            self._new_dialog()

    def response_received(self, response: Response, now: float) -> None:
        """A final response to our last SUBSCRIBE (provisionals are ignored)."""
        attempt = self._attempt
        code = response.status_code
        if attempt is None or code < 200 or attempt.last_request is None or self._send_wanted:
            return
        with_seq = _cseq_of(response)
        if with_seq is not None and with_seq != self._cseq:
            return  # an answer to an earlier SUBSCRIBE
        try:
            self._response(attempt, response, now)
        except ProtocolError as exc:  # a 2xx with a malformed Contact or Record-Route...
            if self._attempt is attempt:
                self._failed(f"{code} {response.reason}: {exc.reason}", code, now)

    def refresh(self, now: float) -> None:
        """Refresh now (our Contact changed: the flow to the notifier was replaced)."""
        if self.status.state is SubState.SUBSCRIBED:
            self._timer = now
            self.handle_timer(now)

    def _response(self, attempt: _Attempt, response: Response, now: float) -> None:
        code = response.status_code
        if 200 <= code < 300:
            self._succeeded(attempt, response, now)
        elif code in (401, 407):
            self._challenged(attempt, response, now)
        elif code == 423 and not attempt.unsubscribe:
            self._too_brief(response, now)
        elif code in _REFUSED_STATUS:
            self._refused(f"{code} {response.reason}", code)
        elif code == 481 and self.dialog is not None and not attempt.unsubscribe:
            # RFC 6665 §4.1.2.2: the notifier no longer knows the subscription: a new one
            self._terminated(f"{code} {response.reason}", code, now, at_once=True)
        else:
            retry_after = _retry_after(response)
            self._failed(f"{code} {response.reason}", code, now, minimum=retry_after)

    def send_failed(self, reason: str, now: float) -> None:
        """The SUBSCRIBE got no response (timeout, transport error), or the due one could not
        be sent at all (no route to the notifier)."""
        if self._attempt is None:
            return
        self._send_wanted = False
        if self.status.state in (SubState.SUBSCRIBING, SubState.REFRESHING,
                                 SubState.UNSUBSCRIBING):
            self._failed(reason, None, now)

    def notify_received(self, request: Request, now: float) -> int:
        """A NOTIFY that :meth:`matches`; returns the status to answer it with (RFC 6665
        §4.1.3): 200, 481 for a dialog that is not ours, 400/415/500 for a bad one."""
        try:
            return self._notify(request, now)
        except ProtocolError as exc:
            log.info("%s NOTIFY refused: %s", self.prefix, exc.reason)
            return exc.status_code

    # -- internals ---------------------------------------------------------------------------
    def _notify(self, request: Request, now: float) -> int:
        if not self.matches(request):
            return 481
        package = (request.headers.get("Event") or "").split(";")[0].strip().lower()
        if package != self.config.event.lower():
            return 489  # RFC 6665 §4.1.3: not the package we subscribed to
        dialog = self.dialog
        remote_tag = request.from_.tag or ""
        if dialog is None:
            if self.status.state not in (SubState.SUBSCRIBING, SubState.REFRESHING):
                return 481
            # RFC 6665 §4.1.2.4: the NOTIFY overtook the 2xx and creates the dialog
            dialog = Dialog.create_uas(request, self.from_tag, self._contact, confirmed=True)
            dialog.local_seq = self._cseq  # our CSeq space goes on from the SUBSCRIBE
            self.dialog = dialog
        elif dialog.remote_tag != remote_tag:
            return 481  # a second (forked) dialog: one subscription has one dialog here
        else:
            dialog.receive_request(request)  # §12.2.2: CSeq order (500 when out of order)
        dialog.refresh_target(request)  # RFC 6665 §4.1.3: NOTIFY is a target refresh
        value = request.headers.get("Subscription-State")
        if value is None:
            raise RemoteProtocolError("NOTIFY without Subscription-State", 400)
        substate, params = parse_subscription_state(value)
        content: object | None = None
        if request.body:
            media = (request.media_type or "").lower()
            if self.config.accept and media not in self.config.accept:
                raise RemoteProtocolError(f"NOTIFY body of type {media!r} not accepted", 415)
            parse = self.config.parse_body
            content = parse(request.body) if parse is not None else request.body
        self.status.substate = substate
        if substate == "terminated":
            reason = params.get("reason") or "terminated"
            self._events.append(Notified(substate, content, reason))
            self._notifier_ended(reason, params, now)
            return 200
        # active, pending or an unknown value (treated as pending)
        expires = _seconds(params.get("expires"))
        if expires is not None and self.status.state is SubState.SUBSCRIBED:
            due = now + expires * self.config.refresh_max
            self.status.expires_at = now + expires
            if self._timer is None or due < self._timer:
                self._timer = due
                self.status.next_attempt = due
        self._events.append(Notified(substate, content))
        return 200

    def _notifier_ended(self, reason: str, params: dict[str, str], now: float) -> None:
        """RFC 6665 §4.1.3: the notifier terminated the subscription."""
        state = self.status.state
        if state in (SubState.UNSUBSCRIBING, SubState.STOPPED, SubState.GIVEN_UP):
            self._set_state(_In.TERMINATED)
            if state is SubState.UNSUBSCRIBING:
                self._attempt = None
                self._send_wanted = False
                self._events.append(Unsubscribed("terminated by the notifier"))
            self.dialog = None
            return
        retry_after = _seconds(params.get("retry-after"))
        text = f"terminated by the notifier ({reason})"
        if reason in _NO_RETRY and retry_after is None:
            self._refused(text, None)
            return
        at_once = reason in _RETRY_AT_ONCE and retry_after is None
        self._terminated(text, None, now, at_once=at_once, minimum=retry_after)

    def _terminated(
        self, reason: str, code: int | None, now: float, *, at_once: bool,
        minimum: int | None = None,
    ) -> None:
        """The subscription is gone: a new one, at once or after the back-off."""
        self._set_state(_In.TERMINATED)
        self.dialog = None
        self._attempt = None
        self._send_wanted = False
        st = self.status
        st.reason = reason
        st.status_code = code
        st.expires_at = None
        st.failures += 1
        # at once the first time; a notifier that keeps ending it gets the back-off
        delay = 0.0 if at_once and st.failures <= 1 else self._backoff(st.failures)
        if minimum is not None:
            delay = max(delay, float(minimum))
        self._timer = now + delay
        st.next_attempt = self._timer
        log.info("%s subscription ended: %s; new one in %.1fs", self.prefix, reason, delay)
        self._events.append(SubscriptionFailed(reason, code, self._timer))

    def _new_dialog(self) -> None:
        # RFC 6665 §4.1.2.1 / RFC 3261 §8.1.1: a new subscription is a new Call-ID and tag
        self.dialog = None
        self.call_id = self._token(96)
        self.from_tag = self._token(64)
        self._cseq = 0
        self._attempt = _Attempt()
        self._send_wanted = True
        self._timer = None

    def _succeeded(self, attempt: _Attempt, response: Response, now: float) -> None:
        request = attempt.last_request
        assert request is not None
        if attempt.unsubscribe:
            self._set_state(_In.SUCCESS)
            self._attempt = None
            self.status.expires_at = None
            self._events.append(Unsubscribed("unsubscribed"))
            return
        if self.dialog is None:
            self.dialog = Dialog.create_uac(request, response)
        else:
            self.dialog.refresh_target(response)
        value = (response.headers.get("Expires") or "").strip()
        # RFC 6665 §4.1.2.1: the 2xx's Expires is the duration (never longer than asked)
        granted = int(value) if value.isdigit() and len(value) <= 10 else self.config.expires
        granted = min(granted, self.config.expires)
        if granted <= 0:
            self._terminated("the notifier granted no duration", response.status_code, now,
                             at_once=False)
            return
        self._set_state(_In.SUCCESS)
        self._attempt = None
        st = self.status
        st.reason = None
        st.status_code = response.status_code
        st.failures = 0
        st.algorithm = attempt.algorithm
        st.expires_at = now + granted
        span = self.config.refresh_max - self.config.refresh_min
        self._timer = now + granted * (self.config.refresh_min + span * self._uniform())
        st.next_attempt = self._timer
        self._events.append(Subscribed(granted, attempt.algorithm))

    def _challenged(self, attempt: _Attempt, response: Response, now: float) -> None:
        request = attempt.last_request
        assert request is not None
        code = response.status_code
        if self.authorize is None:
            self._failed(f"{code} {response.reason} (no credentials)", code, now)
            return
        if attempt.auth_rounds >= self.config.max_auth_rounds:
            self._failed(f"{code} {response.reason}: credentials refused", code, now)
            return
        try:
            creds = self.authorize(request, response)
        except ProtocolError as exc:
            self._failed(f"{code} {response.reason}: {exc.reason}", code, now)
            return
        attempt.auth_rounds += 1
        attempt.credentials = creds
        attempt.algorithm = creds.algorithm
        self._set_state(_In.RETRY)
        self._send_wanted = True

    def _too_brief(self, response: Response, now: float) -> None:
        # RFC 6665 §4.1.2.1 / RFC 3261 §10.2.8: ask again with at least Min-Expires
        value = (response.headers.get("Min-Expires") or "").strip()
        if not value.isdigit() or len(value) > 10 or int(value) <= self.config.expires:
            self._failed("423 Interval Too Brief without a usable Min-Expires", 423, now)
            return
        self.config.expires = int(value)
        assert self._attempt is not None
        self._attempt.credentials = None
        self._attempt.auth_rounds = 0
        self._set_state(_In.RETRY)
        self._send_wanted = True

    def _refused(self, reason: str, code: int | None) -> None:
        """No retries: the package is not supported, or the notifier said not to retry."""
        attempt = self._attempt
        if attempt is not None and attempt.unsubscribe:
            self._set_state(_In.REFUSED)
            self._attempt = None
            self._events.append(Unsubscribed(f"unsubscribe not confirmed: {reason}"))
            return
        self._set_state(_In.REFUSED)
        self.dialog = None
        self._attempt = None
        self._send_wanted = False
        self._timer = None
        st = self.status
        st.reason = reason
        st.status_code = code
        st.expires_at = None
        st.next_attempt = None
        log.info("%s subscription refused: %s; not retried", self.prefix, reason)
        self._events.append(SubscriptionFailed(reason, code, None))

    def _failed(
        self, reason: str, code: int | None, now: float, minimum: int | None = None
    ) -> None:
        attempt = self._attempt
        st = self.status
        if attempt is not None and attempt.unsubscribe:
            self._set_state(_In.FAILURE)
            self._attempt = None
            self.dialog = None
            self._events.append(Unsubscribed(f"unsubscribe not confirmed: {reason}"))
            return
        self._set_state(_In.FAILURE)
        self.dialog = None
        self._attempt = None
        st.reason = reason
        st.status_code = code
        st.expires_at = None
        st.failures += 1
        delay = self._backoff(st.failures)
        if minimum is not None:
            delay = max(delay, float(minimum))
        self._timer = now + delay
        st.next_attempt = self._timer
        log.info("%s subscription failed: %s; retry in %.1fs", self.prefix, reason, delay)
        self._events.append(SubscriptionFailed(reason, code, self._timer))

    def _backoff(self, failures: int) -> float:
        """Seconds before the next attempt after ``failures`` failures in a row (RFC 5626
        §4.5's formula, as for REGISTER: 50-100 % of min(max, base * 2^failures))."""
        cfg = self.config
        wait = min(cfg.retry_max, cfg.retry_base * 2.0 ** min(failures, 32))
        return wait * (0.5 + 0.5 * self._uniform())

    def _set_state(self, event: _In) -> None:
        old = self.status.state
        new = TRANSITIONS.get((old, event))
        if new is None:
            raise LocalProtocolError(
                f"subscription: no transition from {old.value} on {event.value}"
            )
        if new is not old:
            log.debug("%s subscription %s -> %s", self.prefix, old.value, new.value)
        self.status.state = new

    def _uniform(self) -> float:
        return self.random_bits(32) / 2**32

    def _token(self, bits: int) -> str:
        return f"{self.random_bits(bits):0{bits // 4}x}"


# RFC 6665 §8.2.3:
#   Subscription-State = "Subscription-State" HCOLON substate-value *( SEMI subexp-params )
#   subexp-params = ("reason" EQUAL event-reason-value) / ("expires" EQUAL delta-seconds)
#                   / ("retry-after" EQUAL delta-seconds) / generic-param
def parse_subscription_state(value: str) -> tuple[str, dict[str, str]]:
    """``active;expires=60`` -> ``("active", {"expires": "60"})`` (names lower-cased)."""
    parts = value.split(";")
    substate = parts[0].strip().lower()
    if not substate or not all(c.isalnum() or c in "-.!%*_+`'~" for c in substate):
        raise RemoteProtocolError(f"bad Subscription-State {value[:40]!r}", 400)
    params: dict[str, str] = {}
    for part in parts[1:]:
        name, _, val = part.partition("=")
        params[name.strip().lower()] = val.strip().strip('"').lower()
    for name in ("expires", "retry-after"):
        if name in params and not params[name].isdigit():
            raise RemoteProtocolError(f"Subscription-State {name} is not a number", 400)
    return substate, params


def _seconds(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return min(int(value), _MAX_SECONDS)


def _retry_after(response: Response) -> int | None:
    value = (response.headers.get("Retry-After") or "").split(";")[0].split("(")[0].strip()
    return _seconds(value) if value else None


def _cseq_of(response: Response) -> int | None:
    try:
        return response.cseq.seq
    except ProtocolError:
        return None
