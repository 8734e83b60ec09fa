"""The settings schema: every setting of the phone, typed, validated, with its Cisco profile name.

Each :class:`Setting` says where it lives on the web pages (``page``/``section``, as on the
phone's Voice tabs), what the ``user`` login may do with it (``access``: the profile's
``ua="na|ro|rw"``), its Cisco flat-profile element name (``Proxy_1_`` style for per-line ones)
and how to parse and check a value typed by a person, a form or a provisioning server.

Values are plain Python values (``bool``, ``int``, ``float``, ``str``); :func:`parse_value`
turns text into them and :func:`format_value` back into the text a Cisco profile uses
(``Yes``/``No`` for booleans).
"""

from __future__ import annotations

import enum
import ipaddress
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sippa.sip.dialplan import CISCO_DEFAULT as CISCO_DEFAULT_DIAL_PLAN
from sippa.sip.dialplan import DialPlanError, parse_dial_plan

__all__ = [
    "DEFAULT_LINE_COUNT",
    "SCHEMA",
    "Access",
    "Kind",
    "Setting",
    "SettingError",
    "Value",
    "by_cisco_name",
    "format_value",
    "parse_value",
    "setting",
    "settings_for_page",
]

Value = bool | int | float | str

DEFAULT_LINE_COUNT = 4
MAX_LINE_COUNT = 16


class SettingError(ValueError):
    """A value that a setting does not accept. ``errors`` maps ``(key, line)`` to a message."""

    def __init__(self, errors: dict[tuple[str, int], str]) -> None:
        self.errors = dict(errors)
        text = "; ".join(
            f"{k}{f' (Ext {line})' if line else ''}: {msg}" for (k, line), msg in errors.items()
        )
        super().__init__(text)


class Kind(enum.Enum):
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    STR = "str"
    CHOICE = "choice"
    PASSWORD = "password"  # noqa: S105 - the kind of field, not a password


class Access(enum.Enum):
    """What the ``user`` login may do (the admin may do everything): Cisco's ``ua``."""

    NA = "na"
    RO = "ro"
    RW = "rw"


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting. Per-line settings (``per_line``) exist once for each Ext n."""

    key: str
    """Internal name (snake case), unique."""
    cisco: str
    """Cisco flat-profile element; per-line names contain ``{n}`` for the line number."""
    page: str
    """Web page: System, SIP, Provisioning, User, Phone or Ext."""
    section: str
    label: str
    kind: Kind
    default: Value
    doc: str = ""
    access: Access = Access.NA
    per_line: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[Value], str | None] | None = field(default=None, compare=False)
    """Extra validation; returns an error message or None."""

    def cisco_name(self, line: int = 0) -> str:
        return self.cisco.format(n=line) if self.per_line else self.cisco

    @property
    def secret(self) -> bool:
        return self.kind is Kind.PASSWORD


# -- checks ----------------------------------------------------------------------------------


def _check_dial_plan(value: Value) -> str | None:
    """An empty value or a dial plan the parser accepts."""
    text = str(value)
    if not text.strip():
        return None
    try:
        parse_dial_plan(text)
    except DialPlanError as exc:
        return str(exc)
    return None


_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})")
_USER_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+")


def _check_host_port(value: Value) -> str | None:
    """An empty value, ``host``, ``host:port``, ``[v6]:port`` or a sip:/sips: URI."""
    text = str(value).strip()
    if not text:
        return None
    if text.lower().startswith(("sip:", "sips:")):
        text = text.split(":", 1)[1].split(";", 1)[0]
        text = text.rsplit("@", 1)[-1]
    host, port = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return "an IPv6 address must be closed with ]"
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            return "unexpected text after the IPv6 address"
        port = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not an IPv6 address"
    elif text.count(":") == 1:
        host, port = text.split(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return f"port {port!r} is not a number from 1 to 65535"
    if not text.startswith("[") and not _HOST_RE.fullmatch(host):
        return f"{host!r} is not a host name or address"
    return None


def _check_session_expires(value: Value) -> str | None:
    if isinstance(value, int) and 0 < value < 90:
        return "must be 0 (off) or at least 90 seconds (RFC 4028 §4)"
    return None


def _check_user(value: Value) -> str | None:
    text = str(value)
    if text and not _USER_RE.fullmatch(text):
        return "only letters, digits and the characters - _ . ! ~ * ' ( ) & = + $ , ; ? / %"
    return None


def _check_voice_mail_server(value: Value) -> str | None:
    """Empty, ``host[:port]`` or a sip:/sips: URI that parses."""
    text = str(value).strip()
    if text.lower().startswith(("sip:", "sips:")):
        from sippa.errors import ProtocolError  # noqa: PLC0415
        from sippa.sip.uri import Uri  # noqa: PLC0415

        try:
            Uri.parse(text)
        except ProtocolError as exc:
            return f"not a SIP URI: {exc.reason}"
    return _check_host_port(value)


def _check_extended_function(value: Value) -> str | None:
    from sippa.app.blf import check_extended_function  # noqa: PLC0415 - app imports settings

    return check_extended_function(value)


def _check_url(value: Value) -> str | None:
    text = str(value).strip()
    if not text:
        return None
    if any(c.isspace() for c in text.split("]")[-1].strip()):
        return "a URL has no spaces"
    return None


def _check_profile_rule(value: Value) -> str | None:
    from sippa.app.rules import check_rule  # noqa: PLC0415 - rules imports the store, which imports us

    return check_rule(str(value), assignments=True)


def _check_upgrade_rule(value: Value) -> str | None:
    from sippa.app.rules import check_rule  # noqa: PLC0415 - as above

    return check_rule(str(value))


# -- the schema ------------------------------------------------------------------------------

_SECURE_CALL = ("Off", "Best Effort", "Mandatory")
_CODECS = ("G711u", "G711a", "G722", "OPUS", "Unspecified")


def _s(  # noqa: PLR0917 - a table row
    key: str,
    cisco: str,
    page: str,
    section: str,
    label: str,
    kind: Kind,
    default: Value,
    doc: str = "",
    **kw: object,
) -> Setting:
    return Setting(key, cisco, page, section, label, kind, default, doc, **kw)  # type: ignore[arg-type]


_SYSTEM = [
    _s("admin_password", "Admin_Password", "System", "System Configuration", "Admin Password",
       Kind.PASSWORD, "", "Password of the admin login (stored as a scrypt hash)."),
    _s("user_password", "User_Password", "System", "System Configuration", "User Password",
       Kind.PASSWORD, "", "Password of the user login (stored as a scrypt hash).",
       access=Access.RW),
    _s("enable_protocol", "Enable_Protocol", "System", "System Configuration", "Enable Protocol",
       Kind.CHOICE, "Https", "Https serves the web pages over TLS; Http redirects to it.",
       choices=("Https",)),
    _s("web_server_port", "Web_Server_Port", "System", "System Configuration", "Web Server Port",
       Kind.INT, 8443, "TCP port of the HTTPS web pages and REST API.", minimum=1, maximum=65535),
    _s("tls_server_min_version", "TLS_Server_Min_Version", "System", "Security Settings",
       "TLS Server Min Version", Kind.CHOICE, "TLS 1.2", "Lowest TLS version of the web server.",
       choices=("TLS 1.2", "TLS 1.3")),
    _s("tls_client_min_version", "TLS_Client_Min_Version", "System", "Security Settings",
       "TLS Client Min Version", Kind.CHOICE, "TLS 1.2",
       "Lowest TLS version for SIP and provisioning connections.",
       choices=("TLS 1.2", "TLS 1.3")),
    _s("dns_server", "DNS_Server", "System", "Network Settings", "DNS Server", Kind.STR, "",
       "DNS server as host[:port]; empty uses the system's resolvers.",
       check=_check_host_port),
    _s("debug_level", "Debug_Level", "System", "Optional Network Configuration", "Debug Level",
       Kind.CHOICE, "Info", "How much the log says.",
       choices=("Error", "Warning", "Info", "Debug")),
]

_SIP = [
    _s("max_auth", "Max_Auth", "SIP", "SIP Parameters", "Max Auth", Kind.INT, 2,
       "How many times one request may be answered with credentials.", minimum=1, maximum=5),
    _s("sip_user_agent_name", "SIP_User_Agent_Name", "SIP", "SIP Parameters",
       "SIP User Agent Name", Kind.STR, "sippa/$VERSION", "User-Agent header ($VERSION expands)."),
    _s("sip_tcp_port_min", "SIP_TCP_Port_Min", "SIP", "SIP Parameters", "SIP TCP Port Min",
       Kind.INT, 49152,
       "Lowest local port of outgoing TCP/TLS connections (each picks a random port).",
       minimum=1024, maximum=65535),
    _s("sip_tcp_port_max", "SIP_TCP_Port_Max", "SIP", "SIP Parameters", "SIP TCP Port Max",
       Kind.INT, 65535, "Highest local port of outgoing TCP/TLS connections.",
       minimum=1024, maximum=65535),
    _s("srtp_method", "SRTP_Method", "SIP", "SIP Parameters", "SRTP Method", Kind.CHOICE,
       "s-descriptor", "Keying of SRTP: SDES (RFC 4568).", choices=("s-descriptor",)),
    _s("digest_algorithm_order", "Digest_Algorithm_Order", "SIP", "SIP Parameters",
       "Digest Algorithm Order", Kind.CHOICE, "Strongest",
       "Strongest answers the strongest challenge (SHA-512-256 > SHA-256 > MD5) whatever its "
       "place, so an on-path attacker cannot force MD5 by reordering (RFC 8760 §3); Server Order "
       "answers the topmost one the phone supports.",
       choices=("Strongest", "Server Order")),
    _s("digest_allow_md5", "Digest_Allow_MD5", "SIP", "SIP Parameters", "Digest Allow MD5",
       Kind.BOOL, True, "No refuses to answer MD5 challenges."),
    _s("sip_t1", "SIP_T1", "SIP", "SIP Timer Values (sec)", "SIP T1", Kind.FLOAT, 0.5,
       "RFC 3261 T1: round-trip estimate.", minimum=0.1, maximum=10),
    _s("sip_t2", "SIP_T2", "SIP", "SIP Timer Values (sec)", "SIP T2", Kind.FLOAT, 4.0,
       "RFC 3261 T2: longest retransmit interval.", minimum=1, maximum=60),
    _s("sip_t4", "SIP_T4", "SIP", "SIP Timer Values (sec)", "SIP T4", Kind.FLOAT, 5.0,
       "RFC 3261 T4: longest time a message stays in the network.", minimum=1, maximum=60),
    _s("reg_min_expires", "Reg_Min_Expires", "SIP", "SIP Timer Values (sec)", "Reg Min Expires",
       Kind.INT, 60, "Shortest registration the phone accepts from the server.",
       minimum=1, maximum=86400),
    _s("reg_max_expires", "Reg_Max_Expires", "SIP", "SIP Timer Values (sec)", "Reg Max Expires",
       Kind.INT, 7200, "Longest registration the phone keeps.", minimum=1, maximum=604800),
    _s("reg_retry_intvl", "Reg_Retry_Intvl", "SIP", "SIP Timer Values (sec)", "Reg Retry Intvl",
       Kind.INT, 30,
       "Base of the registration back-off (RFC 5626 §4.5): after n failures the phone waits "
       "50-100% of min(Reg Retry Long Intvl, this * 2^n) seconds.",
       minimum=1, maximum=86400),
    _s("reg_retry_long_intvl", "Reg_Retry_Long_Intvl", "SIP", "SIP Timer Values (sec)",
       "Reg Retry Long Intvl", Kind.INT, 1200, "Longest wait between registration retries.",
       minimum=1, maximum=86400),
    _s("session_expires", "Session_Expires", "SIP", "SIP Timer Values (sec)", "Session Expires",
       Kind.INT, 1800,
       "RFC 4028 session timer asked for in calls (a refresh every half interval, BYE to a "
       "call nobody refreshed); 0 turns session timers off. At least 90 and Min SE otherwise.",
       minimum=0, maximum=86400, check=_check_session_expires),
    _s("min_se", "Min_SE", "SIP", "SIP Timer Values (sec)", "Min SE", Kind.INT, 90,
       "Shortest session interval accepted (RFC 4028 Min-SE): shorter requests get 422.",
       minimum=90, maximum=86400),
    _s("nat_keep_alive_intvl", "NAT_Keep_Alive_Intvl", "SIP", "NAT Support Parameters",
       "NAT Keep Alive Intvl", Kind.INT, 30,
       "Seconds between CRLF keep-alives on TCP/TLS connections (RFC 5626 §4.4.1); 0 = off.",
       minimum=0, maximum=3600),
    _s("rtp_port_min", "RTP_Port_Min", "SIP", "RTP Parameters", "RTP Port Min", Kind.INT, 16384,
       "Lowest RTP port; each stream takes a random even port in the range.",
       minimum=1024, maximum=65534),
    _s("rtp_port_max", "RTP_Port_Max", "SIP", "RTP Parameters", "RTP Port Max", Kind.INT, 32766,
       "Highest RTP port.", minimum=1024, maximum=65535),
    _s("rtp_packet_size", "RTP_Packet_Size", "SIP", "RTP Parameters", "RTP Packet Size",
       Kind.FLOAT, 0.02, "Packet duration in seconds (ptime).", minimum=0.01, maximum=0.06),
    _s("symmetric_rtp", "Symmetric_RTP", "SIP", "RTP Parameters", "Symmetric RTP", Kind.BOOL, True,
       "Send media back to where the first authenticated packet came from."),
    _s("avt_dynamic_payload", "AVT_Dynamic_Payload", "SIP", "SDP Payload Types",
       "AVT Dynamic Payload", Kind.INT, 101, "Payload type of telephone-event (RFC 4733).",
       minimum=96, maximum=127),
]

_PROVISIONING = [
    _s("provision_enable", "Provision_Enable", "Provisioning", "Configuration Profile",
       "Provision Enable", Kind.BOOL, True, "Resync from the profile rules."),
    _s("resync_on_reset", "Resync_On_Reset", "Provisioning", "Configuration Profile",
       "Resync On Reset", Kind.BOOL, True, "Resync when the phone starts."),
    _s("resync_random_delay", "Resync_Random_Delay", "Provisioning", "Configuration Profile",
       "Resync Random Delay", Kind.INT, 2, "Random delay before the start resync, in 20 s units.",
       minimum=0, maximum=65535),
    _s("resync_periodic", "Resync_Periodic", "Provisioning", "Configuration Profile",
       "Resync Periodic", Kind.INT, 3600, "Seconds between resyncs; 0 = off.",
       minimum=0, maximum=4294967),
    _s("resync_error_retry_delay", "Resync_Error_Retry_Delay", "Provisioning",
       "Configuration Profile", "Resync Error Retry Delay", Kind.INT, 3600,
       "Seconds before retrying after a failed resync.", minimum=0, maximum=4294967),
    _s("forced_resync_delay", "Forced_Resync_Delay", "Provisioning", "Configuration Profile",
       "Forced Resync Delay", Kind.INT, 14400,
       "Longest a resync waits for calls to end.", minimum=0, maximum=4294967),
    _s("resync_from_sip", "Resync_From_SIP", "Provisioning", "Configuration Profile",
       "Resync From SIP", Kind.BOOL, True, "An authenticated NOTIFY with Event: resync resyncs."),
    *(
        _s(f"profile_rule{suffix.lower()}", f"Profile_Rule{suffix}", "Provisioning",
           "Configuration Profile", f"Profile Rule{suffix.replace('_', ' ')}", Kind.STR, "",
           "Where to fetch a profile from: [--key K] [--uid U --pwd P] URL with $ macros; "
           'alternatives ( $SWVER ge 1.0.0 and "$A" eq "" )? ( b = "x" ; )! URL | URL.',
           check=_check_profile_rule)
        for suffix in ("", "_B", "_C", "_D")
    ),
    _s("upgrade_enable", "Upgrade_Enable", "Provisioning", "Firmware Upgrade", "Upgrade Enable",
       Kind.BOOL, True, "Check the Upgrade Rule for signed releases."),
    _s("upgrade_rule", "Upgrade_Rule", "Provisioning", "Firmware Upgrade", "Upgrade Rule",
       Kind.STR, "", "URL of the signed release manifest.", check=_check_upgrade_rule),
    _s("downgrade_rev_limit", "Downgrade_Rev_Limit", "Provisioning", "Firmware Upgrade",
       "Downgrade Rev Limit", Kind.STR, "", "Never install a version below this one."),
    _s("custom_ca_rule", "Custom_CA_Rule", "Provisioning", "CA Settings", "Custom CA Rule",
       Kind.STR, "", "Path or URL of a PEM bundle of extra trust anchors.", check=_check_url),
    *(
        _s(f"gpp_{c.lower()}", f"GPP_{c}", "Provisioning", "General Purpose Parameters",
           f"GPP {c}", Kind.STR, "", f"General purpose parameter ${c} for profile rules.")
        for c in "ABCDEFGHIJKLMNOP"
    ),
    *(
        _s(f"gpp_s{c.lower()}", f"GPP_S{c}", "Provisioning", "General Purpose Parameters",
           f"GPP S{c}", Kind.PASSWORD, "",
           f"Secret ${'S' + c}: expands only as the --key of a profile rule (the passphrase of "
           "an encrypted profile); never exported without secrets.")
        for c in "ABCD"
    ),
]

_USER = [
    _s("secure_call_setting", "Secure_Call_Setting", "User", "Supplementary Services",
       "Secure Call Setting", Kind.CHOICE, "Best Effort",
       "Default secure-call policy of the lines: Off (RTP/AVP), Best Effort (RTP/AVP with "
       "a=crypto, RFC 8643), Mandatory (RTP/SAVP; calls without SRTP fail).",
       access=Access.RW, choices=_SECURE_CALL),
    _s("dnd_setting", "DND_Setting", "User", "Supplementary Services", "DND Setting", Kind.BOOL,
       False, "Do not disturb on every line: incoming calls get 486 Busy Here.",
       access=Access.RW),
    _s("cfwd_all_dest", "Cfwd_All_Dest", "User", "Call Forward", "Cfwd All Dest", Kind.STR, "",
       "Forward every incoming call to this number or URI.", access=Access.RW),
    _s("cw_setting", "CW_Setting", "User", "Supplementary Services", "CW Setting", Kind.BOOL, True,
       "Call waiting: a second call may ring while one is up.", access=Access.RW),
]

# Voice > Phone > Line Key n, as on the Cisco phone: line keys are the phone's, not a line's
# (n is the key, not the Ext), so these are global settings named Extended_Function_1_ to _8_.
BLF_KEY_COUNT = 8
_PHONE = [
    _s(f"extended_function_{k}", f"Extended_Function_{k}_", "Phone", f"Line Key {k}",
       "Extended Function", Kind.STR, "",
       "Busy lamp field of this key (RFC 4235): fnc=blf (+sd+cp, as on a Cisco phone);"
       "sub=whom it watches (user@$PROXY, a bare user or a sip: URI; $PROXY is Ext 1's "
       "domain); nme=its label. Example: fnc=blf+sd+cp;sub=bob@$PROXY;nme=Bob. The key "
       "subscribes over Ext 1.", access=Access.RW, check=_check_extended_function)
    for k in range(1, BLF_KEY_COUNT + 1)
]

_LINE = [
    _s("line_enable", "Line_Enable_{n}_", "Ext", "General", "Line Enable", Kind.BOOL, False,
       "Use this line.", access=Access.RO),
    _s("display_name", "Display_Name_{n}_", "Ext", "Subscriber Information", "Display Name",
       Kind.STR, "", "Name shown to the people you call.", access=Access.RW),
    _s("user_id", "User_ID_{n}_", "Ext", "Subscriber Information", "User ID", Kind.STR, "",
       "User part of the line's address (AoR).", access=Access.RO, check=_check_user),
    _s("password", "Password_{n}_", "Ext", "Subscriber Information", "Password", Kind.PASSWORD,
       "", "Digest password."),
    _s("use_auth_id", "Use_Auth_ID_{n}_", "Ext", "Subscriber Information", "Use Auth ID",
       Kind.BOOL, False, "Authenticate with Auth ID instead of User ID."),
    _s("auth_id", "Auth_ID_{n}_", "Ext", "Subscriber Information", "Auth ID", Kind.STR, "",
       "Digest user name when Use Auth ID is on."),
    _s("proxy", "Proxy_{n}_", "Ext", "Proxy and Registration", "Proxy", Kind.STR, "",
       "SIP domain or proxy (host[:port]); certificates are checked against this name.",
       access=Access.RO, check=_check_host_port),
    _s("outbound_proxy", "Outbound_Proxy_{n}_", "Ext", "Proxy and Registration",
       "Outbound Proxy", Kind.STR, "", "Send every request through this proxy.",
       check=_check_host_port),
    _s("use_outbound_proxy", "Use_Outbound_Proxy_{n}_", "Ext", "Proxy and Registration",
       "Use Outbound Proxy", Kind.BOOL, False, "Use the outbound proxy."),
    _s("alternate_proxy", "Alternate_Proxy_{n}_", "Ext", "Proxy and Registration",
       "Alternate Proxy", Kind.STR, "",
       "Backup proxy (host[:port] or sip/sips URI): the line registers and calls through it "
       "when every address of the Proxy fails; its certificate is checked against its own "
       "name. The line's SIP domain stays the Proxy's.", check=_check_host_port),
    _s("alternate_outbound_proxy", "Alternate_Outbound_Proxy_{n}_", "Ext",
       "Proxy and Registration", "Alternate Outbound Proxy", Kind.STR, "",
       "Backup for the Outbound Proxy (used when Use Outbound Proxy is on; empty: the "
       "Alternate Proxy).", check=_check_host_port),
    _s("proxy_fallback_intvl", "Proxy_Fallback_Intvl_{n}_", "Ext", "Proxy and Registration",
       "Proxy Fallback Intvl", Kind.INT, 3600,
       "Registered through the alternate, try the Proxy again after this many seconds and "
       "move back (un-registering from the alternate) when it answers.",
       minimum=1, maximum=65535),
    _s("register", "Register_{n}_", "Ext", "Proxy and Registration", "Register", Kind.BOOL, True,
       "Register the line with the proxy."),
    _s("register_expires", "Register_Expires_{n}_", "Ext", "Proxy and Registration",
       "Register Expires", Kind.INT, 3600, "Registration lifetime asked for, in seconds.",
       minimum=10, maximum=604800),
    _s("make_call_without_reg", "Make_Call_Without_Reg_{n}_", "Ext", "Proxy and Registration",
       "Make Call Without Reg", Kind.BOOL, False,
       "Yes places calls while the line is not registered (yet, or any more); No refuses them "
       "at once with \"not registered\". No emergency-number exception: set Yes if calls must "
       "always be tried. A line that does not register is never affected."),
    _s("ans_call_without_reg", "Ans_Call_Without_Reg_{n}_", "Ext", "Proxy and Registration",
       "Ans Call Without Reg", Kind.BOOL, False,
       "Yes takes incoming calls while the line is not registered; No answers them with 480 "
       "Temporarily Unavailable (the registrar only routes calls to registered lines, so "
       "these are strays). A line that does not register is never affected."),
    _s("use_dns_srv", "Use_DNS_SRV_{n}_", "Ext", "Proxy and Registration", "Use DNS SRV",
       Kind.BOOL, True, "Locate the proxy with NAPTR and SRV records (RFC 3263)."),
    _s("dns_srv_auto_prefix", "DNS_SRV_Auto_Prefix_{n}_", "Ext", "Proxy and Registration",
       "DNS SRV Auto Prefix", Kind.BOOL, True,
       "Add the SRV prefix of the transport (_sips._tcp, _sip._tcp or _sip._udp) to the proxy."),
    _s("tls_name_validate", "TLS_Name_Validate_{n}_", "Ext", "Proxy and Registration",
       "TLS Name Validate", Kind.BOOL, True,
       "Check that the server's certificate names the SIP domain (RFC 5922). Off makes the "
       "line insecure."),
    _s("sip_transport", "SIP_Transport_{n}_", "Ext", "SIP Settings", "SIP Transport",
       Kind.CHOICE, "TLS", "UDP, TCP, TLS, or AUTO (follow NAPTR, prefer TLS).",
       choices=("UDP", "TCP", "TLS", "AUTO")),
    _s("sip_port", "SIP_Port_{n}_", "Ext", "SIP Settings", "SIP Port", Kind.INT, 0,
       "Local port the line listens on; 0 picks one.", minimum=0, maximum=65535),
    _s("secure_call_option", "Secure_Call_Option_{n}_", "Ext", "SIP Settings",
       "Secure Call Option", Kind.CHOICE, "Default",
       "Secure-call policy of the line; Default follows the user's Secure Call Setting.",
       choices=("Default", *_SECURE_CALL)),
    _s("sip_100rel_enable", "SIP_100REL_Enable_{n}_", "Ext", "SIP Settings", "100rel",
       Kind.BOOL, True,
       "Reliable provisional responses (RFC 3262, PRACK): offered in our calls and used when "
       "the caller offers them; off, a call that requires them gets 420 Bad Extension."),
    _s("mediasec_over_tls_only", "MediaSec_Over_TLS_Only_{n}_", "Ext", "SIP Settings",
       "MediaSec Over TLS Only", Kind.BOOL, True,
       "Never put SRTP keys into a message that is not sent over TLS."),
    _s("restrict_source_ip", "Restrict_Source_IP_{n}_", "Ext", "SIP Settings",
       "Restrict Source IP", Kind.BOOL, True,
       "Drop requests outside a call that do not come from the addresses the line's proxy "
       "and outbound proxy resolve to (or arrive on its registration's connection): SIP "
       "scanners' ghost calls. UDP gets no response, TCP/TLS a 403. A line without a proxy "
       "always accepts direct calls."),
    _s("preferred_codec", "Preferred_Codec_{n}_", "Ext", "Audio Configuration",
       "Preferred Codec", Kind.CHOICE, "OPUS", "First codec offered.",
       access=Access.RW, choices=_CODECS[:-1]),
    _s("second_preferred_codec", "Second_Preferred_Codec_{n}_", "Ext", "Audio Configuration",
       "Second Preferred Codec", Kind.CHOICE, "G722", "Second codec offered.",
       access=Access.RW, choices=_CODECS),
    _s("third_preferred_codec", "Third_Preferred_Codec_{n}_", "Ext", "Audio Configuration",
       "Third Preferred Codec", Kind.CHOICE, "G711u", "Third codec offered.",
       access=Access.RW, choices=_CODECS),
    _s("use_pref_codec_only", "Use_Pref_Codec_Only_{n}_", "Ext", "Audio Configuration",
       "Use Pref Codec Only", Kind.BOOL, False, "Offer only the preferred codecs (else all)."),
    _s("dtmf_tx_method", "DTMF_Tx_Method_{n}_", "Ext", "Audio Configuration", "DTMF Tx Method",
       Kind.CHOICE, "Auto", "AVT (RFC 4733), INFO, or Auto (AVT when agreed, else INFO).",
       choices=("AVT", "INFO", "Auto")),
    _s("auto_answer", "Auto_Answer_{n}_", "Ext", "Call Feature Settings", "Auto Answer",
       Kind.BOOL, False, "Answer incoming calls at once.", access=Access.RW),
    _s("dnd", "DND_Setting_{n}_", "Ext", "Call Feature Settings", "DND", Kind.BOOL, False,
       "Do not disturb on this line.", access=Access.RW),
    _s("cfwd_all_dest_line", "Cfwd_All_Dest_{n}_", "Ext", "Call Feature Settings",
       "Cfwd All Dest", Kind.STR, "", "Forward incoming calls of this line.", access=Access.RW),
    _s("mwi_enable", "MWI_Enable_{n}_", "Ext", "Call Feature Settings", "MWI Enable",
       Kind.BOOL, False,
       "Subscribe to the voicemail state (RFC 3842 message-summary) at the line's own address "
       "at its proxy. A Voice Mail Server subscribes there whatever this says. Unsolicited "
       "NOTIFYs from the line's registrar are shown either way. (A sippa setting: the Cisco "
       "phone has none.)"),
    _s("voice_mail_server", "Voice_Mail_Server_{n}_", "Ext", "Call Feature Settings",
       "Voice Mail Server", Kind.STR, "",
       "Where to subscribe for the voicemail light: a sip:/sips: URI or host[:port]; empty "
       "subscribes to the line's own address at its proxy.", check=_check_voice_mail_server),
    _s("mailbox_id", "Mailbox_ID_{n}_", "Ext", "Call Feature Settings", "Mailbox ID",
       Kind.STR, "", "User part of the voicemail subscription; empty uses the User ID.",
       check=_check_user),
    _s("dial_plan", "Dial_Plan_{n}_", "Ext", "Dial Plan", "Dial Plan", Kind.STR, "",
       "Empty by default (every number as typed: a softphone's user types whole numbers, and "
       f"the Cisco default {CISCO_DEFAULT_DIAL_PLAN} refuses 4-digit extensions). "
       "Which typed numbers the line calls, and how it rewrites them (Cisco syntax: "
       "(<9:>xxx.|!1900xxxxxxx|<:+1>[2-9]xxxxxxxxx|8xx<:@host:port>|...)). A number that is "
       "barred, incomplete or not in the plan is refused; empty calls every number as typed. "
       "URIs, user@host and names are not numbers and always bypass it.",
       check=_check_dial_plan),
]

for _line_setting in _LINE:
    object.__setattr__(_line_setting, "per_line", True)

SCHEMA: dict[str, Setting] = {
    s.key: s for s in (*_SYSTEM, *_SIP, *_PROVISIONING, *_USER, *_PHONE, *_LINE)
}

_BY_CISCO: dict[str, Setting] = {s.cisco: s for s in SCHEMA.values()}


def setting(key: str) -> Setting:
    """The setting named ``key``; KeyError names the unknown key."""
    try:
        return SCHEMA[key]
    except KeyError:
        raise KeyError(f"no setting named {key!r}") from None


def by_cisco_name(name: str) -> tuple[Setting, int] | None:
    """Map a Cisco element name (``Proxy_2_``) to its setting and line (0 for global ones)."""
    found = _BY_CISCO.get(name)
    if found is not None:
        return found, 0
    m = re.fullmatch(r"(.+?)_(\d+)_", name)
    if m:
        per_line = _BY_CISCO.get(m.group(1) + "_{n}_")
        if per_line is not None:
            return per_line, int(m.group(2))
    return None


def settings_for_page(page: str) -> Iterator[Setting]:
    return (s for s in SCHEMA.values() if s.page == page)


_TRUE = {"yes", "true", "on", "1", "enabled"}
_FALSE = {"no", "false", "off", "0", "disabled", ""}


def parse_value(s: Setting, raw: Value) -> Value:
    """Turn ``raw`` (text from a form, a CLI or a profile, or a typed value) into a value of ``s``.

    Raises :class:`ValueError` with a message meant for a person.
    """
    value: Value
    if s.kind is Kind.BOOL:
        if isinstance(raw, bool):
            value = raw
        else:
            text = str(raw).strip().lower()
            if text in _TRUE:
                value = True
            elif text in _FALSE:
                value = False
            else:
                raise ValueError("must be Yes or No")
    elif s.kind in (Kind.INT, Kind.FLOAT):
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        try:
            number = (
                int(str(raw).strip(), 10) if s.kind is Kind.INT else float(str(raw).strip())
            )
        except ValueError:
            kind = "a whole number" if s.kind is Kind.INT else "a number"
            raise ValueError(f"must be {kind}") from None
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        if s.minimum is not None and number < s.minimum:
            raise ValueError(f"must be at least {_num(s.minimum)}")
        if s.maximum is not None and number > s.maximum:
            raise ValueError(f"must be at most {_num(s.maximum)}")
        value = number
    elif s.kind is Kind.CHOICE:
        text = str(raw).strip()
        match = next((c for c in s.choices if c.lower() == text.lower()), None)
        if match is None:
            raise ValueError("must be one of " + ", ".join(s.choices))
        value = match
    else:
        value = str(raw)
        if len(value) > 2048:
            raise ValueError("is longer than 2048 characters")
        if any(ord(c) < 32 for c in value):
            raise ValueError("must not contain control characters")
        if s.kind is Kind.STR:
            value = value.strip()
    if s.check is not None:
        problem = s.check(value)
        if problem:
            raise ValueError(problem)
    return value


def format_value(s: Setting, value: Value) -> str:
    """The text a Cisco profile (and a form) uses for ``value``."""
    if s.kind is Kind.BOOL:
        return "Yes" if value else "No"
    if s.kind is Kind.FLOAT:
        return _num(float(value))
    return str(value)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))
