"""One line (Ext n): its settings read from the config store, and what it shows.

:class:`LineConfig` is a frozen snapshot of the ``*_n_`` settings of one line plus the user-level
defaults it inherits (Secure Call Setting, DND, Call Forward); :class:`Line` holds the running
part (the registration driver and the status the web page and the CLI show).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sippa.app.blf import BlfStatus, BlfSubscriber
from sippa.app.mwi import MwiStatus, VoicemailSubscriber
from sippa.app.security import SecureCallPolicy, policy_from_settings
from sippa.app.store import ConfigStore
from sippa.net.registrar import LineRegistrar, LineStatus
from sippa.sdp import G722, OPUS, PCMA, PCMU, Codec
from sippa.sip.dialplan import DialPlanError, is_dialable, parse_dial_plan
from sippa.sip.regpolicy import WithoutReg
from sippa.sip.restrict import SourceRestriction
from sippa.sip.uri import Uri

__all__ = [
    "CODECS_BY_SETTING", "Line", "LineConfig", "dial_plan_status", "split_host_port"]

CODECS_BY_SETTING: dict[str, Codec] = {"G711u": PCMU, "G711a": PCMA, "G722": G722, "OPUS": OPUS}
"""The Preferred Codec choices and the codecs they name."""


def split_host_port(text: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets), or a ``sip:``/``sips:`` URI, into host and port.

    The Proxy settings accept a URI (``sip:pbx.example.test:5061;transport=tls``): its user,
    parameters and headers are not part of the server's address.
    """
    text = text.strip()
    if text.lower().startswith(("sip:", "sips:")):
        text = text.split(":", 1)[1].split(";", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port) if port.isdigit() else None
    return text, None


def dial_plan_status(plan: str, number: str) -> dict[str, Any]:
    """What the dial plan ``plan`` does with the typed ``number``, for the web keypad and the
    API: ``outcome`` (allowed, barred, incomplete, no match; "bypass" for what is not a
    number, "no plan" for an empty plan, "invalid plan"), the ``target`` that would be
    dialled, the deciding ``rule``, ``dial_now`` (complete: nothing longer can match) and the
    ``reason`` of a refusal."""
    number = number.strip()
    out: dict[str, Any] = {"number": number, "plan": plan, "outcome": "bypass",
                           "target": number, "rule": None, "dial_now": False, "reason": None}
    if not is_dialable(number):
        return out
    if not plan:
        return {**out, "outcome": "no plan"}
    try:
        verdict = parse_dial_plan(plan).check(number)
    except DialPlanError as exc:
        return {**out, "outcome": "invalid plan", "target": None,
                "reason": f"the dial plan is invalid: {exc}"}
    return {**out, "outcome": verdict.outcome.value,
            "target": verdict.target if verdict.allowed else None,
            "rule": verdict.rule or None, "dial_now": verdict.dial_now,
            "reason": verdict.reason or None}


def _text(store: ConfigStore, key: str, line: int | None = None) -> str:
    return str(store.get(key, line))


def _flag(store: ConfigStore, key: str, line: int | None = None) -> bool:
    return bool(store.get(key, line))


@dataclass(frozen=True, slots=True)
class LineConfig:
    """The settings of one line, as they were when read."""

    number: int
    enabled: bool
    display_name: str
    user_id: str
    password: str = field(repr=False)
    auth_id: str
    """The digest user name (Auth ID when Use Auth ID is on, else User ID)."""
    proxy: str
    """SIP domain or proxy ``host[:port]``: the TLS identity checked (RFC 5922)."""
    outbound_proxy: str
    """``host[:port]`` every request goes through, or empty."""
    transport: str
    """UDP, TCP, TLS or AUTO."""
    use_dns_srv: bool
    dns_srv_auto_prefix: bool
    tls_name_validate: bool
    register: bool
    register_expires: int
    policy: SecureCallPolicy
    keys_only_over_tls: bool
    codecs: tuple[Codec, ...]
    dtmf_method: str
    """AVT, INFO or Auto."""
    auto_answer: bool
    dnd: bool
    forward: str
    """Forward every incoming call here (line setting, else the user's), empty for none."""
    call_waiting: bool
    restrict_source_ip: bool = True
    """Restrict Source IP: out-of-dialog requests only from the proxy's addresses."""
    mwi_enable: bool = False
    """Subscribe to message-summary (the voicemail light)."""
    voice_mail_server: str = ""
    """Where to subscribe: a sip/sips URI or host[:port]; empty: the line's AoR at its proxy."""
    mailbox_id: str = ""
    """User part of the subscription (empty: the User ID)."""
    rel100: bool = True
    """Reliable provisional responses (RFC 3262 100rel / PRACK) on this line."""
    make_call_without_reg: bool = False
    """Place calls while the line is not registered (else refuse them: "not registered")."""
    ans_call_without_reg: bool = False
    """Take calls while the line is not registered (else 480)."""
    alternate_proxy: str = ""
    """The backup of the Proxy (or Outbound Proxy): ``host[:port]`` or a URI, or empty."""
    proxy_fallback_intvl: int = 3600
    """Seconds on the alternate before the Proxy is tried again."""
    dial_plan: str = ""
    """Cisco dial plan for typed numbers (empty: none, numbers go out as typed)."""

    @classmethod
    def from_store(cls, store: ConfigStore, n: int) -> LineConfig:
        """Read line ``n`` (and the user defaults it inherits) from ``store``."""
        preferred = [
            _text(store, key, n)
            for key in ("preferred_codec", "second_preferred_codec", "third_preferred_codec")
        ]
        codecs = [CODECS_BY_SETTING[c] for c in preferred if c in CODECS_BY_SETTING]
        if not _flag(store, "use_pref_codec_only", n):
            codecs += [c for c in (OPUS, G722, PCMU, PCMA) if c not in codecs]
        unique = tuple(dict.fromkeys(codecs)) or (PCMU, PCMA)
        user_id = _text(store, "user_id", n)
        auth_id = _text(store, "auth_id", n) if _flag(store, "use_auth_id", n) else ""
        outbound = _text(store, "outbound_proxy", n) if _flag(
            store, "use_outbound_proxy", n
        ) else ""
        return cls(
            number=n,
            enabled=_flag(store, "line_enable", n),
            display_name=_text(store, "display_name", n),
            user_id=user_id,
            password=_text(store, "password", n),
            auth_id=auth_id or user_id,
            proxy=_text(store, "proxy", n),
            outbound_proxy=outbound,
            alternate_proxy=(
                _text(store, "alternate_outbound_proxy", n).strip() if outbound else ""
            ) or _text(store, "alternate_proxy", n).strip(),
            proxy_fallback_intvl=int(store.get("proxy_fallback_intvl", n)),
            transport=_text(store, "sip_transport", n),
            use_dns_srv=_flag(store, "use_dns_srv", n),
            dns_srv_auto_prefix=_flag(store, "dns_srv_auto_prefix", n),
            tls_name_validate=_flag(store, "tls_name_validate", n),
            register=_flag(store, "register", n),
            register_expires=int(store.get("register_expires", n)),
            policy=policy_from_settings(
                _text(store, "secure_call_option", n), _text(store, "secure_call_setting")
            ),
            keys_only_over_tls=_flag(store, "mediasec_over_tls_only", n),
            codecs=unique,
            dtmf_method=_text(store, "dtmf_tx_method", n),
            auto_answer=_flag(store, "auto_answer", n),
            dnd=_flag(store, "dnd", n) or _flag(store, "dnd_setting"),
            forward=_text(store, "cfwd_all_dest_line", n) or _text(store, "cfwd_all_dest"),
            call_waiting=_flag(store, "cw_setting"),
            restrict_source_ip=_flag(store, "restrict_source_ip", n),
            mwi_enable=_flag(store, "mwi_enable", n),
            voice_mail_server=_text(store, "voice_mail_server", n).strip(),
            mailbox_id=_text(store, "mailbox_id", n),
            rel100=_flag(store, "sip_100rel_enable", n),
            make_call_without_reg=_flag(store, "make_call_without_reg", n),
            ans_call_without_reg=_flag(store, "ans_call_without_reg", n),
            dial_plan=_text(store, "dial_plan", n).strip(),
        )

    @property
    def domain(self) -> str:
        """The SIP domain (the proxy's host), or 127.0.0.1 for a line without a proxy."""
        host, _ = split_host_port(self.proxy) if self.proxy else ("127.0.0.1", None)
        return host

    @property
    def secure_transport(self) -> bool:
        return self.transport in ("TLS", "AUTO")

    @property
    def aor(self) -> Uri:
        """The line's address of record: ``sips:user@domain`` over TLS, else ``sip:``."""
        scheme = "sips" if self.transport == "TLS" else "sip"
        return Uri(scheme, self.user_id or "sippa", None, self.domain)

    @property
    def proxy_uri(self) -> Uri | None:
        """Where registrations and calls go first (outbound proxy, else the proxy)."""
        text = self.outbound_proxy or self.proxy
        if not text:
            return None
        host, port = split_host_port(text)
        scheme = "sips" if self.transport == "TLS" else "sip"
        return Uri(scheme, None, None, host, port)

    @property
    def alternate_uri(self) -> Uri | None:
        """The alternate proxy (tried when every target of :attr:`proxy_uri` fails)."""
        if not self.alternate_proxy or not self.proxy:
            return None
        host, port = split_host_port(self.alternate_proxy)
        scheme = "sips" if self.transport == "TLS" else "sip"
        return Uri(scheme, None, None, host, port)

    @property
    def has_proxy(self) -> bool:
        """True when the line has a proxy or an outbound proxy (its calls come through one)."""
        return bool(self.proxy or self.outbound_proxy)

    @property
    def mailbox_uri(self) -> Uri:
        """What the voicemail subscription is to (RFC 3842 §3.6: the mailbox's URI): the
        Mailbox ID (or User ID) at the Voice Mail Server, or at the line's domain."""
        user = self.mailbox_id or self.user_id or "sippa"
        scheme = "sips" if self.transport == "TLS" else "sip"
        text = self.voice_mail_server
        if not text:
            return Uri(scheme, user, None, self.domain)
        if text.lower().startswith(("sip:", "sips:")):
            uri = Uri.parse(text)
            return uri if uri.user else uri.replace(user=user)
        host, port = split_host_port(text)
        return Uri(scheme, user, None, host, port)

    @property
    def subscribes_mwi(self) -> bool:
        """True when this line keeps a message-summary subscription."""
        return (
            self.enabled
            and (self.mwi_enable or bool(self.voice_mail_server))
            and bool(self.user_id or self.mailbox_id)
            and bool(self.proxy or self.voice_mail_server)
        )

    @property
    def registers(self) -> bool:
        """True when this line keeps a registration."""
        return self.enabled and self.register and bool(self.proxy) and bool(self.user_id)


@dataclass(slots=True)
class Line:
    """A running line."""

    config: LineConfig
    registrar: LineRegistrar | None = None
    status: LineStatus = field(default_factory=LineStatus)
    restriction: SourceRestriction | None = None
    """The phone's Restrict Source IP check (its state for this line is shown)."""
    mwi: MwiStatus = field(default_factory=MwiStatus)
    """The voicemail light and counts (kept across subscription restarts)."""
    voicemail: VoicemailSubscriber | None = None
    """The message-summary subscription, when the line keeps one."""
    mwi_flow: str | None = None
    """Our ``address:port`` on the registration flow the subscription's Contact names."""
    blf: list[BlfStatus] = field(default_factory=list)
    """The busy lamp field keys on this line (line 1 has the phone's line keys)."""
    blf_subscribers: dict[int, BlfSubscriber] = field(default_factory=dict)
    """The dialog subscriptions of the BLF keys, by key number."""
    blf_flow: str | None = None
    """As ``mwi_flow``, for the BLF subscriptions."""

    @property
    def number(self) -> int:
        return self.config.number

    @property
    def registered(self) -> bool:
        """The line holds a registration now (False while its registrar is being replaced)."""
        return self.registrar is not None and self.registrar.status.registered

    def without_reg(self) -> WithoutReg:
        """Make/Ans Call Without Reg with the line's registration state now."""
        cfg = self.config
        return WithoutReg(
            registers=cfg.registers,
            registered=self.registered,
            make_call=cfg.make_call_without_reg,
            answer_call=cfg.ans_call_without_reg,
        )

    def as_dict(self) -> dict[str, Any]:
        """What the CLI and the API show for the line (never the password)."""
        cfg = self.config
        st = self.registrar.status if self.registrar is not None else self.status
        gate = self.without_reg()
        tls = st.tls
        return {
            "line": cfg.number,
            "enabled": cfg.enabled,
            "aor": str(cfg.aor) if cfg.user_id else None,
            "display_name": cfg.display_name or None,
            "registers": cfg.registers,
            "registered": st.registered,
            "state": st.state if cfg.registers else ("direct" if cfg.enabled else "disabled"),
            "reason": st.reason,
            "transport": st.transport,
            "registrar": st.target,
            "alternate_proxy": cfg.alternate_proxy or None,
            "registered_via": st.server if st.registered else None,
            "registered_via_reason": st.server_reason if st.registered else None,
            "digest_algorithm": st.algorithm,
            "secure_call": cfg.policy.value,
            "keys_only_over_tls": cfg.keys_only_over_tls,
            "tls_name_validate": cfg.tls_name_validate,
            "rel100": cfg.rel100,
            "dnd": cfg.dnd,
            "auto_answer": cfg.auto_answer,
            "forward": cfg.forward or None,
            "make_call_without_reg": cfg.make_call_without_reg,
            "ans_call_without_reg": cfg.ans_call_without_reg,
            "calls_refused": gate.status(),
            "dial_plan": cfg.dial_plan or None,
            "source_restriction": self.restriction_status(),
            "mwi": self.mwi.as_dict(),
            "blf": [key.as_dict() for key in self.blf],
            "tls": None
            if tls is None
            else {
                "version": tls.version,
                "cipher": tls.cipher,
                "group": tls.group,
                "peer_subject": tls.peer_subject,
                "verified": tls.verified,
            },
        }

    def restriction_status(self) -> dict[str, Any]:
        """Restrict Source IP: on or not, the allowed addresses, what was refused."""
        cfg = self.config
        restriction = self.restriction
        if restriction is None:
            return {"setting": cfg.restrict_source_ip, "active": False, "allowed": [],
                    "refused": 0, "last_refused_source": None, "last_refused_method": None}
        refused = restriction.refused(cfg.number)
        return {
            "setting": cfg.restrict_source_ip,
            "active": restriction.active(cfg.number),
            "allowed": sorted(restriction.allowed(cfg.number)),
            "refused": refused.count,
            "last_refused_source": refused.last_source,
            "last_refused_method": refused.last_method,
        }
