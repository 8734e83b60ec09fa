"""Provisioning macros and rule syntax."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sippa.app.macros import device_macros, expand
from sippa.app.rules import Rule, RuleError, check_rule, parse_rule, rebuild_rule
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
        ("http://a.test/ | http://b.test/", "every alternative but the last"),
        ("($REGTMR1 eq 0)? http://a.test/ | http://b.test/", r"\$REGTMR1: no such macro"),
        ('($A gt 1)? http://a.test/', "not a number or a version"),
        ('("$A" lt "b")? http://a.test/', "only for equality"),
        ('("$A" eq 1)? http://a.test/', "cannot compare a string with a integer"),
        ("(1.2.3 eq 1)? http://a.test/", "cannot compare a version with a integer"),
        ("($A eq)? http://a.test/", "left op right"),
        ("($SN eq 1 and)? http://a.test/", "'and' needs a comparison"),
        ("()? http://a.test/", "empty condition"),
        ("($SN eq 1 http://a.test/", "not closed"),
        ("($SN eq 1) http://a.test/", "followed by ?"),
        ('(a = "1";)! http://a.test/', "only Profile Rules"),
        ("($MA eq 1)? | http://b.test/", "needs a URL"),
        ("(SN eq 1)? http://a.test/ |" * 16 + " http://a.test/", "at most 16"),
        ("[--uid u] http://p.test/x", "go together"),
        ("[--sha256 12] http://p.test/x", "64 hex"),
        ("http://u:p@p.test/x", "--uid"),
        ("http:///x", "no host"),
        ("http://[/x", "not a URL"),  # found by the property test below
        ("https://[::1/x", "not a URL"),
        ("https://p.test:99999/x", "not a URL"),
        ("https://p.test:x/x", "not a URL"),
    ],
)
def test_bad_rules(text: str, match: str) -> None:
    with pytest.raises(RuleError, match=match):
        parse_rule(text, VALUES)


MACROS = {**VALUES, "SWVER": "2.0.6", "B": "", "C": "12"}


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ("$SWVER ge 2.0.6", True),
        ("$SWVER gt 2.0.6", False),
        ("$SWVER lt 2.0.10", True),  # numerically, not as text
        ("$SWVER >= 2.0.5(b)", True),
        ("2.0.6(b) gt 2.0.6(a)", True),
        ("! 1.0.33", True),  # legacy: $SWVER != 1.0.33
        ("= 2.0.6", True),
        ("$C gt 9", True),  # integers numerically
        ("$C <= 11", False),
        ('"$B" eq ""', True),
        ('"$A" ne "grp"', False),
        ('"$A" = "grp" and $C eq 12 and $SWVER ne 1.0.0', True),
        ('"$A" eq "grp" and $C eq 13', False),
        ('"$MA" eq "0011aabbccdd"', True),
    ],
)
def test_conditions(condition: str, holds: bool) -> None:
    rule = parse_rule(f"( {condition} )? https://yes.test/ | https://no.test/", MACROS)
    assert rule is not None
    assert rule.url == ("https://yes.test/" if holds else "https://no.test/")


def test_first_true_alternative_wins_and_none_means_nothing_to_do() -> None:
    text = (
        '( $C gt 20 )? https://a.test/ | ( "$A" eq "grp" )? [--uid u --pwd p] https://b.test/$MA'
        " | https://c.test/"
    )
    rule = parse_rule(text, MACROS)
    assert rule is not None and rule.url == "https://b.test/0011aabbccdd" and rule.username == "u"
    assert parse_rule('( $C gt 20 )? https://a.test/ | ( "$A" eq "x" )? https://b.test/',
                      MACROS) is None


def test_a_macro_value_is_one_operand_never_an_operator_or_a_quote() -> None:
    # GPP_A comes from a profile: it must not be able to turn the condition around
    rule = parse_rule('( "$A" eq "x" )? https://a.test/ | https://b.test/',
                      {"A": 'y" ne "x'})
    assert rule is not None and rule.url == "https://b.test/"


def test_assignments_expand_macros_and_map_single_letters() -> None:
    rule = parse_rule(
        '( "$B" eq "" )? ( User_ID_1_ = "uid$A" ; c = "" ; GPP_D = "$MA" ; )! '
        "https://p.test/$C.xml | https://p.test/other.xml",
        MACROS,
        assignments=True,
    )
    assert rule is not None and rule.url == "https://p.test/12.xml"
    assert rule.assignments == (
        ("User_ID_1_", "uidgrp"), ("GPP_C", ""), ("GPP_D", "0011aabbccdd"),
    )
    # the URL is expanded again once the assignments are made
    again = rebuild_rule(rule, {**MACROS, "C": ""})
    assert again.url == "https://p.test/.xml" and again.assignments == ()
    only = parse_rule('( b = "1" )!', MACROS, assignments=True)
    assert only is not None and only.url == "" and only.assignments == (("GPP_B", "1"),)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('( q = "1" )!', "GPP_A..GPP_P"),
        ("( GPP_A = 1 )!", "double quotes"),
        ('( 1x = "1" )!', "Name ="),
        ("( )!", "empty assignment"),
    ],
)
def test_bad_assignments(text: str, match: str) -> None:
    with pytest.raises(RuleError, match=match):
        parse_rule(text, MACROS, assignments=True)


def test_secret_gpps_expand_only_in_the_key() -> None:
    secrets = {"SA": "s3cret"}
    rule = parse_rule("[--key $SA --uid $SA --pwd x] https://p.test/$SA.xml", MACROS,
                      secrets=secrets)
    assert rule is not None
    assert rule.key == "s3cret"
    assert rule.username == "$SA" and rule.url == "https://p.test/$SA.xml"
    assert "s3cret" not in repr(rule)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet='()[]|?!;=<>"$ abeqngtl0129.SWVERhtps:/-', max_size=80))
def test_any_text_is_a_rule_or_a_rule_error(text: str) -> None:
    for assignments in (False, True):
        with contextlib.suppress(RuleError):
            parse_rule(text, MACROS, assignments=assignments)
        problem = check_rule(text, assignments=assignments)
        assert problem is None or isinstance(problem, str)
