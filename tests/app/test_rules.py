"""Provisioning macros and rule syntax."""

from __future__ import annotations

import pytest

from sippa.app.macros import device_macros, expand
from sippa.app.rules import Rule, RuleError, parse_rule
from sippa.app.store import ConfigStore

VALUES = {"MA": "0011aabbccdd", "MAU": "0011AABBCCDD", "PSN": "sippa", "SN": "S123", "A": "grp"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/$PSN/$MA.xml", "/sippa/0011aabbccdd.xml"),
        ("$MAU", "0011AABBCCDD"),  # longest name wins
        ("$MAUX", "0011AABBCCDDX"),
        ("$$MA", "$MA"),
        ("$(MA:6)", "bbccdd"),
        ("$(MA:2:4)", "11aa"),
        ("$(MA)", "0011aabbccdd"),
        ("$NOPE/$(NOPE:1)/$", "$NOPE/$(NOPE:1)/$"),  # unknown macros stay
        ("$A-$SN", "grp-S123"),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert expand(text, VALUES) == expected


def test_expansion_is_not_recursive() -> None:
    assert expand("$A", {"A": "$MA", "MA": "x"}) == "$MA"


def test_device_macros_from_the_store() -> None:
    store = ConfigStore()
    store.update({("gpp_b", 0): "branch-7"})
    m = device_macros(
        store, mac="00:11:AA:bb:cc:dd", serial="S1", software_version="0.1.0", ip="127.0.0.1"
    )
    assert m["MA"] == "0011aabbccdd" and m["MAU"] == "0011AABBCCDD"
    assert m["MAC"] == "00:11:aa:bb:cc:dd" and m["B"] == "branch-7" and m["P"] == ""
    assert expand("https://p.test/$B/$MA.xml?v=$SWVER&ip=$IP", m) == (
        "https://p.test/branch-7/0011aabbccdd.xml?v=0.1.0&ip=127.0.0.1"
    )


def test_parse_rule_with_options() -> None:
    rule = parse_rule('[--key "a b$A" --uid $SN --pwd pw] https://p.test/$MA.xml', VALUES)
    assert rule == Rule(
        url="https://p.test/0011aabbccdd.xml", key="a bgrp", username="S123", password="pw"
    )
    assert rule.https
    assert "pw" not in repr(rule) and "a bgrp" not in repr(rule)
    assert parse_rule("  ") is None
    digest = "ab" * 32
    pinned = parse_rule(f"[--sha256 {digest}]http://p.test/ca.pem")
    assert pinned is not None and pinned.sha256 == bytes.fromhex(digest) and not pinned.https


def test_macro_values_cannot_inject_options() -> None:
    rule = parse_rule("[--uid $A --pwd p] https://p.test/$A.xml", {"A": "]--key=x["})
    assert rule is not None and rule.key is None and rule.username == "]--key=x["


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("/$PSN.xml", "only http"),
        ("tftp://p.test/x.xml", "only http"),
        ("ftp://p.test/x.xml", "unsupported URL scheme"),
        ("[--post a] http://p.test/x", "unsupported rule option"),
        ("[--key] http://p.test/x", "needs a value"),
        ("[--key a http://p.test/x", "not closed"),
        ("($REGTMR1 eq 0)? http://a.test/ | http://b.test/", "conditional"),
        ("http://a.test/ | http://b.test/", "alternative"),
        ("[--uid u] http://p.test/x", "go together"),
        ("[--sha256 12] http://p.test/x", "64 hex"),
        ("http://u:p@p.test/x", "--uid"),
        ("http:///x", "no host"),
    ],
)
def test_bad_rules(text: str, match: str) -> None:
    with pytest.raises(RuleError, match=match):
        parse_rule(text, VALUES)
