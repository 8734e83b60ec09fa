"""Reliable provisional responses (RFC 3262): two UA cores back to back on the loop network,
and a hand-driven UAS for the UAC's sequence rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sippa.errors import RemoteProtocolError
from sippa.sip.events import (
    Address,
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallRinging,
    IncomingCall,
    ResponseReceived,
)
from sippa.sip.invite import CallState
from sippa.sip.message import Request, make_response, parse_message
from sippa.sip.prack import (
    RAck,
    first_rseq,
    is_reliable_provisional,
    parse_rseq,
    requires_100rel,
    supports_100rel,
)
from sippa.sip.uri import Uri
from tests.sip.loop import Network, Node, make_core, request, response

BOB = Uri.parse("sip:bob@10.0.0.2")
OFFER = b"v=0\r\no=alice 1 1 IN IP4 10.0.0.1\r\n"
ANSWER = b"v=0\r\no=bob 1 1 IN IP4 10.0.0.2\r\n"
PEER = Address("udp", "10.0.0.9", 5060)


@pytest.fixture
def net() -> Network:
    return Network()


@pytest.fixture
def alice(net: Network) -> Node:
    return net.add("alice", make_core("alice", "10.0.0.1", rel100=True))


@pytest.fixture
def bob(net: Network) -> Node:
    return net.add("bob", make_core("bob", "10.0.0.2", rel100=True))


def incoming(node: Node) -> str:
    calls = node.of(IncomingCall)
    assert calls, node.events
    return calls[-1].call


def ring(net: Network, alice: Node, bob: Node, **invite: object) -> tuple[str, str]:
    call = alice.core.invite(BOB, net.now, body=OFFER, **invite)  # type: ignore[arg-type]
    net.run(duration=0.1)
    bcall = incoming(bob)
    bob.core.ringing(bcall, net.now)
    return call, bcall


# --- the headers (§7) -------------------------------------------------------------------------


def test_rack_and_rseq_values() -> None:
    assert RAck.parse("776656 1 INVITE") == RAck(776656, 1, "INVITE")
    assert str(RAck(5, 2, "INVITE")) == "5 2 INVITE"
    assert parse_rseq(" 42 ") == 42
    for bad in ("", "x", "1 INVITE", "0 1 INVITE", "1 1 IN VITE", "99999999999 1 INVITE"):
        with pytest.raises(RemoteProtocolError):
            RAck.parse(bad)
    for bad in ("", "0", "-1", "1 2", "99999999999"):
        with pytest.raises(RemoteProtocolError):
            parse_rseq(bad)
    assert first_rseq(0.0) == 1
    assert 1 <= first_rseq(0.999999) <= 2**31 - 1


def test_reliable_provisional_needs_require_and_rseq() -> None:
    invite = Request(
        "INVITE", BOB, parse_message(_raw_invite()).headers, b""  # type: ignore[union-attr]
    )
    ringing = make_response(invite, 180, to_tag="t")
    assert is_reliable_provisional(ringing) is None
    ringing.headers.add("Require", "100rel")
    assert is_reliable_provisional(ringing) is None  # no RSeq: cannot be PRACKed
    ringing.headers.add("RSeq", "9")
    assert is_reliable_provisional(ringing) == 9
    assert requires_100rel(ringing) and supports_100rel(ringing)
    final = make_response(invite, 200, to_tag="t")
    final.headers.add("Require", "100rel")
    final.headers.add("RSeq", "9")
    assert is_reliable_provisional(final) is None  # only 101-199
    bad = make_response(invite, 183, to_tag="t")
    bad.headers.add("Require", "timer, 100rel")
    bad.headers.add("RSeq", "nine")
    assert is_reliable_provisional(bad) is None


def _raw_invite() -> bytes:
    return (
        b"INVITE sip:bob@10.0.0.2 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKraw1\r\n"
        b"From: <sip:carol@10.0.0.9>;tag=c1\r\nTo: <sip:bob@10.0.0.2>\r\n"
        b"Call-ID: raw-1\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@10.0.0.9>\r\n"
        b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )


# --- both sides on (§3, §4) -------------------------------------------------------------------


def test_180_goes_reliably_and_is_pracked(net: Network, alice: Node, bob: Node) -> None:
    call, bcall = ring(net, alice, bob)
    net.run(duration=0.1)
    invite = net.sent_by(alice, request("INVITE"))[0]
    assert "100rel" in (invite.header("Supported") or "")
    assert "PRACK" in (invite.header("Allow") or "")
    ringing = net.sent_by(bob, response(180))
    assert len(ringing) == 1
    assert ringing[0].header("Require") == "100rel"
    rseq = int(ringing[0].header("RSeq") or "0")
    assert 1 <= rseq < 2**31
    pracks = net.sent_by(alice, request("PRACK"))
    assert len(pracks) == 1
    assert pracks[0].header("RAck") == f"{rseq} 1 INVITE"
    assert pracks[0].header("CSeq") == "2 PRACK"  # in the early dialog
    assert "tag=" in (pracks[0].header("To") or "")
    assert len(net.sent_by(bob, response(200, "PRACK"))) == 1
    assert len(alice.of(CallRinging)) == 1
    assert alice.core.call_state(call) is CallState.EARLY
    bob.core.answer(bcall, net.now, body=ANSWER)
    net.run(duration=0.1)
    assert alice.of(CallAnswered)[0].body == ANSWER
    assert bob.of(CallConfirmed)[0].call == bcall
    assert alice.core.reliable_provisionals(call) and bob.core.reliable_provisionals(bcall)
    alice.core.bye(call, net.now)
    net.run(duration=0.1)
    assert net.sent_by(alice, request("BYE"))[0].header("CSeq") == "3 BYE"
    assert bob.of(CallEnded) == [CallEnded(bcall, "bye-remote", None)]
    net.run()
    assert alice.core.get_timer() is None and bob.core.get_timer() is None


def test_caller_without_100rel_gets_unreliable_18x(net: Network, bob: Node) -> None:
    alice = net.add("alice", make_core("alice", "10.0.0.1"))  # rel100 off
    call, bcall = ring(net, alice, bob)
    net.run(duration=0.1)
    invite = net.sent_by(alice, request("INVITE"))[0]
    assert invite.header("Supported") is None
    ringing = net.sent_by(bob, response(180))[0]
    assert ringing.header("RSeq") is None and ringing.header("Require") is None
    bob.core.answer(bcall, net.now, body=ANSWER)  # not held: nothing to PRACK
    net.run(duration=0.1)
    assert net.sent_by(alice, request("PRACK")) == []
    assert alice.core.call_state(call) is CallState.CONFIRMED
    assert not bob.core.reliable_provisionals(bcall)


def test_caller_asks_100rel_per_call(net: Network, bob: Node) -> None:
    alice = net.add("alice", make_core("alice", "10.0.0.1"))  # off by default
    ring(net, alice, bob, rel100=True)
    net.run(duration=0.1)
    assert net.sent_by(bob, response(180))[0].header("RSeq") is not None
    assert len(net.sent_by(alice, request("PRACK"))) == 1


def test_callee_with_100rel_off_sends_unreliable_18x(net: Network, alice: Node) -> None:
    bob = net.add("bob", make_core("bob", "10.0.0.2"))  # rel100 off
    call, _bcall = ring(net, alice, bob)
    net.run(duration=0.1)
    assert net.sent_by(bob, response(180))[0].header("RSeq") is None
    assert net.sent_by(alice, request("PRACK")) == []
    assert alice.core.call_state(call) is CallState.EARLY


def test_require_100rel_with_it_off_gets_420(net: Network, alice: Node) -> None:
    bob = net.add("bob", make_core("bob", "10.0.0.2"))  # rel100 off
    call = alice.core.invite(BOB, net.now, body=OFFER, headers=[("Require", "100rel")])
    net.run(duration=0.5)
    bad = net.sent_by(bob, response(420))
    assert len(bad) == 1 and bad[0].header("Unsupported") == "100rel"
    assert bob.of(IncomingCall) == []
    assert alice.of(CallEnded) == [CallEnded(call, "rejected", 420)]


def test_require_100rel_with_it_on_is_taken(net: Network, alice: Node, bob: Node) -> None:
    alice2 = net.add("carol", make_core("carol", "10.0.0.3"))  # off, but demands it
    call = alice2.core.invite(BOB, net.now, body=OFFER, headers=[("Require", "100rel")])
    net.run(duration=0.1)
    bob.core.ringing(incoming(bob), net.now)
    net.run(duration=0.1)
    assert net.sent_by(bob, response(180))[0].header("RSeq") is not None
    # a UAC that did not offer 100rel does not PRACK (and the call still proceeds)
    assert alice2.core.call_state(call) is CallState.EARLY


def test_per_request_decision(net: Network, alice: Node) -> None:
    bob = net.add("bob", make_core("bob", "10.0.0.2"))
    seen: list[str] = []

    def decide(req: Request) -> bool:
        seen.append(req.method)
        return False

    bob.core.rel100_for = decide  # the called line's setting: off
    alice.core.invite(BOB, net.now, body=OFFER, headers=[("Require", "100rel")])
    net.run(duration=0.5)
    assert seen == ["INVITE"]
    assert len(net.sent_by(bob, response(420))) == 1
    bob.core.rel100_for = lambda req: True
    alice.core.invite(BOB, net.now, body=OFFER, headers=[("Require", "100rel")])
    net.run(duration=0.1)
    assert len(bob.of(IncomingCall)) == 1


def test_unknown_require_still_gets_420(net: Network, alice: Node, bob: Node) -> None:
    alice.core.invite(BOB, net.now, body=OFFER, headers=[("Require", "100rel, foo")])
    net.run(duration=0.5)
    bad = net.sent_by(bob, response(420))
    assert len(bad) == 1 and bad[0].header("Unsupported") == "foo"


# --- UAS: retransmission, the held 2xx, queueing (§3) -------------------------------------------


def test_reliable_18x_retransmitted_until_prack(net: Network, alice: Node, bob: Node) -> None:
    net.drop(request("PRACK"), times=2)
    ring(net, alice, bob)
    rang_at = net.now
    net.run(duration=5)
    ringing = net.sent_by(bob, response(180))
    # T1 doubling until the PRACK (its own transaction retransmits it: Timer E)
    assert [round(p.sent_at - rang_at, 2) for p in ringing] == [0.0, 0.5, 1.5]
    assert len({p.data for p in ringing}) == 1
    # the retransmissions (same RSeq) are not PRACKed again nor reported again
    assert len(alice.of(CallRinging)) == 1
    assert len(net.sent_by(bob, response(200, "PRACK"))) == 1
    assert bob.core._sessions[incoming(bob)].rel_pending is None


def test_no_prack_for_64_t1_rejects_with_504(net: Network, alice: Node, bob: Node) -> None:
    net.drop(request("PRACK"), times=-1)
    call, bcall = ring(net, alice, bob)
    rang_at = net.now
    net.run(duration=40)
    ringing = net.sent_by(bob, response(180))
    assert [round(p.sent_at - rang_at, 2) for p in ringing] == [
        0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5,
    ]  # fmt: skip  (no T2 cap: §3 doubles every time)
    final = net.sent_by(bob, response(504, "INVITE"))
    assert final and final[0].sent_at == pytest.approx(rang_at + 32)
    assert bob.of(CallEnded) == [CallEnded(bcall, "prack-timeout", 504)]
    assert alice.of(CallEnded) == [CallEnded(call, "rejected", 504)]


def test_2xx_held_until_the_prack(net: Network, alice: Node, bob: Node) -> None:
    net.delay(request("PRACK"), by=1.0, times=-1)
    call, bcall = ring(net, alice, bob)
    bob.core.answer(bcall, net.now, body=ANSWER)  # before the PRACK arrived
    net.run(duration=0.5)
    assert net.sent_by(bob, response(200, "INVITE")) == []
    assert bob.core.call_state(bcall) is CallState.EARLY
    net.run(duration=1.0)
    prack_ok = net.sent_by(bob, response(200, "PRACK"))
    ok = net.sent_by(bob, response(200, "INVITE"))
    # (the PRACK's own retransmission gets the same 200 from its server transaction)
    assert len({p.data for p in prack_ok}) == 1 and len(ok) == 1
    assert ok[0].sent_at >= prack_ok[0].sent_at
    assert ok[0].header("RSeq") is None
    assert alice.core.call_state(call) is CallState.CONFIRMED
    assert bob.core.call_state(bcall) is CallState.CONFIRMED


def test_second_provisional_waits_for_the_first_prack(
    net: Network, alice: Node, bob: Node
) -> None:
    net.delay(request("PRACK"), by=1.0, times=-1)
    _call, bcall = ring(net, alice, bob)
    bob.core.ringing(bcall, net.now, 183, body=ANSWER)
    net.run(duration=0.5)
    assert net.sent_by(bob, response(183)) == []
    net.run(duration=3)
    first = net.sent_by(bob, response(180))[0]
    second = net.sent_by(bob, response(183))
    assert len({p.data for p in second}) == 1  # (re-sent until its own PRACK came)
    assert int(second[0].header("RSeq") or 0) == int(first.header("RSeq") or 0) + 1
    pracks = net.sent_by(alice, request("PRACK"))
    assert sorted({p.header("CSeq") for p in pracks}) == ["2 PRACK", "3 PRACK"]
    ringing = alice.of(CallRinging)
    assert [e.status_code for e in ringing] == [180, 183] and ringing[1].body == ANSWER


def test_prack_for_an_unknown_rseq_gets_481(net: Network, alice: Node, bob: Node) -> None:
    net.drop(request("PRACK"), times=-1)
    call, bcall = ring(net, alice, bob)
    net.run(duration=0.1)
    net.rules.clear()
    session = alice.core._sessions[call]
    dialog = next(iter(session.early_dialogs.values()))
    for rack in ("999 1 INVITE", "not a rack"):
        prack = dialog.create_request("PRACK", extra=(("RAck", rack),))
        alice.core.send_prepared(prack, dialog.next_hop(), net.now)
        net.run(duration=0.1)
    statuses = [e.response.status_code for e in alice.of(ResponseReceived)]
    assert statuses == [481, 400]
    assert bob.core.call_state(bcall) is CallState.EARLY  # still waiting for the right one


def test_prack_after_the_2xx_gets_481(net: Network, alice: Node, bob: Node) -> None:
    call, bcall = ring(net, alice, bob)
    net.run(duration=0.1)
    bob.core.answer(bcall, net.now, body=ANSWER)
    net.run(duration=0.1)
    dialog = alice.core._sessions[call].dialog
    assert dialog is not None
    rseq = net.sent_by(bob, response(180))[0].header("RSeq")
    prack = dialog.create_request("PRACK", extra=(("RAck", f"{rseq} 1 INVITE"),))
    alice.core.send_prepared(prack, dialog.next_hop(), net.now)
    net.run(duration=0.1)
    assert [e.response.status_code for e in alice.of(ResponseReceived)] == [481]


def test_prack_outside_any_dialog_gets_481(net: Network, bob: Node) -> None:
    inbox = net.listen(PEER)
    data = (
        b"PRACK sip:bob@10.0.0.2 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp1\r\n"
        b"From: <sip:carol@10.0.0.9>;tag=c1\r\nTo: <sip:bob@10.0.0.2>;tag=nope\r\n"
        b"Call-ID: nope\r\nCSeq: 2 PRACK\r\nRAck: 1 1 INVITE\r\n"
        b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    net.inject(data, PEER, bob.core.config.local[0])
    net.run(duration=0.1)
    assert [p.status for p in inbox] == [481]


def test_cancel_stops_the_retransmissions(net: Network, alice: Node, bob: Node) -> None:
    net.drop(request("PRACK"), times=-1)
    call, bcall = ring(net, alice, bob)
    net.run(duration=0.2)
    alice.core.cancel(call, net.now)
    net.run(duration=10)
    assert len(net.sent_by(bob, response(180))) == 1
    assert bob.of(CallEnded) == [CallEnded(bcall, "cancelled", 487)]
    assert alice.of(CallEnded) == [CallEnded(call, "cancelled", 487)]


def test_reject_while_a_prack_is_due(net: Network, alice: Node, bob: Node) -> None:
    net.drop(request("PRACK"), times=-1)
    call, bcall = ring(net, alice, bob)
    bob.core.reject(bcall, net.now, 486)
    net.run(duration=10)
    assert len(net.sent_by(bob, response(180))) == 1
    assert alice.of(CallEnded) == [CallEnded(call, "rejected", 486)]


def test_prack_with_an_offer_is_refused_but_acknowledges(
    net: Network, alice: Node, bob: Node
) -> None:
    net.drop(request("PRACK"), times=-1)
    call, bcall = ring(net, alice, bob)
    net.run(duration=0.1)
    net.rules.clear()
    dialog = next(iter(alice.core._sessions[call].early_dialogs.values()))
    rseq = net.sent_by(bob, response(180))[0].header("RSeq")
    prack = dialog.create_request(
        "PRACK", body=OFFER, extra=(("RAck", f"{rseq} 1 INVITE"),)
    )
    alice.core.send_prepared(prack, dialog.next_hop(), net.now)
    net.run(duration=0.1)
    assert [e.response.status_code for e in alice.of(ResponseReceived)] == [488]
    assert bob.core._sessions[bcall].rel_pending is None


# --- UAC: sequence rules against a hand-driven UAS (§4) -----------------------------------------


def _reliable(invite: Request, status: int, rseq: int | None, tag: str = "u1") -> bytes:
    out = make_response(invite, status, to_tag=tag)
    out.headers.add("Contact", "<sip:uas@10.0.0.9>")
    if rseq is not None:
        out.headers.add("Require", "100rel")
        out.headers.add("RSeq", str(rseq))
    return bytes(out)


def test_uac_pracks_in_order_only(net: Network, alice: Node) -> None:
    inbox = net.listen(PEER)
    call = alice.core.invite(Uri.parse("sip:uas@10.0.0.9"), net.now, body=OFFER)
    net.run(duration=0.1)
    invite = parse_message(inbox[0].data)
    assert isinstance(invite, Request)
    src = inbox[0].src
    for rseq in (5, 5, 7, 6, 4):  # first, retransmission, gap, next, stale
        net.inject(_reliable(invite, 183, rseq), PEER, src)
        net.run(duration=0.05)
    pracks = [p for p in inbox if p.method == "PRACK"]
    assert [p.header("RAck") for p in pracks] == ["5 1 INVITE", "6 1 INVITE"]
    assert [p.first_line.split()[1] for p in pracks] == ["sip:uas@10.0.0.9"] * 2
    assert len(alice.of(CallRinging)) == 2  # the ignored ones are not processed
    # a fork has its own RSeq space
    net.inject(_reliable(invite, 180, 100, tag="u2"), PEER, src)
    net.run(duration=0.05)
    pracks = [p for p in inbox if p.method == "PRACK"]
    assert pracks[-1].header("RAck") == "100 1 INVITE" and "tag=u2" in (
        pracks[-1].header("To") or ""
    )
    assert alice.core.reliable_provisionals(call)


def test_failed_prack_does_not_break_the_call(net: Network, alice: Node) -> None:
    inbox = net.listen(PEER)
    call = alice.core.invite(Uri.parse("sip:uas@10.0.0.9"), net.now, body=OFFER)
    net.run(duration=0.1)
    invite = parse_message(inbox[0].data)
    assert isinstance(invite, Request)
    src = inbox[0].src
    net.inject(_reliable(invite, 183, 1), PEER, src)
    net.run(duration=0.05)
    prack = parse_message(next(p for p in inbox if p.method == "PRACK").data)
    assert isinstance(prack, Request)
    net.inject(bytes(make_response(prack, 481, to_tag="u1")), PEER, src)
    net.run(duration=0.05)
    assert alice.core.call_state(call) is CallState.EARLY
    net.inject(_reliable(invite, 200, None), PEER, src)
    net.run(duration=0.05)
    assert alice.core.call_state(call) is CallState.CONFIRMED
    acks = [p for p in inbox if p.method == "ACK"]
    assert len(acks) == 1 and acks[0].header("CSeq") == "1 ACK"


def test_unreliable_or_unasked_100rel_is_not_pracked(net: Network) -> None:
    alice = net.add("alice", make_core("alice", "10.0.0.1"))  # did not offer 100rel
    inbox = net.listen(PEER)
    alice.core.invite(Uri.parse("sip:uas@10.0.0.9"), net.now, body=OFFER)
    net.run(duration=0.1)
    invite = parse_message(inbox[0].data)
    assert isinstance(invite, Request)
    net.inject(_reliable(invite, 180, 1), PEER, inbox[0].src)
    net.run(duration=0.05)
    assert [p for p in inbox if p.method == "PRACK"] == []
    assert len(alice.of(CallRinging)) == 1


def test_challenged_prack_is_resent_with_the_early_dialogs_next_cseq(net: Network) -> None:
    from sippa.sip.message import Response
    from sippa.sip.registration import Credentials

    alice = net.add("alice", make_core("alice", "10.0.0.1", rel100=True))

    def authorize(req: Request, challenge: Response) -> Credentials:
        return Credentials.single("Proxy-Authorization", 'Digest username="alice"', "MD5")

    alice.core.authorize = authorize
    inbox = net.listen(PEER)
    call = alice.core.invite(Uri.parse("sip:uas@10.0.0.9"), net.now, body=OFFER)
    net.run(duration=0.1)
    invite = parse_message(inbox[0].data)
    assert isinstance(invite, Request)
    src = inbox[0].src
    net.inject(_reliable(invite, 180, 1), PEER, src)
    net.run(duration=0.05)
    prack = parse_message(next(p for p in inbox if p.method == "PRACK").data)
    assert isinstance(prack, Request)
    net.inject(bytes(make_response(prack, 407, to_tag="u1")), PEER, src)
    net.run(duration=0.05)
    pracks = [p for p in inbox if p.method == "PRACK"]
    assert [p.header("CSeq") for p in pracks] == ["2 PRACK", "3 PRACK"]
    assert pracks[1].header("Proxy-Authorization") is not None
    net.inject(_reliable(invite, 200, None), PEER, src)
    net.run(duration=0.05)
    alice.core.bye(call, net.now)
    net.run(duration=0.05)
    assert next(p for p in inbox if p.method == "BYE").header("CSeq") == "4 BYE"


def test_prack_to_the_caller_gets_481(net: Network, alice: Node) -> None:
    inbox = net.listen(PEER)
    call = alice.core.invite(Uri.parse("sip:uas@10.0.0.9"), net.now, body=OFFER)
    net.run(duration=0.1)
    invite = parse_message(inbox[0].data)
    assert isinstance(invite, Request)
    src = inbox[0].src
    net.inject(_reliable(invite, 180, 1), PEER, src)
    net.run(duration=0.05)
    from_tag = invite.from_.tag or ""
    stray = (
        "PRACK sip:alice@10.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKstray\r\n"
        f"From: <sip:uas@10.0.0.9>;tag=u1\r\nTo: <sip:alice@10.0.0.1>;tag={from_tag}\r\n"
        f"Call-ID: {invite.call_id}\r\nCSeq: 7 PRACK\r\nRAck: 1 1 INVITE\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    net.inject(stray, PEER, src)
    net.run(duration=0.05)
    assert [p.status for p in inbox if p.status is not None] == [481]
    assert alice.core.call_state(call) is CallState.EARLY


def test_unanswered_prack_times_out_without_ending_the_call(net: Network, alice: Node) -> None:
    inbox = net.listen(PEER)
    call = alice.core.invite(Uri.parse("sip:uas@10.0.0.9"), net.now, body=OFFER)
    net.run(duration=0.1)
    invite = parse_message(inbox[0].data)
    assert isinstance(invite, Request)
    net.inject(_reliable(invite, 183, 1), PEER, inbox[0].src)
    net.run(duration=40)  # the PRACK's Timer F fires; the INVITE waits for its final answer
    session = alice.core._sessions[call]
    assert session.prack_txns == set()
    assert len([p for p in inbox if p.method == "PRACK"]) > 1  # Timer E retransmissions
    assert alice.core.call_state(call) is CallState.EARLY


@given(st.text(max_size=80))
def test_header_parsers_raise_only_protocol_errors(text: str) -> None:
    for parse in (RAck.parse, parse_rseq):
        try:
            parse(text)
        except RemoteProtocolError as exc:
            assert exc.status_code == 400
