"""SDES a=crypto attributes (RFC 4568) and suite key lengths (RFC 4568, RFC 6188, RFC 7714)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.sdp import (
    CRYPTO_SUITES,
    SECURITY_RANKING,
    CryptoAttribute,
    KeyParams,
    generate_crypto_offer,
    parse_crypto,
)


@pytest.fixture(scope="module")
def rfc4568(vectors: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((vectors / "sdes" / "rfc4568_examples.json").read_text())
    return data


def _counter() -> Any:
    state = {"n": 0}

    def random_bytes(n: int) -> bytes:
        out = bytes((state["n"] + i) % 256 for i in range(n))
        state["n"] += n
        return out

    return random_bytes


def test_suite_table_matches_vectors(rfc4568: dict[str, Any]) -> None:
    table = rfc4568["crypto_suites"]
    for name, suite in CRYPTO_SUITES.items():
        assert suite.key_length == table[name]["master_key_octets"], name
        assert suite.salt_length == table[name]["master_salt_octets"], name
        encoded = base64.b64encode(bytes(suite.key_salt_length)).decode()
        assert len(encoded) == table[name]["inline_base64_chars"], name
    assert set(SECURITY_RANKING) == set(CRYPTO_SUITES)
    assert SECURITY_RANKING[:4] == ("AEAD_AES_256_GCM", "AEAD_AES_128_GCM",
                                    "AES_256_CM_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_80")


def test_rfc4568_examples(rfc4568: dict[str, Any]) -> None:
    for example in rfc4568["examples"]:
        line = example["line"]
        if line.startswith("inline:"):
            keys = [KeyParams.parse(line)]
        else:
            attr = parse_crypto(line)
            assert attr.tag == int(line.split(":")[1].split()[0])
            keys = list(attr.key_params)
            assert str(attr) == line.removeprefix("a=crypto:")
        assert len(keys) == len(example["key_params"])
        for got, want in zip(keys, example["key_params"], strict=True):
            assert len(got.key_salt) == want["decoded_octets"]
            assert got.key_salt.hex() == want["master_key"] + want["master_salt"]
            if want["lifetime"] is None:
                assert got.lifetime is None
            else:
                assert got.lifetime_text == want["lifetime"]
                assert got.lifetime == 2 ** int(want["lifetime"].split("^")[1])
            assert got.mki == want["mki_value"]
            assert got.mki_length == want["mki_length_octets"]


def test_rfc4568_parser_cases(rfc4568: dict[str, Any]) -> None:
    for case in rfc4568["parser_cases"]:
        verdict = case["expect"]
        if verdict.startswith("valid"):
            attr = parse_crypto(case["input"])
            assert attr.unsupported_params() == []
        elif verdict.startswith("implementation choice"):
            # Mixed-case suite names are accepted and resolved to the registered suite.
            attr = parse_crypto(case["input"])
            suite = attr.crypto_suite
            assert suite is not None and suite.name == "AES_CM_128_HMAC_SHA1_80"
        else:
            with pytest.raises(RemoteProtocolError) as info:
                parse_crypto(case["input"])
            assert info.value.status_code == 400


@pytest.mark.parametrize("name", sorted(CRYPTO_SUITES))
def test_every_suite_key_length(name: str) -> None:
    suite = CRYPTO_SUITES[name]
    good = base64.b64encode(bytes(range(suite.key_salt_length))).decode()
    attr = parse_crypto(f"1 {name} inline:{good}")
    assert attr.key_salt == bytes(range(suite.key_salt_length))
    for wrong in (suite.key_salt_length - 1, suite.key_salt_length + 1, suite.key_length):
        bad = base64.b64encode(bytes(wrong)).decode()
        with pytest.raises(RemoteProtocolError, match=f"needs {suite.key_salt_length}"):
            parse_crypto(f"1 {name} inline:{bad}")


def test_unknown_suite_parses_without_length_check() -> None:
    attr = parse_crypto("3 AEAD_AES_128_GCM_8 inline:JdqsXoCKFJF9sA5SyYPoWej4nTggwxHo5rNE4A==")
    assert attr.crypto_suite is None
    assert len(attr.key_salt) == 28


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1",
        "1 AES_CM_128_HMAC_SHA1_80",
        "x AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "1234567890 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "1 AES-CM inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "1 AES_CM_128_HMAC_SHA1_80 uri:http://x",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGV!",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz=",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^49",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|0",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|1:0",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|256:1",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|1:4|2^20",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|1|2|3",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz FEC_ORDER=X",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz KDR",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz "
        "UNENCRYPTED_SRTP=1",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz "
        "FEC_KEY=inline:AAAA",
    ],
)
def test_malformed_crypto(value: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_crypto(value)
    assert info.value.status_code == 400


def test_session_params_and_support() -> None:
    key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    ok = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{key} KDR=0 WSH=128 FEC_ORDER=FEC_SRTP"
                      " -FOO=bar")
    assert ok.session_params == ("KDR=0", "WSH=128", "FEC_ORDER=FEC_SRTP", "-FOO=bar")
    assert ok.unsupported_params() == []
    bad = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{key} UNENCRYPTED_SRTCP KDR=3 "
                       f"UNAUTHENTICATED_SRTP UNENCRYPTED_SRTP FEC_KEY=inline:{key}")
    assert bad.unsupported_params() == [
        "UNENCRYPTED_SRTCP", "KDR=3", "UNAUTHENTICATED_SRTP", "UNENCRYPTED_SRTP",
        f"FEC_KEY=inline:{key}"]
    mki = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4")
    assert mki.unsupported_params() == ["MKI"]


def test_lifetime_decimal_and_padding_tolerance() -> None:
    key = base64.b64encode(bytes(46)).decode()
    assert key.endswith("==")
    attr = parse_crypto(f"7 AES_256_CM_HMAC_SHA1_80 inline:{key.rstrip('=')}|1048576")
    assert attr.key_salt == bytes(46)
    assert attr.key_params[0].lifetime == 1048576
    assert str(attr) == f"7 AES_256_CM_HMAC_SHA1_80 inline:{key}|1048576"
    # Tabs and several spaces are WSP (RFC 4568 §9.1); a leading "a=crypto:" is tolerated.
    assert parse_crypto(f"a=crypto:7\tAES_256_CM_HMAC_SHA1_80  inline:{key}").tag == 7


def test_generate_offer() -> None:
    attrs = generate_crypto_offer(SECURITY_RANKING, _counter())
    assert [a.tag for a in attrs] == list(range(1, len(SECURITY_RANKING) + 1))
    assert [a.suite for a in attrs] == list(SECURITY_RANKING)
    for a in attrs:
        again = parse_crypto(str(a))
        assert again == a
        suite = a.crypto_suite
        assert suite is not None and len(a.key_salt) == suite.key_salt_length
    assert len({a.key_salt for a in attrs}) == len(attrs)  # fresh key for each line
    with pytest.raises(LocalProtocolError):
        generate_crypto_offer(["NULL_CIPHER"], _counter())
    with pytest.raises(LocalProtocolError):
        generate_crypto_offer(["AEAD_AES_128_GCM"], lambda n: b"short")


def test_crypto_attribute_construct_and_str() -> None:
    attr = CryptoAttribute(5, "AEAD_AES_128_GCM", (KeyParams(bytes(28), 2**31, "2^31"),),
                           ("WSH=64",))
    assert str(attr) == ("5 AEAD_AES_128_GCM inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==|2^31"
                         " WSH=64")
    assert parse_crypto(str(attr)) == attr


def test_suites_match_the_srtp_layer() -> None:
    # Every suite we negotiate must be one sippa.rtp can run, with the same key lengths.
    from sippa.rtp.srtp import SUITES

    for name, suite in CRYPTO_SUITES.items():
        assert name in SUITES, name
        assert SUITES[name].key_length == suite.key_length, name
        assert SUITES[name].salt_length == suite.salt_length, name
