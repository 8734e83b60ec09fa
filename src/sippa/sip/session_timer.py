"""Session timers (RFC 4028): the Session-Expires and Min-SE headers and the negotiation rules.

Pure functions and values; :mod:`sippa.sip.invite` applies them to a call (headers on every
INVITE/UPDATE it sends or answers, the refresh and expiry timers, the 422 retry) and
:mod:`sippa.sip.core` rejects an initial INVITE whose interval is too small (§9).

Who refreshes is kept as ``local_refresher`` (True: this UA sends the refreshes), not as the
``uac``/``uas`` of the wire, because the roles of a dialog's requests change with each
transaction while the refresher stays the same party (§7.4).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sippa.errors import RemoteProtocolError
from sippa.sip.headers import format_params, parse_params
from sippa.sip.message import Message, Response

__all__ = [
    "MIN_SE_FLOOR",
    "OPTION_TAG",
    "SessionExpires",
    "SessionTimer",
    "SessionTimerConfig",
    "UasDecision",
    "expiry_margin",
    "parse_min_se",
    "request_headers",
    "supports_timer",
    "uac_timer",
    "uas_decision",
]

log = logging.getLogger(__name__)

OPTION_TAG = "timer"
"""§3: the option tag of the extension (Supported/Require)."""
MIN_SE_FLOOR = 90
"""§4/§5: "the minimum value ... MUST NOT be less than 90 seconds"."""
MAX_INTERVAL = 2**31 - 1
"""delta-seconds cap (RFC 3261 §25.1 gives 2**32-1; a longer interval means no expiry anyway)."""

# §4: Session-Expires = ("Session-Expires" / "x") HCOLON delta-seconds *(SEMI se-params)
#     Min-SE = "Min-SE" HCOLON delta-seconds *(SEMI generic-param)
# (at most 10 digits before int(); the parameters are checked by parse_params)
_DELTA_RE = re.compile(r"[ \t]*([0-9]{1,10})[ \t]*(;.*)?", re.DOTALL)
# refresher-param = "refresher" EQUAL ("uas" / "uac")
_REFRESHERS = ("uac", "uas")


def _delta(text: str, what: str) -> tuple[int, str]:
    m = _DELTA_RE.fullmatch(text)
    if m is None:
        raise RemoteProtocolError(f"malformed {what} {text[:60]!r}")
    return min(int(m.group(1)), MAX_INTERVAL), (m.group(2) or "").rstrip(" \t")


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """A Session-Expires value (§4)."""

    interval: int
    """delta-seconds."""
    refresher: str | None = None
    """"uac", "uas" or None (absent; any other value is treated as absent)."""

    @classmethod
    def parse(cls, text: str) -> SessionExpires:
        """Raises RemoteProtocolError (400) for a malformed value."""
        interval, rest = _delta(text, "Session-Expires")
        params = parse_params(rest, what="Session-Expires") if rest else ()
        refresher = next((v for k, v in params if k == "refresher"), None)
        refresher = refresher.lower() if refresher else None
        return cls(interval, refresher if refresher in _REFRESHERS else None)

    def __str__(self) -> str:
        params = (("refresher", self.refresher),) if self.refresher else ()
        return f"{self.interval}{format_params(params)}"


def parse_min_se(text: str) -> int:
    """The delta-seconds of a Min-SE value; raises RemoteProtocolError (400) if malformed."""
    interval, rest = _delta(text, "Min-SE")
    if rest:
        parse_params(rest, what="Min-SE")  # generic-params: checked, ignored
    return interval


def _session_expires(message: Message) -> SessionExpires | None:
    value = message.headers.get("Session-Expires")
    return None if value is None else SessionExpires.parse(value)


def _min_se(message: Message) -> int | None:
    value = message.headers.get("Min-SE")
    return None if value is None else parse_min_se(value)


def supports_timer(message: Message) -> bool:
    """True if ``message`` lists ``timer`` in Supported or Require."""
    return any(
        tag.strip().lower() == OPTION_TAG
        for name in ("Supported", "Require")
        for tag in message.headers.get_all(name)
    )


def expiry_margin(interval: float) -> float:
    """§10: the side that does not refresh sends its BYE "slightly before the session
    expiration ... the minimum of 32 seconds and one third of the session interval"."""
    return min(32.0, interval / 3)


@dataclass(frozen=True, slots=True)
class SessionTimerConfig:
    """Our session-timer preferences (the Session_Expires and Min_SE settings)."""

    session_expires: int = 0
    """The interval we ask for (§7.1, recommended 1800 s); 0 turns the extension off: no
    ``Supported: timer``, Session-Expires ignored, no refreshes (plain RFC 3261)."""
    min_se: int = MIN_SE_FLOOR
    """The shortest interval we accept (§5); never below 90."""

    @property
    def enabled(self) -> bool:
        """True when the extension is on."""
        return self.session_expires > 0

    @property
    def floor(self) -> int:
        """Our Min-SE, raised to the RFC floor."""
        return max(MIN_SE_FLOOR, self.min_se)


@dataclass(frozen=True, slots=True)
class SessionTimer:
    """The session timer in force in one dialog."""

    interval: int
    """The session interval in seconds."""
    local_refresher: bool
    """True if we send the refreshes, False if the peer does."""

    @property
    def refresh_after(self) -> float:
        """§10: the refresher sends its refresh "at half the session expiration"."""
        return self.interval / 2

    @property
    def expire_after(self) -> float:
        """§10: when a session nobody refreshed is ended with BYE."""
        return self.interval - expiry_margin(self.interval)

    def refresher_param(self, *, sending: bool) -> str:
        """The ``refresher`` of a request we send (``sending``) or of our response to one."""
        if sending:
            return "uac" if self.local_refresher else "uas"
        return "uas" if self.local_refresher else "uac"


def request_headers(
    config: SessionTimerConfig, min_se: int, current: SessionTimer | None, interval: int
) -> list[tuple[str, str]]:
    """Headers of an INVITE or UPDATE we send (§7.1, §7.4): Supported, Session-Expires (the
    current interval and refresher in a refresh; no refresher in an initial request, left to the
    negotiation as §7.1 recommends) and Min-SE."""
    if not config.enabled:
        return []
    if current is not None:
        se = SessionExpires(current.interval, current.refresher_param(sending=True))
    else:
        se = SessionExpires(interval)
    return [("Supported", OPTION_TAG), ("Session-Expires", str(se)), ("Min-SE", str(min_se))]


@dataclass(frozen=True, slots=True)
class UasDecision:
    """What a UAS does with a session refresh request (initial INVITE, re-INVITE or UPDATE)."""

    timer: SessionTimer | None = None
    """The timer to put in the 2xx (None: no Session-Expires in it)."""
    require: bool = False
    """Add ``Require: timer`` to the 2xx (§9: MUST for refresher=uac, SHOULD for uas when the
    UAC supports the extension)."""
    too_small: int | None = None
    """Set: answer 422 (Session Interval Too Small) with this Min-SE instead."""

    def response_headers(self) -> list[tuple[str, str]]:
        """Session-Expires (always with refresher, §9), Require and Supported for the 2xx."""
        timer = self.timer
        if timer is None:
            return []
        se = SessionExpires(timer.interval, timer.refresher_param(sending=False))
        headers = [("Supported", OPTION_TAG), ("Session-Expires", str(se))]
        if self.require:
            headers.append(("Require", OPTION_TAG))
        return headers


def uas_decision(request: Message, config: SessionTimerConfig) -> UasDecision:
    """§9: the session timer of our 2xx to ``request``, or the 422 to send instead.

    Raises RemoteProtocolError (400) for a malformed Session-Expires or Min-SE."""
    if not config.enabled:
        return UasDecision()
    supported = supports_timer(request)
    se = _session_expires(request)
    theirs = _min_se(request)
    floor = config.floor
    if se is not None:
        if se.interval < floor:
            if supported:
                # §9: "the UAS MAY reject the INVITE request with a 422 ... it MUST include a
                # Min-SE header field with the value of its minimum interval"
                return UasDecision(too_small=floor)
            # the UAC does not know 422 (a proxy added the header): as a proxy would (§8.1),
            # raise the interval to our minimum instead
            interval = floor
        else:
            # §9: we "MAY reduce its value but MUST NOT set it to a duration lower than the
            # value in the Min-SE header field in the request ... [or] 90 seconds" and "MUST NOT
            # increase" it: down to our own preference at most
            interval = min(se.interval, max(config.session_expires, theirs or 0, floor))
        refresher = se.refresher if supported and se.refresher else None
    else:
        # §9: without Session-Expires we may still ask for a timer, never below their Min-SE
        interval = max(config.session_expires, theirs or 0, floor)
        refresher = None
    if refresher is None:
        # §9 table: a UAC without the extension cannot refresh (uas); one that supports it but
        # left the choice to us refreshes itself (uac)
        refresher = "uac" if supported else "uas"
    return UasDecision(SessionTimer(interval, refresher == "uas"), require=supported)


def uac_timer(
    response: Response, config: SessionTimerConfig, current: SessionTimer | None,
    *, peer_supports: bool,
) -> SessionTimer | None:
    """§7.2/§7.4: the session timer after a 2xx to an INVITE or UPDATE we sent.

    A 2xx without Session-Expires means no session expiration (§7.2), except when the peer
    never said it supports the extension and we are the refresher: a UA that knows nothing of
    RFC 4028 answers our refreshes without the header, and the timer we run stays. A malformed
    Session-Expires counts as absent (the 2xx cannot be refused any more)."""
    if not config.enabled:
        return None
    try:
        se = _session_expires(response)
    except RemoteProtocolError as exc:
        log.info("ignoring Session-Expires of a 2xx: %s", exc.reason)
        se = None
    if se is None:
        keep = current is not None and current.local_refresher and not peer_supports
        return current if keep else None
    interval = se.interval
    if interval < MIN_SE_FLOOR:
        # below the RFC floor (§4): refreshing every few seconds would only load the network
        log.info("Session-Expires %d below %d s: using %d", interval, MIN_SE_FLOOR, MIN_SE_FLOOR)
        interval = MIN_SE_FLOOR
    # "The refresher parameter will be present" (§7.2); absent, we (the UAC) refresh: a
    # needless refresh costs little, a missing one ends the call
    return SessionTimer(interval, (se.refresher or "uac") == "uac")

