"""The SDP session description model with its parser and serializer (RFC 8866).

``SessionDescription.parse(data)`` turns an SDP body (bytes, CRLF or bare LF line ends) into
frozen dataclasses; ``bytes(sdp)`` writes it back with strict CRLF line ends. Attributes are kept
in order and verbatim (``Attribute(name, value)``), so unknown ones survive a round trip; the
typed accessors (``rtpmaps()``, ``fmtps()``, ``ptime``, ``direction``, ``rtcp``, ``rtcp_mux``,
``attribute_values("crypto")``) read them on demand. Attributes whose syntax we rely on
(rtpmap, fmtp, ptime, maxptime, rtcp) are checked while parsing, so a malformed one is reported
up front. Everything wrong with the input is a :class:`RemoteProtocolError` with status 400
(413 when the body is larger than ``MAX_SDP_SIZE``).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sippa.errors import RemoteProtocolError

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_FORMATS",
    "MAX_LINE_LENGTH",
    "MAX_MEDIA",
    "MAX_SDP_SIZE",
    "Attribute",
    "Bandwidth",
    "Connection",
    "Direction",
    "MediaDescription",
    "Origin",
    "RtcpAttribute",
    "RtpMap",
    "SessionDescription",
    "Timing",
    "parse_sdp",
    "serialize_sdp",
]

# Size limits. A phone's SDP is a few hundred bytes; these bound the work a hostile peer can cause
# while leaving room for offers with video, many codecs and ICE candidates.
MAX_SDP_SIZE = 65536  # bytes of body
MAX_LINE_LENGTH = 4096  # one line, without its line end
MAX_MEDIA = 32  # m= sections
MAX_ATTRIBUTES = 256  # a= lines per section (session or one media)
MAX_FORMATS = 128  # formats on one m= line
_MAX_MISC = 64  # e=, p=, b=, c=, t=, r= lines per section

# --- grammar (RFC 8866 §9) -------------------------------------------------------------------
# token-char = %x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E
_TCHARS = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_TCHARS_RE = re.compile(_TCHARS)  # also attribute names: a=<name>[:<value>] (RFC 8866 §5.13)
# Anything visible (non-ws-string) plus inner spaces: used for free text fields.
_NON_WS = r"[^\x00-\x20\x7f]+"
# o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>
_ORIGIN_RE = re.compile(
    rf"({_NON_WS}) ([0-9]{{1,20}}) ([0-9]{{1,20}}) ({_TCHARS}) ({_TCHARS}) ({_NON_WS})"
)
# c=<nettype> <addrtype> <connection-address>
_CONNECTION_RE = re.compile(rf"({_TCHARS}) ({_TCHARS}) ({_NON_WS})")
# b=<bwtype>:<bandwidth>
_BANDWIDTH_RE = re.compile(rf"({_TCHARS}):([0-9]{{1,18}})")
# t=<start-time> <stop-time>
_TIMING_RE = re.compile(r"([0-9]{1,20}) ([0-9]{1,20})")
# m=<media> <port>[/<number of ports>] <proto> 1*(SP <fmt>)
_MEDIA_RE = re.compile(
    rf"({_TCHARS}) ([0-9]{{1,5}})(?:/([0-9]{{1,5}}))? ({_TCHARS}(?:/{_TCHARS})*)((?: {_TCHARS})+)"
)
# a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]  (RFC 8866 §6.6)
_RTPMAP_RE = re.compile(r"([0-9]{1,3}) ([^\x00-\x20/\x7f]+)/([0-9]{1,9})(?:/([0-9]{1,3}))?")
# a=fmtp:<format> <format specific parameters>  (RFC 8866 §6.15)
_FMTP_RE = re.compile(rf"({_TCHARS}) ?(.*)")
# a=ptime:<packet time>  (RFC 8866 §6.4), milliseconds, decimal fraction allowed
_PTIME_RE = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")
# a=rtcp:<port> [<nettype> <addrtype> <connection-address>]  (RFC 3605 §2.1)
_RTCP_RE = re.compile(rf"([0-9]{{1,5}})(?: ({_TCHARS}) ({_TCHARS}) ({_NON_WS}))?")

# IP4-address = b1 3("." decimal-uchar)  (RFC 8866 §9): 0..255 without leading zeros
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")

# RFC 8866 §5: the lines of the session section, in the order they must appear.
_SESSION_ORDER = {"v": 0, "o": 1, "s": 2, "i": 3, "u": 4, "e": 5, "p": 6, "c": 7, "b": 8,
                  "t": 9, "r": 9, "z": 10, "k": 11}
# RFC 8866 §5: media section; i c b k a after m. We accept i/c/b/k in any order before the
# attributes but keep the attributes last (a few stacks put b= after c=, none after a=).
_MEDIA_ORDER = {"i": 0, "c": 1, "b": 1, "k": 1}


def _bad(reason: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"bad SDP: {reason}", 400)


class Direction(enum.StrEnum):
    """The direction attributes (RFC 8866 §6.7, RFC 3264 §5.1), as seen by the SDP's author."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        """True when the author of the SDP sends media in this direction."""
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        """True when the author of the SDP receives media in this direction."""
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    def reversed(self) -> Direction:
        """The same media flow seen from the other end (sendonly <-> recvonly)."""
        return _REVERSED[self]

    @classmethod
    def of(cls, sends: bool, receives: bool) -> Direction:
        """The direction for the given send/receive flags."""
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE


_REVERSED = {
    Direction.SENDRECV: Direction.SENDRECV,
    Direction.SENDONLY: Direction.RECVONLY,
    Direction.RECVONLY: Direction.SENDONLY,
    Direction.INACTIVE: Direction.INACTIVE,
}
_DIRECTIONS = {d.value: d for d in Direction}


@dataclass(frozen=True, slots=True)
class Origin:
    """The o= line (RFC 8866 §5.2)."""

    username: str
    """Login of the originator, ``-`` when there is none."""
    session_id: int
    """Numeric session identifier; stays the same for the whole session."""
    session_version: int
    """Incremented each time the description changes (RFC 3264 §8)."""
    address: str
    """Address of the originating host."""
    nettype: str = "IN"
    """Network type, ``IN`` for the Internet."""
    addrtype: str = "IP4"
    """Address type, ``IP4`` or ``IP6``."""

    def __str__(self) -> str:
        return (f"{self.username} {self.session_id} {self.session_version} "
                f"{self.nettype} {self.addrtype} {self.address}")


@dataclass(frozen=True, slots=True)
class Connection:
    """A c= line (RFC 8866 §5.7)."""

    address: str
    """Connection address; multicast TTL and count suffixes (``/127/3``) kept verbatim."""
    nettype: str = "IN"
    """Network type, ``IN``."""
    addrtype: str = "IP4"
    """``IP4`` or ``IP6``."""

    @property
    def host(self) -> str:
        """The address without multicast ``/ttl/count`` suffixes."""
        return self.address.split("/", 1)[0]

    @property
    def is_hold(self) -> bool:
        """True for the pre-RFC 3264 hold address ``0.0.0.0`` (RFC 3264 §8.4)."""
        return self.addrtype == "IP4" and self.host == "0.0.0.0"  # noqa: S104 - an SDP value, not a bind

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """A b= line (RFC 8866 §5.8): ``b=<bwtype>:<bandwidth>``."""

    type: str
    """Bandwidth type, e.g. ``AS``, ``CT``, ``TIAS``."""
    value: int
    """Bandwidth in kilobits per second (bits for TIAS)."""

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


@dataclass(frozen=True, slots=True)
class Timing:
    """A t= line with its r= lines (RFC 8866 §5.9, §5.10)."""

    start: int = 0
    """NTP start time, 0 for unbounded."""
    stop: int = 0
    """NTP stop time, 0 for unbounded."""
    repeats: tuple[str, ...] = ()
    """The r= lines that follow, verbatim."""


@dataclass(frozen=True, slots=True)
class Attribute:
    """One a= line (RFC 8866 §5.13), kept verbatim: ``a=<name>`` or ``a=<name>:<value>``."""

    name: str
    """Attribute name (case-sensitive, as on the wire)."""
    value: str | None = None
    """Value after the colon; None for a property attribute without one."""

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class RtpMap:
    """A parsed ``a=rtpmap`` value (RFC 8866 §6.6)."""

    payload_type: int
    """RTP payload type number 0..127."""
    encoding: str
    """Encoding name as written (compare case-insensitively)."""
    clock_rate: int
    """RTP clock rate in Hz."""
    channels: int = 1
    """Number of audio channels (the optional encoding parameter)."""

    @classmethod
    def parse(cls, value: str) -> RtpMap:
        """Parse an rtpmap attribute value; RemoteProtocolError(400) when malformed."""
        m = _RTPMAP_RE.fullmatch(value)
        if m is None:
            raise _bad(f"malformed rtpmap {value[:80]!r}")
        pt, enc, rate, chans = m.groups()
        payload_type = int(pt)
        if payload_type > 127:
            raise _bad(f"rtpmap payload type {payload_type} out of range")
        channels = int(chans) if chans is not None else 1
        clock_rate = int(rate)
        if channels == 0 or clock_rate == 0:
            raise _bad(f"rtpmap with zero clock rate or channels {value[:80]!r}")
        if cls is not RtpMap:
            return cls(payload_type, enc, clock_rate, channels)
        # (the parse path skips the frozen __init__'s setattr calls: same fields, same object)
        rtpmap = _object_new(cls)
        _SET_PAYLOAD_TYPE(rtpmap, payload_type)
        _SET_ENCODING(rtpmap, enc)
        _SET_CLOCK_RATE(rtpmap, clock_rate)
        _SET_CHANNELS(rtpmap, channels)
        return rtpmap

    def __str__(self) -> str:
        base = f"{self.payload_type} {self.encoding}/{self.clock_rate}"
        return base if self.channels == 1 else f"{base}/{self.channels}"


@dataclass(frozen=True, slots=True)
class RtcpAttribute:
    """A parsed ``a=rtcp`` value (RFC 3605 §2.1)."""

    port: int
    """RTCP port."""
    address: str | None = None
    """RTCP address when given; otherwise the stream's connection address applies."""
    nettype: str = "IN"
    """Network type of ``address``."""
    addrtype: str = "IP4"
    """Address type of ``address``."""

    @classmethod
    def parse(cls, value: str) -> RtcpAttribute:
        """Parse an rtcp attribute value; RemoteProtocolError(400) when malformed."""
        m = _RTCP_RE.fullmatch(value)
        if m is None or int(m[1]) > 65535:
            raise _bad(f"malformed rtcp attribute {value[:80]!r}")
        if m[2] is None:
            return cls(int(m[1]))
        return cls(int(m[1]), m[4], m[2], m[3])

    def __str__(self) -> str:
        if self.address is None:
            return str(self.port)
        return f"{self.port} {self.nettype} {self.addrtype} {self.address}"


def _check_ptime(value: str | None, name: str) -> None:
    if value is None or _PTIME_RE.fullmatch(value) is None or float(value) == 0:
        raise _bad(f"malformed {name} {value!r}")


def _check_rtpmap(value: str | None) -> None:
    # Same checks as RtpMap.parse without building the object: this runs for every rtpmap.
    m = _RTPMAP_RE.fullmatch(value or "")
    if m is None or int(m[1]) > 127 or int(m[3]) == 0 or m[4] in ("0", "00", "000"):
        RtpMap.parse(value or "")  # raises with the precise reason


def _check_fmtp(value: str | None) -> None:
    if value is None or _FMTP_RE.fullmatch(value) is None:
        raise _bad(f"malformed fmtp {value!r}")


def _check_rtcp(value: str | None) -> None:
    RtcpAttribute.parse(value or "")


def _check_direction(value: str | None) -> None:
    if value is not None:
        raise _bad("direction attribute with a value")


# Attributes whose syntax is checked while parsing; every other attribute is kept unchecked.
_CHECKERS: dict[str, Callable[[str | None], None]] = {
    "rtpmap": _check_rtpmap,
    "fmtp": _check_fmtp,
    "ptime": partial(_check_ptime, name="ptime"),
    "maxptime": partial(_check_ptime, name="maxptime"),
    "rtcp": _check_rtcp,
    "sendrecv": _check_direction,
    "sendonly": _check_direction,
    "recvonly": _check_direction,
    "inactive": _check_direction,
}


# Frequent attributes without a syntax check: known-good names skip the token regex.
_COMMON_NAMES = frozenset({"crypto", "rtcp-mux", "rtcp-fb", "ssrc", "mid", "candidate",
                           "ice-ufrag", "ice-pwd", "setup", "fingerprint", "extmap", "group",
                           "msid", "label", "silenceSupp", "X-nat"})


# The parse path builds Attribute and RtpMap without the frozen __init__'s setattr calls (same
# fields, same objects; it is the hottest constructor of the SDP parse).
_object_new = object.__new__
_Setter = Callable[[Any, Any], None]  # a slot's __set__
_SET_ATTRIBUTE_NAME: Callable[[Attribute, str], None] = Attribute.__dict__["name"].__set__
_SET_ATTRIBUTE_VALUE: Callable[[Attribute, str | None], None] = Attribute.__dict__["value"].__set__


_SET_PAYLOAD_TYPE: Callable[[RtpMap, int], None] = RtpMap.__dict__["payload_type"].__set__
_SET_ENCODING: Callable[[RtpMap, str], None] = RtpMap.__dict__["encoding"].__set__
_SET_CLOCK_RATE: Callable[[RtpMap, int], None] = RtpMap.__dict__["clock_rate"].__set__
_SET_CHANNELS: Callable[[RtpMap, int], None] = RtpMap.__dict__["channels"].__set__


_SET_CONNECTION_ADDRESS: _Setter = Connection.__dict__["address"].__set__
_SET_CONNECTION_NETTYPE: _Setter = Connection.__dict__["nettype"].__set__
_SET_CONNECTION_ADDRTYPE: _Setter = Connection.__dict__["addrtype"].__set__


def _attr_values(attributes: Iterable[Attribute], name: str) -> list[str]:
    return [a.value for a in attributes if a.name == name and a.value is not None]


def _direction_of(attributes: Iterable[Attribute]) -> Direction | None:
    found = None
    for a in attributes:
        d = _DIRECTIONS.get(a.name)
        if d is not None:
            found = d  # RFC 8866 §6.7: one per level; if several, the last one wins
    return found


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One media section: the m= line and the lines under it (RFC 8866 §5.14)."""

    media: str
    """Media type: ``audio``, ``video``, ``application``..."""
    port: int
    """Transport port; 0 means the stream is rejected or disabled (RFC 3264 §6, §8.2)."""
    proto: str
    """Transport protocol: ``RTP/AVP``, ``RTP/SAVP``, ``RTP/AVPF``, ``RTP/SAVPF``..."""
    formats: tuple[str, ...]
    """Media formats; RTP payload type numbers for RTP protocols."""
    port_count: int | None = None
    """The optional ``/<number of ports>``."""
    title: str | None = None
    """The i= line."""
    connections: tuple[Connection, ...] = ()
    """Media-level c= lines; override the session's."""
    bandwidths: tuple[Bandwidth, ...] = ()
    """Media-level b= lines."""
    key: str | None = None
    """The obsolete k= line, kept verbatim."""
    attributes: tuple[Attribute, ...] = ()
    """The a= lines in order."""
    _rtpmaps: dict[int, RtpMap] | None = field(default=None, init=False, repr=False,
                                               compare=False)
    """(What ``rtpmaps()`` returns, filled by the parser, which parses every rtpmap anyway
    to check it; None for a section built directly, or after ``dataclasses.replace``.)"""

    # --- typed access ---
    def attribute_values(self, name: str) -> list[str]:
        """Values of all attributes called ``name`` (those without a value are skipped)."""
        return _attr_values(self.attributes, name)

    def has_attribute(self, name: str) -> bool:
        """True when an attribute ``name`` is present (with or without value)."""
        return any(a.name == name for a in self.attributes)

    def rtpmaps(self) -> dict[int, RtpMap]:
        """The rtpmap attributes by payload type (first one wins on duplicates)."""
        if self._rtpmaps is not None:
            return dict(self._rtpmaps)
        out: dict[int, RtpMap] = {}
        parse = RtpMap.parse
        for a in self.attributes:
            if a.name == "rtpmap" and a.value is not None:
                r = parse(a.value)
                if r.payload_type not in out:
                    out[r.payload_type] = r
        return out

    def fmtps(self) -> dict[str, str]:
        """Format parameters by format (first one wins on duplicates)."""
        out: dict[str, str] = {}
        for v in self.attribute_values("fmtp"):
            fmt, _, params = v.partition(" ")
            out.setdefault(fmt, params.strip())
        return out

    @property
    def ptime(self) -> float | None:
        """``a=ptime`` in milliseconds (RFC 8866 §6.4), or None."""
        values = self.attribute_values("ptime")
        return float(values[0]) if values else None

    @property
    def maxptime(self) -> float | None:
        """``a=maxptime`` in milliseconds (RFC 8866 §6.5), or None."""
        values = self.attribute_values("maxptime")
        return float(values[0]) if values else None

    @property
    def own_direction(self) -> Direction | None:
        """The direction attribute at media level, None when absent."""
        return _direction_of(self.attributes)

    @property
    def rtcp(self) -> RtcpAttribute | None:
        """``a=rtcp`` (RFC 3605), or None."""
        values = self.attribute_values("rtcp")
        return RtcpAttribute.parse(values[0]) if values else None

    @property
    def rtcp_mux(self) -> bool:
        """``a=rtcp-mux`` present (RFC 5761 §5.1.1)."""
        return self.has_attribute("rtcp-mux")

    @property
    def is_rtp(self) -> bool:
        """True for the RTP profiles (formats are payload type numbers)."""
        return self.proto.upper().startswith("RTP/")

    @property
    def is_secure(self) -> bool:
        """True for the SRTP profiles RTP/SAVP and RTP/SAVPF (RFC 3711, RFC 5124)."""
        return self.proto.upper() in ("RTP/SAVP", "RTP/SAVPF")

    def __str__(self) -> str:
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        return f"{self.media} {port} {self.proto} {' '.join(self.formats)}"


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP body (RFC 8866 §5). Build one directly, or ``SessionDescription.parse()``."""

    origin: Origin
    """The o= line."""
    session_name: str = "-"
    """The s= line; ``-`` when there is nothing to say."""
    information: str | None = None
    """The i= line."""
    uri: str | None = None
    """The u= line."""
    emails: tuple[str, ...] = ()
    """The e= lines."""
    phones: tuple[str, ...] = ()
    """The p= lines."""
    connection: Connection | None = None
    """The session-level c= line (default for every media section)."""
    bandwidths: tuple[Bandwidth, ...] = ()
    """Session-level b= lines."""
    timings: tuple[Timing, ...] = (Timing(),)
    """The t= lines (at least one); ``t=0 0`` for a phone call."""
    zone: str | None = None
    """The z= line, verbatim."""
    key: str | None = None
    """The obsolete k= line, verbatim."""
    attributes: tuple[Attribute, ...] = ()
    """Session-level a= lines, in order."""
    media: tuple[MediaDescription, ...] = field(default=())
    """The media sections, in order (their index is what offer/answer pairs up)."""
    version: int = 0
    """The v= line; always 0."""

    # --- typed access ---
    def attribute_values(self, name: str) -> list[str]:
        """Values of session-level attributes called ``name``."""
        return _attr_values(self.attributes, name)

    @property
    def own_direction(self) -> Direction | None:
        """The session-level direction attribute, None when absent."""
        return _direction_of(self.attributes)

    def direction(self, media: MediaDescription) -> Direction:
        """Direction of ``media``: its own attribute, else the session's, else sendrecv
        (RFC 8866 §6.7: media-level overrides session-level; the default is sendrecv)."""
        return media.own_direction or self.own_direction or Direction.SENDRECV

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """The c= that applies to ``media``: its own first, else the session's (RFC 8866 §5.7)."""
        return media.connections[0] if media.connections else self.connection

    # --- wire format ---
    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse an SDP body; see :func:`parse_sdp`."""
        return parse_sdp(data)

    def __bytes__(self) -> bytes:
        return serialize_sdp(self)


# The parse path builds these objects without the frozen __init__'s setattr calls:
# the same fields in the same order (a test compares them with the dataclass fields).
_MEDIA_FIELDS = ("media", "port", "proto", "formats", "port_count", "title", "connections",
                 "bandwidths", "key", "attributes", "_rtpmaps")
_SESSION_FIELDS = ("origin", "session_name", "information", "uri", "emails", "phones",
                   "connection", "bandwidths", "timings", "zone", "key", "attributes", "media",
                   "version")
_ORIGIN_FIELDS = ("username", "session_id", "session_version", "address", "nettype", "addrtype")
_TIMING_FIELDS = ("start", "stop", "repeats")
_O0, _O1, _O2, _O3, _O4, _O5 = (Origin.__dict__[name].__set__ for name in _ORIGIN_FIELDS)
_T0, _T1, _T2 = (Timing.__dict__[name].__set__ for name in _TIMING_FIELDS)
_M0, _M1, _M2, _M3, _M4, _M5, _M6, _M7, _M8, _M9, _M10 = (
    MediaDescription.__dict__[name].__set__ for name in _MEDIA_FIELDS
)
_S0, _S1, _S2, _S3, _S4, _S5, _S6, _S7, _S8, _S9, _S10, _S11, _S12, _S13 = (
    SessionDescription.__dict__[name].__set__ for name in _SESSION_FIELDS
)


def _new_media(  # noqa: PLR0917 - mirrors the dataclass fields
    media: str, port: int, proto: str, formats: tuple[str, ...], port_count: int | None,
    title: str | None, connections: tuple[Connection, ...], bandwidths: tuple[Bandwidth, ...],
    key: str | None, attributes: tuple[Attribute, ...], rtpmaps: dict[int, RtpMap],
) -> MediaDescription:
    md: MediaDescription = _object_new(MediaDescription)
    _M0(md, media)
    _M1(md, port)
    _M2(md, proto)
    _M3(md, formats)
    _M4(md, port_count)
    _M5(md, title)
    _M6(md, connections)
    _M7(md, bandwidths)
    _M8(md, key)
    _M9(md, attributes)
    _M10(md, rtpmaps)
    return md


def _new_session(  # noqa: PLR0917 - mirrors the dataclass fields
    origin: Origin, session_name: str, information: str | None, uri: str | None,
    emails: tuple[str, ...], phones: tuple[str, ...], connection: Connection | None,
    bandwidths: tuple[Bandwidth, ...], timings: tuple[Timing, ...], zone: str | None,
    key: str | None, attributes: tuple[Attribute, ...], media: tuple[MediaDescription, ...],
) -> SessionDescription:
    sd: SessionDescription = _object_new(SessionDescription)
    _S0(sd, origin)
    _S1(sd, session_name)
    _S2(sd, information)
    _S3(sd, uri)
    _S4(sd, emails)
    _S5(sd, phones)
    _S6(sd, connection)
    _S7(sd, bandwidths)
    _S8(sd, timings)
    _S9(sd, zone)
    _S10(sd, key)
    _S11(sd, attributes)
    _S12(sd, media)
    _S13(sd, 0)  # version: RFC 8866 §5.1, parse checked v=0
    return sd


def _parse_connection(value: str) -> Connection:
    if value.startswith("IN IP4 ") and _IPV4_RE.fullmatch(value, 7) is not None:
        # the common case: a unicast IPv4 literal (built without the frozen __init__)
        connection = _object_new(Connection)
        _SET_CONNECTION_ADDRESS(connection, value[7:])
        _SET_CONNECTION_NETTYPE(connection, "IN")
        _SET_CONNECTION_ADDRTYPE(connection, "IP4")
        return connection
    m = _CONNECTION_RE.fullmatch(value)
    if m is None:
        raise _bad(f"malformed c= line {value[:80]!r}")
    nettype, addrtype, address = m.groups()
    if nettype == "IN":
        host = address.split("/", 1)[0]
        # RFC 8866 §5.7: for IN, the address is an IPv4/IPv6 address or an FQDN.
        if addrtype == "IP4" and host[:1].isdigit() and host.replace(".", "").isdigit():
            if _IPV4_RE.fullmatch(host) is None:
                raise _bad(f"bad IPv4 address {host[:64]!r}")
        elif addrtype == "IP6" and ":" in host:
            _check_ip(host, ipaddress.IPv6Address)
        elif addrtype not in ("IP4", "IP6"):
            raise _bad(f"unknown address type {addrtype!r}")
    return Connection(address, nettype, addrtype)


def _check_ip(host: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> None:
    try:
        kind(host)
    except ValueError:
        raise _bad(f"bad address {host[:64]!r}") from None


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        text = data
        if len(text) > MAX_SDP_SIZE:
            raise RemoteProtocolError("SDP body too large", 413)
    else:
        if len(data) > MAX_SDP_SIZE:
            raise RemoteProtocolError("SDP body too large", 413)
        try:
            # RFC 8866 §5: text fields are UTF-8 unless a=charset says otherwise; the
            # protocol fields themselves are ASCII.
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad("not UTF-8") from None
    return text


def _rstrip_line(line: str) -> str:
    stripped = line.rstrip(" \t")
    return line if stripped == "s=" else stripped


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body (RFC 8866). Accepts CRLF or bare LF line ends and trailing blank lines.

    Raises RemoteProtocolError (status 400; 413 when over MAX_SDP_SIZE) for anything malformed.
    """
    text = _decode(data)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            raise _bad("bare CR")
    if "\x00" in text:
        raise _bad("NUL character")
    lines = text.split("\n")
    if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
        # RFC 8866 §5 allows no whitespace at line ends, but some phones send it (the Cisco
        # SPA capture in tests/vectors had it); it carries no meaning, so it is dropped --
        # except from a name that is all blanks ("s= " is RFC 8866 §5.3's "no name").
        lines = [_rstrip_line(line) for line in lines]
    # Trailing empty lines (a final CRLF, or a blank line some stacks add) are fine.
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) < 3:
        raise _bad("too short")
    if len(text) > MAX_LINE_LENGTH and max(map(len, lines)) > MAX_LINE_LENGTH:
        raise _bad(f"a line is longer than {MAX_LINE_LENGTH}")

    # RFC 8866 §5: v=0, o= and s= come first, in this order.
    if lines[0] != "v=0":
        raise _bad("must start with v=0")
    if not lines[1].startswith("o="):
        raise _bad("o= must be the second line")
    om = _ORIGIN_RE.fullmatch(lines[1], 2)
    if om is None:
        raise _bad(f"malformed o= line {lines[1][:80]!r}")
    origin = _object_new(Origin)  # (Origin(...) without the frozen __init__)
    _O0(origin, om[1])
    _O1(origin, int(om[2]))
    _O2(origin, int(om[3]))
    _O3(origin, om[6])
    _O4(origin, om[4])
    _O5(origin, om[5])
    if not lines[2].startswith("s="):
        raise _bad("s= must be the third line")
    # RFC 8866 §5.3 wants a non-empty name (" " or "-" when there is none); the RFC 3264
    # examples and several stacks send "s=" empty, so that is accepted.
    session_name = lines[2][2:]

    # Session section state.
    information = uri = zone = key = None
    emails: list[str] = []
    phones: list[str] = []
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = []
    timings: list[Timing] = []
    attributes: list[Attribute] = []
    media: list[MediaDescription] = []
    # Current section state: `attrs` is the list a= lines go to (session or current media).
    attrs = attributes
    m_line: tuple[str, int, int | None, str, tuple[str, ...]] | None = None
    m_title: str | None = None
    m_key: str | None = None
    m_conns: list[Connection] = []
    m_bws: list[Bandwidth] = []
    m_rtpmaps: dict[int, RtpMap] = {}  # the section's rtpmaps by payload type, first wins
    rank = 3

    def close_media() -> None:
        if len(attrs) > MAX_ATTRIBUTES:
            raise _bad("too many attributes")
        if m_line is not None:
            mt, port, count, proto, fmts = m_line
            media.append(_new_media(mt, port, proto, fmts, count, m_title,
                                    tuple(m_conns), tuple(m_bws), m_key, tuple(attrs),
                                    m_rtpmaps))

    checkers = _CHECKERS
    name_re = _TCHARS_RE
    common_names = _COMMON_NAMES
    new_object = _object_new
    set_name = _SET_ATTRIBUTE_NAME
    set_value = _SET_ATTRIBUTE_VALUE
    parse_rtpmap = RtpMap.parse
    for line in lines[3:]:
        if line[1:2] != "=":
            raise _bad(f"line {line[:40]!r} is not <type>=<value>")
        kind = line[0]
        if kind == "a":  # the common case first: a=<name>[:<value>] (RFC 8866 §5.13)
            name, colon, rest = line[2:].partition(":")
            value: str | None = rest if colon else None
            if name == "rtpmap":
                # parsed (which checks it) once here, for MediaDescription.rtpmaps()
                rtpmap = parse_rtpmap(rest if colon else "")
                if rtpmap.payload_type not in m_rtpmaps:
                    m_rtpmaps[rtpmap.payload_type] = rtpmap
            elif (checker := checkers.get(name)) is not None:
                checker(value)
            elif name not in common_names and name_re.fullmatch(name) is None:
                raise _bad(f"malformed attribute name {name[:40]!r}")
            attr = new_object(Attribute)
            set_name(attr, name)
            set_value(attr, value)
            attrs.append(attr)  # (MAX_ATTRIBUTES is checked when the section closes)
            rank = 99  # nothing but a= and m= may follow an a= line
            continue
        value = line[2:]
        if kind == "m":
            close_media()
            if len(media) >= MAX_MEDIA:
                raise _bad(f"more than {MAX_MEDIA} media sections")
            mm = _MEDIA_RE.fullmatch(value)
            if mm is None:
                raise _bad(f"malformed m= line {value[:80]!r}")
            port = int(mm[2])
            count = int(mm[3]) if mm[3] is not None else None
            if port > 65535 or count == 0:
                raise _bad(f"bad port in m= line {value[:80]!r}")
            fmts = tuple(mm[5].split())
            if len(fmts) > MAX_FORMATS:
                raise _bad(f"more than {MAX_FORMATS} formats")
            m_line = (mm[1], port, count, mm[4], fmts)
            m_title = m_key = None
            m_conns, m_bws, attrs = [], [], []
            m_rtpmaps = {}
            rank = -1
            continue

        if m_line is None:
            order = _SESSION_ORDER.get(kind)
            if order is None or order < 3:
                raise _bad(f"unexpected {kind}= line at session level")
            if order < rank:
                raise _bad(f"{kind}= line out of order (RFC 8866 §5)")
            rank = order
            if kind == "c":
                if connection is not None:
                    raise _bad("two session-level c= lines")
                connection = _parse_connection(value)
            elif kind == "t":
                tm = _TIMING_RE.fullmatch(value)
                if tm is None:
                    raise _bad(f"malformed t= line {value[:80]!r}")
                if len(timings) >= _MAX_MISC:
                    raise _bad("too many t= lines")
                timing = _object_new(Timing)  # (Timing(...) without the frozen __init__)
                _T0(timing, int(tm[1]))
                _T1(timing, int(tm[2]))
                _T2(timing, ())
                timings.append(timing)
            elif kind == "r":
                if not timings or not value:
                    raise _bad("r= without t=")
                last = timings[-1]
                if len(last.repeats) >= _MAX_MISC:
                    raise _bad("too many r= lines")
                timings[-1] = Timing(last.start, last.stop, (*last.repeats, value))
            elif kind == "b":
                if len(bandwidths) >= _MAX_MISC:
                    raise _bad("too many b= lines")
                bandwidths.append(_parse_bandwidth(value))
            elif kind in "iuzk":
                if not value:
                    raise _bad(f"empty {kind}= line")
                if kind == "i" and information is None:
                    information = value
                elif kind == "u" and uri is None:
                    uri = value
                elif kind == "z" and zone is None:
                    zone = value
                elif kind == "k" and key is None:
                    key = value
                else:
                    raise _bad(f"two {kind}= lines")
            else:  # e, p
                target = emails if kind == "e" else phones
                if not value or len(target) >= _MAX_MISC:
                    raise _bad(f"bad {kind}= line")
                target.append(value)
        else:
            order = _MEDIA_ORDER.get(kind)
            if order is None:
                raise _bad(f"unexpected {kind}= line in a media section")
            if order < rank:
                raise _bad(f"{kind}= line out of order in a media section (RFC 8866 §5)")
            rank = order
            if kind == "c":
                if len(m_conns) >= _MAX_MISC:
                    raise _bad("too many c= lines")
                m_conns.append(_parse_connection(value))
            elif kind == "b":
                if len(m_bws) >= _MAX_MISC:
                    raise _bad("too many b= lines")
                m_bws.append(_parse_bandwidth(value))
            elif kind == "i":
                if m_title is not None or not value:
                    raise _bad("bad i= line in a media section")
                m_title = value
            else:  # k
                if m_key is not None or not value:
                    raise _bad("bad k= line in a media section")
                m_key = value
    close_media()

    if not timings:
        raise _bad("no t= line")
    # RFC 8866 §5.7: a c= line at session level or in every media section.
    if connection is None:
        for md in media:
            if not md.connections:
                raise _bad(f"no c= line for m={md.media}")
    return _new_session(origin, session_name, information, uri, tuple(emails),
                        tuple(phones), connection, tuple(bandwidths), tuple(timings), zone,
                        key, tuple(attributes), tuple(media))


def _parse_bandwidth(value: str) -> Bandwidth:
    m = _BANDWIDTH_RE.fullmatch(value)
    if m is None:
        raise _bad(f"malformed b= line {value[:80]!r}")
    return Bandwidth(m[1], int(m[2]))


def serialize_sdp(sdp: SessionDescription) -> bytes:
    """Write ``sdp`` in RFC 8866 order with CRLF line ends (RFC 8866 §5)."""
    out = [f"v={sdp.version}", f"o={sdp.origin}", f"s={sdp.session_name}"]
    if sdp.information is not None:
        out.append(f"i={sdp.information}")
    if sdp.uri is not None:
        out.append(f"u={sdp.uri}")
    out.extend(f"e={e}" for e in sdp.emails)
    out.extend(f"p={p}" for p in sdp.phones)
    if sdp.connection is not None:
        out.append(f"c={sdp.connection}")
    out.extend(f"b={b}" for b in sdp.bandwidths)
    for t in sdp.timings:
        out.append(f"t={t.start} {t.stop}")
        out.extend(f"r={r}" for r in t.repeats)
    if sdp.zone is not None:
        out.append(f"z={sdp.zone}")
    if sdp.key is not None:
        out.append(f"k={sdp.key}")
    out.extend(f"a={a}" for a in sdp.attributes)
    for md in sdp.media:
        out.append(f"m={md}")
        if md.title is not None:
            out.append(f"i={md.title}")
        out.extend(f"c={c}" for c in md.connections)
        out.extend(f"b={b}" for b in md.bandwidths)
        if md.key is not None:
            out.append(f"k={md.key}")
        out.extend(f"a={a}" for a in md.attributes)
    out.append("")
    return "\r\n".join(out).encode("utf-8")
