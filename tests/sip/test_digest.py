"""Digest authentication: RFC vectors, challenge grammar, selection policy, the client's state."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sippa.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from sippa.sip.auth_grammar import (
    MAX_FIELD_LENGTH,
    format_auth,
    parse_challenges,
    parse_credentials,
    quote_string,
)
from sippa.sip.digest import (
    ALGORITHMS,
    DigestChallenge,
    DigestClient,
    DigestCredentials,
    DigestFailed,
    DigestOutcome,
    DigestPolicy,
    compute_response,
    format_challenge,
    hash_hex,
    parse_authorization,
    parse_digest_challenges,
    select_challenges,
)
from sippa.sip.message import Headers, Request, Response
from sippa.sip.uri import Uri

# --- helpers -----------------------------------------------------------------------------------


def _h(name: str, data: str | bytes) -> str:
    """An independent H(): plain hashlib, to check the module against."""
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.new(name, raw).hexdigest()


def _cnonces(*values: str) -> Callable[[], str]:
    it: Iterator[str] = iter(values)
    return lambda: next(it)


def _counter() -> Callable[[], bytes]:
    n = [0]

    def source() -> bytes:
        n[0] += 1
        return n[0].to_bytes(8, "big")

    return source


def _challenge(
    algorithm: str | None = None, *, realm: str = "example.com", nonce: str = "n1", **extra: str
) -> str:
    parts = [f'realm="{realm}"', f'nonce="{nonce}"']
    if algorithm is not None:
        parts.append(f"algorithm={algorithm}")
    parts.extend(f"{k}={v}" for k, v in extra.items())
    return "Digest " + ", ".join(parts)


def _client(**policy: Any) -> DigestClient:
    return DigestClient("alice", "secret", cnonce=_counter(), policy=DigestPolicy(**policy))


def _algo_of(header_value: str) -> str | None:
    return parse_authorization(header_value).algorithm


# --- RFC vectors -------------------------------------------------------------------------------


def _http_vectors(vectors: Path) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(
        (vectors / "digest" / "http_digest_vectors.json").read_text("utf-8")
    )["vectors"]
    return data


VECTOR_IDS = [
    "rfc7616-3.9.1-md5",
    "rfc7616-3.9.1-sha256",
    "rfc7616-3.9.2-sha512-256-userhash",
    "rfc2617-3.5",
]


@pytest.fixture(scope="module")
def http_vectors(vectors: Path) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in _http_vectors(vectors)}


def _expected(v: dict[str, Any], what: str) -> str:
    value: str = v.get(what) or v[f"{what}_fips_sha512_256"]
    return value


def test_every_http_vector_is_covered(http_vectors: dict[str, dict[str, Any]]) -> None:
    assert sorted(http_vectors) == sorted(VECTOR_IDS)


@pytest.mark.parametrize("vid", VECTOR_IDS)
def test_vector_response_and_intermediates(
    http_vectors: dict[str, dict[str, Any]], vid: str
) -> None:
    v = http_vectors[vid]
    algo = ALGORITHMS[v["algorithm"].lower()]
    ha1 = hash_hex(algo, f"{v['username']}:{v['realm']}:{v['password']}")
    ha2 = hash_hex(algo, f"{v['method']}:{v['uri']}")
    assert ha1 == _expected(v, "ha1")
    assert ha2 == _expected(v, "ha2")
    response = compute_response(
        algo,
        username=v["username"],
        password=v["password"],
        realm=v["realm"],
        nonce=v["nonce"],
        method=v["method"],
        uri=v["uri"],
        qop=v["qop"],
        nc=v["nc"],
        cnonce=v["cnonce"],
    )
    assert response == _expected(v, "response")


def test_rfc2617_password_case_matters(http_vectors: dict[str, dict[str, Any]]) -> None:
    v = http_vectors["rfc2617-3.5"]
    wrong = compute_response(
        ALGORITHMS["md5"],
        username=v["username"],
        password="Circle of Life",  # RFC 7616's wording, not RFC 2617's
        realm=v["realm"],
        nonce=v["nonce"],
        method=v["method"],
        uri=v["uri"],
        qop="auth",
        nc=v["nc"],
        cnonce=v["cnonce"],
    )
    assert wrong == "20ae5530a92d6c35dc4a63a4c1affcac" != v["response"]


def test_sha512_256_is_fips_not_truncated_sha512(http_vectors: dict[str, dict[str, Any]]) -> None:
    v = http_vectors["rfc7616-3.9.2-sha512-256-userhash"]
    algo = ALGORITHMS["sha-512-256"]
    userhash = hash_hex(algo, f"{v['username']}:{v['realm']}")
    assert userhash == v["userhash_fips_sha512_256"]
    # RFC 7616 §3.9.2 printed SHA-512 truncated to 256 bits (erratum 4897)
    truncated = hashlib.sha512(f"{v['username']}:{v['realm']}".encode()).hexdigest()[:64]
    assert truncated == v["userhash_as_published_in_rfc"] != userhash
    assert v["username"].encode("utf-8").hex() == v["username_utf8_hex"]


@pytest.mark.parametrize("vid", ["rfc7616-3.9.1-md5", "rfc7616-3.9.1-sha256", "rfc2617-3.5"])
def test_vector_end_to_end_through_the_client(
    http_vectors: dict[str, dict[str, Any]], vid: str
) -> None:
    v = http_vectors[vid]
    client = DigestClient(v["username"], v["password"], cnonce=_cnonces(v["cnonce"]))
    answer = client.answer(v["method"], v["uri"], b"", 401, [v["challenge"]])
    assert answer.header == "Authorization"
    auth = parse_authorization(answer.value)
    assert auth.response == v["response"]
    assert (auth.username, auth.realm, auth.nonce, auth.uri) == (
        v["username"],
        v["realm"],
        v["nonce"],
        v["uri"],
    )
    assert (auth.qop, auth.nc, auth.cnonce, auth.opaque) == (
        "auth",
        "00000001",
        v["cnonce"],
        v["opaque"],
    )
    assert answer.algorithm == v["algorithm"]


def test_rfc7616_two_fields_sha256_first_md5_second(
    http_vectors: dict[str, dict[str, Any]],
) -> None:
    md5, sha = http_vectors["rfc7616-3.9.1-md5"], http_vectors["rfc7616-3.9.1-sha256"]
    for order in ([sha["challenge"], md5["challenge"]], [md5["challenge"], sha["challenge"]]):
        client = DigestClient("Mufasa", "Circle of Life", cnonce=_cnonces(sha["cnonce"]))
        answer = client.answer("GET", "/dir/index.html", b"", 401, order)
        assert parse_authorization(answer.value).response == sha["response"]
        assert answer.algorithm == "SHA-256"


def test_sha512_256_userhash_vector_end_to_end(http_vectors: dict[str, dict[str, Any]]) -> None:
    v = http_vectors["rfc7616-3.9.2-sha512-256-userhash"]
    challenge = (
        f'Digest realm="{v["realm"]}", qop="auth", algorithm=SHA-512-256, nonce="{v["nonce"]}", '
        f'opaque="{v["opaque"]}", charset=UTF-8, userhash=true'
    )
    client = DigestClient(v["username"], v["password"], cnonce=_cnonces(v["cnonce"]))
    answer = client.answer(v["method"], v["uri"], b"", 401, [challenge])
    auth = parse_authorization(answer.value)
    assert auth.userhash
    assert auth.username == v["userhash_fips_sha512_256"]
    assert auth.response == v["response_fips_sha512_256"]
    assert auth.response != v["response_as_published_in_rfc"]
    assert auth.algorithm == "SHA-512-256"
    assert answer.algorithm == "SHA-512-256"


# --- RFC 8760 scenarios ------------------------------------------------------------------------


def _rfc8760(vectors: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (vectors / "digest" / "sip_rfc8760_expectations.json").read_text("utf-8")
    )
    return data


def test_rfc8760_algorithm_table_matches_ours(vectors: Path) -> None:
    table = _rfc8760(vectors)["algorithm_tokens"]
    tokens = {k for k in table if k != "absent"}
    assert {a.name for a in ALGORITHMS.values()} == tokens
    for name, info in table.items():
        if name == "absent":
            continue
        assert len(hash_hex(ALGORITHMS[name.lower()], "x")) == info["hex_digest_chars"]


@pytest.mark.parametrize("follow", [False, True])
def test_rfc8760_scenarios(vectors: Path, follow: bool) -> None:
    scenarios = _rfc8760(vectors)["scenarios"]
    previous: list[str] = []
    assert len(scenarios) == 4
    for sc in scenarios:
        lines = sc["response_headers"]
        if lines == "same as above":
            lines = previous
        previous = lines
        values = [line.split(":", 1)[1].strip() for line in lines]
        assert all(line.startswith("WWW-Authenticate:") for line in lines)
        enabled = frozenset(sc["uac_supports"])
        client = _client(follow_server_order=follow, algorithms=enabled)
        if sc["expected_choice"] is None:
            with pytest.raises(DigestFailed, match="not supported"):
                client.answer("REGISTER", "sip:example.com", b"", 401, values)
            continue
        answer = client.answer("REGISTER", "sip:example.com", b"", 401, values)
        assert answer.algorithm == sc["expected_choice"], sc["name"]
        auth = parse_authorization(answer.value)
        assert (auth.qop, auth.nc) == ("auth", "00000001")  # qop-required expectation
        if "algorithm parameter absent" in sc["name"]:
            assert auth.algorithm is None  # echo no algorithm when none was sent


# --- selection policy --------------------------------------------------------------------------

SHA256 = _challenge("SHA-256", qop='"auth"')
MD5 = _challenge("MD5", qop='"auth"')
SHA512 = _challenge("SHA-512-256", qop='"auth"')


@pytest.mark.parametrize("order", [[SHA256, MD5], [MD5, SHA256]], ids=["sha-first", "md5-first"])
def test_strongest_by_default_whatever_the_order(order: list[str]) -> None:
    answer = _client().answer("REGISTER", "sip:example.com", b"", 401, order)
    assert answer.algorithm == "SHA-256"
    assert _algo_of(answer.value) == "SHA-256"


@pytest.mark.parametrize("order", [[SHA256, MD5], [MD5, SHA256]], ids=["sha-first", "md5-first"])
def test_follow_server_order_takes_the_topmost(order: list[str]) -> None:
    answer = _client(follow_server_order=True).answer("REGISTER", "sip:x", b"", 401, order)
    expected = "SHA-256" if order[0] is SHA256 else "MD5"
    assert answer.algorithm == expected


def test_the_reviewed_phones_bug_is_fixed_last_is_not_picked() -> None:
    # the reviewed phone picked the last challenge whatever its algorithm
    answer = _client().answer("REGISTER", "sip:x", b"", 401, [SHA512, SHA256, MD5])
    assert answer.algorithm == "SHA-512-256"
    answer = _client().answer("REGISTER", "sip:x", b"", 401, [MD5, SHA256, SHA512])
    assert answer.algorithm == "SHA-512-256"


def test_several_challenges_in_one_field_value() -> None:
    value = f"{MD5}, {SHA256}"
    answer = _client().answer("REGISTER", "sip:x", b"", 401, [value])
    assert answer.algorithm == "SHA-256"


def test_md5_refused_by_policy() -> None:
    client = _client(allow_md5=False)
    with pytest.raises(DigestFailed, match="MD5 refused by local policy") as info:
        client.answer("REGISTER", "sip:x", b"", 401, [MD5])
    assert info.value.status_code == 401
    with pytest.raises(DigestFailed, match="MD5 refused"):
        client.answer("REGISTER", "sip:x", b"", 401, [_challenge(None, qop='"auth"')])
    with pytest.raises(DigestFailed, match="MD5-sess refused"):
        client.answer("REGISTER", "sip:x", b"", 401, [_challenge("MD5-sess", qop='"auth"')])
    assert client.answer("REGISTER", "sip:x", b"", 401, [MD5, SHA256]).algorithm == "SHA-256"


def test_keyword_flags_override_policy() -> None:
    client = DigestClient("a", "b", cnonce=_counter(), allow_md5=False, follow_server_order=True)
    assert client.policy == DigestPolicy(follow_server_order=True, allow_md5=False)


def test_sess_ranks_with_its_base_and_ties_go_to_the_topmost() -> None:
    sess = _challenge("SHA-256-sess", qop='"auth"')
    assert _client().answer("R", "sip:x", b"", 401, [sess, SHA256]).algorithm == "SHA-256-sess"
    assert _client().answer("R", "sip:x", b"", 401, [SHA256, sess]).algorithm == "SHA-256"


def test_unknown_algorithm_ignored_when_another_is_usable() -> None:
    answer = _client().answer("R", "sip:x", b"", 401, [_challenge("SHA3-256", qop='"auth"'), MD5])
    assert answer.algorithm == "MD5"


def test_algorithm_token_is_case_insensitive_and_echoed_as_sent() -> None:
    answer = _client().answer("R", "sip:x", b"", 401, [_challenge("sha-256", qop='"auth"')])
    assert answer.algorithm == "SHA-256"
    assert _algo_of(answer.value) == "sha-256"


def test_select_challenges_per_realm_and_header() -> None:
    challenges = parse_digest_challenges(
        [
            _challenge("MD5", realm="a"),
            _challenge("SHA-256", realm="b"),
            _challenge("SHA-256", realm="a"),
        ]
    ) + parse_digest_challenges([_challenge("MD5", realm="a")], "Proxy-Authenticate")
    chosen, reasons = select_challenges(challenges, DigestPolicy())
    assert [(c.header, c.realm, c.algorithm) for c in chosen] == [
        ("WWW-Authenticate", "a", "SHA-256"),
        ("WWW-Authenticate", "b", "SHA-256"),
        ("Proxy-Authenticate", "a", "MD5"),
    ]
    assert reasons == []
    chosen, reasons = select_challenges(challenges, DigestPolicy(allow_md5=False))
    assert len(chosen) == 2
    assert reasons == ["realm 'a': no usable challenge (MD5 refused by local policy)"]


# --- qop, -sess, auth-int, RFC 2069 ------------------------------------------------------------


def _independent(
    hname: str,
    *,
    sess: bool,
    qop: str | None,
    body: bytes = b"",
    nc: str = "00000001",
    cnonce: str = "c1",
    nonce: str = "n1",
    method: str = "INVITE",
    uri: str = "sip:bob@example.com",
) -> str:
    ha1 = _h(hname, "alice:example.com:secret")
    if sess:
        ha1 = _h(hname, f"{ha1}:{nonce}:{cnonce}")
    a2 = f"{method}:{uri}" + (f":{_h(hname, body)}" if qop == "auth-int" else "")
    ha2 = _h(hname, a2)
    if qop is None:
        return _h(hname, f"{ha1}:{nonce}:{ha2}")
    return _h(hname, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


@pytest.mark.parametrize(
    ("token", "hname"),
    [("MD5", "md5"), ("SHA-256", "sha256"), ("SHA-512-256", "sha512_256")],
)
@pytest.mark.parametrize("sess", [False, True])
@pytest.mark.parametrize("qop", ["auth", "auth-int"])
def test_algorithms_sess_and_qop(token: str, hname: str, sess: bool, qop: str) -> None:
    algorithm = token + ("-sess" if sess else "")
    body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"
    client = DigestClient("alice", "secret", cnonce=_cnonces("c1"))
    answer = client.answer(
        "INVITE", "sip:bob@example.com", body, 401, [_challenge(algorithm, qop=f'"{qop}"')]
    )
    auth = parse_authorization(answer.value)
    assert auth.qop == qop
    assert auth.algorithm == algorithm
    assert answer.algorithm == algorithm
    assert auth.response == _independent(hname, sess=sess, qop=qop, body=body)
    assert len(auth.response) == (32 if hname == "md5" else 64)


def test_auth_int_body_changes_the_response() -> None:
    ch = [_challenge("SHA-256", qop='"auth-int"')]
    a = DigestClient("alice", "secret", cnonce=_cnonces("c1")).answer("M", "sip:x", b"a", 401, ch)
    b = DigestClient("alice", "secret", cnonce=_cnonces("c1")).answer("M", "sip:x", b"b", 401, ch)
    assert parse_authorization(a.value).response != parse_authorization(b.value).response


def test_qop_auth_preferred_when_both_offered() -> None:
    both = [_challenge("SHA-256", qop='"auth-int,auth"')]
    assert parse_authorization(_client().answer("M", "sip:x", b"", 401, both).value).qop == "auth"
    preferring = _client(prefer_auth_int=True)
    assert parse_authorization(preferring.answer("M", "sip:x", b"", 401, both).value).qop == (
        "auth-int"
    )


def test_unknown_qop_only_is_unusable() -> None:
    with pytest.raises(DigestFailed, match="no supported qop"):
        _client().answer("M", "sip:x", b"", 401, [_challenge("SHA-256", qop='"auth-conf"')])
    ok = _client().answer("M", "sip:x", b"", 401, [_challenge("SHA-256", qop='"auth-conf,auth"')])
    assert parse_authorization(ok.value).qop == "auth"


def test_no_qop_is_answered_rfc2069_style() -> None:
    answer = _client().answer("INVITE", "sip:bob@example.com", b"", 401, [_challenge("MD5")])
    auth = parse_authorization(answer.value)
    assert (auth.qop, auth.nc, auth.cnonce) == (None, None, None)
    assert auth.response == _independent("md5", sess=False, qop=None)
    assert "nc=" not in answer.value and "cnonce" not in answer.value


def test_sess_without_qop_is_refused() -> None:
    with pytest.raises(DigestFailed, match="without qop"):
        _client().answer("M", "sip:x", b"", 401, [_challenge("MD5-sess")])


def test_unquoted_qop_is_accepted() -> None:
    answer = _client().answer("M", "sip:x", b"", 401, [_challenge("SHA-256", qop="auth")])
    assert parse_authorization(answer.value).qop == "auth"


# --- header building ---------------------------------------------------------------------------


def test_uri_is_the_request_uri_exactly() -> None:
    uri = "sips:bob@example.com;transport=tls?Subject=hi%20there"
    answer = _client().answer("INVITE", uri, b"", 401, [SHA256])
    assert parse_authorization(answer.value).uri == uri
    assert f'uri="{uri}"' in answer.value


def test_authorization_layout_and_quoting() -> None:
    ch = _challenge("SHA-256", realm='we\\"ird', qop='"auth"', opaque='"op\\\\aque"')
    client = DigestClient('bo"b', "pw", cnonce=_cnonces("cn"))
    answer = client.answer("REGISTER", "sip:example.com", b"", 401, [ch])
    v = answer.value
    assert v.startswith(
        'Digest username="bo\\"b", realm="we\\"ird", nonce="n1", uri="sip:example.com", response="'
    )
    assert v.endswith(
        ', algorithm=SHA-256, cnonce="cn", opaque="op\\\\aque", qop=auth, nc=00000001'
    )
    auth = parse_authorization(v)
    assert (auth.username, auth.realm, auth.opaque) == ('bo"b', 'we"ird', "op\\aque")
    assert auth.response == compute_response(
        ALGORITHMS["sha-256"],
        username='bo"b',
        password="pw",
        realm='we"ird',
        nonce="n1",
        method="REGISTER",
        uri="sip:example.com",
        qop="auth",
        nc="00000001",
        cnonce="cn",
    )


def test_proxy_authorization_for_407() -> None:
    answer = _client().answer("INVITE", "sip:x", b"", 407, [SHA256])
    assert answer.header == "Proxy-Authorization"
    assert answer.headers == (("Proxy-Authorization", answer.value),)


def test_answer_rejects_other_statuses() -> None:
    with pytest.raises(LocalProtocolError):
        _client().answer("INVITE", "sip:x", b"", 403, [SHA256])


def test_secrets_do_not_show_in_reprs() -> None:
    answer = _client().answer("INVITE", "sip:x", b"", 401, [SHA256])
    response = parse_authorization(answer.value).response
    assert response not in repr(answer)
    assert "secret" not in repr(DigestCredentials("alice", "secret"))


def test_userhash_only_when_asked() -> None:
    plain = _client().answer("R", "sip:x", b"", 401, [SHA256])
    assert parse_authorization(plain.value).username == "alice"
    assert "userhash" not in plain.value
    hashed = _client().answer(
        "R", "sip:x", b"", 401, [_challenge("SHA-256", qop='"auth"', userhash="true")]
    )
    auth = parse_authorization(hashed.value)
    assert auth.userhash
    assert auth.username == _h("sha256", "alice:example.com")


def test_charset_utf8_normalises_to_nfc() -> None:
    decomposed = "Ja\u0308s"  # "Jäs" with a combining diaeresis
    ch = [_challenge("SHA-256", qop='"auth"', charset="UTF-8")]
    a = DigestClient(decomposed, "pw", cnonce=_cnonces("c")).answer("R", "sip:x", b"", 401, ch)
    b = DigestClient("J\u00e4s", "pw", cnonce=_cnonces("c")).answer("R", "sip:x", b"", 401, ch)
    assert a.value == b.value


def test_cnonce_source_bytes_are_hex_and_bad_values_refused() -> None:
    client = DigestClient("a", "b", cnonce=lambda: b"\x00\xff")
    assert parse_authorization(client.answer("R", "sip:x", b"", 401, [SHA256]).value).cnonce == (
        "00ff"
    )
    for bad in ("", 'a"b', "a\nb"):
        client = DigestClient("a", "b", cnonce=lambda bad=bad: bad)  # type: ignore[misc]
        with pytest.raises(LocalProtocolError):
            client.answer("R", "sip:x", b"", 401, [SHA256])


def test_username_needs_password_and_lookup_per_realm() -> None:
    with pytest.raises(LocalProtocolError):
        DigestClient("alice", cnonce=_counter())
    table = {"a": DigestCredentials("alice", "pa"), "b": DigestCredentials("bob", "pb")}
    client = DigestClient(table.get, cnonce=_counter())
    answer = client.answer(
        "R",
        "sip:x",
        b"",
        401,
        [
            _challenge("SHA-256", realm="a"),
            _challenge("SHA-256", realm="c"),
            _challenge("SHA-256", realm="b"),
        ],
    )
    users = [parse_authorization(v).username for _, v in answer.headers]
    assert users == ["alice", "bob"]  # realm c has no credentials and is skipped
    assert answer.algorithms == ("SHA-256", "SHA-256")
    with pytest.raises(DigestFailed, match="no credentials"):
        client.answer("R", "sip:x", b"", 401, [_challenge("SHA-256", realm="c")])


# --- nonce counts, stale, bounded retries ------------------------------------------------------


def test_nc_counts_per_nonce() -> None:
    client = _client()
    ncs = [
        parse_authorization(client.answer("R", "sip:x", b"", 401, [SHA256]).value).nc
        for _ in range(3)
    ]
    assert ncs == ["00000001", "00000002", "00000003"]
    other = _challenge("SHA-256", nonce="n2", qop='"auth"')
    assert parse_authorization(client.answer("R", "sip:x", b"", 401, [other]).value).nc == (
        "00000001"
    )
    assert parse_authorization(client.answer("R", "sip:x", b"", 401, [SHA256]).value).nc == (
        "00000004"
    )
    for _ in range(6):
        last = client.answer("R", "sip:x", b"", 401, [SHA256])
    assert parse_authorization(last.value).nc == "0000000a"  # lower-case hex (RFC 7616 §3.4)
    client.forget("example.com")
    assert parse_authorization(client.answer("R", "sip:x", b"", 401, [SHA256]).value).nc == (
        "00000001"
    )


def test_sess_keeps_its_cnonce_per_nonce_other_algorithms_take_fresh_ones() -> None:
    sess = [_challenge("SHA-256-sess", qop='"auth"')]
    client = _client()
    first = parse_authorization(client.answer("R", "sip:x", b"", 401, sess).value)
    second = parse_authorization(client.answer("R", "sip:x", b"", 401, sess).value)
    assert first.cnonce == second.cnonce
    assert second.nc == "00000002"
    plain = [
        parse_authorization(client.answer("R", "sip:x", b"", 401, [SHA256]).value).cnonce
        for _ in range(2)
    ]
    assert plain[0] != plain[1]


def _flow(client: DigestClient) -> Any:
    return client.auth_flow("REGISTER", "sip:example.com", b"")


def _run(flow: Any, replies: Sequence[tuple[int, list[str]]]) -> tuple[list[Any], DigestOutcome]:
    sent = [next(flow)]
    for reply in replies:
        try:
            sent.append(flow.send(reply))
        except StopIteration as stop:
            return sent, stop.value
    raise AssertionError("the flow did not end")


def test_flow_success() -> None:
    sent, outcome = _run(_flow(_client()), [(401, [SHA256]), (200, [])])
    assert sent[0] == []
    assert sent[1][0][0] == "Authorization"
    assert outcome == DigestOutcome(True, None, "SHA-256")


def test_flow_unchallenged() -> None:
    sent, outcome = _run(_flow(_client()), [(200, [])])
    assert sent == [[]]
    assert outcome == DigestOutcome(True, None, None)


def test_flow_stale_retries_with_the_new_nonce() -> None:
    stale = _challenge("SHA-256", nonce="n2", qop='"auth"', stale="true")
    sent, outcome = _run(_flow(_client()), [(401, [SHA256]), (401, [stale]), (200, [])])
    assert outcome.ok
    assert parse_authorization(sent[2][0][1]).nonce == "n2"


def test_flow_gives_up_on_refused_credentials() -> None:
    again = _challenge("SHA-256", nonce="n2", qop='"auth"')  # new nonce but not stale
    sent, outcome = _run(_flow(_client()), [(401, [SHA256]), (401, [again])])
    assert not outcome.ok
    assert outcome.reason is not None and "credentials refused" in outcome.reason
    assert len(sent) == 2


def test_flow_gives_up_on_stale_with_the_same_nonce() -> None:
    same = _challenge("SHA-256", qop='"auth"', stale="TRUE")
    _, outcome = _run(_flow(_client()), [(401, [SHA256]), (401, [same])])
    assert not outcome.ok
    assert outcome.reason is not None and "same nonce" in outcome.reason


def test_flow_bounds_endless_stale() -> None:
    replies = [
        (401, [_challenge("SHA-256", nonce=f"n{i}", qop='"auth"', stale="true")]) for i in range(10)
    ]
    sent, outcome = _run(_flow(_client(max_attempts=3)), replies)
    assert not outcome.ok
    assert outcome.reason is not None and "3 credentialed attempts" in outcome.reason
    assert len(sent) == 4  # the bare request and three credentialed ones


def test_flow_reports_unusable_challenge() -> None:
    _, outcome = _run(_flow(_client(allow_md5=False)), [(401, [MD5])])
    assert outcome == DigestOutcome(
        False, "realm 'example.com': no usable challenge (MD5 refused by local policy)", None
    )


def test_flow_reports_malformed_challenge() -> None:
    _, outcome = _run(_flow(_client()), [(407, ['Digest realm="x"'])])
    assert not outcome.ok
    assert outcome.reason == "bad challenge: Digest challenge without nonce"


def test_flow_proxy_then_www_keeps_the_proxy_credentials() -> None:
    # RFC 3261 §22.3: the proxy's credentials stay in the retry the UAS challenged
    proxy = _challenge("SHA-256", realm="proxy", qop='"auth"')
    sent, outcome = _run(_flow(_client()), [(407, [proxy]), (401, [SHA512]), (200, [])])
    assert outcome.ok
    assert [h for h, _ in sent[1]] == ["Proxy-Authorization"]
    assert [h for h, _ in sent[2]] == ["Authorization", "Proxy-Authorization"]
    proxy_first = parse_authorization(sent[1][0][1])
    proxy_again = parse_authorization(sent[2][1][1])
    assert (proxy_first.nonce, proxy_first.nc) == ("n1", "00000001")
    assert (proxy_again.nonce, proxy_again.nc) == ("n1", "00000002")  # re-answered, not replayed
    assert outcome.algorithm == "SHA-512-256"


def test_kept_credentials_without_qop_are_sent_unchanged() -> None:
    proxy = _challenge("MD5", realm="proxy")
    client = _client()
    first = client.answer("INVITE", "sip:x", b"", 407, [proxy])
    answer = client.answer("INVITE", "sip:x", b"", 401, [SHA256], sent=first.headers)
    assert answer.headers[1] == first.headers[0]
    assert answer.algorithms == ("SHA-256", "MD5")
    assert answer.algorithm == "SHA-256"
    assert client.last_algorithm == "SHA-256"


def test_unknown_kept_credentials_are_sent_verbatim() -> None:
    foreign = (
        "Proxy-Authorization",
        'Digest username="x", realm="p", nonce="q", uri="sip:x", response="00"',
    )
    answer = _client().answer("INVITE", "sip:x", b"", 401, [SHA256], sent=[foreign])
    assert answer.headers[1] == foreign
    assert answer.algorithms == ("SHA-256", "")


def test_preemptive_reuse() -> None:
    client = _client(preemptive=True)
    assert client.preemptive_headers("REGISTER", "sip:x") == []
    client.answer("REGISTER", "sip:x", b"", 401, [SHA256])
    headers = client.preemptive_headers("REGISTER", "sip:x")
    assert len(headers) == 1
    assert parse_authorization(headers[0][1]).nc == "00000002"
    sent, outcome = _run(client.auth_flow("REGISTER", "sip:x"), [(200, [])])
    assert parse_authorization(sent[0][0][1]).nc == "00000003"
    assert outcome == DigestOutcome(True, None, "SHA-256")
    assert _client().preemptive_headers("REGISTER", "sip:x") == []  # off by default


def test_preemptive_skips_challenges_without_qop() -> None:
    client = _client(preemptive=True)
    client.answer("REGISTER", "sip:x", b"", 401, [_challenge("MD5")])
    assert client.preemptive_headers("REGISTER", "sip:x") == []


# --- the message-level API (what sip.core and sip.registration call) ---------------------------


def _request(*auth: tuple[str, str]) -> Request:
    headers = Headers([("Call-ID", "c1"), ("CSeq", "1 REGISTER"), *auth])
    return Request("REGISTER", Uri.parse("sip:example.com"), headers)


def _response(status: int, *challenges: tuple[str, str]) -> Response:
    return Response(status, "Unauthorized", Headers([("Call-ID", "c1"), *challenges]))


def test_authorize_messages() -> None:
    client = _client()
    answer = client.authorize(_request(), _response(401, ("WWW-Authenticate", SHA256)))
    assert answer.header == "Authorization"
    assert parse_authorization(answer.value).uri == "sip:example.com"
    assert client.last_algorithm == "SHA-256"
    # the retry came back challenged, not stale: refused, never loop
    again = _challenge("SHA-256", nonce="n9", qop='"auth"')
    with pytest.raises(DigestFailed, match="credentials refused") as info:
        client.authorize(_request(answer.headers[0]), _response(401, ("WWW-Authenticate", again)))
    assert isinstance(info.value, ProtocolError)
    stale = _challenge("SHA-256", nonce="n9", qop='"auth"', stale="true")
    retry = client.authorize(
        _request(answer.headers[0]), _response(401, ("WWW-Authenticate", stale))
    )
    assert parse_authorization(retry.value).nonce == "n9"


def test_authorize_keeps_proxy_credentials_when_the_uas_challenges() -> None:
    client = _client()
    proxy = _challenge("SHA-256", realm="proxy", qop='"auth"')
    first = client.authorize(_request(), _response(407, ("Proxy-Authenticate", proxy)))
    second = client.authorize(
        _request(*first.headers), _response(401, ("WWW-Authenticate", SHA512))
    )
    assert [h for h, _ in second.headers] == ["Authorization", "Proxy-Authorization"]
    assert parse_authorization(second.headers[1][1]).nc == "00000002"
    assert second.algorithm == "SHA-512-256"


def test_authorize_aggregated_forked_challenges() -> None:
    # RFC 3261 §16.7 step 7: a 407 may carry WWW-Authenticate too
    response = _response(
        407,
        ("Proxy-Authenticate", _challenge("SHA-256", realm="proxy", qop='"auth"')),
        ("WWW-Authenticate", _challenge("MD5", realm="uas", qop='"auth"')),
        ("WWW-Authenticate", _challenge("SHA-256", realm="uas", qop='"auth"')),
    )
    answer = _client().authorize(_request(), response)
    assert [(h, parse_authorization(v).realm) for h, v in answer.headers] == [
        ("Authorization", "uas"),
        ("Proxy-Authorization", "proxy"),
    ]
    assert answer.algorithms == ("SHA-256", "SHA-256")


def test_authorize_without_digest_challenge() -> None:
    with pytest.raises(DigestFailed, match="without a Digest challenge"):
        _client().authorize(_request(), _response(401, ("WWW-Authenticate", 'Basic realm="x"')))


def test_authorize_other_scheme_credentials_in_request_are_ignored() -> None:
    answer = _client().authorize(
        _request(("Authorization", "Bearer abc")), _response(401, ("WWW-Authenticate", SHA256))
    )
    assert answer.algorithm == "SHA-256"


# --- the challenge grammar ---------------------------------------------------------------------


def test_rfc7235_example_with_several_schemes_in_one_field() -> None:
    value = (
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple", '
        'Digest realm="d", nonce="n", Negotiate abc/+==, Bearer'
    )
    items = parse_challenges(value)
    assert [i.scheme for i in items] == ["Newauth", "Basic", "Digest", "Negotiate", "Bearer"]
    assert items[0].params == (("realm", "apps"), ("type", "1"), ("title", 'Login to "apps"'))
    assert items[0].quoted == frozenset({"realm", "title"})
    assert items[3].token68 == "abc/+=="
    digest = parse_digest_challenges([value])
    assert [(d.realm, d.nonce) for d in digest] == [("d", "n")]


def test_grammar_tolerances() -> None:
    value = (
        '  digest  REALM = "r" ,, NONCE="n",\r\n QOP="auth , auth-int",'
        ' Algorithm="SHA-256", stale=TRUE, domain="sip:a sip:b", foo=bar  '
    )
    (ch,) = parse_digest_challenges([value], "Proxy-Authenticate")
    assert ch == DigestChallenge(
        realm="r",
        nonce="n",
        algorithm="SHA-256",
        qop=("auth", "auth-int"),
        stale=True,
        domain=("sip:a", "sip:b"),
        header="Proxy-Authenticate",
        extra=(("foo", "bar"),),
    )
    assert ch.answer_header == "Proxy-Authorization"


def test_quoted_string_escapes_and_folding() -> None:
    (ch,) = parse_digest_challenges(['Digest realm="a\\\\b\\"c", nonce="x\r\n y", opaque="é"'])
    assert (ch.realm, ch.nonce, ch.opaque) == ('a\\b"c', "x y", "é")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        ",",
        'Digest realm="r"',  # no nonce
        'Digest nonce="n"',  # no realm
        'Digest realm="r", nonce="n", realm="s"',  # repeated parameter
        'Digest realm="r, nonce="n"',  # unterminated quote
        'Digest realm="r" nonce="n"',  # missing comma
        'Digest realm="r", nonce="n", stale=maybe',
        'Digest realm="r", nonce="n", userhash=1',
        'Digest realm="r", nonce="n", charset=ISO-8859-1',
        'Digest realm="r", nonce="n", qop=""',
        'Digest realm="r", nonce="n", algorithm=""',
        'Digest realm="r\x01", nonce="n"',  # control character
        'Digest realm="r", nonce="n\\\r"',  # CR in a quoted-pair
        'Digest realm="r",\r\nnonce="n"',  # CRLF without folding whitespace
        'Digest realm="r\\\x7f", nonce="n"',  # escaped control character
        'Digest realm="r", nonce="n", algorithm="SHA 256"',  # not a token
        "Digest abc==",  # token68 form
        '"Digest" realm="r"',
        'Digest realm=r=, nonce="n"',
        'Digest realm="r", nonce="n", =x',
        'Digest realm="r", nonce="n"' + ", x=1" * 40,  # too many params
        'Digest realm="' + "r" * MAX_FIELD_LENGTH + '", nonce="n"',  # too long
        ", ".join(['Basic realm="x"'] * 40),  # too many challenges
    ],
)
def test_bad_challenges_raise_remote_protocol_error(value: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_digest_challenges([value])


def test_too_many_challenges_across_fields() -> None:
    with pytest.raises(RemoteProtocolError):
        parse_digest_challenges([SHA256] * 40)


def test_parse_digest_challenges_wrong_header() -> None:
    with pytest.raises(LocalProtocolError):
        parse_digest_challenges([SHA256], "Authorization")


def test_unknown_schemes_are_skipped() -> None:
    assert parse_digest_challenges(['Basic realm="x"', "Bearer", "Negotiate abc="]) == []
    got = parse_digest_challenges(['Basic realm="x"', SHA256])
    assert [c.index for c in got] == [0]


def test_format_challenge_round_trip() -> None:
    ch = DigestChallenge(
        realm='a "b"',
        nonce="n\\1",
        algorithm="SHA-512-256-sess",
        qop=("auth", "auth-int"),
        opaque="o",
        stale=True,
        domain=("sip:a", "sip:b"),
        charset="UTF-8",
        userhash=True,
        extra=(("x-thing", "v v"),),
    )
    assert parse_digest_challenges([format_challenge(ch)]) == [ch]


def test_credentials_grammar() -> None:
    item = parse_credentials('Digest username="a", response="b" ')
    assert item.get("USERNAME") == "a"
    for bad in ('Digest username="a" x', "", 'Digest a="b", Basic x="y"'):
        with pytest.raises(RemoteProtocolError):
            parse_credentials(bad)
    with pytest.raises(RemoteProtocolError, match="without uri"):
        parse_authorization('Digest username="a", realm="r", nonce="n", response="x"')
    with pytest.raises(RemoteProtocolError, match="not Digest"):
        parse_authorization("Basic YWxhZGRpbjpvcGVuc2VzYW1l")


def test_formatting_refuses_what_cannot_be_sent() -> None:
    with pytest.raises(LocalProtocolError):
        quote_string("a\r\nb")
    with pytest.raises(LocalProtocolError):
        format_auth("Digest", [("qop", "not a token", False)])
    with pytest.raises(LocalProtocolError):
        format_auth("Dig est", [])
    with pytest.raises(LocalProtocolError):
        format_auth("Digest", [("na me", "v", True)])
    assert format_auth("Bearer", []) == "Bearer"
    assert quote_string('a"\\\tb') == '"a\\"\\\\\tb"'
    with pytest.raises(LocalProtocolError):
        compute_response(
            ALGORITHMS["md5"],
            username="a",
            password="b",
            realm="r",
            nonce="n",
            method="M",
            uri="u",
            qop="auth-conf",
            nc="1",
            cnonce="c",
        )
    with pytest.raises(LocalProtocolError):
        compute_response(
            ALGORITHMS["md5"],
            username="a",
            password="b",
            realm="r",
            nonce="n",
            method="M",
            uri="u",
            qop="auth",
        )
