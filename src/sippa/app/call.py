"""One call as the phone sees it: state, offer/answer, the media stream, and the padlock.

The :class:`~sippa.app.phone.Phone` drives calls (it owns the SIP core and the media engine);
a :class:`Call` keeps what belongs to one call and turns it into what people see:
:meth:`Call.security` (the padlock verdict of :func:`sippa.app.security.assess`) and
:meth:`Call.as_dict`.
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field
from typing import Any

from sippa.app.security import (
    CallSecurity,
    MediaFacts,
    SecureCallPolicy,
    SignallingFacts,
    assess,
)
from sippa.media import AudioSink, AudioSource, MediaStream, StreamConfig
from sippa.net.transport import Peer
from sippa.sdp import MediaParameters, Negotiator
from sippa.sip import Uri

__all__ = ["Call", "CallState", "stream_config"]


class CallState(enum.StrEnum):
    """What a call is doing (the phone's call states)."""

    DIALING = "dialing"
    """Our INVITE is out, nothing back yet."""
    RINGING = "ringing"
    """The far end rings (180), possibly with early media (183)."""
    INCOMING = "incoming"
    """A call for us rings."""
    ACTIVE = "active"
    """Established."""
    HELD = "held"
    """We put it on hold."""
    ENDED = "ended"


def stream_config(params: MediaParameters, local_port: int, *, hold: bool = False) -> StreamConfig:
    """The media engine's parameters for an agreed stream (no SDP crosses into media)."""
    direction = params.direction.value
    if hold and direction == "sendrecv":
        direction = "sendonly"
    remote = params.remote_address
    remote_port: int | None = params.remote_port
    if remote in ("0.0.0.0", "::"):  # noqa: S104 - RFC 2543 hold: do not send
        remote_port = None
    return StreamConfig(
        codec=params.codec,
        payload_type=params.payload_type,
        clock_rate=params.clock_rate,
        channels=params.channels,
        ptime=params.ptime,
        telephone_event_pt=params.telephone_event_pt,
        local_port=local_port,
        remote_host=remote,
        remote_port=remote_port,
        rtcp_mux=params.rtcp_mux,
        remote_rtcp_port=params.remote_rtcp_port,
        direction=direction,  # type: ignore[arg-type]
        srtp_suite=params.srtp_suite,
        srtp_local_key=params.srtp_local_key,
        srtp_remote_key=params.srtp_remote_key,
    )


@dataclass(eq=False)
class Call:
    """One call on one line."""

    id: str
    """The SIP core's call handle (stable for the life of the call)."""
    line: int
    direction: str
    """``outgoing`` or ``incoming``."""
    remote: str
    """The other party's URI (To for outgoing, From for incoming)."""
    policy: SecureCallPolicy
    negotiator: Negotiator
    local_port: int
    state: CallState = CallState.DIALING
    signalling: SignallingFacts = field(default_factory=lambda: SignallingFacts("UDP"))
    params: MediaParameters | None = None
    stream: MediaStream | None = None
    source: AudioSource | None = None
    sink: AudioSink | None = None
    record_sent: AudioSink | None = None
    end_reason: str | None = None
    """Why the call ended (or could not go ahead), for people."""
    status_code: int | None = None
    """The SIP status that ended it, if any."""
    offer_refused: str | None = None
    """Set when we refused the peer's offer (the reason)."""
    started: float = field(default_factory=time.time)
    answered: float | None = None
    ended: float | None = None
    dtmf_received: list[str] = field(default_factory=list)
    delayed_offer: bool = False
    """The INVITE had no SDP: our offer goes in the 2xx and the answer comes in the ACK."""
    first_hop: Peer | None = None
    """The transport peer our SIP for this call goes to (or came from)."""
    pending_hold: bool = False
    """Our pending re-INVITE puts the call on hold (False: takes it off hold)."""
    transfer_from: str | None = None
    """The call whose REFER created this one."""
    redirected_from: list[str] = field(default_factory=list)
    """Targets a 3xx moved this outgoing call away from, oldest first (RFC 3261 §8.1.3.4)."""
    unreachable: str | None = None
    """Why the flow to the first hop failed (TLS refusal reasons included), until the call
    ends with it or moves on to the next redirect target."""
    redirects_followed: int = 0
    """3xx responses this call followed (at most MAX_REDIRECTS)."""
    redirect_queue: list[Uri] = field(default_factory=list)
    """The other Contacts of the last 3xx, best q first: tried in turn when the one being
    called fails (4xx, 5xx, no answer, unreachable)."""
    session_interval: int | None = None
    """The RFC 4028 session interval in force (seconds), None without a session timer."""
    session_refresher: str | None = None
    """Who refreshes the session: "us" or "peer"."""
    session_expires_at: float | None = None
    """When the session expires without a refresh (monotonic clock)."""
    session_refreshes: int = 0
    """Successful session refreshes so far (ours or the peer's)."""
    rel100: bool = False
    """A reliable provisional response (RFC 3262) went out or was PRACKed on this call."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _media_task: asyncio.Task[None] | None = None

    def session_timer_changed(
        self, interval: int | None, local_refresher: bool | None, expires_at: float | None
    ) -> None:
        """The SIP core set, refreshed or dropped the session timer."""
        if interval is not None and self.session_interval is not None:
            self.session_refreshes += 1
        self.session_interval = interval
        self.session_refresher = None if local_refresher is None else (
            "us" if local_refresher else "peer"
        )
        self.session_expires_at = expires_at

    def session_timer(self) -> dict[str, Any] | None:
        """The session timer for people (API, web, CLI), None without one."""
        if self.session_interval is None or self.is_over:
            return None
        left = None
        if self.session_expires_at is not None:
            left = max(0, round(self.session_expires_at - time.monotonic()))
        return {
            "interval": self.session_interval,
            "refresher": self.session_refresher,
            "expires_in": left,
            "refreshes": self.session_refreshes,
        }

    @property
    def is_over(self) -> bool:
        return self.state is CallState.ENDED

    @property
    def on_hold(self) -> bool:
        return self.state is CallState.HELD

    def media_facts(self) -> MediaFacts | None:
        if self.params is None:
            return None
        return MediaFacts(
            self.params.srtp_suite,
            keys_over_tls=self.params.srtp_suite is not None and self.signalling.is_tls,
            srtp_reason=self.params.srtp_reason,
        )

    def security(self) -> CallSecurity:
        """The padlock verdict (see :mod:`sippa.app.security`)."""
        return assess(self.signalling, self.media_facts())

    def duration(self) -> float:
        if self.answered is None:
            return 0.0
        return max(0.0, (self.ended or time.time()) - self.answered)

    def as_dict(self) -> dict[str, Any]:
        """What the CLI and API show (no keys)."""
        stats = self.stream.stats() if self.stream is not None else None
        p = self.params
        return {
            "id": self.id,
            "line": self.line,
            "direction": self.direction,
            "remote": self.remote,
            "state": self.state.value,
            "secure_call": self.policy.value,
            "codec": p.codec if p else None,
            "media": None
            if p is None
            else {
                "codec": p.codec,
                "remote": f"{p.remote_address}:{p.remote_port}",
                "direction": p.direction.value,
                "srtp_suite": p.srtp_suite,
                "local_port": self.local_port,
            },
            "packets_sent": stats.packets_sent if stats else 0,
            "packets_received": stats.packets_received if stats else 0,
            "packets_rejected_source": stats.rejected_source if stats else 0,
            "security": self.security().as_dict(),
            "end_reason": self.end_reason,
            "status_code": self.status_code,
            "duration": round(self.duration(), 3),
            "dtmf_received": "".join(self.dtmf_received),
            "redirected_from": list(self.redirected_from),
            "session_timer": self.session_timer(),
            "rel100": self.rel100,
        }
