"""Property tests: the challenge parser returns or raises RemoteProtocolError, round trips hold."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sippa.errors import ProtocolError, RemoteProtocolError
from sippa.sip.auth_grammar import parse_challenges, parse_credentials
from sippa.sip.digest import (
    ALGORITHMS,
    DigestAuthorization,
    DigestChallenge,
    DigestClient,
    format_challenge,
    parse_authorization,
    parse_digest_challenges,
)

VALID = [
    'Digest realm="example.com", nonce="n1", qop="auth", algorithm=SHA-256',
    'Digest realm="a\\"b", nonce="x", opaque="o", stale=true, algorithm=MD5-sess, qop="auth-int"',
    'Basic realm="x", Digest realm="r", nonce="n", Negotiate abc==, Bearer',
    'Digest realm="api@example.org", qop="auth", algorithm=SHA-512-256, nonce="5TsQ", '
    'opaque="HRPC", charset=UTF-8, userhash=true',
    'digest REALM = "r" ,, NONCE="n",\r\n qop="auth , auth-int", domain="sip:a sip:b"',
]

# characters that matter to the grammar, plus anything
_ALPHABET = st.sampled_from([*'"\\,= \t\r\n=/;:+', "Digest", "realm", "nonce", "qop", "é"])
_TEXT = st.one_of(st.text(max_size=200), st.lists(_ALPHABET, max_size=40).map("".join))

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_remote_error(value: str) -> None:
    # h11's fuzz invariant: parse it, or raise RemoteProtocolError; anything else fails the test
    for parse in (parse_challenges, parse_credentials, parse_authorization):
        with contextlib.suppress(RemoteProtocolError):
            parse(value)
    with contextlib.suppress(RemoteProtocolError):
        parse_digest_challenges([value])


@PROPS
@given(_TEXT)
def test_arbitrary_text(value: str) -> None:
    _parse_or_remote_error(value)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "duplicate"]))
        piece = draw(st.one_of(_ALPHABET, st.characters()))
        if op == "insert":
            text = text[:pos] + piece + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + 1 :]
        elif op == "replace":
            text = text[:pos] + piece + text[pos + 1 :]
        elif op == "truncate":
            text = text[:pos]
        else:
            text = text[:pos] + text + text[pos:]
    return text


@PROPS
@given(_mutated())
def test_mutated_valid_challenges(value: str) -> None:
    _parse_or_remote_error(value)


@PROPS
@given(st.lists(_mutated(), min_size=1, max_size=4), st.sampled_from([401, 407]))
def test_client_answers_or_fails_with_a_protocol_error(values: list[str], status: int) -> None:
    client = DigestClient("alice", "secret", cnonce=lambda: "c")
    try:
        answer = client.answer("REGISTER", "sip:example.com", b"", status, values)
    except ProtocolError:
        return
    for _, value in answer.headers:
        parse_authorization(value)  # whatever we send parses back


# quoted-string content: anything but control characters (HTAB allowed)
_QTEXT = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="".join(chr(c) for c in [*range(0x09), *range(0x0A, 0x20), 0x7F]),
    ),
    max_size=30,
)
_TOKENS = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=12,
)


@st.composite
def _challenges(draw: st.DrawFn) -> DigestChallenge:
    known = {
        "realm",
        "nonce",
        "algorithm",
        "qop",
        "opaque",
        "stale",
        "domain",
        "charset",
        "userhash",
    }
    extra_names = draw(st.lists(_TOKENS.map(str.lower), max_size=3, unique=True))
    extra_names = [n for n in extra_names if n not in known]
    qop = draw(
        st.lists(st.sampled_from(["auth", "auth-int", "auth-conf"]), max_size=3, unique=True)
    )
    domain = draw(st.lists(st.text("sip:abcdef.-", min_size=1, max_size=10), max_size=3))
    return DigestChallenge(
        realm=draw(_QTEXT),
        nonce=draw(_QTEXT),
        algorithm=draw(
            st.one_of(st.none(), st.sampled_from([a.name for a in ALGORITHMS.values()]), _TOKENS)
        ),
        qop=tuple(qop),
        opaque=draw(st.one_of(st.none(), _QTEXT)),
        stale=draw(st.booleans()),
        domain=tuple(domain),
        charset=draw(st.sampled_from([None, "UTF-8"])),
        userhash=draw(st.booleans()),
        header=draw(st.sampled_from(["WWW-Authenticate", "Proxy-Authenticate"])),
        extra=tuple((n, draw(_QTEXT)) for n in extra_names),
    )


@PROPS
@given(_challenges())
def test_challenge_round_trip(challenge: DigestChallenge) -> None:
    text = format_challenge(challenge)
    assert parse_digest_challenges([text], challenge.header) == [challenge]
    # and several in one field value, in order
    both = parse_digest_challenges([f"{text}, {text}"], challenge.header)
    assert both == [challenge, DigestChallenge(**{**_fields(challenge), "index": 1})]


def _fields(challenge: DigestChallenge) -> dict[str, object]:
    return {name: getattr(challenge, name) for name in DigestChallenge.__slots__}


@PROPS
@given(
    _QTEXT,
    _QTEXT,
    _QTEXT,
    _QTEXT,
    st.sampled_from([None, "auth", "auth-int"]),
    st.booleans(),
    st.one_of(st.none(), _QTEXT),
)
def test_authorization_round_trip(
    username: str,
    realm: str,
    nonce: str,
    uri: str,
    qop: str | None,
    userhash: bool,
    opaque: str | None,
) -> None:
    auth = DigestAuthorization(
        username=username,
        realm=realm,
        nonce=nonce,
        uri=uri,
        response="ab" * 16,
        algorithm="SHA-256",
        cnonce="c" if qop else None,
        opaque=opaque,
        qop=qop,
        nc="00000001" if qop else None,
        userhash=userhash,
    )
    assert parse_authorization(auth.format()) == auth
