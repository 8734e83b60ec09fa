"""Cisco dial plans: parsing, matching, rewriting, barring, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sippa.sip.dialplan import (
    CISCO_DEFAULT,
    MAX_NUMBER,
    MAX_PLAN,
    DialPlanError,
    Outcome,
    is_dialable,
    parse_dial_plan,
)

DEFAULT = parse_dial_plan(CISCO_DEFAULT)


@pytest.mark.parametrize(("number", "rule"), [
    ("*67", "*xx"),
    ("*99", "*xx"),
    ("911", "[3469]11"),
    ("411", "[3469]11"),
    ("0", "0"),
    ("00", "00"),
    ("5551234", "[2-9]xxxxxx"),
    ("14085551234", "1xxx[2-9]xxxxxxS0"),
    ("011441234567890", "xxxxxxxxxxxx."),
    ("123456789012", "xxxxxxxxxxxx."),
])
def test_default_plan_allows(number: str, rule: str) -> None:
    verdict = DEFAULT.check(number)
    assert verdict.outcome is Outcome.ALLOWED
    assert verdict.number == number and verdict.target == number
    assert verdict.rule == rule and verdict.reason == ""


@pytest.mark.parametrize("number", ["1001", "123", "1", "14085", "*6"])
def test_default_plan_incomplete(number: str) -> None:
    verdict = DEFAULT.check(number)
    assert verdict.outcome is Outcome.INCOMPLETE
    assert "incomplete" in verdict.reason


@pytest.mark.parametrize("number", ["*1#", "*123", "#1", "5551234#", "0#"])
def test_default_plan_no_match(number: str) -> None:
    verdict = DEFAULT.check(number)
    assert verdict.outcome is Outcome.NO_MATCH
    assert not verdict.allowed and "not a valid number" in verdict.reason


def test_timer_markers_are_exposed() -> None:
    alt = DEFAULT.alternatives[5]
    assert alt.text == "1xxx[2-9]xxxxxxS0" and alt.timers == (("S", 0),)
    plan = parse_dial_plan("(xx.L5|911T2|*xx,S9)")
    assert [a.timers for a in plan.alternatives] == [(("L", 5),), (("T", 2),), (("S", 9),)]
    assert plan.check("*12").allowed


@pytest.mark.parametrize(("plan", "number", "rewritten"), [
    ("(<9:>xxx.)", "9555", "555"),
    ("(<9:>xxx.)", "91234567", "1234567"),
    ("(<:+1>[2-9]xxxxxxxxx)", "4085551234", "+14085551234"),
    ("(<*67:>x.)", "*675551234", "5551234"),
    ("(<:1408>[2-9]xxxxxx)", "5551234", "14085551234"),
    ("(<011:+>x.)", "01133123", "+33123"),
    ("(<9,:>xx.)", "9123", "123"),
    ("(1<23:45>6)", "1236", "1456"),
    ("(<x.:>#)", "1234#", "#"),
    ("(<[2-4]:7>xx)", "312", "712"),
    ("(xxx<:00>)", "123", "12300"),
])
def test_substitution(plan: str, number: str, rewritten: str) -> None:
    verdict = parse_dial_plan(plan).check(number)
    assert verdict.outcome is Outcome.ALLOWED
    assert verdict.number == rewritten


def test_barring_wins_over_a_broader_pattern() -> None:
    plan = parse_dial_plan("(1xxx[2-9]xxxxxx|!1900xxxxxxx|[2-9]xxxxxx)")
    barred = plan.check("19005551234")
    assert barred.outcome is Outcome.BARRED and barred.rule == "!1900xxxxxxx"
    assert "barred" in barred.reason and barred.number == ""
    assert plan.check("18005551234").allowed
    assert plan.check("5551234").allowed


def test_most_explicit_match_wins_and_first_wins_a_tie() -> None:
    plan = parse_dial_plan("(xxx<:@a.test>|5xx<:@b.test>|5x5<:@c.test>|xxx<:@d.test>)")
    assert plan.check("555").host == "c.test"  # two literal 5s beat one
    assert plan.check("556").host == "b.test"
    assert plan.check("123").host == "a.test"  # xxx twice: the first one
    barred_tie = parse_dial_plan("(!xxx|xxx)")
    assert barred_tie.check("123").outcome is Outcome.BARRED


@pytest.mark.parametrize(("plan", "number", "ok"), [
    ("([2-9]xx)", "299", True),
    ("([2-9]xx)", "199", False),
    ("([13579])", "7", True),
    ("([13579])", "8", False),
    ("([1-3*#])", "#", True),
    ("([1-3*#])", "4", False),
    ("([0-0])", "0", True),
    ("(xX)", "12", True),
])
def test_sets_and_ranges(plan: str, number: str, ok: bool) -> None:
    assert parse_dial_plan(plan).check(number).allowed is ok


@pytest.mark.parametrize(("plan", "number", "ok"), [
    ("(1x.)", "1", True),
    ("(1x.)", "1234567", True),
    ("(1x.2)", "12", True),
    ("(1x.2)", "1992", True),
    ("(1x.2)", "199", False),
    ("([12].3)", "3", True),
    ("([12].3)", "121213", True),
    ("(x.x.x.x.)", "1" * MAX_NUMBER, True),
    ("(xx.)", "", False),
])
def test_repetition(plan: str, number: str, ok: bool) -> None:
    assert parse_dial_plan(plan).check(number).allowed is ok


def test_route_to_a_host() -> None:
    plan = parse_dial_plan("( 8xx <:@pbx.example.test:5070> | <9:>xx.<:@[2001:db8::1]> | xx. )")
    verdict = plan.check("801")
    assert verdict.allowed and verdict.host == "pbx.example.test:5070"
    assert verdict.target == "801@pbx.example.test:5070"
    assert plan.check("9123").target == "123@[2001:db8::1]"
    assert plan.check("1234").target == "1234"


def test_whitespace_and_no_parentheses() -> None:
    assert parse_dial_plan(" ( 9 1 1 | x x . ) ").check("911").rule == "911"
    assert parse_dial_plan("xx.").check("12").allowed


def test_numbers_that_are_not_keys_match_nothing() -> None:
    for text in ("12a", "+1555", "", "1 2", "1" * (MAX_NUMBER + 1)):
        assert DEFAULT.check(text).outcome is Outcome.NO_MATCH
    assert is_dialable("*67#0") and not is_dialable("bob") and not is_dialable("1@h")


@pytest.mark.parametrize(("plan", "words"), [
    ("", "empty"),
    ("   ", "empty"),
    ("()", "empty alternative"),
    ("(xx|)", "empty alternative"),
    ("(xx||1)", "empty alternative"),
    ("(xx", "not closed"),
    ("((xx))", "nested"),
    ("(x)(y)", "nested"),
    ("(.x)", ". must follow"),
    ("(x..)", ". must follow"),
    ("([1-)", "digit to a digit"),
    ("([9-1])", "backwards"),
    ("([])", "empty [ ] set"),
    ("([12)", "not closed with ]"),
    ("([a])", "cannot be in a [ ] set"),
    ("(<9>xx)", "first part of < : >"),
    ("<9", "needs a :"),
    ("(<9:xx)", "not closed with >"),
    ("(<9:a>xx)", "cannot be inserted"),
    ("(<:@gw0>xx)", "gateway gw0"),
    ("(xx<:@h.test;uid=a;pwd=b>)", "gateway parameters"),
    ("(xx<:@bad_host>)", "not a host"),
    ("(xx<:@h.test:0>)", "not a port"),
    ("(xx<:@h.test:99999>)", "not a port"),
    ("(xx<:@a.test><:@b.test>)", "one route"),
    ("(<1:@h.test>xx)", "replaces nothing"),
    ("(<:12>)", "matches no keys"),
    ("(S0)", "matches no keys"),
    ("(!)", "matches no keys"),
    ("(1?2)", "unexpected '?'"),
    ("(x\u00e9)", "printable ASCII"),
    ("(x\x00)", "printable ASCII"),
    ("(<:" + "1" * 40 + ">x)", "longer than"),
    ("(" + "x" * 70 + ")", "more than"),
    ("(" + "|".join(["x"] * 101) + ")", "at most 100"),
    ("(" + "x" * MAX_PLAN + ")", "at most 2048"),
])
def test_malformed_plans(plan: str, words: str) -> None:
    with pytest.raises(DialPlanError) as info:
        parse_dial_plan(plan)
    assert words in str(info.value)


def test_errors_say_where() -> None:
    with pytest.raises(DialPlanError, match=r"position 6 in '1\?2'"):
        parse_dial_plan("(xx|1?2)")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_the_dial_plan_error(text: str) -> None:
    try:
        plan = parse_dial_plan(text)
    except DialPlanError as exc:
        assert str(exc)
        return
    plan.check("123")


_PLAN_CHARS = st.sampled_from([*"()|[]<>:!.,@-x0123456789*#+SLT", "gw1", "h.test"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PLAN_CHARS, max_size=40).map("".join), st.text("0123456789*#", max_size=20))
def test_plan_like_text_parses_or_raises_and_matching_never_fails(text: str, number: str) -> None:
    try:
        plan = parse_dial_plan(text)
    except DialPlanError:
        return
    verdict = plan.check(number)
    assert verdict.outcome in Outcome
    if verdict.allowed:
        assert set(verdict.number) <= set("0123456789*#+")


@pytest.mark.parametrize(("plan", "number", "now"), [
    (CISCO_DEFAULT, "911", False),  # 911xxxxxxxxx would match xxxxxxxxxxxx.
    (CISCO_DEFAULT, "*67", True),  # nothing longer can match
    (CISCO_DEFAULT, "0", False),  # 00 could follow
    (CISCO_DEFAULT, "14085551234", True),  # S0: at once, although xxxxxxxxxxxx. goes on
    (CISCO_DEFAULT, "123456789012", False),
    ("(<9:>xxx.)", "9555", False),
    ("(xxx|xxxxS0)", "123", False),
    ("(xxx|xxxxS0)", "1234", True),
])
def test_dial_now(plan: str, number: str, now: bool) -> None:
    verdict = parse_dial_plan(plan).check(number)
    assert verdict.allowed and verdict.dial_now is now
