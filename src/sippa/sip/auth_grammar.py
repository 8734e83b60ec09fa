"""Grammar of the authentication header fields: challenges and credentials.

``WWW-Authenticate`` / ``Proxy-Authenticate`` carry challenges, ``Authorization`` /
``Proxy-Authorization`` carry credentials (RFC 3261 §25.1, §20.5, §20.27, §20.28, §20.44; RFC 7235
§2.1 and §4; RFC 7616 §3.3-3.4). RFC 3261 allows one challenge per field line; RFC 7235 allows a
comma list of challenges in one line, which this parser also accepts, telling a new challenge from
another auth-param of the current one by its shape (``scheme SP ...`` against ``name = value``).

This module knows no scheme: it turns text into :class:`AuthParams` (scheme, parameters in order,
values unquoted) and back. :mod:`sippa.sip.digest` gives the Digest parameters their meaning.
Bad input raises :class:`~sippa.errors.RemoteProtocolError` and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sippa.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAX_CHALLENGES",
    "MAX_FIELD_LENGTH",
    "MAX_PARAMS",
    "AuthParams",
    "format_auth",
    "is_token",
    "parse_challenges",
    "parse_credentials",
    "quote_string",
]

# Limits. A challenge is ~200 characters; a forking proxy aggregates challenges of all branches
# (RFC 3261 §16.7 step 7) into one response, but each branch's field line stays small.
MAX_FIELD_LENGTH = 8192
"""Longest field value accepted (characters)."""
MAX_CHALLENGES = 32
"""Most challenges accepted in one field value (and, in digest.py, in one response)."""
MAX_PARAMS = 32
"""Most auth-params in one challenge or credentials."""

# RFC 3261 §25.1: LWS = [*WSP CRLF] 1*WSP ; SWS = [LWS]
_LWS = r"(?:[ \t]*\r\n)?[ \t]+"
_SWS = rf"(?:{_LWS})?"
# token: RFC 3261 §25.1 token chars, widened to RFC 7230 tchar (adds # $ & ^ |) for HTTP peers.
_TCHARS = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
# RFC 3261 §25.1: quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE
#   qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
#   quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
_QDTEXT = r"(?:[^\"\\\x00-\x1f\x7f]|[ \t]|\r\n[ \t])"
_QUOTED_PAIR = r"\\[\x00-\x09\x0b\x0c\x0e-\x7f]"
_QUOTED = rf"\"(?:{_QDTEXT}|{_QUOTED_PAIR})*\""
# RFC 7235 §2.1: token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B68 = r"[A-Za-z0-9._~+/-]+=*"

_LWS_RE = re.compile(_LWS)
_SWS_RE = re.compile(_SWS)
_SCHEME_RE = re.compile(_TCHARS)
# auth-param = token BWS "=" BWS ( token / quoted-string )   (RFC 7235 §2.1; RFC 3261 EQUAL)
_PARAM_RE = re.compile(
    rf"(?P<name>{_TCHARS}){_SWS}={_SWS}(?:(?P<quoted>{_QUOTED})|(?P<token>{_TCHARS}))"
)
# a token68 must be the whole rest of its challenge
_B68_RE = re.compile(rf"(?P<t68>{_B68}){_SWS}(?=,|$)")
_COMMA_RE = re.compile(rf"{_SWS},")
_UNESCAPE_RE = re.compile(r"\\(.)|\r\n([ \t])", re.DOTALL)
_TO_ESCAPE_RE = re.compile(r"[\"\\]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class AuthParams:
    """One challenge or one set of credentials: a scheme and its parameters."""

    scheme: str
    """The auth-scheme as sent (compare with :meth:`is_scheme`: schemes are case-insensitive)."""
    params: tuple[tuple[str, str], ...] = ()
    """``(name, value)`` in order; names lower-cased, quoted values unquoted."""
    quoted: frozenset[str] = frozenset()
    """Names of the parameters whose value was sent as a quoted-string."""
    token68: str | None = None
    """The RFC 7235 token68 form (``Basic dXNlcg==``), instead of parameters."""

    def is_scheme(self, scheme: str) -> bool:
        """True if this is ``scheme`` (case-insensitive, RFC 7235 §2.1)."""
        return self.scheme.lower() == scheme.lower()

    def get(self, name: str) -> str | None:
        """The value of parameter ``name`` (case-insensitive), or ``None``."""
        key = name.lower()
        for pname, value in self.params:
            if pname == key:
                return value
        return None


def _unquote(text: str) -> str:
    # strip the DQUOTEs, resolve quoted-pairs, and fold LWS line breaks to their whitespace
    return _UNESCAPE_RE.sub(lambda m: m.group(1) or m.group(2), text[1:-1])


def _skip_separators(value: str, pos: int) -> tuple[int, bool]:
    """Skip ``SWS , SWS`` (and empty list elements, RFC 7230 §7); return (pos, saw_comma)."""
    saw = False
    while True:
        m = _COMMA_RE.match(value, pos)
        if m is None:
            break
        saw = True
        pos = m.end()
    m = _SWS_RE.match(value, pos)
    if m is not None:
        pos = m.end()
    return pos, saw


def _parse_one(value: str, pos: int) -> tuple[AuthParams, int]:
    """One challenge/credentials starting at ``pos``; returns it and the position after it."""
    m = _SCHEME_RE.match(value, pos)
    if m is None:
        raise RemoteProtocolError(f"expected an auth-scheme at offset {pos}")
    scheme = m.group(0)
    pos = m.end()
    ws = _LWS_RE.match(value, pos)
    if ws is None:  # a bare scheme
        return AuthParams(scheme), pos
    start = ws.end()
    first = _PARAM_RE.match(value, start)
    if first is None:
        t68 = _B68_RE.match(value, start)
        if t68 is not None:
            return AuthParams(scheme, token68=t68.group("t68")), t68.end()
        if start == len(value) or value.startswith(",", start):
            return AuthParams(scheme), start  # trailing whitespace after a bare scheme
        raise RemoteProtocolError(f"bad parameters after auth-scheme {scheme!r}")
    params: list[tuple[str, str]] = []
    quoted: set[str] = set()
    seen: set[str] = set()
    m = first
    while True:
        name = m.group("name").lower()
        # RFC 7235 §2.1: each parameter name MUST only occur once per challenge
        if name in seen:
            raise RemoteProtocolError(f"parameter {name!r} repeated in one {scheme} challenge")
        if len(params) >= MAX_PARAMS:
            raise RemoteProtocolError(f"more than {MAX_PARAMS} auth-params")
        seen.add(name)
        if m.group("quoted") is not None:
            text = _unquote(m.group("quoted"))
            # a quoted-pair may escape a control character; no auth-param has a use for one,
            # and it could not be sent on again
            if _CONTROL_RE.search(text):
                raise RemoteProtocolError(f"control character in auth-param {name!r}")
            params.append((name, text))
            quoted.add(name)
        else:
            params.append((name, m.group("token")))
        pos = m.end()
        after, saw_comma = _skip_separators(value, pos)
        if after >= len(value) or not saw_comma:
            # the end, or something that is not a list separator (the caller rejects it)
            sws = _SWS_RE.match(value, pos)
            pos = sws.end() if sws is not None else pos
            break
        nxt = _PARAM_RE.match(value, after)
        if nxt is None:
            break  # not name=value: the next challenge starts after the comma
        m = nxt
    return AuthParams(scheme, tuple(params), frozenset(quoted)), pos


def _check(value: str) -> None:
    if len(value) > MAX_FIELD_LENGTH:
        raise RemoteProtocolError(f"authentication field longer than {MAX_FIELD_LENGTH}")


def parse_challenges(value: str) -> list[AuthParams]:
    """Every challenge of one ``WWW-Authenticate``/``Proxy-Authenticate`` field value, in order.

    RFC 7235 §4.1: ``1#challenge``; RFC 3261 §25.1 allows one. Empty list elements are skipped.
    """
    _check(value)
    out: list[AuthParams] = []
    pos, _ = _skip_separators(value, 0)
    while pos < len(value):
        if len(out) >= MAX_CHALLENGES:
            raise RemoteProtocolError(f"more than {MAX_CHALLENGES} challenges in one field")
        item, pos = _parse_one(value, pos)
        out.append(item)
        after, saw_comma = _skip_separators(value, pos)
        if after < len(value) and not saw_comma:
            raise RemoteProtocolError(f"unexpected text at offset {pos} in a challenge")
        pos = after
    if not out:
        raise RemoteProtocolError("empty authentication challenge")
    return out


def parse_credentials(value: str) -> AuthParams:
    """The credentials of one ``Authorization``/``Proxy-Authorization`` field value.

    RFC 3261 §25.1: ``credentials = ("Digest" LWS digest-response) / other-response``.
    """
    _check(value)
    pos, _ = _skip_separators(value, 0)
    item, pos = _parse_one(value, pos)
    rest = _SWS_RE.match(value, pos)
    if rest is not None:
        pos = rest.end()
    if pos != len(value):
        raise RemoteProtocolError(f"unexpected text at offset {pos} in credentials")
    return item


def is_token(text: str) -> bool:
    """True if ``text`` is a token (RFC 3261 §25.1, widened to RFC 7230 tchar)."""
    return _SCHEME_RE.fullmatch(text) is not None


def quote_string(text: str) -> str:
    """``text`` as a quoted-string (RFC 3261 §25.1), escaping ``"`` and ``\\``.

    Control characters other than HTAB cannot be sent and raise LocalProtocolError.
    """
    if _CONTROL_RE.search(text):
        raise LocalProtocolError("control character in a quoted-string")
    return '"' + _TO_ESCAPE_RE.sub(lambda m: "\\" + m.group(0), text) + '"'


def format_auth(scheme: str, params: list[tuple[str, str, bool]]) -> str:
    """``scheme name=value, ...``; each param is ``(name, value, quote)``.

    Unquoted values must be tokens (RFC 3261 §25.1 auth-param); a value that is not raises
    LocalProtocolError, as does a scheme or name that is not a token.
    """
    if not _SCHEME_RE.fullmatch(scheme):
        raise LocalProtocolError(f"bad auth-scheme {scheme!r}")
    parts: list[str] = []
    for name, value, quote in params:
        if not _SCHEME_RE.fullmatch(name):
            raise LocalProtocolError(f"bad auth-param name {name!r}")
        if quote:
            parts.append(f"{name}={quote_string(value)}")
        elif _SCHEME_RE.fullmatch(value):
            parts.append(f"{name}={value}")
        else:
            raise LocalProtocolError(f"auth-param {name} value {value!r} is not a token")
    return f"{scheme} {', '.join(parts)}" if parts else scheme
