"""SIP Digest authentication, client side (RFC 3261 §22, RFC 8760, RFC 7616, RFC 2617).

Sans-IO: the cnonce comes from an injected callable; nothing here reads a clock or a random source.

Pieces, from the bottom up:

* :func:`parse_digest_challenges` - the Digest challenges of a response's ``WWW-Authenticate`` and
  ``Proxy-Authenticate`` field values, in order (other schemes skipped); :func:`format_challenge`
  is its inverse. :func:`parse_authorization` / :meth:`DigestAuthorization.format` are the
  ``Authorization`` pair. Bad input raises :class:`~sippa.errors.RemoteProtocolError`.
* :func:`compute_response` - the ``response`` value (MD5, SHA-256, SHA-512-256 and their -sess
  variants; qop ``auth``, ``auth-int``, or none as in RFC 2069). SHA-512-256 is FIPS 180-4
  SHA-512/256 (``hashlib.new("sha512_256")``), not truncated SHA-512: the values printed in
  RFC 7616 §3.9.2 are wrong, erratum 4897 has the right ones (tests/vectors/digest/).
* :func:`select_challenges` - the selection policy (:class:`DigestPolicy`), one challenge per
  realm and header kind.
* :class:`DigestClient` - the stateful answerer the UA core uses; it counts ``nc`` per nonce,
  remembers the last challenge of each realm for pre-emptive reuse, and never loops.

Selection policy. RFC 8760 §2.4: a UAC SHOULD use the topmost challenge it supports "unless a local
policy dictates otherwise"; §3 names the danger: an on-path attacker (no TLS, or a bad proxy) can
reorder or drop challenges to force MD5. The reviewed phone took the *last* challenge whatever its
algorithm. By default this client takes the STRONGEST supported algorithm of each realm
(SHA-512-256 > SHA-256 > MD5, a -sess variant ranking with its base; ties go to the topmost);
``follow_server_order=True`` takes the topmost supported one instead; ``allow_md5=False`` refuses
MD5 and MD5-sess altogether, so an MD5-only realm yields a :class:`DigestFailed` with the reason.

qop. When ``auth`` and ``auth-int`` are both offered the client answers ``auth``: auth-int only
covers the body (not the headers that matter, such as Contact), SIP bodies are legitimately
rewritten by SBCs/ALGs (SDP), which then breaks authentication, and TLS already protects the
body end to hop. ``auth-int`` is used when it is the only qop offered, or when
``DigestPolicy(prefer_auth_int=True)``. No qop at all is answered the RFC 2069 way (no nc/cnonce),
except for -sess algorithms, which need a cnonce and are then refused.

Using the client (message level, what ``sippa.sip.core`` and ``sippa.sip.registration`` call)::

    client = DigestClient("alice", "secret", cnonce=lambda: secrets.token_hex(16))
    answer = client.authorize(request, response)   # raises DigestFailed (a ProtocolError)
    retry.headers.add(answer.header, answer.value)  # answer.headers: one per realm (§22.3)
    answer.algorithm                                # "SHA-256", for status reports

``authorize`` looks at the challenged request: if it already carried our credentials for a realm
and the new challenge for that realm is not ``stale=true`` (or is stale with the very nonce we
used), the credentials were refused and that realm is not answered again (RFC 3261 §22.2: do not
re-send credentials just rejected). Callers still bound the number of rounds. Credentials the
request carried for realms that are not challenged again (the proxy's, when the UAS challenges
next) are part of the answer too, re-answered with the next ``nc`` (RFC 3261 §22.3): a caller
replaces every ``Authorization``/``Proxy-Authorization`` of the request with ``answer.headers``.

Plain values, without the message classes::

    client.answer(method, uri, body, status, challenge_values) -> DigestAnswer

The same round trip as a generator flow (httpx ``auth_flow`` style), with its own attempt bound
(``DigestPolicy.max_attempts``) and stale handling::

    flow = client.auth_flow("REGISTER", "sip:example.com", b"")
    headers = next(flow)                  # [] (or pre-emptive credentials), send the request
    try:
        while True:                       # on each final response:
            headers = flow.send((status, challenge_values))   # 401/407: re-send with headers
    except StopIteration as stop:
        outcome = stop.value              # DigestOutcome(ok, reason, algorithm)

Sending a status other than 401/407 ends the flow with ``ok=True``. ``challenge_values`` are the
``WWW-Authenticate`` values of a 401 or the ``Proxy-Authenticate`` values of a 407.

Pre-emptive reuse (``DigestPolicy(preemptive=True)``): :meth:`DigestClient.preemptive_headers`
answers the last challenge seen for each realm again, with the next ``nc`` (qop only).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from sippa.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from sippa.sip.auth_grammar import (
    MAX_CHALLENGES,
    AuthParams,
    format_auth,
    is_token,
    parse_challenges,
    parse_credentials,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "CredentialsLookup",
    "DigestAnswer",
    "DigestAuthorization",
    "DigestChallenge",
    "DigestClient",
    "DigestCredentials",
    "DigestFailed",
    "DigestOutcome",
    "DigestPolicy",
    "compute_response",
    "format_challenge",
    "hash_hex",
    "parse_authorization",
    "parse_digest_challenges",
    "select_challenges",
]

WWW_AUTHENTICATE = "WWW-Authenticate"
PROXY_AUTHENTICATE = "Proxy-Authenticate"
# RFC 3261 §22.2 / §22.3: 401 -> Authorization, 407 -> Proxy-Authorization
_ANSWER_HEADER = {WWW_AUTHENTICATE: "Authorization", PROXY_AUTHENTICATE: "Proxy-Authorization"}
_CHALLENGE_HEADER = {401: WWW_AUTHENTICATE, 407: PROXY_AUTHENTICATE}

MAX_NONCES = 64
"""How many (realm, nonce) counters the client keeps; the oldest is forgotten first."""
MAX_NC = 0xFFFFFFFF
"""nc is 8 hex digits (RFC 7616 §3.4); a nonce used that often is not reused again."""


# --- algorithms ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Algorithm:
    """A digest algorithm of the IANA "HTTP Digest Hash Algorithms" registry (RFC 7616 §6.1)."""

    name: str
    """The token, canonical spelling (``SHA-512-256-sess``)."""
    hash_name: str
    """The :func:`hashlib.new` name."""
    session: bool
    """A ``-sess`` variant: H(A1) also covers nonce and cnonce (RFC 7616 §3.4.2)."""
    strength: int
    """Rank for the strongest-first policy (higher is stronger)."""


# RFC 7616 §3.4.2 / RFC 8760 §2.1. SHA-512-256 is FIPS 180-4 §6.7 SHA-512/256 (own IV).
ALGORITHMS: dict[str, Algorithm] = {
    a.name.lower(): a
    for a in (
        Algorithm("MD5", "md5", False, 1),
        Algorithm("MD5-sess", "md5", True, 1),
        Algorithm("SHA-256", "sha256", False, 2),
        Algorithm("SHA-256-sess", "sha256", True, 2),
        Algorithm("SHA-512-256", "sha512_256", False, 3),
        Algorithm("SHA-512-256-sess", "sha512_256", True, 3),
    )
}
"""Supported algorithms by lower-cased token (tokens compare case-insensitively)."""


def hash_hex(algorithm: Algorithm, data: str | bytes) -> str:
    """H(data) in lower-case hex (RFC 7616 §3.4.1); text is hashed as UTF-8."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    # MD5 is kept only because deployed servers still challenge with it (RFC 8760 §2.1)
    h = hashlib.new(algorithm.hash_name, raw, usedforsecurity=algorithm.hash_name != "md5")
    return h.hexdigest()


# --- challenges ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """One Digest challenge (RFC 3261 §25.1 digest-cln, RFC 7616 §3.3)."""

    realm: str
    nonce: str
    algorithm: str | None = None
    """The algorithm token as sent; ``None`` when absent, which means MD5."""
    qop: tuple[str, ...] = ()
    """qop options offered, lower-cased, in order; empty: none (RFC 2069 compatibility)."""
    opaque: str | None = None
    stale: bool = False
    domain: tuple[str, ...] = ()
    charset: str | None = None
    """``UTF-8`` or absent (RFC 7616 §3.3: the only value allowed)."""
    userhash: bool = False
    """The server accepts a hashed user name (RFC 7616 §3.4.4)."""
    header: str = WWW_AUTHENTICATE
    """The field it came in: ``WWW-Authenticate`` or ``Proxy-Authenticate``."""
    index: int = 0
    """Its position among the response's challenges of that field (0 = topmost)."""
    extra: tuple[tuple[str, str], ...] = ()
    """Parameters this client does not know (kept for formatting)."""

    @property
    def algorithm_info(self) -> Algorithm | None:
        """The algorithm, if supported (MD5 when absent); ``None`` if unknown."""
        return ALGORITHMS.get((self.algorithm or "MD5").lower())

    @property
    def answer_header(self) -> str:
        """``Authorization`` or ``Proxy-Authorization``."""
        return _ANSWER_HEADER[self.header]


_KNOWN = frozenset(
    {"realm", "nonce", "algorithm", "qop", "opaque", "stale", "domain", "charset", "userhash"}
)


def _boolean(value: str, name: str) -> bool:
    # RFC 7616 §3.3: stale/userhash are "true" or "false", case-insensitive
    low = value.lower()
    if low not in ("true", "false"):
        raise RemoteProtocolError(f"{name}={value!r} is neither true nor false")
    return low == "true"


def _digest_challenge(item: AuthParams, header: str, index: int) -> DigestChallenge:
    if item.token68 is not None:
        raise RemoteProtocolError("Digest challenge in token68 form")
    realm = item.get("realm")
    nonce = item.get("nonce")
    # RFC 3261 §22.4 / RFC 7616 §3.3: realm and nonce are required
    if realm is None:
        raise RemoteProtocolError("Digest challenge without realm")
    if nonce is None:
        raise RemoteProtocolError("Digest challenge without nonce")
    qop_text = item.get("qop")
    qop: tuple[str, ...] = ()
    if qop_text is not None:
        # RFC 3261 §25.1 qop-options = "qop" EQUAL LDQUOT qop-value *("," qop-value) RDQUOT
        qop = tuple(q.strip().lower() for q in qop_text.split(",") if q.strip())
        if not qop:
            raise RemoteProtocolError("empty qop options in a Digest challenge")
    stale_text = item.get("stale")
    userhash_text = item.get("userhash")
    domain_text = item.get("domain")
    charset = item.get("charset")
    if charset is not None and charset.lower() != "utf-8":
        # RFC 7616 §3.3: "The only allowed value is 'UTF-8'"
        raise RemoteProtocolError(f"Digest charset {charset!r} is not UTF-8")
    algorithm = item.get("algorithm")
    # RFC 7616 §3.3: algorithm is a token (some servers quote it: accepted, but it stays a token)
    if algorithm is not None and not is_token(algorithm):
        raise RemoteProtocolError(f"Digest algorithm {algorithm!r} is not a token")
    return DigestChallenge(
        realm=realm,
        nonce=nonce,
        algorithm=algorithm,
        qop=qop,
        opaque=item.get("opaque"),
        stale=_boolean(stale_text, "stale") if stale_text is not None else False,
        domain=tuple(domain_text.split()) if domain_text is not None else (),
        charset=charset,
        userhash=_boolean(userhash_text, "userhash") if userhash_text is not None else False,
        header=header,
        index=index,
        extra=tuple((n, v) for n, v in item.params if n not in _KNOWN),
    )


def parse_digest_challenges(
    values: Iterable[str], header: str = WWW_AUTHENTICATE
) -> list[DigestChallenge]:
    """The Digest challenges in ``values`` (field values of ``header``), topmost first.

    Challenges of other schemes are skipped (RFC 7235 §2.1: a client ignores what it does not
    understand); a malformed field, or a malformed Digest challenge, raises RemoteProtocolError.
    """
    if header not in _ANSWER_HEADER:
        raise LocalProtocolError(f"{header!r} is not a challenge header")
    out: list[DigestChallenge] = []
    count = 0
    for value in values:
        for item in parse_challenges(value):
            count += 1
            if count > MAX_CHALLENGES:
                raise RemoteProtocolError(f"more than {MAX_CHALLENGES} challenges")
            if item.is_scheme("Digest"):
                out.append(_digest_challenge(item, header, len(out)))
    return out


def format_challenge(challenge: DigestChallenge) -> str:
    """The field value of ``challenge`` (inverse of :func:`parse_digest_challenges`)."""
    params: list[tuple[str, str, bool]] = [
        ("realm", challenge.realm, True),
        ("nonce", challenge.nonce, True),
    ]
    if challenge.domain:
        params.append(("domain", " ".join(challenge.domain), True))
    if challenge.opaque is not None:
        params.append(("opaque", challenge.opaque, True))
    if challenge.stale:
        params.append(("stale", "true", False))
    if challenge.algorithm is not None:
        params.append(("algorithm", challenge.algorithm, False))
    if challenge.qop:
        params.append(("qop", ",".join(challenge.qop), True))
    if challenge.charset is not None:
        params.append(("charset", challenge.charset, False))
    if challenge.userhash:
        params.append(("userhash", "true", False))
    params.extend((n, v, True) for n, v in challenge.extra)
    return format_auth("Digest", params)


# --- credentials (the Authorization header) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestAuthorization:
    """A Digest ``Authorization``/``Proxy-Authorization`` value (RFC 3261 §25.1 digest-response)."""

    username: str
    """The user name, or H(username:realm) when ``userhash``."""
    realm: str
    nonce: str
    uri: str
    """The Request-URI exactly as sent (RFC 3261 §22.4: digest-uri)."""
    response: str
    algorithm: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: str | None = None
    userhash: bool = False

    def format(self) -> str:
        """The field value, parameters in the order of RFC 3261 §22.4's example."""
        params: list[tuple[str, str, bool]] = [
            ("username", self.username, True),
            ("realm", self.realm, True),
            ("nonce", self.nonce, True),
            ("uri", self.uri, True),
            ("response", self.response, True),
        ]
        if self.algorithm is not None:
            params.append(("algorithm", self.algorithm, False))
        if self.cnonce is not None:
            params.append(("cnonce", self.cnonce, True))
        if self.opaque is not None:
            params.append(("opaque", self.opaque, True))
        if self.qop is not None:
            # RFC 3261 §25.1: message-qop = "qop" EQUAL qop-value (a token, unquoted)
            params.append(("qop", self.qop, False))
        if self.nc is not None:
            params.append(("nc", self.nc, False))  # nonce-count = "nc" EQUAL 8LHEX
        if self.userhash:
            params.append(("userhash", "true", False))
        return format_auth("Digest", params)


def parse_authorization(value: str) -> DigestAuthorization:
    """Parse a Digest ``Authorization``/``Proxy-Authorization`` value (RemoteProtocolError)."""
    item = parse_credentials(value)
    if not item.is_scheme("Digest") or item.token68 is not None:
        raise RemoteProtocolError(f"not Digest credentials: {item.scheme!r}")
    required = {}
    for name in ("username", "realm", "nonce", "uri", "response"):
        v = item.get(name)
        if v is None:
            raise RemoteProtocolError(f"Digest credentials without {name}")
        required[name] = v
    userhash = item.get("userhash")
    return DigestAuthorization(
        algorithm=item.get("algorithm"),
        cnonce=item.get("cnonce"),
        opaque=item.get("opaque"),
        qop=item.get("qop"),
        nc=item.get("nc"),
        userhash=_boolean(userhash, "userhash") if userhash is not None else False,
        **required,
    )


# --- the response computation ----------------------------------------------------------------


def compute_response(
    algorithm: Algorithm,
    *,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The digest ``response`` (RFC 7616 §3.4.1-3.4.3, RFC 2617 §3.2.2, RFC 3261 §22.4).

    A1 = username:realm:password, for -sess H(A1):nonce:cnonce;
    A2 = method:uri, for auth-int method:uri:H(body);
    response = KD(H(A1), nonce:nc:cnonce:qop:H(A2)), or KD(H(A1), nonce:H(A2)) without qop.
    """
    if qop not in (None, "auth", "auth-int"):
        raise LocalProtocolError(f"unsupported qop {qop!r}")
    if qop is not None and (nc is None or cnonce is None):
        raise LocalProtocolError("qop needs nc and cnonce")
    ha1 = hash_hex(algorithm, f"{username}:{realm}:{password}")
    if algorithm.session:
        if cnonce is None:
            raise LocalProtocolError(f"{algorithm.name} needs a cnonce")
        ha1 = hash_hex(algorithm, f"{ha1}:{nonce}:{cnonce}")
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 = f"{a2}:{hash_hex(algorithm, body)}"
    ha2 = hash_hex(algorithm, a2)
    if qop is None:
        return hash_hex(algorithm, f"{ha1}:{nonce}:{ha2}")  # RFC 2069 compatibility
    return hash_hex(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --- policy and selection --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestPolicy:
    """How challenges are chosen and answered."""

    follow_server_order: bool = False
    """Take the topmost supported challenge of a realm (RFC 8760 §2.4) instead of the strongest."""
    allow_md5: bool = True
    """Answer MD5/MD5-sess challenges at all (RFC 8760 §3: MD5 is for backward compatibility)."""
    prefer_auth_int: bool = False
    """Answer qop=auth-int when both auth and auth-int are offered (default: auth)."""
    preemptive: bool = False
    """Let :meth:`DigestClient.preemptive_headers` re-answer the last challenge of each realm."""
    max_attempts: int = 3
    """Most credentialed sends of one request in :meth:`DigestClient.auth_flow` (stale included)."""
    algorithms: frozenset[str] | None = None
    """Algorithm names enabled (canonical spelling, e.g. ``{"SHA-256"}``); ``None``: all."""


def _usable(challenge: DigestChallenge, policy: DigestPolicy) -> str | None:
    """Why ``challenge`` cannot be answered, or ``None`` if it can."""
    algo = challenge.algorithm_info
    if algo is None:
        # RFC 8760 §2.4: the UAC MUST ignore a challenge with an algorithm it does not support
        return f"algorithm {challenge.algorithm} not supported"
    if policy.algorithms is not None and algo.name not in policy.algorithms:
        return f"{algo.name} not enabled"
    if algo.hash_name == "md5" and not policy.allow_md5:
        return f"{algo.name} refused by local policy"
    if challenge.qop and not {"auth", "auth-int"} & set(challenge.qop):
        return f"no supported qop in {','.join(challenge.qop)}"
    if algo.session and not challenge.qop:
        return f"{algo.name} without qop (no cnonce allowed)"
    return None


def _choose_qop(challenge: DigestChallenge, policy: DigestPolicy) -> str | None:
    offered = challenge.qop
    if not offered:
        return None
    if "auth-int" in offered and (policy.prefer_auth_int or "auth" not in offered):
        return "auth-int"
    return "auth"


def _strength(challenge: DigestChallenge) -> int:
    algo = challenge.algorithm_info
    return algo.strength if algo is not None else 0


def select_challenges(
    challenges: Sequence[DigestChallenge], policy: DigestPolicy
) -> tuple[list[DigestChallenge], list[str]]:
    """One challenge per (header, realm), in first-seen order, plus why others were refused.

    Strongest supported algorithm first (ties: topmost) unless ``policy.follow_server_order``.
    A (header, realm) with no usable challenge contributes a reason instead.
    """
    groups: dict[tuple[str, str], list[DigestChallenge]] = {}
    for ch in challenges:
        groups.setdefault((ch.header, ch.realm), []).append(ch)
    chosen: list[DigestChallenge] = []
    reasons: list[str] = []
    for (_, realm), group in groups.items():
        usable: list[DigestChallenge] = []
        why: list[str] = []
        for ch in group:
            reason = _usable(ch, policy)
            if reason is None:
                usable.append(ch)
            else:
                why.append(reason)
        if not usable:
            reasons.append(f"realm {realm!r}: no usable challenge ({'; '.join(why)})")
            continue
        if policy.follow_server_order:
            chosen.append(usable[0])  # RFC 8760 §2.4: the topmost supported header field
        else:
            # local policy (RFC 8760 §2.4, §3): the strongest; max() keeps the first of equals
            chosen.append(max(usable, key=_strength))
    return chosen, reasons


# --- the client ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """A user name and password for one realm."""

    username: str
    password: str = field(repr=False)


CredentialsLookup = Callable[[str], DigestCredentials | None]
"""realm -> the credentials to use there, or ``None`` (that realm is not answered)."""


@dataclass(frozen=True, slots=True)
class DigestAnswer:
    """Credentials for a challenged request, ready to add to the retry."""

    headers: tuple[tuple[str, str], ...] = field(repr=False)
    """``(header name, value)``, one per answered realm (RFC 3261 §22.3), in challenge order."""
    algorithm: str
    """Algorithm of the first answered challenge (``SHA-256``...), for status reports."""
    algorithms: tuple[str, ...]
    """Algorithm of each entry of :attr:`headers`."""

    @property
    def header(self) -> str:
        """Name of the first header (``Authorization`` or ``Proxy-Authorization``)."""
        return self.headers[0][0]

    @property
    def value(self) -> str:
        """Value of the first header (never log it: it carries the digest response)."""
        return self.headers[0][1]


@dataclass(frozen=True, slots=True)
class DigestOutcome:
    """How an :meth:`DigestClient.auth_flow` ended."""

    ok: bool
    """The last response was not a 401/407."""
    reason: str | None = None
    """Why the flow gave up (no usable challenge, refused credentials, too many attempts)."""
    algorithm: str | None = None
    """Algorithm of the last credentials sent (``None``: never challenged)."""


class DigestFailed(ProtocolError):
    """The challenge cannot (or must not) be answered; ``reason`` says why."""


class _HeadersLike(Protocol):
    def get_all(self, name: str) -> list[str]: ...


class _RequestLike(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def uri(self) -> object: ...
    @property
    def headers(self) -> _HeadersLike: ...
    @property
    def body(self) -> bytes: ...


class _ResponseLike(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> _HeadersLike: ...


@dataclass(slots=True)
class _NonceState:
    nc: int = 0
    cnonce: str | None = None  # the -sess session key's cnonce (RFC 7616 §3.4.2: computed once)


# (answer header, realm) -> (nonce sent, the field value sent)
_Sent = dict[tuple[str, str], tuple[str, str]]
_CHALLENGE_OF = {v: k for k, v in _ANSWER_HEADER.items()}


def _sent_map(pairs: Iterable[tuple[str, str]]) -> _Sent:
    """Our Digest credentials among the ``(header, value)`` pairs a request carried."""
    sent: _Sent = {}
    for name, value in pairs:
        canonical = next((h for h in _CHALLENGE_OF if h.lower() == name.lower()), None)
        if canonical is None:
            continue
        try:
            auth = parse_authorization(value)
        except RemoteProtocolError:
            continue  # another scheme, or not ours: ignore
        sent[(canonical, auth.realm)] = (auth.nonce, value)
    return sent


class DigestClient:
    """Answers Digest challenges for one user agent (see the module docstring for the API)."""

    def __init__(
        self,
        credentials: str | CredentialsLookup,
        password: str | None = None,
        *,
        cnonce: Callable[[], str | bytes],
        policy: DigestPolicy | None = None,
        follow_server_order: bool | None = None,
        allow_md5: bool | None = None,
    ) -> None:
        """``credentials``: a user name (then ``password`` is required; used for every realm)
        or a realm lookup. ``cnonce``: a fresh unpredictable value per call (bytes are
        hex-encoded), e.g. ``lambda: secrets.token_hex(16)``. The keyword flags override
        ``policy``."""
        if isinstance(credentials, str):
            if password is None:
                raise LocalProtocolError("a user name needs a password")
            fixed = DigestCredentials(credentials, password)
            self._lookup: CredentialsLookup = lambda _realm: fixed
        else:
            self._lookup = credentials
        policy = policy or DigestPolicy()
        if follow_server_order is not None:
            policy = replace(policy, follow_server_order=follow_server_order)
        if allow_md5 is not None:
            policy = replace(policy, allow_md5=allow_md5)
        self.policy = policy
        self._cnonce_source = cnonce
        self._nonces: OrderedDict[tuple[str, str], _NonceState] = OrderedDict()
        self._last: dict[tuple[str, str], DigestChallenge] = {}
        self.last_algorithm: str | None = None
        """Algorithm of the last answer given."""

    # -- public API ----------------------------------------------------------------------------

    def authorize(self, request: _RequestLike, response: _ResponseLike) -> DigestAnswer:
        """Answer the 401/407 ``response`` to ``request``; raises :class:`DigestFailed`.

        Both challenge headers are read (a forking proxy aggregates them, RFC 3261 §16.7 step
        7); credentials the request already carried tell refused credentials from stale ones.
        """
        status = response.status_code
        challenges = self._parse(
            response.headers.get_all(WWW_AUTHENTICATE),
            response.headers.get_all(PROXY_AUTHENTICATE),
            status,
        )
        sent = _sent_map(
            (header, value)
            for header in _ANSWER_HEADER.values()
            for value in request.headers.get_all(header)
        )
        return self._answer(
            request.method,
            str(request.uri),
            request.body,
            challenges=challenges,
            sent=sent,
            status=status,
        )

    def answer(
        self,
        method: str,
        uri: str,
        body: bytes,
        response_status: int,
        challenge_values: Sequence[str],
        *,
        sent: Sequence[tuple[str, str]] = (),
    ) -> DigestAnswer:
        """Plain-value :meth:`authorize`: ``challenge_values`` are the ``WWW-Authenticate``
        (401) or ``Proxy-Authenticate`` (407) values; ``sent`` the ``(header, value)`` pairs of
        credentials the challenged request carried. Raises :class:`DigestFailed`."""
        header = _CHALLENGE_HEADER.get(response_status)
        if header is None:
            raise LocalProtocolError(f"{response_status} is not a 401/407 challenge")
        challenges = self._parse(
            challenge_values if header == WWW_AUTHENTICATE else (),
            challenge_values if header == PROXY_AUTHENTICATE else (),
            response_status,
        )
        sent_map = _sent_map(sent)
        return self._answer(
            method, uri, body, challenges=challenges, sent=sent_map, status=response_status
        )

    def auth_flow(
        self, method: str, uri: str, body: bytes = b""
    ) -> Generator[list[tuple[str, str]], tuple[int, Sequence[str]], DigestOutcome]:
        """The 401/407 round trip of one request as a generator (see the module docstring)."""
        headers = self.preemptive_headers(method, uri, body) if self.policy.preemptive else []
        attempts = 1 if headers else 0
        algorithm: str | None = self.last_algorithm if headers else None
        while True:
            status, values = yield headers
            if status not in _CHALLENGE_HEADER:
                return DigestOutcome(True, None, algorithm)
            if attempts >= self.policy.max_attempts:
                return DigestOutcome(
                    False, f"still {status} after {attempts} credentialed attempts", algorithm
                )
            try:
                answer = self.answer(method, uri, body, status, values, sent=headers)
            except ProtocolError as exc:
                return DigestOutcome(False, exc.reason, algorithm)
            attempts += 1
            algorithm = answer.algorithm
            headers = list(answer.headers)

    def preemptive_headers(self, method: str, uri: str, body: bytes = b"") -> list[tuple[str, str]]:
        """Credentials for a new request from the last challenge of each realm (nc + 1).

        Empty unless ``policy.preemptive``; a challenge without qop is not reused (without nc
        the server cannot tell a replay from a reuse).
        """
        if not self.policy.preemptive:
            return []
        out: list[tuple[str, str]] = []
        for challenge in self._last.values():
            if not challenge.qop:
                continue
            creds = self._lookup(challenge.realm)
            if creds is None:
                continue
            try:
                out.append(self._make(challenge, creds, method, uri, body))
            except ProtocolError:
                continue
        return out

    def forget(self, realm: str | None = None) -> None:
        """Drop remembered challenges and nonce counts (of ``realm``, or all)."""
        for key in [k for k in self._last if realm is None or k[1] == realm]:
            del self._last[key]
        for key in [k for k in self._nonces if realm is None or k[0] == realm]:
            del self._nonces[key]

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _parse(www: Sequence[str], proxy: Sequence[str], status: int) -> list[DigestChallenge]:
        try:
            challenges = parse_digest_challenges(www, WWW_AUTHENTICATE)
            challenges += parse_digest_challenges(proxy, PROXY_AUTHENTICATE)
        except RemoteProtocolError as exc:
            raise DigestFailed(f"bad challenge: {exc.reason}", status) from None
        if not challenges:
            raise DigestFailed(f"{status} without a Digest challenge", status)
        return challenges

    def _answer(
        self,
        method: str,
        uri: str,
        body: bytes,
        *,
        challenges: list[DigestChallenge],
        sent: _Sent,
        status: int,
    ) -> DigestAnswer:
        chosen, reasons = select_challenges(challenges, self.policy)
        headers: list[tuple[str, str]] = []
        algorithms: list[str] = []
        challenged = {(c.answer_header, c.realm) for c in challenges}
        for challenge in chosen:
            creds = self._lookup(challenge.realm)
            if creds is None:
                reasons.append(f"realm {challenge.realm!r}: no credentials")
                continue
            previous = sent.get((challenge.answer_header, challenge.realm))
            if previous is not None:
                # RFC 3261 §22.2 / RFC 7616 §3.3 stale: our credentials for this realm came back
                # challenged. Only stale=true with a new nonce means "retry, the password was
                # right"; anything else means they were refused: never send them again.
                if not challenge.stale:
                    reasons.append(f"realm {challenge.realm!r}: credentials refused")
                    continue
                if previous[0] == challenge.nonce:
                    reasons.append(f"realm {challenge.realm!r}: stale with the same nonce")
                    continue
            headers.append(self._make(challenge, creds, method, uri, body))
            self._last[(challenge.header, challenge.realm)] = challenge
            algorithms.append(challenge.algorithm_info.name if challenge.algorithm_info else "")
        if not headers:
            raise DigestFailed("; ".join(reasons) or "nothing to answer", status)
        # RFC 3261 §22.3: credentials for realms not challenged again (a proxy's, when the UAS
        # now challenges) go into the retry too; re-answered with the next nc when we can.
        for (name, realm), (nonce, value) in sent.items():
            if (name, realm) in challenged:
                continue
            kept = self._refresh(name, realm, nonce, method=method, uri=uri, body=body)
            headers.append((name, kept or value))
            algorithms.append(self._algorithm_of(name, realm))
        self.last_algorithm = algorithms[0]
        return DigestAnswer(tuple(headers), algorithms[0], tuple(algorithms))

    def _refresh(
        self, name: str, realm: str, nonce: str, *, method: str, uri: str, body: bytes
    ) -> str | None:
        """Credentials for ``realm`` from its remembered challenge (nc + 1), if it has
        ``nonce`` and a qop; else ``None`` (the caller keeps the value that was sent)."""
        challenge = self._last.get((_CHALLENGE_OF[name], realm))
        creds = self._lookup(realm)
        if challenge is None or creds is None or challenge.nonce != nonce or not challenge.qop:
            return None
        try:
            return self._make(challenge, creds, method, uri, body)[1]
        except ProtocolError:
            return None

    def _algorithm_of(self, name: str, realm: str) -> str:
        challenge = self._last.get((_CHALLENGE_OF[name], realm))
        algo = challenge.algorithm_info if challenge is not None else None
        return algo.name if algo is not None else ""

    def _fresh_cnonce(self) -> str:
        raw = self._cnonce_source()
        text = raw.hex() if isinstance(raw, bytes) else raw
        if not text or not text.isascii() or not text.isprintable() or '"' in text:
            raise LocalProtocolError("the cnonce source gave an empty or unprintable value")
        return text

    def _count(self, realm: str, nonce: str) -> _NonceState:
        key = (realm, nonce)
        state = self._nonces.get(key)
        if state is None:
            state = self._nonces[key] = _NonceState()
            while len(self._nonces) > MAX_NONCES:
                self._nonces.popitem(last=False)
        else:
            self._nonces.move_to_end(key)
        return state

    def _make(
        self,
        challenge: DigestChallenge,
        creds: DigestCredentials,
        method: str,
        uri: str,
        body: bytes,
    ) -> tuple[str, str]:
        algo = challenge.algorithm_info
        if algo is None:  # select_challenges never picks one
            raise LocalProtocolError(f"algorithm {challenge.algorithm} not supported")
        username, password = creds.username, creds.password
        if challenge.charset is not None:
            # RFC 7616 §4 asks for the PRECIS UsernameCasePreserved / OpaqueString profiles
            # (RFC 8265); their normalisation step is NFC.
            username = unicodedata.normalize("NFC", username)
            password = unicodedata.normalize("NFC", password)
        qop = _choose_qop(challenge, self.policy)
        nc: str | None = None
        cnonce: str | None = None
        if qop is not None:
            state = self._count(challenge.realm, challenge.nonce)
            if state.nc >= MAX_NC:
                raise DigestFailed(f"nonce count exhausted for realm {challenge.realm!r}")
            state.nc += 1
            nc = f"{state.nc:08x}"  # RFC 7616 §3.4: 8LHEX, counting requests with this nonce
            if algo.session:
                # RFC 7616 §3.4.2: the -sess H(A1) is computed once per nonce: keep its cnonce
                if state.cnonce is None:
                    state.cnonce = self._fresh_cnonce()
                cnonce = state.cnonce
            else:
                cnonce = self._fresh_cnonce()
        response = compute_response(
            algo,
            username=username,
            password=password,
            realm=challenge.realm,
            nonce=challenge.nonce,
            method=method,
            uri=uri,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            body=body,
        )
        sent_name = username
        if challenge.userhash:
            # RFC 7616 §3.4.4: username = H(unq(username) ":" unq(realm)), userhash=true
            sent_name = hash_hex(algo, f"{username}:{challenge.realm}")
        auth = DigestAuthorization(
            username=sent_name,
            realm=challenge.realm,
            nonce=challenge.nonce,
            uri=uri,
            response=response,
            algorithm=challenge.algorithm,  # echoed as the server spelled it; absent stays absent
            cnonce=cnonce,
            opaque=challenge.opaque,  # RFC 7616 §3.4: opaque is returned unchanged
            qop=qop,
            nc=nc,
            userhash=challenge.userhash,
        )
        self.last_algorithm = algo.name
        return challenge.answer_header, auth.format()
