"""Typed header values (RFC 3261 §20, grammar §25.1): Via, name-addr (From/To/Contact/Route), CSeq.

Each type is a frozen dataclass with ``parse(text)`` and ``__str__`` side by side.  Parameter
names are lower-cased; parameter values are kept verbatim (a quoted-string keeps its quotes).
Parsers raise :class:`RemoteProtocolError` (400) and nothing else.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property

from sippa.errors import RemoteProtocolError
from sippa.sip.grammar import (
    DISPLAY_NAME_RE,
    HOST,
    MAX_HEADER_VALUE,
    PARAM_RE,
    PARAMS_RE,
    PORT,
    SIMPLE_PARAMS_RE,
    TOKEN,
    VIA_RE,
    quote_string,
    split_comma_list,
    unquote_string,
)
from sippa.sip.uri import Uri

__all__ = [
    "STAR",
    "CSeq",
    "NameAddr",
    "Via",
    "format_params",
    "parse_name_addr_list",
    "parse_params",
    "parse_via_list",
]

Param = tuple[str, str | None]

# RFC 3261 §8.1.1.5: CSeq is a 32-bit unsigned integer (RFC 4475 §3.1.2.4 rejects larger).
MAX_CSEQ = 2**32 - 1
# (at most 10 digits before int(): Python refuses to convert very long digit strings)
_CSEQ_RE = re.compile(rf"[ \t]*0*([0-9]{{1,10}})[ \t]+({TOKEN})[ \t]*")
_DIGITS = re.compile(r"[0-9]+")
_object_new = object.__new__
# via-parm in its usual shape: "SIP/2.0/" transport SP sent-by *(";" simple param), no LWS
_VIA_SIMPLE_RE = re.compile(
    rf"SIP/2\.0/({TOKEN}) ({HOST})(?::({PORT}))?({SIMPLE_PARAMS_RE.pattern})"
)
# name-addr in its usual shape (a strict subset of the general path, with the same result):
# a quoted display name without quoted-pairs or single-space-separated tokens, at most one SP
# before "<", the URI up to the first ">" (RFC 3261 §20.10), simple parameters to the end.
_NAME_ADDR_SIMPLE_RE = re.compile(
    rf'(?:"([^"\\\r\n]*+)" ?|({TOKEN}(?: {TOKEN})*+) ?)?<([^>]*+)>({SIMPLE_PARAMS_RE.pattern})'
)
_ADDR_SPEC_END = re.compile(r"[; \t]")
_PORT = re.compile(r"[0-9]{1,5}")
_SMALL_INT = re.compile(r"[0-9]{1,10}")


def parse_params(text: str, pos: int = 0, *, what: str = "header") -> tuple[Param, ...]:
    """Parse ``*( SEMI generic-param )`` from ``text[pos:]`` to its end (RFC 3261 §25.1)."""
    if pos >= len(text):
        return ()
    if SIMPLE_PARAMS_RE.fullmatch(text, pos) is not None:
        return _split_simple_params(text[pos:])
    if PARAMS_RE.fullmatch(text, pos) is None:
        raise RemoteProtocolError(f"malformed {what} parameters {text[pos : pos + 60]!r}")
    return tuple((name.lower(), value or None) for name, value in PARAM_RE.findall(text, pos))


def _split_simple_params(text: str) -> tuple[Param, ...]:
    # ";a=b;c" already checked against SIMPLE_PARAMS_RE: split with str methods
    # (a plain loop: faster here than nested comprehensions)
    out = []
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        out.append((name.lower(), value if eq else None))
    return tuple(out)


def format_params(params: tuple[Param, ...]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def _get(params: tuple[Param, ...], name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None


def _check_length(text: str) -> None:
    if len(text) > MAX_HEADER_VALUE:
        raise RemoteProtocolError("header value too long")


# ---- Via ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Via:
    """One via-parm (RFC 3261 §20.42). ``transport`` is upper-case (``UDP``, ``TLS``...)."""

    transport: str
    host: str
    port: int | None = None
    params: tuple[Param, ...] = ()
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        # via-parm = sent-protocol LWS sent-by *( SEMI via-params )
        if len(text) > MAX_HEADER_VALUE:
            raise RemoteProtocolError("header value too long")
        m = _VIA_SIMPLE_RE.fullmatch(text)
        if m is not None:
            # the common case: "SIP/2.0/UDP host:port;a=b;c", no LWS, no quoted values
            transport, host, port_text, params_text = m.groups()
            params = _split_simple_params(params_text) if params_text else ()
            return _new_via(cls, transport, host, port_text, params, "SIP/2.0", text)
        m = VIA_RE.match(text)
        if m is None:
            raise RemoteProtocolError(f"malformed Via {text[:80]!r}")
        name, version, transport, host, port_text = m.groups()
        protocol = "SIP/2.0" if name == "SIP" and version == "2.0" else f"{name.upper()}/{version}"
        params = parse_params(text, m.end(), what="Via")
        return _new_via(cls, transport, host, port_text, params, protocol, text)

    def __str__(self) -> str:
        return self._text

    @cached_property
    def _text(self) -> str:
        return f"{self.protocol}/{self.transport} {self.host_port}{format_params(self.params)}"

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def param(self, name: str) -> str | None:
        return _get(self.params, name.lower())

    def has_param(self, name: str) -> bool:
        name = name.lower()
        return any(k == name for k, _ in self.params)

    def with_params(self, **params: str | None) -> Via:
        """A copy with these parameters set (``None`` = flag); ``_`` in keywords becomes ``-``."""
        new = {k.replace("_", "-").lower(): v for k, v in params.items()}
        kept = [(k, v) for k, v in self.params if k not in new]
        return dataclasses.replace(self, params=(*kept, *new.items()))

    @property
    def branch(self) -> str | None:
        return _get(self.params, "branch")

    @property
    def received(self) -> str | None:
        return _get(self.params, "received")

    @property
    def maddr(self) -> str | None:
        return _get(self.params, "maddr")

    @property
    def rport(self) -> bool | int | None:
        """RFC 3581: ``None`` if absent, ``True`` if present without value, else the port."""
        for key, value in self.params:
            if key == "rport":
                if value is None:
                    return True
                return int(value) if _PORT.fullmatch(value) else None
        return None


def _new_via(  # noqa: PLR0917 - internal constructor
    cls: type[Via],
    transport: str,
    host: str,
    port_text: str | None,
    params: tuple[Param, ...],
    protocol: str,
    text: str,
) -> Via:
    """Check the parts of a parsed Via and build it (without the frozen ``__init__``)."""
    if host[0] == "[":
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise RemoteProtocolError(f"bad IPv6 reference in Via {text[:80]!r}") from None
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            raise RemoteProtocolError("Via port out of range")
    for key, value in params:
        # via-ttl = "ttl" EQUAL ttl ; response-port = "rport" [EQUAL 1*DIGIT] (RFC 3581)
        if key == "branch":
            if value is None:
                raise RemoteProtocolError("Via branch without value")
        elif key in ("rport", "ttl") and value is not None and not _DIGITS.fullmatch(value):
            raise RemoteProtocolError(f"bad Via {key} {value!r}")
    via: Via = _object_new(cls)
    d = via.__dict__
    d["transport"] = transport.upper()
    d["host"] = host
    d["port"] = port
    d["params"] = params
    d["protocol"] = protocol
    return via


def parse_via_list(value: str) -> list[Via]:
    """All via-parms of one Via header value (comma separated)."""
    return [Via.parse(part) for part in split_comma_list(value)]


# ---- name-addr / addr-spec ---------------------------------------------------------------------
@dataclass(frozen=True)
class NameAddr:
    """``[display-name] <uri> *(;param)`` or ``addr-spec *(;param)`` (RFC 3261 §20.10, §20.20).

    ``display_name`` is unquoted (``None`` when absent).  Serialisation always uses ``<>``.
    """

    display_name: str | None
    uri: Uri
    params: tuple[Param, ...] = ()

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        if len(text) > MAX_HEADER_VALUE:
            raise RemoteProtocolError("header value too long")
        m = _NAME_ADDR_SIMPLE_RE.fullmatch(text)
        if m is not None:
            # the common case: ["display" / token display] <uri> *(;simple param), no LWS
            quoted, tokens, uri_text, params_text = m.groups()
            return _new_name_addr(
                cls,
                quoted if quoted is not None else tokens,
                Uri.parse(uri_text),
                _split_simple_params(params_text) if params_text else (),
            )
        text = text.strip(" \t")
        if text[:1] == "<":
            display = None
            start = 1
        else:
            m = DISPLAY_NAME_RE.match(text)
            if m is None:
                return cls._parse_addr_spec(text)
            # name-addr = [ display-name ] LAQUOT addr-spec RAQUOT
            quoted, tokens = m.groups()
            display = unquote_string(quoted) if quoted is not None else tokens
            start = m.end()
        close = text.find(">", start)
        if close < 0:
            raise RemoteProtocolError(f"missing '>' in {text[:80]!r}")
        uri = Uri.parse(text[start:close])
        params = parse_params(text, close + 1, what="name-addr")
        return _new_name_addr(cls, display, uri, params)

    @classmethod
    def _parse_addr_spec(cls, text: str) -> NameAddr:
        # addr-spec: RFC 3261 §20.10 - a URI with ',', '?' or ';' needs <>; anything after
        # the first ';' is a header parameter (RFC 4475 §3.3.12).
        if text.startswith("*"):
            raise RemoteProtocolError("'*' is only allowed alone in Contact")
        found = _ADDR_SPEC_END.search(text)
        end = found.start() if found is not None else len(text)
        addr = text[:end]
        if "?" in addr or "," in addr:
            raise RemoteProtocolError(f"addr-spec with '?' or ',' needs <>: {addr[:80]!r}")
        uri = Uri.parse(addr)
        params = parse_params(text, end, what="name-addr")
        return _new_name_addr(cls, None, uri, params)

    def __str__(self) -> str:
        return self._text

    @cached_property
    def _text(self) -> str:
        if self.uri.scheme == "*":
            return "*"
        uri = f"<{self.uri}>"
        if self.display_name is not None:
            uri = f"{quote_string(self.display_name)} {uri}"
        return uri + format_params(self.params)

    def param(self, name: str) -> str | None:
        return _get(self.params, name.lower())

    def has_param(self, name: str) -> bool:
        name = name.lower()
        return any(k == name for k, _ in self.params)

    @property
    def tag(self) -> str | None:
        return _get(self.params, "tag")

    def with_tag(self, tag: str) -> NameAddr:
        kept = tuple(p for p in self.params if p[0] != "tag")
        return dataclasses.replace(self, params=(*kept, ("tag", tag)))

    def with_params(self, **params: str | None) -> NameAddr:
        """A copy with these parameters set (``None`` = flag); ``_`` in keywords becomes ``-``."""
        new = {k.replace("_", "-").lower(): v for k, v in params.items()}
        kept = [(k, v) for k, v in self.params if k not in new]
        return dataclasses.replace(self, params=(*kept, *new.items()))

    @property
    def is_star(self) -> bool:
        """``Contact: *`` (RFC 3261 §10.2.2, remove all bindings)."""
        return self.uri.scheme == "*"

    @property
    def expires(self) -> int | None:
        """The ``expires`` contact parameter (RFC 3261 §20.10), ``None`` if absent/invalid."""
        value = _get(self.params, "expires")
        if value is None or not _SMALL_INT.fullmatch(value):
            return None
        return int(value)

    @property
    def q(self) -> float | None:
        value = _get(self.params, "q")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


def _new_name_addr(
    cls: type[NameAddr], display: str | None, uri: Uri, params: tuple[Param, ...]
) -> NameAddr:
    """``cls(display, uri, params)`` without the frozen ``__init__``'s setattr calls."""
    na: NameAddr = _object_new(cls)
    d = na.__dict__
    d["display_name"] = display
    d["uri"] = uri
    d["params"] = params
    return na


# Contact: * (RFC 3261 §20.10)
STAR = NameAddr(None, Uri("*"), ())


def parse_name_addr_list(value: str) -> list[NameAddr]:
    """Contact/Route/Record-Route values; ``*`` (Contact only) gives ``[STAR]``."""
    stripped = value.strip(" \t")
    if stripped == "*":
        return [STAR]
    if "," not in stripped:
        return [NameAddr.parse(stripped)]  # (one value: what split_comma_list would give)
    parts = split_comma_list(value)
    return [NameAddr.parse(part) for part in parts]


# ---- CSeq --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CSeq:
    """CSeq = 1*DIGIT LWS Method (RFC 3261 §20.16)."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        m = _CSEQ_RE.fullmatch(text)
        if m is None:
            raise RemoteProtocolError(f"malformed CSeq {text[:60]!r}")
        seq = int(m.group(1))
        if seq > MAX_CSEQ:
            raise RemoteProtocolError("CSeq number out of range")
        cseq: CSeq = _object_new(cls)  # (without the frozen __init__'s setattr calls)
        d = cseq.__dict__
        d["seq"] = seq
        d["method"] = m.group(2)
        return cseq

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"
