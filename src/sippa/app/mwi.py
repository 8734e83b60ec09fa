"""Message waiting indication (the voicemail light) of one line: RFC 3842 over RFC 6665.

:class:`MwiStatus` is what a line shows (messages waiting, new/old voice messages, urgent
ones, when it last changed, where it came from and how the subscription stands).
:class:`VoicemailSubscriber` drives one line's sans-IO
:class:`~sippa.sip.subscription.Subscription` to ``message-summary``: it sends the SUBSCRIBEs
through the phone's UA core (over the line's registration flow or proxy), feeds back their
responses, timeouts and the NOTIFYs, and runs the subscription's timer on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sippa.errors import ProtocolError
from sippa.sip.core import UserAgentCore
from sippa.sip.events import Address
from sippa.sip.headers import NameAddr
from sippa.sip.message import Request, Response
from sippa.sip.mwi import CONTENT_TYPE, EVENT_PACKAGE, MessageSummary
from sippa.sip.subscription import (
    Notified,
    Subscribed,
    Subscription,
    SubscriptionConfig,
    SubscriptionFailed,
    SubState,
    Unsubscribed,
)
from sippa.sip.uri import Uri

__all__ = [
    "MWI_EXPIRES",
    "EventSubscriber",
    "MwiStatus",
    "VoicemailSubscriber",
    "same_flow",
    "voicemail_text",
]

log = logging.getLogger(__name__)

MWI_EXPIRES = 3600
"""Subscription duration asked for, seconds (RFC 3842 §3.4's suggestion: one hour)."""


@dataclass(slots=True)
class MwiStatus:
    """The voicemail state of one line."""

    messages_waiting: bool = False
    """The light: ``Messages-Waiting: yes`` in the last summary."""
    new: int = 0
    """New voice messages."""
    old: int = 0
    """Old (heard) voice messages."""
    new_urgent: int = 0
    old_urgent: int = 0
    account: str | None = None
    """The mailbox the last summary named (Message-Account)."""
    updated: float | None = None
    """Wall-clock time (``time.time()``) of the last summary, None before the first."""
    source: str | None = None
    """``subscription`` or ``unsolicited`` (a NOTIFY without a subscription)."""
    subscription: str = "off"
    """State of our subscription: ``off``, ``subscribing``, ``active``, ``pending``,
    ``backoff``, ``given-up``, ``stopped``..."""
    reason: str | None = None
    """Why the subscription failed or ended, if it did."""

    def apply(self, summary: MessageSummary, source: str, when: float | None = None) -> None:
        """Take the counts of a summary (voice messages; the light from Messages-Waiting)."""
        voice = summary.voice
        self.messages_waiting = summary.messages_waiting
        self.new = voice.new if voice else 0
        self.old = voice.old if voice else 0
        self.new_urgent = voice.new_urgent if voice else 0
        self.old_urgent = voice.old_urgent if voice else 0
        self.account = summary.account
        self.source = source
        self.updated = time.time() if when is None else when

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages_waiting": self.messages_waiting,
            "new": self.new,
            "old": self.old,
            "new_urgent": self.new_urgent,
            "old_urgent": self.old_urgent,
            "account": self.account,
            "updated": self.updated,
            "source": self.source,
            "subscription": self.subscription,
            "reason": self.reason,
        }


def voicemail_text(mwi: dict[str, Any] | None) -> str:
    """What a person reads about a line's voicemail (web pages, CLI), from
    :meth:`MwiStatus.as_dict`: ``Voicemail: 2 new (1 urgent), 8 old``; empty when there is
    nothing to say."""
    if not mwi:
        return ""
    if mwi.get("updated") is None:
        state = mwi.get("subscription") or "off"
        if state == "off":
            return ""
        reason = mwi.get("reason")
        return f"Voicemail: {state}" + (f" ({reason})" if reason else "")
    new, old, urgent = mwi.get("new", 0), mwi.get("old", 0), mwi.get("new_urgent", 0)
    if mwi.get("messages_waiting"):
        text = f"Voicemail: {new} new" + (f" ({urgent} urgent)" if urgent else "")
        return text + (f", {old} old" if old else "")
    return "Voicemail: no new messages" + (f" ({old} old)" if old else "")


def same_flow(source: Address | None, target: str | None) -> bool:
    """True when ``source`` (where a request came from) is the peer of the line's registration
    flow, ``target`` as the registrar reports it (``TLS:127.0.0.1:5061``)."""
    if source is None or not target:
        return False
    kind, _, rest = target.partition(":")
    host, _, port = rest.rpartition(":")
    return (
        source.transport.upper() == kind.upper()
        and source.host.lower() == host.strip("[]").lower()
        and str(source.port) == port
    )


Route = Callable[[Uri, bool], Awaitable[tuple[Uri | None, NameAddr | None]]]
"""``route(resource, initial)``: the pre-loaded route (first hop) of an initial SUBSCRIBE to
``resource`` (None for none; not asked for in-dialog ones), and the Contact to use (the line's
registration flow, as its REGISTER has it; None: the core's Contact)."""


class EventSubscriber:
    """Drives one sans-IO :class:`~sippa.sip.subscription.Subscription` of a line (any event
    package): sends its SUBSCRIBEs through the phone's UA core, feeds back responses, timeouts
    and NOTIFYs, runs its timer on the event loop. Subclasses read the NOTIFY contents
    (:meth:`_notified`); ``status`` has ``subscription`` and ``reason`` attributes."""

    def __init__(
        self,
        number: int,
        config: SubscriptionConfig,
        status: Any,
        *,
        contact_user: str,
        core: Callable[[], UserAgentCore | None],
        now: Callable[[], float],
        pump: Callable[[], None],
        route: Route,
        changed: Callable[[], None],
        random_bits: Callable[[int], int],
        authorize: Any = None,
        label: str = "",
    ) -> None:
        self.number = number
        self.status = status
        self.subscription = Subscription(
            config, random_bits, authorize=authorize, prefix=f"[ext{number} {label}]"
        )
        self._core, self._now, self._pump, self._route = core, now, pump, route
        self._changed = changed
        self._contact_user = contact_user
        self.contact: NameAddr | None = None
        """The Contact of our last SUBSCRIBE."""
        self._handle: str | None = None  # the SUBSCRIBE transaction in flight
        self._sending = False
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._done = asyncio.Event()

    # -- commands ----------------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe (again)."""
        if self.subscription.status.state in (SubState.IDLE, SubState.STOPPED,
                                              SubState.GIVEN_UP):
            self._done.clear()
            self.subscription.start(self._now())
            self._drive()

    @property
    def started(self) -> bool:
        return self.subscription.status.state is not SubState.IDLE

    async def stop(self, timeout: float = 2.0) -> None:
        """Unsubscribe (Expires: 0) and wait a little for the answer."""
        sub = self.subscription
        if sub.status.state in (SubState.IDLE, SubState.STOPPED):
            self._cancel()
            return
        sub.stop(self._now())
        self._drive()
        if sub.status.state is SubState.UNSUBSCRIBING:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), timeout)
        self._cancel()

    def refresh(self) -> None:
        """Refresh at once (the registration moved to a new flow: a new Contact)."""
        self.subscription.refresh(self._now())
        self._drive()

    # -- inputs from the phone ---------------------------------------------------------------
    def on_response(self, handle: str, response: Response) -> bool:
        """A response to one of our SUBSCRIBEs? (True: taken)"""
        if handle != self._handle:
            return False
        if response.status_code >= 200:
            self._handle = None
            self.subscription.response_received(response, self._now())
            self._drive()
        return True

    def on_failure(self, handle: str, reason: str) -> bool:
        """Our SUBSCRIBE timed out or could not be sent? (True: taken)"""
        if handle != self._handle:
            return False
        self._handle = None
        self.subscription.send_failed(reason, self._now())
        self._drive()
        return True

    def matches(self, request: Request) -> bool:
        """True when ``request`` (a NOTIFY) belongs to this subscription."""
        return self.subscription.matches(request)

    def on_notify(self, request: Request) -> int | None:
        """The status to answer a NOTIFY of our subscription with; None if not ours."""
        if not self.subscription.matches(request):
            return None
        status = self.subscription.notify_received(request, self._now())
        self._drive()
        return status

    # -- internals ---------------------------------------------------------------------------
    def _drive(self) -> None:
        sub = self.subscription
        if sub.wants_send() and not self._sending:
            self._sending = True
            task = asyncio.ensure_future(self._send())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        changed = False
        while (event := sub.next_event()) is not None:
            changed = True
            self._apply(event)
        st = sub.status
        new_state = _shown_state(sub)
        if new_state != self.status.subscription:
            self.status.subscription = new_state
            changed = True
        if st.state in (SubState.SUBSCRIBED, SubState.REFRESHING):
            self.status.reason = None
        self._arm()
        if changed:
            self._changed()

    def _notified(self, event: Notified) -> None:
        """A NOTIFY of the subscription (its body parsed by ``config.parse_body``)."""

    def _apply(self, event: object) -> None:
        if isinstance(event, Notified):
            self._notified(event)
        elif isinstance(event, SubscriptionFailed):
            self.status.reason = event.reason
        elif isinstance(event, Subscribed):
            self.status.reason = None
        elif isinstance(event, Unsubscribed):
            self._done.set()

    async def _send(self) -> None:
        sub = self.subscription
        try:
            outbound, contact = await self._route(sub.config.resource, not sub.in_dialog)
            core = self._core()
            if core is None or not sub.wants_send():
                return
            if sub.dialog is not None:
                hop = sub.dialog.next_hop()
            else:
                hop = outbound or sub.config.resource
            transport = hop.transport or ("tls" if hop.is_secure else "udp")
            now = self._now()
            if contact is None:
                ours = core.contact(transport)
                contact = NameAddr(None, ours.uri.replace(user=self._contact_user))
            request, next_hop = sub.build_request(contact, now, outbound=outbound)
            self.contact = contact
            self._handle = core.send_prepared(request, next_hop, now)
            self._pump()
        except (OSError, ProtocolError, ValueError, LookupError) as exc:
            why = exc.reason if isinstance(exc, ProtocolError) else str(exc) or type(exc).__name__
            log.info("[ext%d] cannot send the SUBSCRIBE: %s", self.number, why)
            sub.send_failed(f"cannot send: {why}", self._now())
        except Exception as exc:  # the phone's own errors (CallError: cannot locate...)
            log.info("[ext%d] cannot send the SUBSCRIBE: %s", self.number, exc)
            sub.send_failed(f"cannot send: {exc}", self._now())
        finally:
            self._sending = False
        self._drive()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.subscription.get_timer()
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, deadline - self._now()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.subscription.handle_timer(self._now())
        self._drive()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        self.status.subscription = _shown_state(self.subscription)


def _shown_state(sub: Subscription) -> str:
    state = sub.status.state
    if state is SubState.IDLE:
        return "off"
    if state in (SubState.SUBSCRIBED, SubState.REFRESHING):
        return sub.status.substate or "active"
    return str(state.value)


class VoicemailSubscriber(EventSubscriber):
    """Drives one line's ``message-summary`` subscription (see the module docstring)."""

    status: MwiStatus

    def __init__(
        self,
        number: int,
        resource: Uri,
        subscriber: NameAddr,
        *,
        contact_user: str,
        core: Callable[[], UserAgentCore | None],
        now: Callable[[], float],
        pump: Callable[[], None],
        route: Route,
        changed: Callable[[], None],
        random_bits: Callable[[int], int],
        authorize: Any = None,
        status: MwiStatus | None = None,
        expires: int = MWI_EXPIRES,
        retry_base: float = 30.0,
        retry_max: float = 1200.0,
    ) -> None:
        config = SubscriptionConfig(
            resource,
            subscriber,
            EVENT_PACKAGE,
            accept=(CONTENT_TYPE,),
            expires=expires,
            retry_base=retry_base,
            retry_max=retry_max,
            parse_body=MessageSummary.parse,
        )
        super().__init__(
            number, config, status if status is not None else MwiStatus(),
            contact_user=contact_user, core=core, now=now, pump=pump, route=route,
            changed=changed, random_bits=random_bits, authorize=authorize, label="mwi",
        )

    def _notified(self, event: Notified) -> None:
        if isinstance(event.content, MessageSummary):
            self.status.apply(event.content, "subscription")
            voice = event.content.voice
            log.info("[ext%d] voicemail: %s, %s", self.number,
                     "waiting" if event.content.messages_waiting else "none waiting",
                     f"voice {voice}" if voice else "no counts")
