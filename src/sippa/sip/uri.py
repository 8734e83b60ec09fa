"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), parse/serialise pair.

Components are stored *unescaped* (``%41`` becomes ``A``); ``str(uri)`` escapes again whatever
the grammar does not allow literally, so ``Uri.parse(str(u)) == u``.  Other schemes
(``http:``, ``urn:``...; RFC 3261 absoluteURI) parse too, with the text after the colon in
``opaque``: they are well formed, and it is up to the element to answer 416 (RFC 3261 §8.2.2.1).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote, unquote

from sippa.errors import RemoteProtocolError
from sippa.sip.grammar import ABSOLUTE_URI_RE, HOSTNAME, PORT, SIP_URI_RE, TEL_URI_RE

__all__ = ["MAX_URI_LENGTH", "Uri"]

# A URI longer than this is a sign of abuse; RFC 4475 longreq has ~250-char URIs.
MAX_URI_LENGTH = 4096

Param = tuple[str, str | None]

# Characters that may appear literally in each component (after "%" escapes, RFC 3261 §25.1).
_USER_SAFE = "-_.!~*'()&=+$,;?/"
_PASSWORD_SAFE = "-_.!~*'()&=+$,"  # noqa: S105 - characters, not a password
_PARAM_SAFE = "-_.!~*'()[]/:&+$"
_HEADER_SAFE = "-_.!~*'()[]/?:+$"
_USER_LITERAL = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/]*")
_PASSWORD_LITERAL = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,]*")
_PARAM_LITERAL = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$]*")
_HEADER_LITERAL = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/?:+$]*")

# SIP-URI (RFC 3261 §25.1) in its usual shape, a strict subset of SIP_URI_RE that splits the
# same way: lower-case scheme, a user without escapes or user-unreserved ";?/" characters, no
# password, a host name or IPv4 address, and parameters without escapes.  Anything else takes
# the general path.
_SIP_URI_FAST_RE = re.compile(
    rf"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,]++)@)?({HOSTNAME})(?::({PORT}))?"
    r"((?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$]++(?:=[A-Za-z0-9\-_.!~*'()\[\]/:&+$]++)?)*+)"
)
# RFC 3261 §19.1.4: these URI parameters must match when present in either URI.
_MUST_MATCH_PARAMS = ("user", "ttl", "method", "maddr", "transport")
_SCHEMES_WITH_HOST = ("sip", "sips")


def _unescape(text: str) -> str:
    if "%" not in text:
        return text
    # surrogateescape keeps non-UTF-8 escapes (e.g. %FF) lossless through a round trip.
    return unquote(text, errors="surrogateescape")


def _escape(text: str, safe: str, literal: re.Pattern[str]) -> str:
    if literal.fullmatch(text):
        return text
    return quote(text, safe=safe, errors="surrogateescape")


def _parse_params(text: str) -> tuple[Param, ...]:
    if not text:
        return ()
    params: list[Param] = []
    escaped = "%" in text
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        if escaped:
            name = _unescape(name)
            value = _unescape(value)
        params.append((name.lower(), value if eq else None))
    return tuple(params)


def _format_params(params: tuple[Param, ...]) -> str:
    out = []
    for name, value in params:
        name_text = _escape(name, _PARAM_SAFE, _PARAM_LITERAL)
        if value is None:
            out.append(";" + name_text)
        else:
            out.append(f";{name_text}={_escape(value, _PARAM_SAFE, _PARAM_LITERAL)}")
    return "".join(out)


@dataclass(frozen=True)
class Uri:
    """A parsed URI. ``host`` holds IPv6 addresses without brackets.

    For ``tel:`` URIs ``user`` is the telephone number and ``host`` is ``""``; for other
    schemes ``opaque`` is everything after ``scheme:`` (verbatim).
    """

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: tuple[Param, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    opaque: str | None = None

    # ---- parse / serialise -----------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> Uri:
        """Parse a URI (no surrounding ``<>`` and no LWS); raise RemoteProtocolError (400)."""
        if len(text) > MAX_URI_LENGTH:
            raise RemoteProtocolError("URI too long", 414)
        m = _SIP_URI_FAST_RE.fullmatch(text)
        if m is not None:
            # the usual shape: no password, escapes, IPv6 reference or headers
            scheme, user, host, port_text, params = m.groups()
            port = None
            if port_text is not None:
                port = int(port_text)
                if port > 65535:
                    raise RemoteProtocolError(f"port out of range in URI {text!r}")
            # Uri(...) without the frozen __init__'s eight setattr calls (the same fields, a
            # test checks the list): the hottest constructor of the SIP parse
            uri: Uri = _object_new(Uri)
            d = uri.__dict__
            d["scheme"] = scheme
            d["user"] = user
            d["password"] = None
            d["host"] = host
            d["port"] = port
            d["params"] = _parse_params(params) if params else ()
            d["headers"] = ()
            d["opaque"] = None
            return uri
        m = SIP_URI_RE.fullmatch(text)
        if m is not None:
            # RFC 3261 §19.1.1 / §25.1 SIP-URI and SIPS-URI
            scheme, user, password, host, port_text, params, headers_text = m.groups()
            if host[0] == "[":
                host = host[1:-1]
                try:
                    ipaddress.IPv6Address(host)
                except ValueError:
                    raise RemoteProtocolError(f"bad IPv6 reference in URI {text!r}") from None
            port = None
            if port_text is not None:
                port = int(port_text)
                if port > 65535:
                    raise RemoteProtocolError(f"port out of range in URI {text!r}")
            headers: tuple[tuple[str, str], ...] = ()
            if headers_text:
                pairs = []
                for item in headers_text.split("&"):
                    name, _, value = item.partition("=")
                    pairs.append((_unescape(name), _unescape(value)))
                headers = tuple(pairs)
            if user is not None and "%" in user:
                user = _unescape(user)
            if password is not None and "%" in password:
                password = _unescape(password)
            uri = _object_new(Uri)
            d = uri.__dict__
            d["scheme"] = scheme.lower() if scheme != "sip" else scheme
            d["user"] = user
            d["password"] = password
            d["host"] = host
            d["port"] = port
            d["params"] = _parse_params(params) if params else ()
            d["headers"] = headers
            d["opaque"] = None
            return uri
        m = TEL_URI_RE.fullmatch(text)
        if m is not None:
            # RFC 3966 §3 telephone-uri = "tel:" telephone-subscriber
            return cls("tel", m.group("number"), params=_parse_params(m.group("params")))
        m = ABSOLUTE_URI_RE.fullmatch(text)
        if m is not None and m.group("scheme").lower() not in ("sip", "sips", "tel"):
            # RFC 3261 §25.1 absoluteURI: well formed, the element decides (416)
            return cls(m.group("scheme").lower(), opaque=m.group("rest"))
        raise RemoteProtocolError(f"malformed URI {text[:100]!r}")

    def __str__(self) -> str:
        return self._text

    @cached_property
    def _text(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        if self.scheme == "tel":
            return f"tel:{self.user}{_format_params(self.params)}"
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(_escape(self.user, _USER_SAFE, _USER_LITERAL))
            if self.password is not None:
                parts.append(":")
                parts.append(_escape(self.password, _PASSWORD_SAFE, _PASSWORD_LITERAL))
            parts.append("@")
        parts.append(self.host_port)
        parts.append(_format_params(self.params))
        if self.headers:
            parts.append("?")
            parts.append(
                "&".join(
                    _escape(n, _HEADER_SAFE, _HEADER_LITERAL)
                    + "="
                    + _escape(v, _HEADER_SAFE, _HEADER_LITERAL)
                    for n, v in self.headers
                )
            )
        return "".join(parts)

    # ---- accessors ---------------------------------------------------------------------------
    def param(self, name: str) -> str | None:
        """The value of URI parameter ``name`` (``None`` if absent or valueless)."""
        name = name.lower()
        for key, value in self.params:
            if key == name:
                return value
        return None

    def has_param(self, name: str) -> bool:
        name = name.lower()
        return any(key == name for key, _ in self.params)

    def with_params(self, **params: str | None) -> Uri:
        """A copy with these parameters set (``None`` = a flag parameter like ``lr``).

        Underscores in the keyword become dashes (``with_params(x_y="1")`` sets ``x-y``).
        """
        new = {k.replace("_", "-").lower(): v for k, v in params.items()}
        kept = [(k, v) for k, v in self.params if k not in new]
        return dataclasses.replace(self, params=(*kept, *new.items()))

    def without_params(self, *names: str) -> Uri:
        drop = {n.lower() for n in names}
        return dataclasses.replace(self, params=tuple(p for p in self.params if p[0] not in drop))

    def replace(self, **changes: Any) -> Uri:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.lower() if value is not None else None

    @property
    def host_port(self) -> str:
        """``host[:port]`` with IPv6 addresses in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def is_secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def is_sip(self) -> bool:
        """A SIP or SIPS URI (the schemes a SIP element can route on)."""
        return self.scheme in _SCHEMES_WITH_HOST

    def equivalent(self, other: Uri) -> bool:
        """URI comparison per RFC 3261 §19.1.4."""
        if self.scheme != other.scheme:
            return False
        if self.opaque is not None or other.opaque is not None:
            return self.opaque == other.opaque
        # userinfo is compared case-sensitively, everything else case-insensitively.
        if self.user != other.user or self.password != other.password:
            return False
        if self.scheme != "tel" and (
            _norm_host(self.host) != _norm_host(other.host) or self.port != other.port
        ):
            return False
        mine = {k: (v.lower() if v is not None else None) for k, v in self.params}
        theirs = {k: (v.lower() if v is not None else None) for k, v in other.params}
        for name in _MUST_MATCH_PARAMS:
            if mine.get(name, "\0") != theirs.get(name, "\0"):
                return False
        for name in mine.keys() & theirs.keys():
            if mine[name] != theirs[name]:
                return False
        return {(n.lower(), v) for n, v in self.headers} == {
            (n.lower(), v) for n, v in other.headers
        }


_object_new = object.__new__


def _norm_host(host: str) -> str:
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return host.lower()
    return host.lower()
