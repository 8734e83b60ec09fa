"""Restrict Source IP: the per-line check (sippa.sip.restrict) and the core's source screen."""

from __future__ import annotations

import pytest

from sippa.sip.core import UserAgentCore
from sippa.sip.events import (
    Address,
    CallEnded,
    IncomingCall,
    RequestReceived,
    RequestScreened,
)
from sippa.sip.message import Request, parse_message
from sippa.sip.restrict import RefusedSources, Screen, SourceRestriction, normalize_host
from sippa.sip.uri import Uri
from tests.sip.loop import Network, Node, make_core
from tests.sip.test_core import BOB_ADDR, PEER, raw_invite

PROXY = Address("udp", "10.0.0.7", 5060)  # the hand-driven peer of test_core is our "proxy"
SCANNER = Address("udp", "198.51.100.66", 5070)


def scanner_invite(method: str = "INVITE", **kw: str) -> bytes:
    """A request from the scanner (its own Via: no response could go anywhere else)."""
    return raw_invite(method=method, **kw).replace(
        b"SIP/2.0/UDP 10.0.0.7:5060", b"SIP/2.0/UDP 198.51.100.66:5070"
    )


# --- the check --------------------------------------------------------------------------------


def test_off_or_without_proxy_accepts_everyone() -> None:
    r = SourceRestriction()
    assert r.check(1, "INVITE", SCANNER, 0.0) is Screen.ACCEPT  # never configured
    r.configure(1, restricted=False, has_proxy=True)
    r.set_addresses(1, "registrar", ["10.0.0.7"])
    assert r.check(1, "INVITE", SCANNER, 0.0) is Screen.ACCEPT
    r.configure(1, restricted=True, has_proxy=False)  # direct calling: nothing to restrict to
    assert not r.active(1)
    assert r.check(1, "INVITE", SCANNER, 0.0) is Screen.ACCEPT
    assert r.refused(1) == RefusedSources()


def test_only_resolved_addresses_pass_and_refusals_are_counted() -> None:
    r = SourceRestriction()
    r.configure(1, restricted=True, has_proxy=True)
    assert r.check(1, "OPTIONS", PROXY, 1.0) is Screen.DROP  # nothing resolved yet: fail closed
    r.set_addresses(1, "registrar", ["10.0.0.7", "2001:db8::7"])
    r.set_addresses(1, "proxy", ["192.0.2.1"])
    assert r.allowed(1) == {"10.0.0.7", "2001:db8::7", "192.0.2.1"}
    assert r.check(1, "INVITE", PROXY, 2.0) is Screen.ACCEPT
    assert r.check(1, "INVITE", Address("udp", "192.0.2.1", 5080), 2.0) is Screen.ACCEPT
    v6 = Address("udp", "2001:DB8:0:0::7", 5060)
    assert r.check(1, "INVITE", v6, 2.0) is Screen.ACCEPT
    assert r.check(1, "INVITE", SCANNER, 3.0) is Screen.DROP
    assert r.refused(1) == RefusedSources(2, "udp:198.51.100.66:5070", "INVITE", 3.0)
    assert r.refused(2) == RefusedSources()  # per line


def test_reresolution_replaces_an_origin() -> None:
    r = SourceRestriction()
    r.configure(1, restricted=True, has_proxy=True)
    r.set_addresses(1, "registrar", ["10.0.0.7"])
    r.set_addresses(1, "registrar", ["10.0.0.8"])  # DNS answered anew
    assert r.check(1, "INVITE", PROXY, 0.0) is Screen.DROP
    assert r.check(1, "INVITE", Address("udp", "10.0.0.8", 5060), 0.0) is Screen.ACCEPT
    r.set_addresses(1, "registrar", [])
    assert r.allowed(1) == frozenset()
    with pytest.raises(ValueError, match="origin"):
        r.set_addresses(1, "elsewhere", ["10.0.0.1"])


def test_connection_oriented_get_403_and_the_registered_flow_passes() -> None:
    r = SourceRestriction()
    r.configure(1, restricted=True, has_proxy=True)
    r.set_addresses(1, "registrar", ["10.0.0.7"])
    r.set_connections(1, [42])
    assert r.flows(1) == {42} and r.flows(2) == frozenset()
    # behind a NAT or a proxy farm the flow's address may differ: the flow itself is ours
    assert r.check(1, "INVITE", Address("tls", "203.0.113.9", 5061, 42), 0.0) is Screen.ACCEPT
    assert r.check(1, "INVITE", Address("tls", "203.0.113.9", 5061, 43), 0.0) is Screen.FORBID
    assert r.check(1, "INVITE", Address("tcp", "203.0.113.9", 5061), 0.0) is Screen.FORBID
    assert r.refused(1).last_source == "tcp:203.0.113.9:5061"
    assert r.refused(1).count == 2
    r.forget(1)
    assert r.check(1, "INVITE", Address("tls", "10.0.0.7", 5061, 42), 0.0) is Screen.FORBID
    assert r.refused(1).last_source == "tls:10.0.0.7:5061"


def test_turning_the_proxy_off_lets_direct_calls_in() -> None:
    r = SourceRestriction()
    r.configure(1, restricted=True, has_proxy=True)
    r.set_addresses(1, "registrar", ["10.0.0.7"])
    r.configure(1, restricted=True, has_proxy=False)
    assert r.allowed(1) == frozenset()
    assert r.check(1, "INVITE", SCANNER, 0.0) is Screen.ACCEPT


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("[2001:DB8::1]", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("Proxy.Example.TEST", "proxy.example.test"),
    ],
)
def test_addresses_compare_in_one_spelling(given: str, expected: str) -> None:
    assert normalize_host(given) == expected


# --- the core's screen ------------------------------------------------------------------------


class Screened:
    """A screen that refuses everyone but PROXY, and records what it was asked."""

    def __init__(self, core: UserAgentCore) -> None:
        self.asked: list[tuple[str, Address]] = []
        self.restriction = SourceRestriction()
        self.restriction.configure(1, restricted=True, has_proxy=True)
        self.restriction.set_addresses(1, "registrar", [PROXY.host])
        core.screen = self

    def __call__(self, request: Request, source: Address, now: float) -> Screen:
        self.asked.append((request.method, source))
        return self.restriction.check(1, request.method, source, now)


@pytest.fixture
def net() -> Network:
    return Network()


@pytest.fixture
def bob(net: Network) -> Node:
    return net.add("bob", make_core("bob", "10.0.0.2"))


def test_udp_request_from_a_stranger_is_dropped_without_a_response(
    net: Network, bob: Node
) -> None:
    screen = Screened(bob.core)
    inbox = net.listen(Address("udp", "198.51.100.66", 5070))
    for method in ("INVITE", "OPTIONS", "MESSAGE", "NOTIFY", "BYE", "FOO"):
        net.inject(scanner_invite(method, call_id=f"{method}@scan"), SCANNER, BOB_ADDR)
    # a request claiming a dialog that does not exist gets no 481 either
    net.inject(scanner_invite("BYE", to="<sip:bob@10.0.0.2>;tag=x"), SCANNER, BOB_ADDR)
    net.inject(scanner_invite("CANCEL"), SCANNER, BOB_ADDR)  # cancels nothing: no 481
    net.run(duration=40)
    assert inbox == []  # not even 100 Trying, 405 or 481
    assert bob.of(IncomingCall) == [] and bob.of(RequestReceived) == []
    screened = bob.of(RequestScreened)
    assert len(screened) == 8 and not any(e.answered for e in screened)
    assert screened[0].request.method == "INVITE" and screened[0].source == SCANNER
    assert screen.restriction.refused(1).count == 8
    assert bob.core.get_timer() is None  # no transaction was made for any of them


def test_requests_from_the_proxy_pass(net: Network, bob: Node) -> None:
    Screened(bob.core)
    inbox = net.listen(PEER)
    net.inject(raw_invite(), PEER, BOB_ADDR)
    net.inject(raw_invite("z9hG4bKo", method="OPTIONS", call_id="o@p"), PEER, BOB_ADDR)
    net.run(duration=0.1)
    assert len(bob.of(IncomingCall)) == 1 and len(bob.of(RequestReceived)) == 1
    assert [p.status for p in inbox] == [100]
    assert bob.of(RequestScreened) == []


def test_in_dialog_requests_and_cancel_are_matched_before_the_screen(
    net: Network, bob: Node
) -> None:
    """A BYE from the far end of a call the proxy let in, from another address (no
    Record-Route: it comes straight from the caller's Contact), still ends the call."""
    screen = Screened(bob.core)
    inbox = net.listen(PEER)
    net.inject(raw_invite(), PEER, BOB_ADDR)
    net.run(duration=0.1)
    call = bob.of(IncomingCall)[0].call
    bob.core.answer(call, net.now, body=b"v=0")
    net.run(duration=0.1)
    tag = parse_message(inbox[-1].data).to.tag
    ack = raw_invite("z9hG4bKack", method="ACK", to=f"<sip:bob@10.0.0.2>;tag={tag}")
    net.inject(ack, PEER, BOB_ADDR)
    far_end = Address("udp", "203.0.113.20", 5060)
    bye = raw_invite("z9hG4bKbye", method="BYE", cseq=2, to=f"<sip:bob@10.0.0.2>;tag={tag}")
    net.inject(bye, far_end, BOB_ADDR)
    net.run(duration=0.1)
    assert len(bob.of(CallEnded)) == 1
    assert screen.asked == [("INVITE", PEER)]  # the ACK and the BYE matched the dialog

    # a CANCEL of a ringing INVITE matches its transaction
    net.inject(raw_invite("z9hG4bK2", call_id="c2@p"), PEER, BOB_ADDR)
    net.run(duration=0.1)
    net.inject(raw_invite("z9hG4bK2", method="CANCEL", call_id="c2@p"), far_end, BOB_ADDR)
    net.run(duration=0.1)
    assert len(bob.of(CallEnded)) == 2
    assert bob.of(RequestScreened) == []


def test_retransmission_of_an_accepted_request_is_not_screened_again(
    net: Network, bob: Node
) -> None:
    screen = Screened(bob.core)
    net.inject(raw_invite(), PEER, BOB_ADDR)
    net.inject(raw_invite(), PEER, BOB_ADDR)
    net.run(duration=0.1)
    assert screen.asked == [("INVITE", PEER)]


def test_tcp_stranger_gets_a_stateless_403_on_its_connection() -> None:
    core = make_core("bob", "10.0.0.2", transport="tcp")
    Screened(core)
    source = Address("tcp", "198.51.100.66", 50123, connection=7)
    core.receive(scanner_invite().replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"), source, 0.0)
    out = core.messages_to_send()
    assert len(out) == 1
    answer, destination = parse_message(out[0][0]), out[0][1]
    assert answer.status_code == 403 and destination == source  # type: ignore[union-attr]
    event = core.next_event()
    assert isinstance(event, RequestScreened) and event.answered
    assert core.next_event() is None and core.get_timer() is None


def test_without_a_screen_everyone_is_accepted(net: Network, bob: Node) -> None:
    inbox = net.listen(Address("udp", "198.51.100.66", 5070))
    net.inject(scanner_invite(), SCANNER, BOB_ADDR)
    net.run(duration=0.1)
    assert [p.status for p in inbox] == [100]
    assert len(bob.of(IncomingCall)) == 1


def test_outgoing_calls_and_their_responses_are_unaffected(net: Network) -> None:
    alice = net.add("alice", make_core("alice", "10.0.0.1"))
    bob = net.add("bob", make_core("bob", "10.0.0.2"))
    screen = Screened(alice.core)  # alice refuses everyone but 10.0.0.7, bob included
    alice.core.invite(Uri.parse("sip:bob@10.0.0.2"), net.now, body=b"v=0")
    net.run(duration=0.1)
    bob.core.answer(bob.of(IncomingCall)[0].call, net.now, body=b"v=0")
    net.run(duration=0.1)
    bob.core.bye(bob.of(IncomingCall)[0].call, net.now)  # in the dialog: matched
    net.run(duration=0.1)
    assert len(alice.of(CallEnded)) == 1
    assert screen.asked == []
