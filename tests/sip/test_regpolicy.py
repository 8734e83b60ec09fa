"""Make/Ans Call Without Reg: the decision for a line that should be registered but is not."""

from __future__ import annotations

import itertools

import pytest

from sippa.sip.regpolicy import INCOMING_STATUS, NOT_REGISTERED, WithoutReg


def test_480_temporarily_unavailable_for_strays() -> None:
    assert INCOMING_STATUS == 480


def test_cisco_defaults_refuse_both_ways_while_unregistered() -> None:
    gate = WithoutReg(registers=True, registered=False)
    assert gate.unregistered and gate.refuses_outgoing and gate.refuses_incoming
    error = gate.outgoing_error()
    assert error is not None and error.startswith(NOT_REGISTERED)
    assert "Make Call Without Reg" in error
    assert gate.status() == "not registered: calls can be neither made nor answered"


def test_registered_line_refuses_nothing() -> None:
    gate = WithoutReg(registers=True, registered=True)
    assert not gate.unregistered
    assert not gate.refuses_outgoing and not gate.refuses_incoming
    assert gate.outgoing_error() is None and gate.status() is None


@pytest.mark.parametrize(
    ("registered", "make", "answer"), list(itertools.product((False, True), repeat=3))
)
def test_a_line_that_does_not_register_is_never_affected(
    registered: bool, make: bool, answer: bool
) -> None:
    gate = WithoutReg(registers=False, registered=registered, make_call=make, answer_call=answer)
    assert not gate.unregistered
    assert not gate.refuses_outgoing and not gate.refuses_incoming
    assert gate.outgoing_error() is None and gate.status() is None


def test_each_direction_has_its_own_setting() -> None:
    make = WithoutReg(registers=True, registered=False, make_call=True)
    assert not make.refuses_outgoing and make.refuses_incoming
    assert make.outgoing_error() is None
    assert make.status() == (
        "not registered: incoming calls are refused with 480 (calls can be made)")
    answer = WithoutReg(registers=True, registered=False, answer_call=True)
    assert answer.refuses_outgoing and not answer.refuses_incoming
    assert answer.status() == "not registered: calls cannot be made (incoming calls are answered)"
    both = WithoutReg(registers=True, registered=False, make_call=True, answer_call=True)
    assert not both.refuses_outgoing and not both.refuses_incoming and both.status() is None
