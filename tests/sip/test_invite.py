"""INVITE sessions end to end: two UA cores back to back on the in-memory loop network."""

from __future__ import annotations

import secrets
import select
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sippa.errors import LocalProtocolError
from sippa.sip.core import CoreConfig, UserAgentCore
from sippa.sip.events import (
    Address,
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallRinging,
    IncomingCall,
    ReinviteAnswered,
    ReinviteFailed,
    ReinviteGlare,
    ReinviteReceived,
    RequestReceived,
    ResponseReceived,
)
from sippa.sip.headers import NameAddr
from sippa.sip.invite import CallState, glare_delay
from sippa.sip.message import Request, Response, make_response, parse_message
from sippa.sip.uri import Uri
from tests.peers.fixtures import kamailio, kamailio_factory, lab_certs  # noqa: F401
from tests.sip.loop import Network, Node, make_core, request, response

BOB = Uri.parse("sip:bob@10.0.0.2")
OFFER = b"v=0\r\no=alice 1 1 IN IP4 10.0.0.1\r\n"
ANSWER = b"v=0\r\no=bob 1 1 IN IP4 10.0.0.2\r\n"


@pytest.fixture
def net() -> Network:
    return Network()


@pytest.fixture
def alice(net: Network) -> Node:
    return net.add("alice", make_core("alice", "10.0.0.1"))


@pytest.fixture
def bob(net: Network) -> Node:
    return net.add("bob", make_core("bob", "10.0.0.2"))


def incoming(node: Node) -> str:
    calls = node.of(IncomingCall)
    assert calls, node.events
    return calls[-1].call


def establish(net: Network, alice: Node, bob: Node) -> tuple[str, str]:
    call = alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.1)
    bcall = incoming(bob)
    bob.core.ringing(bcall, net.now)
    net.run(duration=0.1)
    bob.core.answer(bcall, net.now, body=ANSWER)
    net.run(duration=0.1)
    assert alice.core.call_state(call) is CallState.CONFIRMED
    assert bob.core.call_state(bcall) is CallState.CONFIRMED
    return call, bcall


def names(node: Node) -> list[str]:
    return [type(e).__name__ for e in node.events]


# --- basic calls and BYE both ways (§13, §15) -------------------------------------------------


def test_call_and_bye_from_caller(net: Network, alice: Node, bob: Node) -> None:
    call, bcall = establish(net, alice, bob)
    inc = bob.of(IncomingCall)[0]
    assert inc.body == OFFER and inc.content_type == "application/sdp"
    answered = alice.of(CallAnswered)[0]
    assert answered.body == ANSWER and answered.call == call
    assert bob.of(CallConfirmed)[0].call == bcall
    assert alice.of(CallRinging)[0].status_code == 180
    alice.core.bye(call, net.now)
    net.run()
    assert names(alice) == ["CallRinging", "CallAnswered", "CallEnded"]
    assert names(bob) == ["IncomingCall", "CallConfirmed", "CallEnded"]
    assert alice.of(CallEnded)[0] == CallEnded(call, "bye-local", 200)
    assert bob.of(CallEnded)[0] == CallEnded(bcall, "bye-remote", None)
    # only one ACK, one 200 for the INVITE: nothing was lost, nothing retransmitted
    assert len(net.sent_by(alice, request("ACK"))) == 1
    assert len(net.sent_by(bob, response(200, "INVITE"))) == 1
    # everything cleaned up once the timers ran out
    assert alice.core.get_timer() is None and bob.core.get_timer() is None


def test_bye_from_callee(net: Network, alice: Node, bob: Node) -> None:
    call, bcall = establish(net, alice, bob)
    bob.core.bye(bcall, net.now)
    net.run(duration=1)
    assert alice.of(CallEnded) == [CallEnded(call, "bye-remote", None)]
    assert bob.of(CallEnded) == [CallEnded(bcall, "bye-local", 200)]
    bye = net.sent_by(bob, request("BYE"))[0]
    # the UAS dialog: Request-URI = Alice's Contact, CSeq from the callee's own space
    assert bye.first_line.startswith("BYE sip:alice@10.0.0.1:5060 ")
    assert bye.header("CSeq") == "1 BYE"


def test_duplicated_bye_is_absorbed(net: Network, alice: Node, bob: Node) -> None:
    call, bcall = establish(net, alice, bob)
    net.duplicate(request("BYE"))
    alice.core.bye(call, net.now)
    net.run(duration=1)
    assert bob.of(CallEnded) == [CallEnded(bcall, "bye-remote", None)]
    # the server transaction answered the copy with the same 200
    oks = net.sent_by(bob, response(200, "BYE"))
    assert len(oks) == 2 and oks[0].data == oks[1].data


def test_invite_timeout_timer_b(net: Network, alice: Node) -> None:
    call = alice.core.invite(Uri.parse("sip:nobody@10.0.0.99"), net.now, body=OFFER)
    net.run()
    assert alice.of(CallEnded) == [CallEnded(call, "timeout", 408)]
    assert net.now == pytest.approx(32.0)
    assert len(net.sent_by(alice, request("INVITE"))) == 7  # Timer A: 0, .5, 1.5 ... 31.5


# --- 2xx retransmission and its ACK (§13.3.1.4, §13.2.2.4) ------------------------------------


def test_2xx_retransmitted_until_ack(net: Network, alice: Node, bob: Node) -> None:
    net.drop(request("ACK"), times=2)
    call = alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.1)
    bcall = incoming(bob)
    answered_at = net.now
    bob.core.answer(bcall, net.now, body=ANSWER)
    net.run(duration=5)
    oks = net.sent_by(bob, response(200, "INVITE"))
    assert [round(p.sent_at - answered_at, 2) for p in oks] == [0.0, 0.5, 1.5]
    acks = net.sent_by(alice, request("ACK"))
    assert len(acks) == 3  # every 2xx ACKed, the same ACK each time
    assert len({p.data for p in acks}) == 1
    assert len(alice.of(CallAnswered)) == 1
    assert bob.core.call_state(bcall) is CallState.CONFIRMED
    assert alice.core.call_state(call) is CallState.CONFIRMED
    # the ACK for a 2xx is its own transaction: a new branch
    invite = net.sent_by(alice, request("INVITE"))[0]
    assert acks[0].header("Via") != invite.header("Via")


def test_no_ack_gives_up_after_64_t1_with_bye(net: Network, alice: Node, bob: Node) -> None:
    net.drop(request("ACK"), times=-1)
    call = alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.1)
    bcall = incoming(bob)
    answered_at = net.now
    bob.core.answer(bcall, net.now, body=ANSWER)
    net.run(duration=40)
    oks = net.sent_by(bob, response(200, "INVITE"))
    # T1 doubling up to T2 (4 s), for 64*T1 = 32 s
    assert [round(p.sent_at - answered_at, 2) for p in oks] == [
        0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5,
    ]  # fmt: skip
    byes = net.sent_by(bob, request("BYE"))
    assert len(byes) == 1 and byes[0].sent_at == pytest.approx(answered_at + 32)
    assert bob.of(CallEnded) == [CallEnded(bcall, "ack-timeout", None)]
    assert alice.of(CallEnded) == [CallEnded(call, "bye-remote", None)]


def test_bye_before_ack_waits_for_the_ack(net: Network, alice: Node, bob: Node) -> None:
    net.delay(request("ACK"), by=1.0)
    alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.1)
    bcall = incoming(bob)
    bob.core.answer(bcall, net.now, body=ANSWER)
    net.run(duration=0.015)
    bob.core.bye(bcall, net.now)  # §15: not before the ACK
    net.run(duration=0.5)
    assert net.sent_by(bob, request("BYE")) == []
    net.run(duration=2)
    assert len(net.sent_by(bob, request("BYE"))) == 1
    assert names(bob) == ["IncomingCall", "CallConfirmed", "CallEnded"]


# --- non-2xx final responses (§17.1.1.3) ------------------------------------------------------


def test_reject_is_acked_by_the_transaction(net: Network, alice: Node, bob: Node) -> None:
    net.drop(request("ACK"))
    call = alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.1)
    bcall = incoming(bob)
    bob.core.reject(bcall, net.now, 486)
    net.run()
    assert alice.of(CallEnded) == [CallEnded(call, "rejected", 486)]
    assert bob.of(CallEnded) == [CallEnded(bcall, "rejected", 486)]
    busy = net.sent_by(bob, response(486))
    assert len(busy) == 2  # Timer G re-sent it once: the first ACK was lost
    acks = net.sent_by(alice, request("ACK"))
    assert len(acks) == 2
    invite = net.sent_by(alice, request("INVITE"))[0]
    assert acks[0].header("Via") == invite.header("Via")  # same branch (§17.1.1.3)
    assert acks[0].header("CSeq") == "1 ACK"


# --- CANCEL (§9) ------------------------------------------------------------------------------


def test_cancel_after_ringing(net: Network, alice: Node, bob: Node) -> None:
    call = alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.1)
    bcall = incoming(bob)
    bob.core.ringing(bcall, net.now)
    net.run(duration=0.1)
    alice.core.cancel(call, net.now)
    net.run()
    cancels = net.sent_by(alice, request("CANCEL"))
    invite = net.sent_by(alice, request("INVITE"))[0]
    assert len(cancels) == 1 and cancels[0].header("Via") == invite.header("Via")
    assert len(net.sent_by(bob, response(200, "CANCEL"))) == 1
    assert len(net.sent_by(bob, response(487, "INVITE"))) == 1
    assert alice.of(CallEnded) == [CallEnded(call, "cancelled", 487)]
    assert bob.of(CallEnded) == [CallEnded(bcall, "cancelled", 487)]


def test_cancel_waits_for_a_provisional(net: Network, alice: Node, bob: Node) -> None:
    net.drop(response(100), times=-1)  # Bob's 100 Trying never arrives
    call = alice.core.invite(BOB, net.now, body=OFFER)
    alice.core.cancel(call, net.now)  # §9.1: must not be sent before a provisional
    net.run(duration=1.0)
    assert net.sent_by(alice, request("CANCEL")) == []
    bcall = incoming(bob)
    assert len(bob.of(IncomingCall)) == 1  # the INVITE retransmission was absorbed
    ringing_at = net.now
    bob.core.ringing(bcall, net.now)
    net.run(duration=1.0)
    cancels = net.sent_by(alice, request("CANCEL"))
    assert len(cancels) == 1 and cancels[0].sent_at >= ringing_at
    assert alice.of(CallEnded) == [CallEnded(call, "cancelled", 487)]


def test_cancel_crossing_the_2xx_ends_with_bye(net: Network, alice: Node, bob: Node) -> None:
    call = alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.1)
    bcall = incoming(bob)
    bob.core.answer(bcall, net.now, body=ANSWER)  # the 200 is on the wire...
    alice.core.cancel(call, net.now)  # ... when Alice cancels (she saw the 100)
    net.run(duration=5)
    # Bob: 200 to the CANCEL but no 487 (final already sent, §9.2)
    assert len(net.sent_by(bob, response(200, "CANCEL"))) == 1
    assert net.sent_by(bob, response(487)) == []
    # Alice: ACK the 2xx, then BYE (§9.1 race); the app never saw an answered call
    assert len(net.sent_by(alice, request("ACK"))) == 1
    assert len(net.sent_by(alice, request("BYE"))) == 1
    assert alice.of(CallAnswered) == []
    assert alice.of(CallEnded) == [CallEnded(call, "cancelled", 200)]
    assert bob.of(CallEnded) == [CallEnded(bcall, "bye-remote", None)]


def test_cancel_of_unknown_invite_gets_481(net: Network, alice: Node, bob: Node) -> None:
    call = alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.1)
    bcall = incoming(bob)
    bob.core.reject(bcall, net.now, 480)
    net.run(duration=0.0005)
    alice.core.cancel(call, net.now)  # 480 still in flight: CANCEL goes out
    net.run(duration=40)
    # Bob's INVITE transaction is Completed, so the CANCEL still matches it: 200, no 487
    assert len(net.sent_by(bob, response(200, "CANCEL"))) == 1
    assert alice.of(CallEnded) == [CallEnded(call, "rejected", 480)]


# --- re-INVITE and glare (§14) ----------------------------------------------------------------


def test_reinvite(net: Network, alice: Node, bob: Node) -> None:
    call, bcall = establish(net, alice, bob)
    alice.core.reinvite(call, net.now, body=b"offer-2")
    net.run(duration=0.1)
    received = bob.of(ReinviteReceived)
    assert received == [ReinviteReceived(bcall, "INVITE", b"offer-2", "application/sdp")]
    bob.core.accept_reinvite(bcall, net.now, body=b"answer-2")
    net.run(duration=5)
    assert alice.of(ReinviteAnswered) == [ReinviteAnswered(call, b"answer-2", "application/sdp")]
    reinvite = net.sent_by(alice, request("INVITE"))[-1]
    assert reinvite.header("CSeq") == "2 INVITE"
    assert reinvite.first_line.startswith("INVITE sip:bob@10.0.0.2:5060 ")
    acks = net.sent_by(alice, request("ACK"))
    assert [a.header("CSeq") for a in acks] == ["1 ACK", "2 ACK"]
    # the ACK stopped the 2xx retransmissions
    assert len(net.sent_by(bob, response(200, "INVITE"))) == 2
    assert alice.core.call_state(call) is CallState.CONFIRMED


def test_reinvite_rejected_keeps_the_call(net: Network, alice: Node, bob: Node) -> None:
    call, bcall = establish(net, alice, bob)
    bob.core.reinvite(bcall, net.now, body=b"offer-2")
    net.run(duration=0.1)
    alice.core.reject_reinvite(call, net.now, 488)
    net.run(duration=1)
    assert bob.of(ReinviteFailed) == [ReinviteFailed(bcall, 488)]
    assert bob.core.call_state(bcall) is CallState.CONFIRMED
    assert alice.core.call_state(call) is CallState.CONFIRMED
    # a new re-INVITE is possible afterwards
    bob.core.reinvite(bcall, net.now, body=b"offer-3")
    with pytest.raises(LocalProtocolError):
        bob.core.reinvite(bcall, net.now, body=b"offer-4")  # one at a time


def test_glare_491_and_retry(net: Network, alice: Node, bob: Node) -> None:
    call, bcall = establish(net, alice, bob)
    start = net.now
    alice.core.reinvite(call, net.now, body=b"alice-2")
    bob.core.reinvite(bcall, net.now, body=b"bob-2")
    net.run(duration=0.05)
    # both got 491 (§14.2); retries per §14.1 with rand() = 0.5
    assert len(net.sent_by(alice, response(491))) == 1
    assert len(net.sent_by(bob, response(491))) == 1
    a_glare, b_glare = alice.of(ReinviteGlare)[0], bob.of(ReinviteGlare)[0]
    t491 = a_glare.retry_at - glare_delay(True, 0.5)
    assert glare_delay(True, 0.5) == 3.05 and glare_delay(False, 0.5) == 1.0
    assert b_glare.retry_at == pytest.approx(t491 + 1.0, abs=0.02)  # Bob does not own the Call-ID
    # Bob retries first; Alice answers it
    net.run(until=b_glare.retry_at + 0.05)
    assert bob.of(ReinviteAnswered) == [] and alice.of(ReinviteReceived)
    alice.core.accept_reinvite(call, net.now, body=b"alice-answer")
    net.run(until=a_glare.retry_at + 0.05)
    assert bob.of(ReinviteAnswered)[0].body == b"alice-answer"
    # then Alice (Call-ID owner, 2.1-4 s) retries
    bob_received = bob.of(ReinviteReceived)
    assert bob_received and bob_received[0].body == b"alice-2"
    bob.core.accept_reinvite(bcall, net.now, body=b"bob-answer")
    net.run(duration=1)
    assert alice.of(ReinviteAnswered)[0].body == b"bob-answer"
    retries = net.sent_by(alice, request("INVITE"))[-1]
    assert retries.sent_at - start == pytest.approx(3.05 + (t491 - start), abs=0.02)


def test_glare_delay_ranges() -> None:
    assert glare_delay(True, 0.0) == 2.1 and glare_delay(True, 0.9999) == 4.0
    assert glare_delay(False, 0.0) == 0.0 and glare_delay(False, 0.9999) == 2.0


# --- forking (§13.2.2.4) ----------------------------------------------------------------------

PROXY = Address("udp", "10.0.0.9", 5060)


def fork_response(invite: Request, status: int, tag: str, contact: str) -> bytes:
    out = make_response(invite, status, to_tag=tag)
    out.headers.add("Contact", contact)
    return bytes(out)


def test_forked_2xx_both_acked_second_byed(net: Network, alice: Node) -> None:
    inbox = net.listen(PROXY)
    call = alice.core.invite(Uri.parse("sip:bob@10.0.0.9"), net.now, body=OFFER)
    net.run(duration=0.1)
    invite = parse_message(inbox[0].data)
    assert isinstance(invite, Request)
    src = inbox[0].src
    net.inject(fork_response(invite, 180, "t1", "<sip:bob1@10.0.0.9>"), PROXY, src)
    net.inject(fork_response(invite, 180, "t2", "<sip:bob2@10.0.0.9>"), PROXY, src)
    net.run(duration=0.1)
    assert [e.status_code for e in alice.of(CallRinging)] == [180, 180]
    net.inject(fork_response(invite, 200, "t2", "<sip:bob2@10.0.0.9>"), PROXY, src)
    net.inject(fork_response(invite, 200, "t1", "<sip:bob1@10.0.0.9>"), PROXY, src)
    net.run(duration=0.1)
    assert len(alice.of(CallAnswered)) == 1
    assert alice.of(CallAnswered)[0].response.to.tag == "t2"  # the first 2xx wins
    sent = [parse_message(p.data) for p in inbox[1:]]
    acks = [m for m in sent if isinstance(m, Request) and m.method == "ACK"]
    byes = [m for m in sent if isinstance(m, Request) and m.method == "BYE"]
    assert [(str(a.uri), a.to.tag) for a in acks] == [
        ("sip:bob2@10.0.0.9", "t2"),
        ("sip:bob1@10.0.0.9", "t1"),
    ]
    assert [(str(b.uri), b.to.tag) for b in byes] == [("sip:bob1@10.0.0.9", "t1")]
    # a retransmission of either 2xx is ACKed again
    net.inject(fork_response(invite, 200, "t2", "<sip:bob2@10.0.0.9>"), PROXY, src)
    net.run(duration=0.1)
    acks_after = [p for p in inbox if p.method == "ACK"]
    assert (
        len(acks_after) == 3
        and acks_after[-1].data == inbox[[p.method for p in inbox].index("ACK")].data
    )
    assert alice.core.call_state(call) is CallState.CONFIRMED
    # the call lives on with the first fork; BYE goes to its target
    alice.core.bye(call, net.now)
    net.run(duration=0.1)
    last_bye = [p for p in inbox if p.method == "BYE"][-1]
    assert last_bye.first_line.startswith("BYE sip:bob2@10.0.0.9 ")


# --- delayed offer, in-dialog requests ---------------------------------------------------------


def test_delayed_offer_answer_in_ack(net: Network, alice: Node, bob: Node) -> None:
    call = alice.core.invite(BOB, net.now)  # no offer
    net.run(duration=0.1)
    bcall = incoming(bob)
    assert bob.of(IncomingCall)[0].body == b""
    bob.core.answer(bcall, net.now, body=b"bob-offer")
    net.run(duration=0.1)
    assert alice.of(CallAnswered)[0].body == b"bob-offer"
    assert net.sent_by(alice, request("ACK")) == []  # waiting for the answer
    alice.core.ack(call, body=b"alice-answer")
    net.run(duration=1)
    assert bob.of(CallConfirmed) == [CallConfirmed(bcall, b"alice-answer", "application/sdp")]


def test_info_inside_the_dialog(net: Network, alice: Node, bob: Node) -> None:
    call, bcall = establish(net, alice, bob)
    handle = alice.core.send_request(
        "INFO", BOB, net.now, call=call, body=b"Signal=5", content_type="application/dtmf-relay"
    )
    net.run(duration=0.1)
    got = bob.of(RequestReceived)
    assert len(got) == 1 and got[0].call == bcall and got[0].request.body == b"Signal=5"
    bob.core.respond(got[0].transaction, 200, net.now)
    net.run(duration=0.1)
    responses = alice.of(ResponseReceived)
    assert [(r.transaction, r.response.status_code) for r in responses] == [(handle, 200)]


def test_second_reinvite_while_one_is_pending_gets_500(
    net: Network, alice: Node, bob: Node
) -> None:
    call, _ = establish(net, alice, bob)
    alice.core.reinvite(call, net.now, body=b"offer-2")
    net.run(duration=0.1)
    assert len(bob.of(ReinviteReceived)) == 1  # Bob's app has not answered yet
    first = net.sent_by(alice, request("INVITE"))[-1]
    again = first.data.replace(b"2 INVITE", b"3 INVITE").replace(
        b"branch=z9hG4bK", b"branch=z9hG4bKx"
    )
    inbox = net.listen(Address("udp", "10.0.0.66", 5060))
    net.inject(again, Address("udp", "10.0.0.66", 5060), first.dst)
    net.run(duration=0.1)
    # §14.2: 500 with a Retry-After between 0 and 10 s (rand() = 0.5 here)
    assert [(p.status, p.header("Retry-After")) for p in inbox if p.status != 100] == [(500, "5")]
    assert len(bob.of(ReinviteReceived)) == 1


def test_update_is_a_target_refresh(net: Network, alice: Node, bob: Node) -> None:
    call, bcall = establish(net, alice, bob)
    handle = alice.core.send_request("UPDATE", BOB, net.now, call=call, body=b"offer-u")
    net.run(duration=0.1)
    got = bob.of(ReinviteReceived)
    assert got == [ReinviteReceived(bcall, "UPDATE", b"offer-u", "application/sdp")]
    update = net.sent_by(alice, request("UPDATE"))[0]
    assert update.header("Contact") == "<sip:alice@10.0.0.1:5060>"
    bob.core.accept_reinvite(bcall, net.now, body=b"answer-u")
    net.run(duration=5)
    assert [(r.transaction, r.response.body) for r in alice.of(ResponseReceived)] == [
        (handle, b"answer-u")
    ]
    assert len(net.sent_by(bob, response(200, "UPDATE"))) == 1  # no 2xx retransmission


def test_481_to_an_in_dialog_request_ends_the_call(net: Network, alice: Node, bob: Node) -> None:
    call, _ = establish(net, alice, bob)
    alice.core.send_request("INFO", BOB, net.now, call=call)
    net.run(duration=0.1)
    bob.core.respond(bob.of(RequestReceived)[0].transaction, 481, net.now)
    net.run(duration=1)
    assert len(net.sent_by(alice, request("BYE"))) == 1  # §12.2.1.2
    assert bob.of(CallEnded)[0].reason == "bye-remote"
    assert alice.of(CallEnded) == [CallEnded(call, "dialog-gone", 481)]


def test_transport_error_fails_the_invite_with_503(net: Network, alice: Node) -> None:
    call = alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.001)
    destination = net.sent_by(alice, request("INVITE"))[0].dst
    alice.core.transport_error(destination, net.now)
    net.run(duration=0.001)
    assert alice.of(CallEnded) == [CallEnded(call, "transport-error", 503)]


def test_early_dialogs_from_forked_provisionals(net: Network, alice: Node) -> None:
    inbox = net.listen(PROXY)
    call = alice.core.invite(Uri.parse("sip:bob@10.0.0.9"), net.now, body=OFFER)
    net.run(duration=0.1)
    invite = parse_message(inbox[0].data)
    assert isinstance(invite, Request)
    src = inbox[0].src
    net.inject(fork_response(invite, 183, "e1", "<sip:e1@10.0.0.9>"), PROXY, src)
    net.inject(fork_response(invite, 180, "e2", "<sip:e2@10.0.0.9>"), PROXY, src)
    net.run(duration=0.1)
    session = alice.core._sessions[call]
    assert sorted(session.early_dialogs) == ["e1", "e2"]
    assert str(session.early_dialogs["e1"].remote_target) == "sip:e1@10.0.0.9"
    net.inject(fork_response(invite, 486, "e1", "<sip:e1@10.0.0.9>"), PROXY, src)
    net.run(duration=0.1)
    assert alice.of(CallEnded) == [CallEnded(call, "rejected", 486)]


def test_lost_invite_is_retransmitted_by_timer_a(net: Network, alice: Node, bob: Node) -> None:
    net.drop(request("INVITE"), times=2)
    alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=1.0)
    assert bob.of(IncomingCall) == []
    net.run(duration=1.0)
    invites = net.sent_by(alice, request("INVITE"))
    assert [p.sent_at for p in invites] == [0.0, 0.5, 1.5]
    assert len(bob.of(IncomingCall)) == 1


def test_provisional_overtaken_by_the_2xx_is_ignored(net: Network, alice: Node, bob: Node) -> None:
    net.delay(response(180), by=0.5)  # reordered: arrives after the 200
    call = alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.1)
    bcall = incoming(bob)
    bob.core.ringing(bcall, net.now)
    bob.core.answer(bcall, net.now, body=ANSWER)
    net.run(duration=2)
    assert names(alice) == ["CallAnswered"]
    assert alice.core.call_state(call) is CallState.CONFIRMED


# --- chaos: lossy, duplicating, reordering network ----------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_calls_survive_a_lossy_network(seed: int) -> None:
    """Whatever is lost, duplicated or reordered, both ends finish the call and clean up."""
    import random

    rng = random.Random(seed)
    net = Network()
    alice = net.add("alice", make_core("alice", "10.0.0.1"))
    bob = net.add("bob", make_core("bob", "10.0.0.2"))
    loss = rng.choice([0.1, 0.3, 0.5, 0.6])
    net.drop(lambda p: rng.random() < loss, times=-1)
    net.duplicate(lambda p: rng.random() < 0.15, times=-1)
    net.delay(lambda p: rng.random() < 0.2, by=rng.choice([0.05, 0.3, 1.2]), times=-1)
    call = alice.core.invite(BOB, net.now, body=OFFER)
    hangup_by = rng.choice(["alice", "bob"])
    answered_at: float | None = None
    handled: set[str] = set()
    for _ in range(400):
        net.run(duration=0.25)
        for event in bob.of(IncomingCall):
            if event.call not in handled:
                handled.add(event.call)
                bob.core.ringing(event.call, net.now)
                bob.core.answer(event.call, net.now, body=ANSWER)
        if answered_at is None and (alice.of(CallAnswered) or bob.of(CallConfirmed)):
            answered_at = net.now
        if answered_at is not None and net.now - answered_at > 2 and hangup_by:
            node = alice if hangup_by == "alice" else bob
            handle = call if node is alice else next(iter(handled))
            if node.core.call_state(handle) is CallState.CONFIRMED:
                node.core.bye(handle, net.now)
                hangup_by = ""
        if net.now > 100:
            break
    net.run()  # let every timer run out
    # each side that saw the call ended it exactly once; nothing is left behind
    assert len(alice.of(CallEnded)) == 1
    assert len(bob.of(CallEnded)) == len(bob.of(IncomingCall))
    assert len(bob.of(IncomingCall)) <= 1
    assert alice.core.get_timer() is None and bob.core.get_timer() is None
    assert alice.core.call_state(call) is None
    # one side hung up, the other heard it (or the call never got through)
    reasons = sorted(e.reason for e in alice.of(CallEnded) + bob.of(CallEnded))
    assert reasons in (["bye-local", "bye-remote"], ["ack-timeout", "bye-remote"], ["timeout"])


# --- interop: the real core against baresip over UDP on 127.0.0.1 -----------------------------


class _SyncPump:
    """Drives a UA core over one UDP socket on 127.0.0.1 with the wall clock (interop only)."""

    def __init__(
        self,
        log: Callable[[], str],
        user: str = "sippa",
        domain: str | None = None,
        **config: object,
    ) -> None:
        from tests.peers.process import LOOPBACK

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        authorize = config.pop("authorize", None)
        aor = Uri("sip", user, None, domain or LOOPBACK, None if domain else self.port)
        settings = CoreConfig(
            local=(Address("udp", LOOPBACK, self.port),),
            aor=NameAddr(None, aor),
            contact_user=user,
            **config,  # type: ignore[arg-type]
        )
        self.core = UserAgentCore(settings, ids=lambda: secrets.token_hex(6), rand=lambda: 0.5)
        self.core.authorize = authorize  # type: ignore[assignment]
        self.events: list[object] = []
        self.log = log

    def flush(self) -> None:
        for data, dst in self.core.messages_to_send():
            self.sock.sendto(data, (dst.host, dst.port))
        while (event := self.core.next_event()) is not None:
            self.events.append(event)

    def until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        run_until([self], done, timeout)

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]


def run_until(pumps: list[_SyncPump], done: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    by_sock = {p.sock: p for p in pumps}
    while time.monotonic() < deadline:
        for p in pumps:
            p.flush()
        if done():
            return
        timers = [t for p in pumps if (t := p.core.get_timer()) is not None]
        wait = max(0.0, min([0.02, *(t - time.monotonic() for t in timers)]))
        for sock in select.select(list(by_sock), [], [], wait)[0]:
            data, (host, src_port) = sock.recvfrom(65535)
            by_sock[sock].core.receive(data, Address("udp", host, src_port), time.monotonic())
        for p in pumps:
            timer = p.core.get_timer()
            if timer is not None and timer <= time.monotonic():
                p.core.handle_timer(time.monotonic())
    events = {p.core.config.aor.uri.user: p.events for p in pumps}
    raise AssertionError(f"timed out; events: {events}\n{pumps[0].log()[-3000:]}")


@pytest.fixture
def baresip_peer(tmp_path: Path):  # type: ignore[no-untyped-def]
    from tests.peers.baresip import Baresip
    from tests.peers.process import free_port, free_port_block

    rtp = free_port_block(4)
    peer = Baresip(
        tmp_path / "baresip",
        sip_port=free_port_block(2),
        ctrl_port=free_port(),
        rtp_min=rtp,
        rtp_max=rtp + 3,
        mediaenc="none",
        tone_seconds=10.0,
    )
    with peer:
        yield peer


@pytest.mark.interop
def test_call_to_baresip(baresip_peer) -> None:  # type: ignore[no-untyped-def]
    """INVITE -> 1xx/200 -> ACK -> BYE -> 200 with baresip (auto answer), plain RTP offer."""
    from tests.peers.baresip import make_offer
    from tests.peers.process import LOOPBACK

    peer = baresip_peer
    pump = _SyncPump(peer.log_text)
    with pump.sock:
        offer = make_offer(peer.rtp_min + 2, [], proto="RTP/AVP").encode()
        target = Uri("sip", peer.user, None, LOOPBACK, peer.sip_port)
        call = pump.core.invite(target, time.monotonic(), body=offer)
        pump.until(lambda: bool(pump.of(CallAnswered) or pump.of(CallEnded)))
        answered = pump.of(CallAnswered)
        assert answered, pump.events
        assert b"m=audio" in answered[0].body
        assert pump.core.call_state(call) is CallState.CONFIRMED
        time.sleep(0.3)  # baresip sees the ACK and the call is up
        pump.core.bye(call, time.monotonic())
        pump.until(lambda: bool(pump.of(CallEnded)))
        assert pump.of(CallEnded) == [CallEnded(call, "bye-local", 200)]


@pytest.mark.interop
def test_call_from_baresip(baresip_peer) -> None:  # type: ignore[no-untyped-def]
    """baresip dials us (ctrl_tcp): IncomingCall -> 180 -> 200 -> ACK; baresip hangs up."""
    import json

    from tests.peers.baresip import make_offer
    from tests.peers.process import LOOPBACK

    peer = baresip_peer
    pump = _SyncPump(peer.log_text)

    def command(name: str, params: str = "") -> None:
        body = json.dumps({"command": name, "params": params, "token": name}).encode()
        with socket.create_connection((LOOPBACK, peer.ctrl_port), timeout=5) as ctrl:
            ctrl.sendall(str(len(body)).encode() + b":" + body + b",")
            ctrl.recv(4096)

    with pump.sock:
        command("dial", f"sip:sippa@{LOOPBACK}:{pump.port}")
        pump.until(lambda: bool(pump.of(IncomingCall)))
        incoming_call = pump.of(IncomingCall)[0]
        assert b"m=audio" in incoming_call.body
        pump.core.ringing(incoming_call.call, time.monotonic())
        answer = make_offer(peer.rtp_min + 2, [], proto="RTP/AVP").encode()
        pump.core.answer(incoming_call.call, time.monotonic(), body=answer)
        pump.until(lambda: bool(pump.of(CallConfirmed)))
        time.sleep(0.3)
        command("hangup")
        pump.until(lambda: bool(pump.of(CallEnded)))
        assert pump.of(CallEnded) == [CallEnded(incoming_call.call, "bye-remote", None)]


@pytest.mark.interop
def test_call_through_kamailio(kamailio) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """REGISTER (401 digest), INVITE (407 digest, Record-Route), ACK/BYE loose-routed back
    through Kamailio, between two UA cores."""
    from sippa.sip.digest import DigestClient

    proxy = Uri("sip", None, None, kamailio.host, kamailio.sip_port)
    pumps = {}
    for user in ("alice", "bob"):
        digest = DigestClient(user, f"{user}-secret", cnonce=lambda: secrets.token_hex(8))
        pumps[user] = _SyncPump(
            kamailio.log_text,
            user,
            "example.test",
            outbound_proxy=proxy,
            authorize=digest.authorize,
        )
    alice, bob = pumps["alice"], pumps["bob"]
    both = [alice, bob]
    with alice.sock, bob.sock:
        for pump in both:
            aor = pump.core.config.aor
            pump.core.send_request(
                "REGISTER",
                Uri.parse("sip:example.test"),
                time.monotonic(),
                to=aor,
                from_=aor,
                headers=[("Expires", "60")],
            )
        run_until(both, lambda: all(p.of(ResponseReceived) for p in both))
        for pump in both:
            assert [r.response.status_code for r in pump.of(ResponseReceived)] == [200]
        call = alice.core.invite(Uri.parse("sip:bob@example.test"), time.monotonic(), body=OFFER)
        run_until(both, lambda: bool(bob.of(IncomingCall)))
        incoming_call = bob.of(IncomingCall)[0]
        assert incoming_call.request.headers.get("X-Lab-Auth") is not None  # 407 answered
        assert incoming_call.request.record_routes  # Kamailio record-routed
        bob.core.answer(incoming_call.call, time.monotonic(), body=ANSWER)
        run_until(both, lambda: bool(alice.of(CallAnswered) and bob.of(CallConfirmed)))
        assert alice.of(CallAnswered)[0].body == ANSWER
        bob.core.bye(incoming_call.call, time.monotonic())
        run_until(both, lambda: bool(alice.of(CallEnded) and bob.of(CallEnded)))
        assert alice.of(CallEnded) == [CallEnded(call, "bye-remote", None)]
        assert bob.of(CallEnded) == [CallEnded(incoming_call.call, "bye-local", 200)]
    log = kamailio.log_text()
    assert "LAB-REQ ACK" in log and "LAB-REQ BYE" in log  # both went through the proxy


def test_sips_call_is_a_secure_dialog_over_tls() -> None:
    net = Network()
    alice = net.add("alice", make_core("alice", "10.0.0.1", 5061, transport="tls"))
    bob = net.add("bob", make_core("bob", "10.0.0.2", 5061, transport="tls"))
    call = alice.core.invite(Uri.parse("sips:bob@10.0.0.2"), net.now, body=OFFER)
    net.run(duration=0.1)
    bcall = incoming(bob)
    bob.core.answer(bcall, net.now, body=ANSWER)
    net.run(duration=0.1)
    assert alice.core._sessions[call].dialog.secure  # type: ignore[union-attr]
    assert bob.core._sessions[bcall].dialog.secure  # type: ignore[union-attr]
    alice.core.bye(call, net.now)
    net.run(duration=1)
    bye = net.sent_by(alice, request("BYE"))[0]
    assert bye.dst.transport == "tls" and (bye.header("Via") or "").startswith("SIP/2.0/TLS")
    assert bob.of(CallEnded) == [CallEnded(bcall, "bye-remote", None)]


# --- credentials in the ACK for a 2xx (§13.2.2.4) ---------------------------------------------

CREDENTIALS = 'Digest username="alice", realm="x", nonce="n", uri="sip:bob@10.0.0.2", response="r"'


def _challenged_alice(net: Network) -> Node:
    """Alice with an ``authorize`` hook that answers any 401/407 (Bob plays the proxy)."""
    from sippa.sip.registration import Credentials

    core = make_core("alice", "10.0.0.1")

    def authorize(req: Request, challenge: Response) -> Credentials:
        name = "Proxy-Authorization" if challenge.status_code == 407 else "Authorization"
        return Credentials.single(name, CREDENTIALS, "SHA-256")

    core.authorize = authorize
    return net.add("alice", core)


def test_ack_for_2xx_carries_the_credentials_of_the_invite(net: Network, bob: Node) -> None:
    alice = _challenged_alice(net)
    call = alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.1)
    bob.core.reject(incoming(bob), net.now, 407)  # a proxy challenging the INVITE
    net.run(duration=0.1)
    invites = net.sent_by(alice, request("INVITE"))
    assert [p.header("Proxy-Authorization") for p in invites] == [None, CREDENTIALS]
    bob.core.answer(incoming(bob), net.now, body=ANSWER)
    net.run(duration=1)
    assert alice.core.call_state(call) is CallState.CONFIRMED
    acks = net.sent_by(alice, request("ACK"))
    # the ACK of the 407 belongs to its transaction (§17.1.1.3) and copies the first INVITE;
    # the ACK of the 2xx "MUST contain the same credentials as the INVITE" (§13.2.2.4)
    assert [(a.header("CSeq"), a.header("Proxy-Authorization")) for a in acks] == [
        ("1 ACK", None),
        ("2 ACK", CREDENTIALS),
    ]


def test_ack_for_a_challenged_reinvite_carries_its_credentials(net: Network, bob: Node) -> None:
    alice = _challenged_alice(net)
    call, bcall = establish(net, alice, bob)
    alice.core.reinvite(call, net.now, body=b"offer-2")
    net.run(duration=0.1)
    bob.core.reject_reinvite(bcall, net.now, 401)
    net.run(duration=0.1)
    bob.core.accept_reinvite(bcall, net.now, body=b"answer-2")
    net.run(duration=1)
    assert alice.of(ReinviteAnswered) == [ReinviteAnswered(call, b"answer-2", "application/sdp")]
    reinvite = net.sent_by(alice, request("INVITE"))[-1]
    assert reinvite.header("CSeq") == "3 INVITE"
    assert reinvite.header("Authorization") == CREDENTIALS
    ack = net.sent_by(alice, request("ACK"))[-1]
    assert (ack.header("CSeq"), ack.header("Authorization")) == ("3 ACK", CREDENTIALS)


# --- INVITEs crossing the initial INVITE (§14.2) -----------------------------------------------

STRANGER = Address("udp", "10.0.0.66", 5060)


def _inject_in_dialog_invite(net: Network, dialog: object, to: Address) -> list:  # type: ignore[type-arg]
    """Send an INVITE built from ``dialog`` (its tags, CSeq, route) to ``to``; returns the
    inbox where the answers arrive (the Via names a hand-driven address)."""
    from sippa.sip.dialog import Dialog

    assert isinstance(dialog, Dialog)
    data = bytes(dialog.create_request("INVITE", body=b"offer-x"))
    line, rest = data.split(b"\r\n", 1)
    via = b"Via: SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKcrossing"
    inbox = net.listen(STRANGER)
    net.inject(line + b"\r\n" + via + b"\r\n" + rest, STRANGER, to)
    return inbox


def test_reinvite_before_our_final_response_gets_500_retry_after(net: Network) -> None:
    alice = net.add("alice", make_core("alice", "10.0.0.1"))
    bob = net.add("bob", make_core("bob", "10.0.0.2", rand_values=[0.95]))
    call = alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.1)
    bcall = incoming(bob)
    bob.core.ringing(bcall, net.now)
    net.run(duration=0.1)
    (early,) = alice.core._sessions[call].early_dialogs.values()
    inbox = _inject_in_dialog_invite(net, early, Address("udp", "10.0.0.2", 5060))
    net.run(duration=0.1)
    # §14.2: "MUST return a 500 (Server Internal Error) response to the second INVITE and MUST
    # include a Retry-After header field with a randomly chosen value of between 0 and 10
    # seconds" (rand() = 0.95 here: 10)
    assert [(p.status, p.header("Retry-After")) for p in inbox if p.status != 100] == [(500, "10")]
    assert bob.of(ReinviteReceived) == []
    assert bob.core.call_state(bcall) is CallState.EARLY  # the first INVITE goes on
    bob.core.answer(bcall, net.now, body=ANSWER)
    net.run(duration=1)
    assert alice.core.call_state(call) is CallState.CONFIRMED


def test_retry_after_of_500_spans_0_to_10_seconds() -> None:
    for rand, expected in ((0.0, "0"), (0.5, "5"), (0.9999, "10")):
        net = Network()
        alice = net.add("alice", make_core("alice", "10.0.0.1"))
        bob = net.add("bob", make_core("bob", "10.0.0.2", rand_values=[rand]))
        alice.core.invite(BOB, net.now, body=OFFER)
        net.run(duration=0.1)
        bob.core.ringing(incoming(bob), net.now)
        net.run(duration=0.1)
        (early,) = next(iter(alice.core._sessions.values())).early_dialogs.values()
        inbox = _inject_in_dialog_invite(net, early, Address("udp", "10.0.0.2", 5060))
        net.run(duration=0.1)
        assert [p.header("Retry-After") for p in inbox if p.status == 500] == [expected]


def test_invite_from_the_callee_while_ours_is_pending_gets_491(net: Network) -> None:
    alice = net.add("alice", make_core("alice", "10.0.0.1"))
    bob = net.add("bob", make_core("bob", "10.0.0.2"))
    call = alice.core.invite(BOB, net.now, body=OFFER)
    net.run(duration=0.1)
    bcall = incoming(bob)
    bob.core.ringing(bcall, net.now)
    net.run(duration=0.1)
    # the callee sends an INVITE on the early dialog while our INVITE is still in progress
    bob_dialog = bob.core._sessions[bcall].dialog
    inbox = _inject_in_dialog_invite(net, bob_dialog, Address("udp", "10.0.0.1", 5060))
    net.run(duration=0.1)
    # §14.2: "A UAS that receives an INVITE on a dialog while an INVITE it had sent on that
    # dialog is in progress MUST return a 491 (Request Pending) response"
    assert [p.status for p in inbox if p.status != 100] == [491]
    assert alice.of(ReinviteReceived) == [] and alice.of(RequestReceived) == []
    assert alice.core.call_state(call) is CallState.EARLY
    bob.core.answer(bcall, net.now, body=ANSWER)
    net.run(duration=1)
    assert alice.core.call_state(call) is CallState.CONFIRMED
    assert bob.core.call_state(bcall) is CallState.CONFIRMED


def test_reinvite_before_our_delayed_offer_ack_gets_491(
    net: Network, alice: Node, bob: Node
) -> None:
    call = alice.core.invite(BOB, net.now)  # delayed offer: our INVITE ends with the ACK
    net.run(duration=0.1)
    bcall = incoming(bob)
    bob.core.answer(bcall, net.now, body=b"bob-offer")
    net.run(duration=0.1)
    assert alice.of(CallAnswered) and net.sent_by(alice, request("ACK")) == []
    bob_dialog = bob.core._sessions[bcall].dialog
    inbox = _inject_in_dialog_invite(net, bob_dialog, Address("udp", "10.0.0.1", 5060))
    net.run(duration=0.1)
    assert [p.status for p in inbox if p.status != 100] == [491]
    assert alice.of(ReinviteReceived) == []
    alice.core.ack(call, body=b"alice-answer")
    net.run(duration=1)
    assert bob.of(CallConfirmed) == [CallConfirmed(bcall, b"alice-answer", "application/sdp")]
