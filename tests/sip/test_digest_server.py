"""The answering side of Digest: our client's answers verify; forged, replayed, stale and
downgraded ones do not."""

from __future__ import annotations

import itertools

import pytest

from sippa.sip.digest import DigestClient, parse_digest_challenges
from sippa.sip.digest_server import NONCE_LIFETIME, DigestVerifier

SECRET = b"0123456789abcdef0123456789abcdef"
URI = "sip:phone@192.0.2.1"


def _verifier(**kw: object) -> DigestVerifier:
    passwords = {"alice": "alice-secret"}
    return DigestVerifier("sippa", SECRET, passwords.get, **kw)  # type: ignore[arg-type]


def _client(password: str = "alice-secret", **kw: object) -> DigestClient:
    counter = itertools.count()
    return DigestClient("alice", password, cnonce=lambda: f"c{next(counter)}", **kw)  # type: ignore[arg-type]


def _answer(client: DigestClient, challenges: list[str], method: str = "NOTIFY") -> str:
    return client.answer(method, URI, b"", 401, challenges).value


def test_challenges_are_offered_strongest_first_and_md5_can_be_left_out() -> None:
    got = parse_digest_challenges(_verifier().challenges(1000.0))
    assert [c.algorithm for c in got] == ["SHA-512-256", "SHA-256", "MD5"]
    assert all(c.qop == ("auth",) and c.realm == "sippa" for c in got)
    no_md5 = parse_digest_challenges(_verifier(allow_md5=False).challenges(1000.0))
    assert [c.algorithm for c in no_md5] == ["SHA-512-256", "SHA-256"]


@pytest.mark.parametrize("order", ["strongest", "server"])
def test_our_client_verifies(order: str) -> None:
    verifier = _verifier()
    client = _client(follow_server_order=order == "server")
    value = _answer(client, verifier.challenges(1000.0))
    verdict = verifier.verify("NOTIFY", [value], 1001.0)
    assert verdict.ok and verdict.username == "alice"
    assert "algorithm=SHA-512-256" in value


def test_wrong_password_method_or_body_fail() -> None:
    verifier = _verifier()
    challenges = verifier.challenges(1000.0)
    assert verifier.verify("NOTIFY", [_answer(_client("guess"), challenges)], 1001.0).reason == (
        "wrong credentials"
    )
    value = _answer(_client(), challenges, method="INVITE")
    assert verifier.verify("NOTIFY", [value], 1001.0).reason == "wrong credentials"


def test_replayed_credentials_are_refused_and_a_higher_nc_is_not() -> None:
    verifier = _verifier()
    client = _client()
    challenges = verifier.challenges(1000.0)
    first = _answer(client, challenges)
    assert verifier.verify("NOTIFY", [first], 1001.0).ok
    replay = verifier.verify("NOTIFY", [first], 1002.0)
    assert not replay.ok and "replayed" in replay.reason
    second = client.answer("NOTIFY", URI, b"", 401, challenges, sent=[]).value  # nc=2
    assert "nc=00000002" in second
    assert verifier.verify("NOTIFY", [second], 1003.0).ok


def test_expired_nonce_is_stale_and_forged_nonce_is_refused() -> None:
    verifier = _verifier()
    value = _answer(_client(), verifier.challenges(1000.0))
    late = verifier.verify("NOTIFY", [value], 1000.0 + NONCE_LIFETIME + 1)
    assert not late.ok and late.stale
    other = DigestVerifier("sippa", b"another secret of 32 bytes......", {"alice": "x"}.get)
    forged = _answer(_client(), other.challenges(1000.0))
    assert verifier.verify("NOTIFY", [forged], 1001.0).reason == "not a nonce we issued"


def test_md5_answer_refused_when_md5_is_not_allowed() -> None:
    verifier = _verifier(allow_md5=False)
    md5_only = _verifier().challenges(1000.0)[-1:]  # an attacker offers only MD5
    value = _answer(_client(), md5_only)
    assert verifier.verify("NOTIFY", [value], 1001.0).reason == "algorithm MD5 was not offered"


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([], "no credentials for our realm"),
        (['Digest username="alice", realm="other", nonce="1:2", uri="x", response="y"'],
         "no credentials for our realm"),
        (["Basic YWxpY2U6c2VjcmV0"], "malformed credentials"),
        (['Digest username="bob", realm="sippa", nonce="1:2", uri="x", response="y", '
          'qop=auth, nc=00000001, cnonce="c"'], "not a nonce we issued"),
    ],
)
def test_bad_credentials(values: list[str], reason: str) -> None:
    assert reason in _verifier().verify("NOTIFY", values, 1.0).reason


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        DigestVerifier("r", b"short", lambda _u: None)
