"""The Phone: N lines, one SIP endpoint and one media engine, driven from the config store.

::

    store = ConfigStore(path)
    phone = Phone(store, PhoneOptions(...))
    await phone.start()                       # listens, registers the lines that register
    call = await phone.dial("sips:bob@example.test", line=1)
    await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 10)
    call.security().padlock                   # True only for validated TLS + SRTP keyed over it
    await phone.hangup(call.id)
    await phone.stop()

One sans-IO :class:`~sippa.sip.core.UserAgentCore` serves every line: before each
out-of-dialog command the phone sets the core's identity (From, Contact user) and first hop
(the line's registrar flow, its proxy, or the called host for direct calls) to the line's.
Each call gets an SDP :class:`~sippa.sdp.Negotiator` whose SRTP policy comes from
:func:`sippa.app.security.plan_offer` (the line's Secure Call setting and "keys only over
TLS"); agreed media goes to the one :class:`~sippa.media.MediaEngine` as plain parameters.
Subscribers (web, API, CLI) get :class:`LineChanged` and :class:`CallChanged` events; saving
settings re-applies the changed lines at once (re-registering them).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sippa.app.blf import BlfStatus, BlfSubscriber, parse_extended_function
from sippa.app.call import Call, CallState, stream_config
from sippa.app.history import CallHistory, HistoryEntry
from sippa.app.line import Line, LineConfig, split_host_port
from sippa.app.mwi import EventSubscriber, MwiStatus, VoicemailSubscriber, same_flow
from sippa.app.register import make_authorize
from sippa.app.security import (
    MediaFacts,
    OfferPlan,
    SignallingFacts,
    check_answer,
    plan_offer,
)
from sippa.app.settings import BLF_KEY_COUNT
from sippa.app.store import ConfigStore, Key
from sippa.app.trace import TraceEntry, TraceStore
from sippa.errors import LocalProtocolError, ProtocolError
from sippa.media import (
    AudioSink,
    AudioSource,
    DtmfReceived,
    EngineSettings,
    MediaEngine,
    SourceFinished,
)
from sippa.net.dns import Resolver, locate, parse_server
from sippa.net.endpoint import Endpoint, FlowLost
from sippa.net.ports import PortRange
from sippa.net.registrar import LineRegistrar
from sippa.net.tls import (
    TrustStore,
    make_client_context,
    make_server_context,
    tls_server_name,
)
from sippa.net.transport import Flow, Peer, TransportSettings
from sippa.sdp import (
    MediaCapabilities,
    Negotiator,
    NegotiatorState,
    SessionDescription,
    SrtpPolicy,
)
from sippa.sip.core import CoreConfig, UserAgentCore, default_port
from sippa.sip.dialog_info import EVENT_PACKAGE as DIALOG_PACKAGE
from sippa.sip.dialplan import DialPlanError, Outcome, Verdict, is_dialable, parse_dial_plan
from sippa.sip.digest import DigestClient
from sippa.sip.digest_server import DigestVerifier
from sippa.sip.events import (
    Address,
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallRinging,
    Event,
    IncomingCall,
    ReinviteAnswered,
    ReinviteFailed,
    ReinviteReceived,
    RequestReceived,
    RequestScreened,
    ResponseReceived,
    SessionRefreshDue,
    SessionTimerChanged,
    TransactionTimeout,
    TransportError,
)
from sippa.sip.headers import NameAddr
from sippa.sip.locate import LocateRequest, Target, TransportChoice
from sippa.sip.message import Request, Response
from sippa.sip.mwi import EVENT_PACKAGE as MWI_PACKAGE
from sippa.sip.mwi import MessageSummary
from sippa.sip.registration import Authorize, Registered, RegistrationConfig
from sippa.sip.regpolicy import INCOMING_STATUS, NOT_REGISTERED
from sippa.sip.restrict import Screen, SourceRestriction
from sippa.sip.session_timer import SessionTimerConfig
from sippa.sip.timers import TimerConfig
from sippa.sip.uri import Uri

__all__ = [
    "CallChanged", "CallError", "DialPlanRefused", "LineChanged", "Phone", "PhoneEvent",
    "PhoneOptions",
]

log = logging.getLogger(__name__)

# Settings whose change needs the line's registration redone.
_REGISTRATION_KEYS = frozenset({
    "line_enable", "user_id", "password", "use_auth_id", "auth_id", "proxy", "outbound_proxy",
    "use_outbound_proxy", "register", "register_expires", "use_dns_srv", "dns_srv_auto_prefix",
    "tls_name_validate", "sip_transport", "display_name", "alternate_proxy",
    "alternate_outbound_proxy",
})
_USER_KEYS = frozenset({"secure_call_setting", "dnd_setting", "cfwd_all_dest", "cw_setting"})
# Settings whose change needs the line's voicemail subscription redone.
_MWI_KEYS = frozenset({"mwi_enable", "voice_mail_server", "mailbox_id"})
_SESSION_TIMER_KEYS = frozenset({"session_expires", "min_se"})


SCREEN_STATUS_INTERVAL = 1.0
"""Seconds between line-status updates for refused requests (a scanner flood must not flood
the web pages' event stream)."""

KEEP_ENDED_CALLS = 50
"""Ended calls kept in ``Phone.calls`` (the history table keeps more)."""


class CallError(Exception):
    """A call command that cannot be carried out (the message is for people)."""


class DialPlanRefused(CallError):
    """The line's dial plan refuses a typed number (barred, incomplete, or not in the plan)."""

    def __init__(self, message: str, verdict: Verdict) -> None:
        super().__init__(message)
        self.verdict = verdict

    @property
    def barred(self) -> bool:
        return self.verdict.outcome is Outcome.BARRED


@dataclass(frozen=True, slots=True)
class LineChanged:
    """A line's registration state or settings changed."""

    line: int
    status: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallChanged:
    """A call changed state (or its media or security did)."""

    call: str
    state: str
    info: dict[str, Any]


PhoneEvent = LineChanged | CallChanged


@dataclass(slots=True)
class PhoneOptions:
    """How the phone runs (what is not a user setting: addresses, certificates, trust)."""

    host: str = "127.0.0.1"
    """Address to listen on for SIP and RTP."""
    udp_port: int | None = 0
    """SIP over UDP (0: any port, None: do not listen)."""
    tcp_port: int | None = 0
    tls_port: int | None = 0
    """SIP over TLS; needs ``tls_cert``/``tls_key``."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ca_files: list[Path] = field(default_factory=list)
    """Extra trust anchors (PEM files)."""
    ca_dir: Path | None = None
    """Where the Custom CA Rule installs its bundles (``*.pem``); read again by
    :meth:`Phone.reload_trust`."""
    extra_ca_pem: list[bytes] = field(default_factory=list)
    """Extra trust anchors (PEM data), e.g. the built-in echo service's certificate."""
    system_ca: bool = True
    dns: str | None = None
    """DNS server ``ip[:port]``; default: the DNS Server setting, else the system's."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Short names that dial a URI (``echo`` -> the echo service)."""
    incoming_media: Callable[[Call], tuple[AudioSource | None, AudioSink | None]] | None = None
    """Source and sink for answered incoming calls (default: silence, nothing played)."""
    history: bool = True
    """Keep a call history (in the settings database)."""
    srtp_suites: tuple[str, ...] | None = None
    """SDES suites to offer and accept (default: every suite, strongest first)."""


class _PhoneCore(UserAgentCore):
    """The UA core, plus a Contact on the 3xx we send for call forwarding (RFC 3261 §21.3)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.redirects: dict[str, tuple[str, ...]] = {}
        """Call handle -> the URIs our 3xx for it names (best first)."""

    def send_response(self, txn: Any, response: Response, now: float) -> None:
        if 300 <= response.status_code < 400:
            session = self._owners.get(txn.handle)
            targets = self.redirects.pop(session.handle, ()) if session is not None else ()
            for target in targets:
                response.headers.add("Contact", f"<{target}>")
        super().send_response(txn, response, now)

    def sip_call_id(self, handle: str) -> str | None:
        """The SIP Call-ID of a live call handle."""
        session = self._sessions.get(handle)
        return session.call_id if session is not None else None


class Phone:
    """The phone (see the module docstring)."""

    def __init__(self, store: ConfigStore, options: PhoneOptions | None = None) -> None:
        self.store = store
        self.options = options or PhoneOptions()
        self.restriction = SourceRestriction()
        """Restrict Source IP: each line's allowed sources and what it refused."""
        self.lines: dict[int, Line] = {
            n: Line(LineConfig.from_store(store, n), restriction=self.restriction)
            for n in range(1, store.lines + 1)
        }
        self._screen_shown: dict[int, float] = {}  # line -> when its refusals were last shown
        self._screen_pending: set[int] = set()  # lines whose refusals will be shown soon
        self._locating: dict[int, asyncio.Task[None]] = {}
        self.calls: dict[str, Call] = {}
        self.history = CallHistory(store.path) if self.options.history else None
        self.endpoint: Endpoint | None = None
        self.core: _PhoneCore | None = None
        self.media: MediaEngine | None = None
        self._subscribers: list[Callable[[PhoneEvent], None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._base: CoreConfig | None = None
        self._digest: dict[int, DigestClient] = {}
        self._insecure_names: set[str] = set()
        self._tls_ok: ssl.SSLContext | None = None
        self._tls_insecure: ssl.SSLContext | None = None
        self._resolver: Resolver | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._transfers: dict[str, str] = {}  # new call -> the call that REFERred us
        self.traces = TraceStore()
        """The recent SIP messages of recent calls, by SIP Call-ID (:meth:`trace`)."""
        self._sip_call_ids: dict[str, str] = {}  # call id -> SIP Call-ID, oldest first
        self.local: dict[str, tuple[str, int]] = {}
        """Where we listen: transport -> (host, port)."""
        self.on_resync: Callable[[], Awaitable[object]] | None = None
        """Called for an authenticated ``NOTIFY Event: resync`` (the provisioning service)."""
        # NOTIFY resync must prove it knows a line's password (Cisco "Auth Resync-Reboot")
        self._notify_auth = DigestVerifier(
            "sippa", secrets.token_bytes(32), self._line_password,
            allow_md5=bool(store.get("digest_allow_md5")),
        )

    # --- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen, start the media engine, register the lines."""
        self._loop = asyncio.get_running_loop()
        opts, store = self.options, self.store
        self.media = MediaEngine(
            EngineSettings(
                rtp_port_min=int(store.get("rtp_port_min")),
                rtp_port_max=int(store.get("rtp_port_max")),
                bind_host=opts.host,
            )
        )
        await self.media.start()
        self.reload_trust()
        server_ctx: ssl.SSLContext | None = None
        if opts.tls_port is not None and opts.tls_cert is not None:
            server_ctx = make_server_context(opts.tls_cert, opts.tls_key)
        ports = PortRange.narrowed(
            int(store.get("sip_tcp_port_min")), int(store.get("sip_tcp_port_max"))
        )
        keepalive = float(store.get("nat_keep_alive_intvl"))
        self.endpoint = Endpoint(
            on_event=self._on_event,
            settings=TransportSettings(tcp_ports=ports, keepalive_interval=keepalive),
            tls_client=self._tls_context,
            tls_server=server_ctx,
        )
        local: list[Address] = []
        for transport, port in (("tls", opts.tls_port), ("tcp", opts.tcp_port),
                                ("udp", opts.udp_port)):
            if port is None or (transport == "tls" and server_ctx is None):
                continue
            host, bound = await self.endpoint.listen(transport.upper(), opts.host, port)
            self.local[transport] = (host, bound)
            local.append(Address(transport, host, bound))
        if not local:
            raise CallError("the phone listens on no transport")
        timers = TimerConfig(
            t1=float(store.get("sip_t1")), t2=float(store.get("sip_t2")),
            t4=float(store.get("sip_t4")),
        )
        self._base = CoreConfig(
            local=tuple(local),
            aor=NameAddr(None, Uri("sip", "sippa", None, opts.host)),
            # an incoming call's dialog starts with the default line's Contact user and gets
            # the called line's before the first response with a Contact (_on_incoming)
            contact_user=self.lines[self._default_line()].config.user_id or "sippa",
            timers=timers,
            user_agent=str(store.get("sip_user_agent_name")).replace("$VERSION", "0.1"),
            session_timer=self._session_timer_config(),
        )
        self.core = _PhoneCore(
            self._base,
            ids=lambda: secrets.token_hex(8),
            rand=lambda: secrets.randbits(53) / float(1 << 53),
            authorize=self._authorize,
        )
        self.core.screen = self._screen
        self.core.rel100_for = self._rel100_for
        self.endpoint.core = self.core
        self.endpoint.on_message = self._traced
        dns = opts.dns or str(store.get("dns_server"))
        self._resolver = Resolver(*parse_server(dns)) if dns else Resolver()
        for line in self.lines.values():
            self._start_line(line)
        self._unsubscribe = store.subscribe(self._on_settings)

    async def stop(self) -> None:
        """Hang up every call, un-register, close everything."""
        if self._unsubscribe is not None:
            with contextlib.suppress(ValueError):
                self._unsubscribe()
            self._unsubscribe = None
        for call in list(self.calls.values()):
            if not call.is_over:
                with contextlib.suppress(CallError, ProtocolError):
                    await self.hangup(call.id, reason="the phone stopped")
        deadline = time.monotonic() + 2.0
        while any(not c.is_over for c in self.calls.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for call in list(self.calls.values()):
            if not call.is_over:
                await self._finish(call, "the phone stopped", None)
        for line in self.lines.values():
            await self._stop_line(line)
        for task in list(self._locating.values()):
            task.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self.endpoint is not None:
            await self.endpoint.close()
        if self.media is not None:
            await self.media.stop()
        if self.history is not None:
            self.history.close()

    async def __aenter__(self) -> Phone:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- subscribers --------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[PhoneEvent], None]) -> Callable[[], None]:
        """Call ``listener(event)`` on every line and call change; returns the unsubscriber."""
        self._subscribers.append(listener)
        return lambda: self._subscribers.remove(listener)

    def _emit(self, event: PhoneEvent) -> None:
        for listener in list(self._subscribers):
            try:
                listener(event)
            except Exception:
                log.exception("a phone listener failed")

    def _call_changed(self, call: Call) -> None:
        call.changed.set()
        self._emit(CallChanged(call.id, call.state.value, call.as_dict()))

    # --- lines --------------------------------------------------------------------------------
    def _tls_context(self, server_name: str | None) -> ssl.SSLContext:
        insecure = server_name is not None and server_name in self._insecure_names
        ctx = self._tls_insecure if insecure else self._tls_ok
        if ctx is None:
            raise ssl.SSLError("the phone is not started")
        return ctx

    def _start_line(self, line: Line) -> None:
        cfg = line.config
        if not cfg.tls_name_validate and cfg.proxy:
            self._insecure_names.add(tls_server_name(cfg.domain))
            if cfg.alternate_uri is not None:
                self._insecure_names.add(tls_server_name(cfg.alternate_uri.host))
        if cfg.enabled and cfg.user_id:
            self._digest[cfg.number] = DigestClient(
                cfg.auth_id,
                cfg.password,
                cnonce=lambda: secrets.token_hex(16),
                follow_server_order=str(self.store.get("digest_algorithm_order"))
                == "Server Order",
                allow_md5=bool(self.store.get("digest_allow_md5")),
            )
        if not cfg.enabled:
            line.mwi = MwiStatus()
        self._make_voicemail(line)
        self._make_blf(line)
        if not cfg.registers or self.endpoint is None or self._resolver is None:
            self._restrict(line)
            if line.voicemail is not None:
                line.voicemail.start()  # no registration to wait for
            for key in line.blf_subscribers.values():
                key.start()
            self._emit(LineChanged(cfg.number, line.as_dict()))
            return
        authorize = self._line_authorize(cfg)
        reg_config = RegistrationConfig(
            cfg.aor,
            expires=cfg.register_expires,
            retry_base=float(self.store.get("reg_retry_intvl")),
            retry_max=float(self.store.get("reg_retry_long_intvl")),
            display_name=cfg.display_name or None,
            fallback_interval=float(cfg.proxy_fallback_intvl),
        )
        registrar = LineRegistrar(
            self.endpoint,
            reg_config,
            authorize,
            self._resolver,
            proxy=cfg.proxy_uri,
            alternate=cfg.alternate_uri,
            transport=TransportChoice(cfg.transport),
            use_srv=cfg.use_dns_srv,
            srv_auto_prefix=cfg.dns_srv_auto_prefix,
            timers=self._base.timers if self._base else TimerConfig(),
            name=f"ext{cfg.number}",
            on_event=functools.partial(self._line_event_any, cfg.number),
            on_located=functools.partial(self._located, cfg.number),
        )
        line.registrar = registrar
        self._restrict(line)
        registrar.start()
        self._emit(LineChanged(cfg.number, line.as_dict()))

    def _line_authorize(self, cfg: LineConfig) -> Authorize:
        """The line's digest credentials with the phone's algorithm policy (RFC 8760)."""
        return make_authorize(
            cfg.auth_id,
            cfg.password,
            order="server"
            if str(self.store.get("digest_algorithm_order")) == "Server Order"
            else "strongest",
            allow_md5=bool(self.store.get("digest_allow_md5")),
        )

    def _line_event_any(self, number: int, event: object) -> None:
        line = self.lines.get(number)
        if isinstance(event, Registered) and line is not None:
            self._follow_flow(line, registered=True)
        if isinstance(event, Registered) and line is not None and line.voicemail is not None:
            voicemail = line.voicemail
            if not voicemail.started and self._loop is not None:
                # subscribe over the flow the registration just opened
                self._loop.call_soon(voicemail.start)
            elif line.mwi_flow is not None and self._loop is not None:
                local = line.registrar.status.local if line.registrar is not None else None
                if local and local != line.mwi_flow:
                    # re-registered over a new flow: tell the notifier our new Contact
                    self._loop.call_soon(voicemail.refresh)
        if isinstance(event, Registered) and line is not None and self._loop is not None:
            local = line.registrar.status.local if line.registrar is not None else None
            moved = line.blf_flow is not None and bool(local) and local != line.blf_flow
            for key in line.blf_subscribers.values():
                if not key.started:
                    self._loop.call_soon(key.start)  # over the flow just opened
                elif moved:
                    self._loop.call_soon(key.refresh)
        self._line_event(number)

    def _follow_flow(self, line: Line, *, registered: bool = False) -> None:
        """Requests on the registration's own TCP/TLS connection come from the proxy."""
        registrar = line.registrar
        if registrar is not None:
            registered = registered or registrar.status.registered
        flow = registrar.flow if registrar is not None and registered else None
        connection = flow.connection if flow is not None else None
        self.restriction.set_connections(line.number, () if connection is None else (connection,))

    # --- Restrict Source IP -----------------------------------------------------------------------
    def _restrict(self, line: Line) -> None:
        """Apply the line's Restrict Source IP setting and find its proxies' addresses.

        The registration's RFC 3263 targets come in through :meth:`_located` (again whenever
        it locates anew); the proxy behind an outbound proxy, and the proxies of a line that
        does not register, are located here."""
        cfg = line.config
        number = cfg.number
        self.restriction.configure(number, restricted=cfg.restrict_source_ip,
                                   has_proxy=cfg.has_proxy)
        self.restriction.forget(number)
        if line.registrar is not None and line.registrar.targets:
            self._located(number, line.registrar.targets, relocate=False)
            self._follow_flow(line)
        if self.restriction.active(number) and cfg.enabled:
            self._locate_proxies(line)

    def _located(self, number: int, targets: list[Target], *, relocate: bool = True) -> None:
        """The registration located its registrar (anew): those are the line's addresses."""
        self.restriction.set_addresses(number, "registrar", [t.address for t in targets])
        line = self.lines.get(number)
        if relocate and line is not None and self.restriction.active(number):
            self._locate_proxies(line)  # DNS may have changed for the other proxy too
        self._line_event(number)

    def _locate_proxies(self, line: Line) -> None:
        """Locate (in the background) the proxies the registration does not locate itself."""
        cfg = line.config
        wanted: list[tuple[str, str]] = []
        if cfg.outbound_proxy:
            if line.registrar is None:
                wanted.append(("outbound_proxy", cfg.outbound_proxy))
            if cfg.proxy:
                wanted.append(("proxy", cfg.proxy))  # calls may come from the proxy itself
        elif cfg.proxy and line.registrar is None:
            wanted.append(("proxy", cfg.proxy))
        if not wanted or self._resolver is None or self._loop is None:
            return
        previous = self._locating.pop(cfg.number, None)
        if previous is not None:
            previous.cancel()
        task = self._loop.create_task(self._locate_for_restriction(cfg, wanted))
        self._locating[cfg.number] = task

        def done(finished: asyncio.Task[None], number: int = cfg.number) -> None:
            if self._locating.get(number) is finished:
                del self._locating[number]

        task.add_done_callback(done)

    async def _locate_for_restriction(self, cfg: LineConfig, wanted: list[tuple[str, str]]
                                      ) -> None:
        assert self._resolver is not None
        scheme = "sips" if cfg.transport == "TLS" else "sip"
        for origin, text in wanted:
            host, port = split_host_port(text)
            request = LocateRequest.from_uri(
                Uri(scheme, None, None, host, port), transport=TransportChoice(cfg.transport),
                use_srv=cfg.use_dns_srv, srv_auto_prefix=cfg.dns_srv_auto_prefix,
            )
            try:
                result = await locate(request, self._resolver)
            except Exception as exc:  # a resolver failure must not end the task silently
                log.info("[ext%d] cannot locate %s for Restrict Source IP: %s",
                         cfg.number, host, exc)
                continue
            if not result.targets:
                log.info("[ext%d] cannot locate %s for Restrict Source IP: %s",
                         cfg.number, host, result.error or "no targets")
                continue
            self.restriction.set_addresses(cfg.number, origin,
                                           [t.address for t in result.targets])
        self._line_event(cfg.number)

    def _screen(self, request: Request, source: Address, now: float) -> Screen:
        """The core's source screen: the line the request would ring decides. A NOTIFY of one
        of our subscriptions names its Call-ID and our tag (random, unguessable off the path):
        it may come from a voicemail server that is not the line's proxy."""
        if request.method == "NOTIFY" and any(
            sub.matches(request) for sub in self._subscriptions()
        ):
            return Screen.ACCEPT
        return self.restriction.check(self._incoming_line(request), request.method, source, now)

    def _on_screened(self, event: RequestScreened) -> None:
        number = self._incoming_line(event.request)
        refused = self.restriction.refused(number)
        if refused.count == 1 or refused.count % 100 == 0:
            log.info("[ext%d] Restrict Source IP refused %s from %s (%d so far)", number,
                     event.request.method, refused.last_source, refused.count)
        now = self._now()
        last = self._screen_shown.get(number, now - SCREEN_STATUS_INTERVAL)
        wait = last + SCREEN_STATUS_INTERVAL - now
        if wait <= 0:
            self._screen_shown[number] = now
            self._line_event(number)
        elif number not in self._screen_pending and self._loop is not None:
            # the last of a burst is shown too, a little later
            self._screen_pending.add(number)
            self._loop.call_later(wait, self._show_screened, number)

    def _show_screened(self, number: int) -> None:
        self._screen_pending.discard(number)
        self._screen_shown[number] = self._now()
        self._line_event(number)

    # --- voicemail (RFC 3842 message-summary) ---------------------------------------------------
    def _make_voicemail(self, line: Line) -> None:
        cfg = line.config
        line.voicemail = None
        if not cfg.subscribes_mwi or self.endpoint is None:
            if line.mwi.source == "subscription":
                line.mwi = MwiStatus()  # what the ended subscription said no longer holds
            line.mwi.subscription = "off"
            line.mwi.reason = None
            return
        try:
            resource = cfg.mailbox_uri
        except ProtocolError as exc:
            line.mwi.subscription = "off"
            line.mwi.reason = f"bad Voice Mail Server: {exc.reason}"
            return
        authorize = self._line_authorize(cfg)
        line.voicemail = VoicemailSubscriber(
            cfg.number,
            resource,
            NameAddr(cfg.display_name or None, cfg.aor),
            contact_user=cfg.user_id or "sippa",
            core=lambda: self.core,
            now=self._now,
            pump=self._pump,
            route=functools.partial(self._voicemail_route, cfg),
            changed=functools.partial(self._line_event, cfg.number),
            random_bits=secrets.randbits,
            authorize=authorize,
            status=line.mwi,
            retry_base=float(self.store.get("reg_retry_intvl")),
            retry_max=float(self.store.get("reg_retry_long_intvl")),
        )

    def _subscriptions(self) -> list[EventSubscriber]:
        """Every subscription of every line (voicemail, BLF keys)."""
        subs: list[EventSubscriber] = []
        for line in self.lines.values():
            if line.voicemail is not None:
                subs.append(line.voicemail)
            subs.extend(line.blf_subscribers.values())
        return subs

    # --- busy lamp field (RFC 4235 dialog) -------------------------------------------------
    def _make_blf(self, line: Line) -> None:
        """The line keys' BLF subscriptions: line 1 has them (Extended_Function_k_)."""
        line.blf = []
        line.blf_subscribers = {}
        cfg = line.config
        if cfg.number != 1:
            return
        usable = cfg.enabled and bool(cfg.user_id) and bool(cfg.proxy)
        for k in range(1, BLF_KEY_COUNT + 1):
            text = str(self.store.get(f"extended_function_{k}"))
            try:
                function = parse_extended_function(text)
                if function is None:
                    continue
                resource = function.resource(cfg.domain, cfg.transport == "TLS")
            except (ValueError, ProtocolError) as exc:
                why = exc.reason if isinstance(exc, ProtocolError) else str(exc)
                line.blf.append(BlfStatus(k, f"Key {k}", text, reason=f"bad setting: {why}"))
                continue
            status = BlfStatus(k, function.label, str(resource),
                               speed_dial="sd" in function.functions)
            line.blf.append(status)
            if not usable or self.endpoint is None:
                status.reason = "Ext 1 has no proxy and user" if not usable else None
                continue
            line.blf_subscribers[k] = BlfSubscriber(
                cfg.number,
                status,
                resource,
                NameAddr(cfg.display_name or None, cfg.aor),
                contact_user=cfg.user_id or "sippa",
                core=lambda: self.core,
                now=self._now,
                pump=self._pump,
                route=functools.partial(self._subscription_route, cfg, "blf_flow"),
                changed=functools.partial(self._line_event, cfg.number),
                random_bits=secrets.randbits,
                authorize=self._line_authorize(cfg),
                retry_base=float(self.store.get("reg_retry_intvl")),
                retry_max=float(self.store.get("reg_retry_long_intvl")),
            )

    async def _stop_blf(self, line: Line) -> None:
        keys = line.blf_subscribers  # stay reachable for their answers while they unsubscribe
        with contextlib.suppress(Exception):
            await asyncio.gather(*(key.stop(timeout=2.0) for key in keys.values()))
        line.blf_subscribers = {}

    async def _redo_blf(self) -> None:
        line = self.lines.get(1)
        if line is None:
            return
        await self._stop_blf(line)
        self._make_blf(line)
        registrar = line.registrar
        if registrar is None or registrar.status.registered:
            for key in line.blf_subscribers.values():
                key.start()
        self._line_event(1)

    def _on_dialog_notify(self, event: RequestReceived, now: float) -> None:
        """``NOTIFY Event: dialog`` of a BLF key's subscription; else 481."""
        assert self.core is not None
        for line in self.lines.values():
            for key in line.blf_subscribers.values():
                status = key.on_notify(event.request)
                if status is not None:
                    self.core.respond(event.transaction, status, now)
                    return
        log.info("NOTIFY dialog from %s refused: no such subscription", event.source)
        self.core.respond(event.transaction, 481, now)

    async def _voicemail_route(
        self, cfg: LineConfig, uri: Uri, initial: bool
    ) -> tuple[Uri | None, NameAddr | None]:
        return await self._subscription_route(cfg, "mwi_flow", uri, initial)

    async def _subscription_route(
        self, cfg: LineConfig, flow_attr: str, uri: Uri, initial: bool
    ) -> tuple[Uri | None, NameAddr | None]:
        """First hop and Contact of a line's SUBSCRIBE. The first hop is found as for a call
        to ``uri`` (the registration flow when the line is registered and ``uri`` is in its
        domain); over the registration flow the Contact is the flow's, as in the REGISTER,
        so that the notifier's NOTIFYs come back over that connection."""
        hop: Uri | None = None
        peer: Peer | None = None
        if initial:
            hop, peer, server_name = await self._first_hop(cfg, uri)
            if server_name is not None and peer.transport == "TLS" and self.endpoint is not None:
                self.endpoint.expect_identity(peer, server_name)
                if not cfg.tls_name_validate:
                    self._insecure_names.add(server_name)
        line = self.lines[cfg.number]
        setattr(line, flow_attr, None)
        st = line.registrar.status if line.registrar is not None else None
        if st is None or not st.registered or not st.local or not st.target:
            return hop, None
        kind = st.target.partition(":")[0].upper()
        if peer is not None and not same_flow(
            Address(peer.transport.lower(), peer.host, peer.port), st.target
        ):
            return hop, None  # not over the registration flow
        host, _, port = st.local.rpartition(":")
        scheme = "sips" if kind == "TLS" else "sip"
        params: tuple[tuple[str, str | None], ...] = (
            (("transport", "tcp"),) if kind == "TCP" else ()
        )
        flow = Uri(scheme, cfg.user_id or "sippa", None, host.strip("[]"), int(port), params)
        setattr(line, flow_attr, st.local)
        return hop, NameAddr(None, flow)

    def _on_mwi_notify(self, event: RequestReceived, now: float) -> None:
        """``NOTIFY Event: message-summary``: of a line's subscription, or unsolicited from
        the line's registrar over its registration flow (RFC 3842 §3.9); else 481."""
        assert self.core is not None
        request = event.request
        for line in self.lines.values():
            if line.voicemail is not None:
                status = line.voicemail.on_notify(request)
                if status is not None:
                    self.core.respond(event.transaction, status, now)
                    return
        number = self._unsolicited_mwi_line(request, event.source)
        if number is None:
            log.info("NOTIFY message-summary from %s refused: no such subscription",
                     event.source)
            self.core.respond(event.transaction, 481, now)
            return
        try:
            summary = MessageSummary.parse(request.body)
        except ProtocolError as exc:
            log.info("[ext%d] bad message summary: %s", number, exc.reason)
            self.core.respond(event.transaction, exc.status_code, now, reason="Bad Summary")
            return
        self.core.respond(event.transaction, 200, now)
        self.lines[number].mwi.apply(summary, "unsolicited")
        log.info("[ext%d] voicemail (unsolicited): %s", number, summary.voice)
        self._line_event(number)

    def _unsolicited_mwi_line(self, request: Request, source: Address | None) -> int | None:
        """The line an unsolicited message-summary NOTIFY is for: it must come over the
        line's registration flow (from its registrar) and name the line's user or mailbox."""
        try:
            users = {request.uri.user, request.to.uri.user} - {None, ""}
        except ProtocolError:
            return None
        for number, line in self.lines.items():
            cfg, registrar = line.config, line.registrar
            if not cfg.enabled or registrar is None:
                continue
            if not same_flow(source, registrar.status.target):
                continue
            if users & ({cfg.user_id, cfg.mailbox_id} - {""}):
                return number
        return None

    def _line_event(self, number: int) -> None:
        line = self.lines.get(number)
        if line is not None:
            self._emit(LineChanged(number, line.as_dict()))

    async def _stop_line(self, line: Line) -> None:
        voicemail = line.voicemail  # stays reachable for its answers while it unsubscribes
        if voicemail is not None:
            with contextlib.suppress(Exception):
                await voicemail.stop(timeout=2.0)
            line.voicemail = None
        await self._stop_blf(line)
        registrar, line.registrar = line.registrar, None
        if registrar is not None:
            with contextlib.suppress(Exception):
                await registrar.stop(timeout=3.0)
            line.status = registrar.status

    async def wait_registered(self, number: int, timeout: float) -> bool:
        """Wait until line ``number`` is registered (False on failure or timeout)."""
        registrar = self.lines[number].registrar
        if registrar is None:
            return False
        if registrar.status.registered:
            return True
        with contextlib.suppress(TimeoutError):
            status = await registrar.wait_outcome(timeout)
            return status.registered
        return False

    def _on_settings(self, changes: dict[Key, Any]) -> None:
        loop = self._loop
        if loop is None:
            return
        lines = {n for (key, n) in changes if n}
        if any(key in _USER_KEYS for key, _ in changes):
            lines |= set(self.lines)
        redo = {n for (key, n) in changes if n and key in _REGISTRATION_KEYS}
        redo_mwi = {n for (key, n) in changes if n and key in _MWI_KEYS} - redo

        timers = any(key in _SESSION_TIMER_KEYS for key, _ in changes)
        blf = any(key.startswith("extended_function_") for key, _ in changes) and 1 not in redo

        def apply() -> None:
            if timers:
                self._apply_session_timer()
            task = loop.create_task(self._apply_settings(lines, redo, redo_mwi))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if blf:
                self._spawn(self._redo_blf())

        loop.call_soon_threadsafe(apply)

    async def _apply_settings(
        self, lines: set[int], redo: set[int], redo_mwi: frozenset[int] | set[int] = frozenset()
    ) -> None:
        """Apply saved settings live: new line configs, re-registration where needed."""
        for n in sorted(lines):
            line = self.lines.get(n)
            if line is None:
                continue
            if n in redo:
                await self._stop_line(line)
                line.config = LineConfig.from_store(self.store, n)
                self._start_line(line)
            elif n in redo_mwi:
                if line.voicemail is not None:
                    await line.voicemail.stop(timeout=2.0)
                line.config = LineConfig.from_store(self.store, n)
                if line.registrar is not None:
                    line.registrar.set_fallback_interval(float(line.config.proxy_fallback_intvl))
                self._restrict(line)
                self._make_voicemail(line)
                registrar = line.registrar
                if line.voicemail is not None and (
                    registrar is None or registrar.status.registered
                ):
                    line.voicemail.start()
                self._emit(LineChanged(n, line.as_dict()))
            else:
                line.config = LineConfig.from_store(self.store, n)
                if line.registrar is not None:
                    line.registrar.set_fallback_interval(float(line.config.proxy_fallback_intvl))
                self._restrict(line)
                self._emit(LineChanged(n, line.as_dict()))

    def _session_timer_config(self) -> SessionTimerConfig:
        """RFC 4028 preferences from the Session Expires and Min SE settings."""
        return SessionTimerConfig(
            int(self.store.get("session_expires")), int(self.store.get("min_se"))
        )

    def _apply_session_timer(self) -> None:
        """New session-timer settings apply to the next calls (and refreshes) at once."""
        if self._base is None or self.core is None:
            return
        config = self._session_timer_config()
        self._base = replace(self._base, session_timer=config)
        self.core.config = replace(self.core.config, session_timer=config)

    # --- SIP identity and routing ---------------------------------------------------------------
    def _authorize(self, request: Request, response: Response) -> Any:
        """Answer a 401/407 on a call with the credentials of the line it belongs to."""
        number = self._line_of_identity(request.from_.uri)
        client = self._digest.get(number)
        if client is None:
            raise LocalProtocolError("no credentials for this line", 401)
        return client.authorize(request, response)

    def _line_of_identity(self, uri: Uri) -> int:
        for n, line in self.lines.items():
            if line.config.enabled and line.config.user_id and line.config.user_id == uri.user:
                return n
        return self._default_line()

    def _default_line(self) -> int:
        for n, line in self.lines.items():
            if line.config.enabled:
                return n
        return 1

    def _use_line(self, cfg: LineConfig, hop: Uri | None) -> None:
        """Set the core's identity and first hop to the line's (before a command)."""
        if self.core is None or self._base is None:
            raise CallError("the phone is not started")
        display = cfg.display_name or None
        self.core.config = replace(
            self._base,
            aor=NameAddr(display, cfg.aor),
            contact_user=cfg.user_id or "sippa",
            outbound_proxy=hop,
        )

    def _target_uri(self, target: str, cfg: LineConfig) -> Uri:
        """A dialled string as a URI: aliases, full URIs, ``user@host``, or a number."""
        target = self.options.aliases.get(target.strip(), target.strip())
        if not target:
            raise CallError("nothing to call")
        scheme = "sips" if cfg.transport == "TLS" else "sip"
        lower = target.lower()
        if lower.startswith(("sip:", "sips:")):
            text = target
        elif "@" in target:
            text = f"{scheme}:{target}"
        elif cfg.proxy:
            text = f"{scheme}:{target}@{cfg.domain}"  # a number: user@line domain
        else:
            text = f"{scheme}:{target}"  # a host of its own
        try:
            return Uri.parse(text)
        except ProtocolError as exc:
            raise CallError(f"cannot call {target!r}: {exc.reason}") from None

    async def _first_hop(
        self, cfg: LineConfig, uri: Uri, *, direct: bool = False
    ) -> tuple[Uri | None, Peer, str | None]:
        """(route for the core, the first-hop peer, the TLS name it must prove).

        Calls go through the line's outbound proxy when it has one, to its proxy when the
        target is in the line's domain (over the registration flow once registered), and
        straight to the target's host otherwise (or when ``direct``)."""
        registrar = self.lines[cfg.number].registrar
        own_domain = bool(cfg.proxy) and uri.host.lower() == cfg.domain.lower()
        via_proxy = not direct and (bool(cfg.outbound_proxy) or own_domain)
        if via_proxy and registrar is not None and registrar.status.target:
            kind, _, rest = registrar.status.target.partition(":")
            host, _, port_text = rest.rpartition(":")
            peer = Peer.of(kind, host.strip("[]"), int(port_text))
            return self._hop(peer), peer, None  # the registrar set the TLS identity
        where = cfg.proxy_uri if via_proxy and cfg.proxy_uri is not None else uri
        transport = where.transport or ("tls" if where.is_secure else None)
        choice = TransportChoice(transport.upper()) if transport else TransportChoice(
            cfg.transport
        )
        if _is_ip(where.host):
            t = transport or (
                "tls" if choice in (TransportChoice.TLS, TransportChoice.AUTO)
                else choice.value.lower()
            )
            peer = Peer.of(t, where.host, where.port or default_port(t))
            # no Route when the core reaches the Request-URI's host by itself (§8.1.2)
            implied = (uri.transport or ("tls" if uri.is_secure else "udp")).upper()
            same = where is uri and implied == peer.transport and (
                (uri.port or default_port(implied)) == peer.port
            )
            return None if same else self._hop(peer), peer, tls_server_name(where.host)
        if self._resolver is None:
            raise CallError("the phone is not started")
        request = LocateRequest.from_uri(
            where, transport=choice, use_srv=cfg.use_dns_srv,
            srv_auto_prefix=cfg.dns_srv_auto_prefix,
        )
        result = await locate(request, self._resolver)
        if not result.targets:
            raise CallError(f"cannot locate {where.host}: {result.error or 'no targets'}")
        t0 = result.targets[0]
        peer = Peer.of(t0.transport.value, t0.address, t0.port)
        return self._hop(peer), peer, t0.tls_server_name

    @staticmethod
    def _hop(peer: Peer) -> Uri:
        return Uri("sip", None, None, peer.host, peer.port,
                   (("transport", peer.transport.lower()), ("lr", None)))

    def _signalling(self, peer: Peer | None, cfg: LineConfig) -> SignallingFacts:
        """How this call's SIP travels to the first hop, from the live connection."""
        if peer is None:
            return SignallingFacts("UDP")
        if peer.transport != "TLS" or self.endpoint is None:
            return SignallingFacts(peer.transport)
        conn = self.endpoint.transports.connections.get(peer)
        tls = conn.flow.tls if conn is not None and conn.flow is not None else None
        validated = bool(conn is not None and conn.outgoing and tls is not None and tls.verified)
        return SignallingFacts(
            "TLS",
            certificate_validated=validated,
            tls_version=tls.version if tls else None,
            cipher=tls.cipher if tls else None,
            group=tls.group if tls else None,
            peer_subject=tls.peer_subject if tls else None,
            validation_disabled=not cfg.tls_name_validate and bool(conn and conn.outgoing),
        )

    # --- offers -------------------------------------------------------------------------------
    def _negotiator(self, cfg: LineConfig, plan: OfferPlan, port: int) -> Negotiator:
        if not plan.include_crypto:
            srtp = SrtpPolicy.OFF
        elif plan.profile == "RTP/SAVP":
            srtp = SrtpPolicy.MANDATORY
        else:
            srtp = SrtpPolicy.BEST_EFFORT
        ptime = round(float(self.store.get("rtp_packet_size")) * 1000)
        caps = MediaCapabilities(
            address=self.options.host,
            port=port,
            codecs=cfg.codecs,
            ptime=ptime,
            srtp=srtp,
            rtcp_mux=True,
            username="sippa",
        )
        if self.options.srtp_suites is not None:
            caps = replace(caps, suites=self.options.srtp_suites)
        return Negotiator(
            caps,
            session_id=secrets.randbits(62),
            session_version=secrets.randbits(30),
            random_bytes=secrets.token_bytes,
        )

    def reload_trust(self) -> None:
        """(Re)build the TLS client contexts from the trust anchors: the system store, the
        configured CA files, the Custom CA Rule bundles and the built-in services' certificates.
        New connections use them; established ones keep what they validated."""
        opts = self.options
        files = [str(p) for p in opts.ca_files]
        if opts.ca_dir is not None and opts.ca_dir.is_dir():
            files += [str(p) for p in sorted(opts.ca_dir.glob("*.pem"))]
        trust = TrustStore.from_files(files, system=opts.system_ca)
        for i, pem in enumerate(opts.extra_ca_pem):
            trust.add_pem_data(pem, f"extra-{i}")
        self._tls_ok = make_client_context(trust, verify=True, require_group_policy=False)
        self._tls_insecure = make_client_context(trust, verify=False, require_group_policy=False)
        log.info("trust anchors loaded: %d", len(trust))

    def _now(self) -> float:
        return self.endpoint.clock() if self.endpoint is not None else time.monotonic()

    def _pump(self) -> None:
        if self.endpoint is not None:
            self.endpoint.pump()

    # --- SIP trace ----------------------------------------------------------------------------
    def _traced(self, direction: str, data: bytes, flow: Flow) -> None:
        self.traces.record(
            direction, data, now=time.time(), transport=flow.peer.transport,
            local=(flow.local_host, flow.local_port), remote=(flow.peer.host, flow.peer.port),
        )

    def _remember_call_id(self, call: str, sip_call_id: str | None) -> None:
        if sip_call_id is None:
            return
        self._sip_call_ids[call] = sip_call_id
        while len(self._sip_call_ids) > 2 * self.traces.max_calls:
            del self._sip_call_ids[next(iter(self._sip_call_ids))]

    def trace(self, call_id: str) -> list[TraceEntry]:
        """The recent SIP messages of call ``call_id``, oldest first (secrets masked)."""
        sip_call_id = self._sip_call_ids.get(call_id)
        if sip_call_id is None:
            raise CallError(f"no call {call_id!r}")
        return self.traces.get(sip_call_id)

    def traced_calls(self) -> list[str]:
        """The ids of the calls :meth:`trace` knows, newest first."""
        return list(reversed(self._sip_call_ids))

    # --- commands -----------------------------------------------------------------------------
    async def dial(
        self,
        target: str,
        line: int | None = None,
        *,
        source: AudioSource | None = None,
        sink: AudioSink | None = None,
        record_sent: AudioSink | None = None,
    ) -> Call:
        """Call ``target`` (URI, ``user@host``, a number, or an alias) from ``line``."""
        if self.core is None or self.media is None:
            raise CallError("the phone is not started")
        number = line or self._default_line()
        if number not in self.lines:
            raise CallError(f"no line {number} (lines 1..{len(self.lines)})")
        cfg = self.lines[number].config
        direct = target.strip() in self.options.aliases  # built-in services are local
        if not direct:
            target = self._apply_dial_plan(target, cfg)
        uri = self._target_uri(target, cfg)
        refused = None if direct else self.lines[number].without_reg().outgoing_error()
        if refused is not None:
            # Make Call Without Reg = No: say so now, not after the proxy refuses the INVITE
            self._record_refused(number, str(uri), NOT_REGISTERED)
            raise CallError(f"line {number}: {refused}")
        hop, peer, server_name = await self._first_hop(cfg, uri, direct=direct)
        plan = self._outgoing_plan(cfg, number, uri, peer, server_name)
        port = self.media.reserve_port(rtcp_mux=True)
        neg = self._negotiator(cfg, plan, port)
        offer = neg.create_offer()
        self._use_line(cfg, hop)
        handle = self.core.invite(uri, self._now(), body=bytes(offer), rel100=cfg.rel100)
        self._remember_call_id(handle, self.core.sip_call_id(handle))
        call = Call(handle, number, "outgoing", str(uri), cfg.policy, neg, port)
        call.source, call.sink, call.record_sent = source, sink, record_sent
        call.first_hop = peer
        call.signalling = SignallingFacts(peer.transport)
        self.calls[handle] = call
        log.info("[%s] ext%d calling %s via %s (%s)", handle, number, uri, peer, plan.profile)
        self._pump()
        self._call_changed(call)
        return call

    def _apply_dial_plan(self, target: str, cfg: LineConfig) -> str:
        """A typed number through the line's ``Dial_Plan_n_``: what to dial instead (the
        rewritten number, ``number@host`` when the plan routes it), or DialPlanRefused.
        URIs, ``user@host`` and names are not numbers and pass unchanged (Cisco's IP
        dialing); so does every number on a line without a plan."""
        number = target.strip()
        if not cfg.dial_plan or not is_dialable(number):
            return target
        try:
            plan = parse_dial_plan(cfg.dial_plan)
        except DialPlanError as exc:  # a store written before validation: refuse, say why
            verdict = Verdict(Outcome.NO_MATCH, number)
            self._record_refused(cfg.number, number, "invalid dial plan")
            raise DialPlanRefused(f"line {cfg.number}: the dial plan is invalid: {exc}",
                                  verdict) from None
        verdict = plan.check(number)
        if not verdict.allowed:
            self._record_refused(cfg.number, number, verdict.outcome.value)
            log.info("ext%d dial plan refuses %s: %s", cfg.number, number, verdict.reason)
            raise DialPlanRefused(f"line {cfg.number}: {verdict.reason}", verdict)
        if verdict.target != number:
            log.info("ext%d dial plan: %s -> %s (%s)", cfg.number, number, verdict.target,
                     verdict.rule)
        return verdict.target

    def _outgoing_plan(
        self, cfg: LineConfig, number: int, uri: Uri, peer: Peer, server_name: str | None,
        *, record: bool = True,
    ) -> OfferPlan:
        """The secure-call policy's verdict on calling ``uri`` via ``peer`` (CallError if
        refused); a TLS hop is told the name it must prove."""
        plan = plan_offer(
            cfg.policy,
            signalling_is_tls=peer.transport == "TLS",
            keys_only_over_tls=cfg.keys_only_over_tls,
        )
        if not plan.allowed:
            if record:
                self._record_refused(number, str(uri), plan.reason or "refused by policy")
            raise CallError(plan.reason or "the secure-call policy refuses this call")
        if server_name is not None and peer.transport == "TLS":
            self.endpoint.expect_identity(peer, server_name)  # type: ignore[union-attr]
            if not cfg.tls_name_validate:
                self._insecure_names.add(server_name)
        return plan

    async def _follow_redirect(self, call: Call, event: CallEnded) -> None:
        """A 3xx ended our INVITE: call its acceptable Contacts in turn, best q first, on the
        same ``Call`` (RFC 3261 §8.1.3.4), or end the call saying why not."""
        status = event.status
        targets = _redirect_targets(call, event)
        if isinstance(targets, str):
            await self._finish(call, targets, status)
            return
        call.redirects_followed += 1
        call.redirect_queue = targets
        await self._call_next_target(call, status, [])

    async def _call_next_target(self, call: Call, status: int | None, failed: list[str]) -> None:
        """INVITE the next Contact of ``call.redirect_queue``; ``failed`` says why earlier
        ones were passed over (the end reason when none is left)."""
        if self.core is None or self.media is None:
            await self._finish(call, "the phone is stopping", status)
            return
        cfg = self.lines[call.line].config
        while call.redirect_queue:
            target = call.redirect_queue.pop(0)
            try:
                if target.scheme == "tel":  # a number: through the line's proxy (RFC 3966 §4)
                    if not cfg.proxy:
                        raise CallError("a tel: target needs a proxy on the line")
                    target = self._target_uri(target.user or "", cfg)
                if call.remote.lower().startswith("sips:") and not target.is_secure:
                    raise CallError("it would downgrade the sips call")
                hop, peer, server_name = await self._first_hop(cfg, target, direct=False)
                if call.is_over:  # hung up meanwhile
                    return
                plan = self._outgoing_plan(cfg, call.line, target, peer, server_name,
                                           record=False)
            except (CallError, OSError, ProtocolError) as exc:
                why = exc.reason if isinstance(exc, ProtocolError) else str(exc)
                failed.append(f"{target}: {why}")
                continue
            break
        else:
            await self._finish(call, f"redirected ({status}): " + "; ".join(failed), status)
            return
        # the attempt that was redirected may have started early media: drop it
        if call._media_task is not None:
            call._media_task.cancel()
            call._media_task = None
        stream, call.stream, call.params = call.stream, None, None
        if stream is not None:
            await self.media.stop_stream(stream)
        else:
            self.media.release_port(call.local_port)
        if call.is_over:  # hung up meanwhile
            return
        try:
            call.local_port = self.media.reserve_port(rtcp_mux=True)
        except OSError as exc:
            await self._finish(call, f"redirected ({status}) to {target}: no RTP port: {exc}",
                               status)
            return
        call.negotiator = self._negotiator(cfg, plan, call.local_port)
        offer = call.negotiator.create_offer()
        self._use_line(cfg, hop)
        call.redirected_from.append(call.remote)
        call.remote = str(target)
        call.first_hop = peer
        call.signalling = SignallingFacts(peer.transport)
        call.state = CallState.DIALING
        self.core.invite(target, self._now(), body=bytes(offer), handle=call.id,
                         rel100=cfg.rel100)
        self._remember_call_id(call.id, self.core.sip_call_id(call.id))
        log.info("[%s] redirected (%s) to %s via %s", call.id, status, target, peer)
        self._pump()
        self._call_changed(call)

    def _record_refused(self, line: int, remote: str, reason: str) -> None:
        if self.history is not None:
            self.history.add(HistoryEntry(time.time(), line, "outgoing", remote, False, 0.0,
                                          reason, None, False, None))

    def _call(self, call_id: str | None, *states: CallState) -> Call:
        if call_id is None:
            for candidate in reversed(list(self.calls.values())):
                if not candidate.is_over and (not states or candidate.state in states):
                    return candidate
            raise CallError("no such call")
        call = self.calls.get(call_id)
        if call is None or call.is_over:
            raise CallError(f"no call {call_id!r}")
        if states and call.state not in states:
            raise CallError(f"call {call_id} is {call.state.value}")
        return call

    async def answer(self, call_id: str | None = None) -> Call:
        """Answer a ringing incoming call (the latest one when no id is given)."""
        call = self._call(call_id, CallState.INCOMING)
        self._answer(call)
        return call

    def _answer(self, call: Call) -> None:
        if self.core is None:
            raise CallError("the phone is not started")
        cfg = self.lines[call.line].config
        self._use_line(cfg, None)
        if call.delayed_offer:
            body = bytes(call.negotiator.create_offer())
        else:
            sdp = call.negotiator.local_sdp
            if sdp is None:
                raise CallError("no answer prepared")
            body = bytes(sdp)
        if call.source is None and call.sink is None and self.options.incoming_media is not None:
            call.source, call.sink = self.options.incoming_media(call)
        self.core.answer(call.id, self._now(), body=body)
        call.state = CallState.ACTIVE
        call.answered = time.time()
        if call.params is not None:
            self._start_media(call)
        self._pump()
        self._call_changed(call)

    async def reject(self, call_id: str | None = None, status: int = 486) -> Call:
        """Refuse a ringing incoming call (486 Busy Here or 603 Decline)."""
        call = self._call(call_id, CallState.INCOMING)
        if status not in (486, 603, 480, 488):
            raise CallError("reject with 486, 603, 480 or 488")
        call.end_reason = "rejected by us"
        self.core.reject(call.id, self._now(), status)  # type: ignore[union-attr]
        self._pump()
        return call

    async def hangup(self, call_id: str | None = None, *, reason: str | None = None) -> Call:
        """End a call whatever its state (CANCEL, 603, or BYE)."""
        call = self._call(call_id)
        call.end_reason = call.end_reason or reason or "hung up by us"
        try:
            self.core.hangup(call.id, self._now())  # type: ignore[union-attr]
        except ProtocolError as exc:
            await self._finish(call, call.end_reason, None)
            raise CallError(exc.reason) from None
        self._pump()
        return call

    async def hold(self, call_id: str | None = None) -> Call:
        """Put an active call on hold (re-INVITE with a sendonly offer, RFC 3264 §8.4)."""
        call = self._call(call_id, CallState.ACTIVE)
        offer = call.negotiator.hold_offer()
        call.pending_hold = True
        self.core.reinvite(call.id, self._now(), body=bytes(offer))  # type: ignore[union-attr]
        self._pump()
        return call

    async def resume(self, call_id: str | None = None) -> Call:
        """Take a held call off hold (re-INVITE with a sendrecv offer)."""
        call = self._call(call_id, CallState.HELD)
        offer = call.negotiator.resume_offer()
        call.pending_hold = False
        self.core.reinvite(call.id, self._now(), body=bytes(offer))  # type: ignore[union-attr]
        self._pump()
        return call

    async def send_dtmf(self, digits: str, call_id: str | None = None) -> str:
        """Send DTMF: RFC 4733 when agreed (and the line allows), else SIP INFO.

        Returns the method used ("rfc4733" or "info")."""
        call = self._call(call_id, CallState.ACTIVE, CallState.HELD)
        cfg = self.lines[call.line].config
        stream = call.stream
        avt_ok = stream is not None and call.params is not None and (
            call.params.telephone_event_pt is not None
        )
        if cfg.dtmf_method != "INFO" and avt_ok and stream is not None:
            try:
                stream.send_dtmf(digits)
            except (ValueError, ProtocolError) as exc:
                raise CallError(f"bad DTMF {digits!r}: {exc}") from None
            return "rfc4733"
        if cfg.dtmf_method == "AVT":
            raise CallError("telephone-event was not agreed and the line sends DTMF only as AVT")
        for digit in digits:
            if digit.upper() not in "0123456789*#ABCD":
                raise CallError(f"bad DTMF digit {digit!r}")
            body = f"Signal={digit}\r\nDuration=160\r\n".encode()
            self.core.send_request(  # type: ignore[union-attr]
                "INFO", cfg.aor, self._now(), call=call.id, body=body,
                content_type="application/dtmf-relay",
            )
        self._pump()
        return "info"

    async def transfer(self, target: str, call_id: str | None = None) -> Call:
        """Blind transfer (RFC 3515): REFER the peer to ``target``."""
        call = self._call(call_id, CallState.ACTIVE, CallState.HELD)
        cfg = self.lines[call.line].config
        uri = self._target_uri(target, cfg)
        self.core.send_request(  # type: ignore[union-attr]
            "REFER", uri, self._now(), call=call.id,
            headers=[("Refer-To", f"<{uri}>"), ("Referred-By", f"<{cfg.aor}>")],
        )
        self._pump()
        return call

    async def wait_call(
        self, call_id: str, predicate: Callable[[Call], bool], timeout: float
    ) -> Call:
        """Wait until ``predicate(call)`` holds (raises TimeoutError)."""
        call = self.calls[call_id]

        async def waiter() -> None:
            while not predicate(call):
                call.changed.clear()
                await call.changed.wait()

        await asyncio.wait_for(waiter(), timeout)
        return call

    def status(self) -> dict[str, Any]:
        """Lines, calls and their security, for the CLI and the API."""
        return {
            "lines": [line.as_dict() for line in self.lines.values()],
            "calls": [c.as_dict() for c in self.calls.values() if not c.is_over],
            "listening": {t: f"{h}:{p}" for t, (h, p) in self.local.items()},
        }

    # --- core events --------------------------------------------------------------------------
    def _on_event(self, event: Event | FlowLost) -> None:
        try:
            self._dispatch(event)
        except ProtocolError as exc:
            log.info("event %s refused: %s", type(event).__name__, exc.reason)

    def _dispatch(self, event: Event | FlowLost) -> None:
        if isinstance(event, IncomingCall):
            self._on_incoming(event)
        elif isinstance(event, CallRinging):
            self._on_ringing(event)
        elif isinstance(event, CallAnswered):
            self._on_answered(event)
        elif isinstance(event, CallConfirmed):
            self._on_confirmed(event)
        elif isinstance(event, CallEnded):
            call = self.calls.get(event.call)
            if call is None:
                pass
            elif (call.direction == "outgoing" and call.end_reason is None  # not hung up
                  and event.status is not None and 300 <= event.status < 400
                  and event.reason == "rejected"):
                self._spawn(self._follow_redirect(call, event))
            elif (call.direction == "outgoing" and call.end_reason is None
                  and call.redirect_queue and call.answered is None
                  and _try_next_contact(event)):
                reason = f"{call.remote}: {call.unreachable or _ended_reason(event)}"
                call.unreachable = None
                self._spawn(self._call_next_target(call, event.status, [reason]))
            else:
                reason = call.unreachable or _ended_reason(event)
                self._spawn(self._finish(call, reason, event.status))
        elif isinstance(event, ReinviteReceived):
            self._on_reinvite(event)
        elif isinstance(event, ReinviteAnswered):
            self._on_reinvite_answered(event)
        elif isinstance(event, ReinviteFailed):
            call = self.calls.get(event.call)
            if call is not None and call.negotiator.state is NegotiatorState.LOCAL_OFFER:
                call.negotiator.cancel_offer()
                self._call_changed(call)
        elif isinstance(event, SessionTimerChanged):
            call = self.calls.get(event.call)
            if call is not None:
                call.session_timer_changed(event.interval, event.local_refresher,
                                           event.expires_at)
                self._call_changed(call)
        elif isinstance(event, SessionRefreshDue):
            self._refresh_session(event)
        elif isinstance(event, RequestReceived):
            self._on_request(event)
        elif isinstance(event, RequestScreened):
            self._on_screened(event)
        elif isinstance(event, ResponseReceived):
            self._on_response(event)
        elif isinstance(event, TransactionTimeout | TransportError):
            reason = (
                "no response (timeout)" if isinstance(event, TransactionTimeout)
                else f"cannot reach {event.destination.host}:{event.destination.port}"
            )
            for sub in self._subscriptions():
                if sub.on_failure(event.transaction, reason):
                    break
        elif isinstance(event, FlowLost):
            log.info("flow lost: %s (%s)", event.peer, event.reason)
            for call in self.calls.values():
                # a call that never got through says why (TLS refusal reasons included)
                if call.first_hop == event.peer and call.answered is None and not call.is_over:
                    call.unreachable = f"cannot reach {event.peer}: {event.reason}"


    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _incoming_line(self, request: Request) -> int:
        for uri in (request.uri, request.to.uri):
            for n, line in self.lines.items():
                cfg = line.config
                if cfg.enabled and cfg.user_id and uri.user == cfg.user_id:
                    return n
        return self._default_line()

    def _on_incoming(self, event: IncomingCall) -> None:
        assert self.core is not None and self.media is not None
        request = event.request
        self._remember_call_id(event.call, request.call_id)
        number = self._incoming_line(request)
        cfg = self.lines[number].config
        via = request.top_via
        rport = via.rport
        port = rport if isinstance(rport, int) and rport is not True else via.port
        peer = Peer.of(via.transport, via.received or via.host,
                       port or default_port(via.transport))
        now = self._now()
        busy = [c for c in self.calls.values() if c.line == number and not c.is_over]
        remote = str(request.from_.uri)
        if self.lines[number].without_reg().refuses_incoming:
            # Ans Call Without Reg = No: a stray for a line without a binding (RFC 3261
            # §21.4.18: the callee is "not logged in"; temporary, unlike 403)
            self._record_refused_incoming(number, remote, NOT_REGISTERED, INCOMING_STATUS)
            self.core.reject(event.call, now, INCOMING_STATUS)
            self._pump()
            return
        if cfg.dnd:
            self._record_refused_incoming(number, remote, "do not disturb", 486)
            self.core.reject(event.call, now, 486)
            self._pump()
            return
        if cfg.forward:
            try:
                forward = str(self._target_uri(cfg.forward, cfg))
            except CallError:
                forward = None
            if forward is not None:
                # Call Forward All: 302 Moved Temporarily with the new target (§21.3.3)
                self._record_refused_incoming(number, remote, f"forwarded to {forward}", 302)
                self.core.redirects[event.call] = (forward,)
                self.core.reject(event.call, now, 302)
                self._pump()
                return
        if len(busy) >= (2 if cfg.call_waiting else 1):
            self._record_refused_incoming(number, remote, "busy", 486)
            self.core.reject(event.call, now, 486)
            self._pump()
            return
        plan = plan_offer(cfg.policy, signalling_is_tls=peer.transport == "TLS",
                          keys_only_over_tls=cfg.keys_only_over_tls)
        if not plan.allowed:
            self._record_refused_incoming(number, remote, plan.reason or "policy", 488)
            self.core.reject(event.call, now, 488)
            self._pump()
            return
        try:
            port = self.media.reserve_port(rtcp_mux=True)
        except OSError as exc:
            log.warning("[%s] no RTP port for an incoming call: %s", event.call, exc)
            self._record_refused_incoming(number, remote, f"no RTP port: {exc}", 503)
            self.core.reject(event.call, now, 503)
            self._pump()
            return
        neg = self._negotiator(cfg, plan, port)
        call = Call(event.call, number, "incoming", remote, cfg.policy, neg, port,
                    state=CallState.INCOMING)
        call.first_hop = peer
        call.signalling = self._signalling(peer, cfg)
        self.calls[event.call] = call
        self._expect_contact(request, request.contacts)
        if event.body:
            try:
                _, params = neg.receive_offer(SessionDescription.parse(event.body))
            except ProtocolError as exc:
                call.end_reason = f"refused the offer: {exc.reason}"
                call.offer_refused = exc.reason
                self.core.reject(event.call, now, exc.status_code if exc.status_code >= 400
                                 else 488)
                self._pump()
                return
            call.params = params
        else:
            call.delayed_offer = True
        log.info("[%s] ext%d incoming call from %s", call.id, number, remote)
        # the dialog was made before we knew the line: answer as the line that was called
        self.core.set_contact_user(event.call, cfg.user_id or "sippa")
        self.core.ringing(event.call, now, 180)
        call.rel100 = self.core.reliable_provisionals(event.call)
        self._pump()
        self._call_changed(call)
        if cfg.auto_answer:
            self._answer(call)

    def _rel100_for(self, request: Request) -> bool:
        """100rel (RFC 3262) on the line a request is for (its 100rel setting, read live)."""
        return self.lines[self._incoming_line(request)].config.rel100

    def _expect_contact(self, message: Request | Response, contacts: list[NameAddr]) -> None:
        """In-dialog requests to a TLS Contact must prove the Contact's host (RFC 5922 §7.2)
        when no proxy stays in the path."""
        if self.endpoint is None or not contacts or message.record_routes:
            return
        uri = contacts[0].uri
        transport = (uri.transport or ("tls" if uri.is_secure else "udp")).upper()
        if transport == "TLS" and uri.host:
            peer = Peer.of("TLS", uri.host, uri.port or 5061)
            self.endpoint.expect_identity(peer, tls_server_name(uri.host))

    def _record_refused_incoming(self, line: int, remote: str, reason: str, status: int) -> None:
        if self.history is not None:
            self.history.add(HistoryEntry(time.time(), line, "incoming", remote, False, 0.0,
                                          reason, status, False, None))

    def _apply_answer(self, call: Call, body: bytes) -> bool:
        """Take the peer's answer; end the call with the reason when it is unacceptable."""
        try:
            params = call.negotiator.receive_answer(SessionDescription.parse(body))
        except ProtocolError as exc:
            with contextlib.suppress(LocalProtocolError):
                call.negotiator.cancel_offer()
            self._end_for(call, f"unacceptable answer: {exc.reason}")
            return False
        media = MediaFacts(params.srtp_suite, srtp_reason=params.srtp_reason)
        problem = check_answer(call.policy, media)
        if problem is not None:
            self._end_for(call, problem)
            return False
        call.params = params
        return True

    def _end_for(self, call: Call, reason: str) -> None:
        log.info("[%s] ending the call: %s", call.id, reason)
        call.end_reason = reason
        with contextlib.suppress(ProtocolError):
            self.core.hangup(call.id, self._now())  # type: ignore[union-attr]
        self._pump()

    def _on_ringing(self, event: CallRinging) -> None:
        call = self.calls.get(event.call)
        if call is None:
            return
        call.state = CallState.RINGING
        call.rel100 = self.core is not None and self.core.reliable_provisionals(event.call)
        call.signalling = self._signalling(call.first_hop,
                                           self.lines[call.line].config)
        early = event.body and call.negotiator.state is NegotiatorState.LOCAL_OFFER
        if early and self._apply_answer(call, event.body):
            self._start_media(call)  # early media (183)
        self._call_changed(call)

    def _on_answered(self, event: CallAnswered) -> None:
        call = self.calls.get(event.call)
        if call is None:
            return
        call.signalling = self._signalling(call.first_hop,
                                           self.lines[call.line].config)
        self._expect_contact(event.response, event.response.contacts)
        if call.negotiator.state is NegotiatorState.LOCAL_OFFER:
            if not event.body:
                self._end_for(call, "the answer carried no SDP")
                return
            if not self._apply_answer(call, event.body):
                return
        call.state = CallState.ACTIVE
        call.answered = time.time()
        self._start_media(call)
        transferred = self._transfers.pop(call.id, None)
        if transferred is not None:
            self._notify_refer(transferred, "SIP/2.0 200 OK", final=True)
        self._call_changed(call)

    def _on_confirmed(self, event: CallConfirmed) -> None:
        call = self.calls.get(event.call)
        if call is None:
            return
        if call.delayed_offer and call.negotiator.state is NegotiatorState.LOCAL_OFFER:
            if not event.body or not self._apply_answer(call, event.body):
                if not event.body:
                    self._end_for(call, "the ACK carried no answer")
                return
            self._start_media(call)
        self._call_changed(call)

    def _refresh_session(self, event: SessionRefreshDue) -> None:
        """RFC 4028 §10: we are the refresher: re-INVITE with our current offer. The
        negotiator re-offers the same media and keys (RFC 3264 §8: an unchanged offer keeps
        its o= version); a changed answer (new keys) is applied as for any re-INVITE."""
        call = self.calls.get(event.call)
        if call is None or call.is_over or self.core is None:
            return
        if call.negotiator.state is not NegotiatorState.DONE:
            log.info("[%s] session refresh skipped: an offer is pending", call.id)
            return
        offer = call.negotiator.create_offer()
        try:
            self.core.reinvite(call.id, self._now(), body=bytes(offer))
        except ProtocolError as exc:
            call.negotiator.cancel_offer()
            log.info("[%s] session refresh not sent: %s", call.id, exc.reason)
            return
        log.info("[%s] session refresh (re-INVITE)", call.id)
        self._pump()

    def _on_reinvite(self, event: ReinviteReceived) -> None:
        call = self.calls.get(event.call)
        if call is None or self.core is None:
            return
        now = self._now()
        if not event.body and event.method == "UPDATE":
            # an UPDATE without SDP: a session refresh (RFC 4028) or a target refresh
            self.core.accept_reinvite(call.id, now)
            self._pump()
            return
        if not event.body:
            self.core.reject_reinvite(call.id, now, 488)
            self._pump()
            return
        try:
            answer, params = call.negotiator.receive_offer(SessionDescription.parse(event.body))
        except ProtocolError as exc:
            self.core.reject_reinvite(call.id, now, exc.status_code if exc.status_code >= 400
                                      else 488)
            self._pump()
            return
        problem = check_answer(call.policy, MediaFacts(params.srtp_suite,
                                                      srtp_reason=params.srtp_reason))
        if problem is not None:
            self.core.reject_reinvite(call.id, now, 488)
            self._pump()
            return
        self.core.accept_reinvite(call.id, now, body=bytes(answer))
        call.params = params
        self._update_media(call)
        self._pump()
        self._call_changed(call)

    def _on_reinvite_answered(self, event: ReinviteAnswered) -> None:
        call = self.calls.get(event.call)
        if call is None or call.negotiator.state is not NegotiatorState.LOCAL_OFFER:
            return
        if not self._apply_answer(call, event.body):
            return
        hold = call.pending_hold
        call.state = CallState.HELD if hold else CallState.ACTIVE
        self._update_media(call)
        self._call_changed(call)

    # --- in-dialog requests: INFO (DTMF), REFER (transfer), NOTIFY ----------------------------
    def _on_request(self, event: RequestReceived) -> None:
        assert self.core is not None
        request, now = event.request, self._now()
        method = request.method
        call = self.calls.get(event.call) if event.call else None
        if method == "INFO" and call is not None:
            digit = _info_digit(request.body)
            if digit is not None:
                call.dtmf_received.append(digit)
                self._call_changed(call)
            self.core.respond(event.transaction, 200, now)
        elif method == "REFER" and call is not None:
            refer_to = request.headers.get("Refer-To")
            if not refer_to:
                self.core.respond(event.transaction, 400, now, reason="Missing Refer-To")
            else:
                self.core.respond(event.transaction, 202, now)
                self._pump()
                self._spawn(self._follow_refer(call, refer_to))
        elif method == "NOTIFY" and call is not None:
            self.core.respond(event.transaction, 200, now)
            event_header = (request.headers.get("Event") or "").split(";")[0].strip().lower()
            frag = request.body.split(b"\r\n", 1)[0].split(b" ")
            status = int(frag[1]) if len(frag) > 1 and frag[1].isdigit() else 0
            if event_header == "refer" and 200 <= status < 300:
                # RFC 5589 §6.1: the transfer target answered; the transferor hangs up
                self._spawn(self._hangup_quietly(call.id, "transferred"))
        elif method == "NOTIFY" and _event_package(request) in ("resync", "check-sync"):
            self._on_resync_notify(event, now)
        elif method == "NOTIFY" and _event_package(request) == MWI_PACKAGE:
            self._on_mwi_notify(event, now)
        elif method == "NOTIFY" and _event_package(request) == DIALOG_PACKAGE:
            self._on_dialog_notify(event, now)
        elif method == "NOTIFY":
            # RFC 6665 §8.2.1: an event package we do not subscribe to (or none at all)
            log.info("NOTIFY for event %r from %s refused (489)", _event_package(request),
                     event.source)
            self.core.respond(event.transaction, 489, now)
        elif method in ("OPTIONS", "MESSAGE"):
            self.core.respond(event.transaction, 200, now)
        else:
            self.core.respond(event.transaction, 501, now)
        self._pump()

    def _line_password(self, username: str) -> str | None:
        """The password of the enabled line whose digest user name is ``username``."""
        for line in self.lines.values():
            cfg = line.config
            if cfg.enabled and cfg.password and username in (cfg.auth_id, cfg.user_id):
                return cfg.password
        return None

    def _on_resync_notify(self, event: RequestReceived, now: float) -> None:
        """``NOTIFY Event: resync``: challenge it, then resync (Cisco "Resync From SIP")."""
        assert self.core is not None
        if not self.store.get("resync_from_sip") or self.on_resync is None:
            self.core.respond(event.transaction, 403, now, reason="Resync From SIP Is Off")
            return
        request = event.request
        verdict = self._notify_auth.verify(
            "NOTIFY", request.headers.get_all("Authorization"), now, request.body
        )
        if not verdict.ok:
            log.info("NOTIFY resync challenged: %s", verdict.reason)
            challenges = self._notify_auth.challenges(now, stale=verdict.stale)
            self.core.respond(
                event.transaction, 401, now,
                headers=[("WWW-Authenticate", value) for value in challenges],
            )
            return
        log.info("NOTIFY resync authenticated as %s: resyncing", verdict.username)
        self.core.respond(event.transaction, 200, now)
        self._spawn(self.on_resync())

    async def _follow_refer(self, call: Call, refer_to: str) -> None:
        """RFC 3515 §2.4: call the Refer-To target, report progress with NOTIFY."""
        try:
            target = NameAddr.parse(refer_to).uri
        except ProtocolError:
            self._notify_refer(call.id, "SIP/2.0 400 Bad Refer-To", final=True)
            return
        self._notify_refer(call.id, "SIP/2.0 100 Trying", final=False)
        try:
            new = await self.dial(str(target.without_params("method")), call.line)
        except (CallError, ProtocolError) as exc:
            log.info("[%s] transfer failed: %s", call.id, exc)
            self._notify_refer(call.id, "SIP/2.0 503 Service Unavailable", final=True)
            return
        new.transfer_from = call.id
        self._transfers[new.id] = call.id

    def _notify_refer(self, call_id: str, sipfrag: str, *, final: bool) -> None:
        call = self.calls.get(call_id)
        if call is None or call.is_over or self.core is None:
            return
        state = "terminated;reason=noresource" if final else "active;expires=60"
        cfg = self.lines[call.line].config
        with contextlib.suppress(ProtocolError):
            self.core.send_request(
                "NOTIFY", cfg.aor, self._now(), call=call.id,
                headers=[("Event", "refer"), ("Subscription-State", state)],
                body=(sipfrag + "\r\n").encode(), content_type="message/sipfrag;version=2.0",
            )
            self._pump()
        if final and sipfrag.startswith("SIP/2.0 2"):
            # the transferee hangs up the old call once the new one is up (RFC 5589 §6.1)
            self._spawn(self._hangup_quietly(call_id, "transferred"))

    async def _hangup_quietly(self, call_id: str, reason: str) -> None:
        with contextlib.suppress(CallError):
            await self.hangup(call_id, reason=reason)

    def _on_response(self, event: ResponseReceived) -> None:
        for sub in self._subscriptions():
            if sub.on_response(event.transaction, event.response):
                return
        response = event.response
        if response.cseq.method == "REFER" and response.status_code >= 300:
            log.info("REFER refused: %d", response.status_code)

    # --- media --------------------------------------------------------------------------------
    def _start_media(self, call: Call) -> None:
        if call.stream is not None:
            self._update_media(call)
            return
        if call.params is None or self.media is None:
            return
        config = stream_config(call.params, call.local_port, hold=call.on_hold)
        call.stream = self.media.start_stream(
            config, source=call.source, sink=call.sink, record_sent=call.record_sent,
            name=f"{call.id}",
        )
        call._media_task = asyncio.ensure_future(self._media_events(call))

    def _update_media(self, call: Call) -> None:
        if call.stream is None or call.params is None:
            self._start_media(call)
            return
        hold = call.state is CallState.HELD
        try:
            call.stream.update(stream_config(call.params, call.local_port, hold=hold))
        except ValueError as exc:
            log.warning("[%s] media update refused: %s", call.id, exc)

    async def _media_events(self, call: Call) -> None:
        stream = call.stream
        if stream is None:
            return
        while not call.is_over:
            event = await stream.next_event()
            if isinstance(event, DtmfReceived):
                call.dtmf_received.append(event.digit)
                self._call_changed(call)
            elif isinstance(event, SourceFinished):
                log.debug("[%s] source finished", call.id)

    async def _finish(self, call: Call, reason: str, status: int | None) -> None:
        if call.is_over:
            return
        call.state = CallState.ENDED
        call.ended = time.time()
        call.end_reason = call.end_reason or reason
        call.status_code = call.status_code or status
        security = call.security()
        if call._media_task is not None:
            call._media_task.cancel()
        if call.stream is not None and self.media is not None:
            await self.media.stop_stream(call.stream)
        elif self.media is not None:
            self.media.release_port(call.local_port)
        if self.history is not None:
            self.history.add(HistoryEntry(
                call.started, call.line, call.direction, call.remote, call.answered is not None,
                round(call.duration(), 3), call.end_reason, call.status_code, security.padlock,
                security.srtp_suite,
            ))
        transferred = self._transfers.pop(call.id, None)
        if transferred is not None:
            self._notify_refer(transferred, f"SIP/2.0 {status or 500} Failed", final=True)
        log.info("[%s] ended: %s", call.id, call.end_reason)
        self._call_changed(call)
        ended = [c.id for c in self.calls.values() if c.is_over]
        for old_id in ended[:-KEEP_ENDED_CALLS]:  # a long-running phone forgets old calls
            del self.calls[old_id]


def _is_ip(host: str) -> bool:
    import ipaddress  # noqa: PLC0415

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


_REASONS = {
    "bye-local": "hung up by us",
    "bye-remote": "hung up by the other party",
    "cancelled": "cancelled",
    "timeout": "no answer (timeout)",
    "transport-error": "could not reach the other party (transport error)",
    "ack-timeout": "the other party never confirmed the call (no ACK)",
    "dialog-gone": "the other party no longer knows the call (481)",
    "session-expired": "the session expired: nobody refreshed it (RFC 4028 session timer)",
    "prack-timeout": "the caller never acknowledged our ringing (no PRACK, RFC 3262): 504",
}


MAX_REDIRECTS = 5
"""3xx responses one call follows at most (loop protection, RFC 3261 §8.1.3.4)."""


def _redirect_targets(call: Call, event: CallEnded) -> list[Uri] | str:
    """The Contacts of ``event`` (a 3xx) to call, best q first, or why none is followed."""
    status = event.status
    if status == 305:
        # §21.3.6 / RFC 3261 §8.1.3.4: a Use Proxy is not followed (it would let anyone on
        # the path pick our proxy)
        return f"rejected ({status}): Use Proxy is not followed"
    if not event.contacts:
        return _ended_reason(event)
    if call.redirects_followed >= MAX_REDIRECTS:
        return f"redirected ({status}) too many times (more than {MAX_REDIRECTS}): a loop?"
    secure = call.remote.lower().startswith("sips:")
    refused: list[str] = []
    targets: list[Uri] = []
    # RFC 3261 §8.1.3.4: a URI joins the target set once; a Contact we already called (the
    # redirecting target itself included) is not called again
    tried = {*call.redirected_from, call.remote}
    for contact in event.contacts:
        try:
            uri = Uri.parse(contact)
        except ProtocolError:
            refused.append(f"{contact} is not a URI")
            continue
        if uri.scheme not in ("sip", "sips", "tel"):
            refused.append(f"{uri.scheme}: targets are not called")
        elif secure and uri.scheme == "sip":
            # RFC 5630 §3.1.1 / RFC 3261 §8.1.3.4: never downgrade a sips call to sip
            refused.append(f"{contact} would downgrade the sips call")
        elif str(uri) in tried:
            refused.append(f"{contact} was already tried")
        elif uri not in targets:
            targets.append(uri)
    if not targets:
        return f"redirected ({status}) to no acceptable target: " + "; ".join(refused)
    return targets[:MAX_REDIRECTS]  # a 3xx listing hundreds of Contacts gets a few tries


def _try_next_contact(event: CallEnded) -> bool:
    """Whether a failed INVITE to one redirect target lets us try the next (RFC 3261
    §8.1.3.4): after a 4xx or 5xx, no answer or an unreachable target; not after a 6xx,
    which says the callee declines everywhere (§21.6)."""
    if event.reason in ("timeout", "transport-error"):
        return True
    return event.reason == "rejected" and event.status is not None and 400 <= event.status < 600


def _ended_reason(event: CallEnded) -> str:
    if event.reason == "rejected":
        return f"rejected ({event.status})" if event.status else "rejected"
    return _REASONS.get(event.reason, event.reason)


def _info_digit(body: bytes) -> str | None:
    """The digit of an ``application/dtmf-relay`` INFO body (``Signal=5``)."""
    for raw in body.decode("utf-8", "replace").splitlines():
        name, _, value = raw.partition("=")
        if name.strip().lower() == "signal" and value.strip():
            digit = value.strip()[:1].upper()
            if digit in "0123456789*#ABCD":
                return digit
    return None


def _event_package(request: Request) -> str:
    """The package name of the Event header (RFC 6665 §8.2.1), lower-cased."""
    return (request.headers.get("Event") or "").split(";")[0].strip().lower()
