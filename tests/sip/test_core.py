"""The UA core: receive point, §18 addressing, §8.2 checks, generic requests, auth retry."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import pytest

from sippa.errors import ProtocolError
from sippa.sip.core import CoreConfig, UserAgentCore
from sippa.sip.digest import DigestClient, parse_authorization
from sippa.sip.events import (
    Address,
    CallAnswered,
    CallEnded,
    IncomingCall,
    MessageRejected,
    RequestReceived,
    ResponseReceived,
    TransactionTimeout,
    TransportError,
)
from sippa.sip.headers import NameAddr
from sippa.sip.message import Request, Response, make_response, parse_message
from sippa.sip.uri import Uri
from tests.sip.loop import Network, Node, Packet, make_core, request, response

BOB = Uri.parse("sip:bob@10.0.0.2")
BOB_ADDR = Address("udp", "10.0.0.2", 5060)
PEER = Address("udp", "10.0.0.7", 5060)


@pytest.fixture
def net() -> Network:
    return Network()


@pytest.fixture
def alice(net: Network) -> Node:
    return net.add("alice", make_core("alice", "10.0.0.1"))


@pytest.fixture
def bob(net: Network) -> Node:
    return net.add("bob", make_core("bob", "10.0.0.2"))


def raw_invite(branch: str = "z9hG4bKp1", *, cseq: int = 1, **kw: str) -> bytes:
    """A request from the hand-driven peer at 10.0.0.7; ``extra`` is "Name: value|Name: value"."""
    method = kw.get("method", "INVITE")
    lines = [
        f"{method} sip:bob@10.0.0.2 SIP/2.0",
        f"Via: SIP/2.0/UDP 10.0.0.7:5060;branch={branch}",
        "Max-Forwards: 70",
        f"To: {kw.get('to', '<sip:bob@10.0.0.2>')}",
        f"From: <sip:peer@10.0.0.7>;tag={kw.get('from_tag', 'pt')}",
        f"Call-ID: {kw.get('call_id', 'c1@10.0.0.7')}",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:peer@10.0.0.7>",
        *(x for x in kw.get("extra", "").split("|") if x),
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parsed(packet: Packet) -> Request | Response:
    return parse_message(packet.data)


# --- the receive point (§8.2, h11-style error handling) ---------------------------------------


def test_malformed_request_gets_its_status(net: Network, bob: Node) -> None:
    inbox = net.listen(PEER)
    bad = raw_invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE")  # §8.2.2: method mismatch
    net.inject(bad, PEER, BOB_ADDR)
    net.run(duration=0.1)
    assert [p.status for p in inbox] == [400]
    rejected = bob.of(MessageRejected)
    assert len(rejected) == 1 and rejected[0].answered and rejected[0].status == 400
    assert bob.of(IncomingCall) == []
    answer = parsed(inbox[0])
    assert isinstance(answer, Response) and answer.to.tag  # §8.2.6.2: a To tag


def test_unsupported_version_gets_505(net: Network, bob: Node) -> None:
    inbox = net.listen(PEER)
    net.inject(raw_invite().replace(b" SIP/2.0\r\n", b" SIP/7.0\r\n", 1), PEER, BOB_ADDR)
    net.run(duration=0.1)
    assert [p.status for p in inbox] == [505]


def test_garbage_is_dropped(net: Network, bob: Node) -> None:
    inbox = net.listen(PEER)
    net.inject(b"\x00\xffnot sip at all\r\n\r\n", PEER, BOB_ADDR)
    net.inject(
        raw_invite().replace(b"Via: SIP/2.0/UDP 10.0.0.7:5060;", b"Via: junk;"), PEER, BOB_ADDR
    )
    net.run(duration=0.1)
    assert inbox == []
    assert [r.answered for r in bob.of(MessageRejected)] == [False, False]


def test_nothing_but_protocol_errors_escape_receive() -> None:
    """Truncated and corrupted INVITEs never raise out of receive()."""
    core = make_core("bob", "10.0.0.2")
    good = raw_invite(extra="Record-Route: <sip:p1@10.0.0.8;lr>|Supported: 100rel")
    bases = [
        good,
        good,
        raw_invite("z9hG4bKb", method="BYE", cseq=2, to="<sip:bob@10.0.0.2>;tag=bob1"),
        raw_invite(method="ACK"),  # same branch as the INVITE: matches its transaction
        raw_invite(method="CANCEL"),
        raw_invite("1234", method="ACK"),  # RFC 2543 style
    ]
    rng = random.Random(1234)
    samples = [good[:i] for i in range(0, len(good), 3)] + bases * 3
    for n in range(900):
        data = bytearray(bases[n % len(bases)])
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.choice(b':;,<>@ \r\n\x00=zZ9"')
        samples.append(bytes(data))
    seen: set[str] = set()
    for i, data in enumerate(samples):
        core.receive(data, Address("udp", "10.0.0.7", 5060 + i % 7), float(i))
        core.handle_timer(float(i) + 0.5)
        core.messages_to_send()
        while (event := core.next_event()) is not None:
            seen.add(type(event).__name__)
            if isinstance(event, IncomingCall) and i % 2:
                core.answer(event.call, float(i), body=b"answer")
    # the mutations reached the call logic, not only the parser
    assert {"IncomingCall", "MessageRejected"} <= seen


def test_method_not_allowed_405(net: Network, bob: Node) -> None:
    inbox = net.listen(PEER)
    net.inject(raw_invite(method="PUBLISH"), PEER, BOB_ADDR)
    net.run(duration=0.1)
    assert [p.status for p in inbox] == [405]
    assert "INVITE" in (inbox[0].header("Allow") or "")


def test_unsupported_require_420(net: Network, bob: Node) -> None:
    inbox = net.listen(PEER)
    net.inject(raw_invite(extra="Require: 100rel, foo"), PEER, BOB_ADDR)
    net.run(duration=0.1)
    assert [p.status for p in inbox] == [100, 420]
    assert inbox[1].header("Unsupported") == "100rel, foo"
    assert bob.of(IncomingCall) == []


def test_bye_for_unknown_dialog_481(net: Network, bob: Node) -> None:
    inbox = net.listen(PEER)
    net.inject(raw_invite(method="BYE", to="<sip:bob@10.0.0.2>;tag=nope"), PEER, BOB_ADDR)
    net.run(duration=0.1)
    assert [p.status for p in inbox] == [481]


def test_merged_request_482(net: Network, bob: Node) -> None:
    inbox = net.listen(PEER)
    net.inject(raw_invite("z9hG4bKpath1"), PEER, BOB_ADDR)
    net.inject(raw_invite("z9hG4bKpath2"), PEER, BOB_ADDR)  # same request via another path
    net.run(duration=0.1)
    assert [p.status for p in inbox] == [100, 100, 482]
    assert len(bob.of(IncomingCall)) == 1


def test_cancel_without_invite_481(net: Network, bob: Node) -> None:
    inbox = net.listen(PEER)
    net.inject(raw_invite(method="CANCEL"), PEER, BOB_ADDR)
    net.run(duration=0.1)
    assert [p.status for p in inbox] == [481]


# --- §17.2.3 matching at the core, RFC 2543 peers ----------------------------------------------


def test_rfc2543_invite_retransmission_and_ack(net: Network, bob: Node) -> None:
    inbox = net.listen(PEER)
    old = raw_invite("1234")  # no magic cookie
    net.inject(old, PEER, BOB_ADDR)
    net.run(duration=0.1)
    net.inject(old, PEER, BOB_ADDR)  # retransmission, matched the RFC 2543 way
    net.run(duration=0.1)
    assert len(bob.of(IncomingCall)) == 1
    assert [p.status for p in inbox] == [100, 100]
    bob.core.reject(bob.of(IncomingCall)[0].call, net.now, 486)
    net.run(duration=0.1)
    tag = parsed(inbox[-1]).to.tag
    ack = raw_invite("1234", method="ACK", to=f"<sip:bob@10.0.0.2>;tag={tag}")
    net.inject(ack, PEER, BOB_ADDR)
    net.run(duration=40)
    # the ACK matched (To tag of our response): no Timer G retransmissions of the 486
    assert [p.status for p in inbox] == [100, 100, 486]


# --- §18.2.1 / RFC 3581 and §18.2.2 -----------------------------------------------------------


def test_rport_and_received_behind_a_nat(net: Network, alice: Node, bob: Node) -> None:
    public = Address("udp", "203.0.113.5", 40000)
    net.source_override[("udp", "10.0.0.1", 5060)] = public
    net.nodes[("udp", "203.0.113.5", 40000)] = alice  # the NAT maps it back
    alice.core.invite(BOB, net.now, body=b"x")
    net.run(duration=0.1)
    request_at_bob = bob.of(IncomingCall)[0].request
    via = request_at_bob.top_via
    assert via.received == "203.0.113.5" and via.rport == 40000
    trying = net.sent_by(bob, response(100))
    assert trying and trying[0].dst == public  # RFC 3581 §4: back to source IP and port
    assert alice.of(CallAnswered) == [] and len(net.sent_by(alice, request("INVITE"))) == 1


def test_received_without_rport_uses_via_port(net: Network, bob: Node) -> None:
    inbox = net.listen(Address("udp", "198.51.100.1", 5070))
    data = raw_invite().replace(b"10.0.0.7:5060;branch", b"host.invalid:5070;branch")
    net.inject(data, Address("udp", "198.51.100.1", 33333), BOB_ADDR)
    net.run(duration=0.1)
    assert [p.status for p in inbox] == [100]  # §18.2.2: received host, sent-by port
    assert parsed(inbox[0]).top_via.received == "198.51.100.1"


def test_reliable_responses_reuse_the_connection() -> None:
    core = make_core("bob", "10.0.0.2", transport="tcp")
    source = Address("tcp", "10.0.0.7", 50123, connection=42)
    data = raw_invite().replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
    core.receive(data, source, 0.0)
    out = core.messages_to_send()
    assert [(parse_message(d).status_code, dst) for d, dst in out] == [(100, source)]  # type: ignore[union-attr]


def test_response_for_another_sent_by_is_dropped(net: Network, alice: Node) -> None:
    inbox = net.listen(PEER)
    alice.core.send_request("OPTIONS", Uri.parse("sip:peer@10.0.0.7"), net.now)
    net.run(duration=0.1)
    options = parsed(inbox[0])
    assert isinstance(options, Request)
    wrong = make_response(options, 200, to_tag="x")
    wrong.headers.set("Via", str(options.top_via.with_params(branch="z9hG4bKother")))
    net.inject(bytes(wrong).replace(b"10.0.0.1:5060", b"10.9.9.9:5060"), PEER, inbox[0].src)
    net.run(duration=0.1)
    assert alice.of(ResponseReceived) == []
    net.inject(bytes(make_response(options, 200, to_tag="x")), PEER, inbox[0].src)
    net.run(duration=0.1)
    assert [r.response.status_code for r in alice.of(ResponseReceived)] == [200]


# --- generic requests ---------------------------------------------------------------------------


def test_options_round_trip_with_lost_response(net: Network, alice: Node, bob: Node) -> None:
    net.drop(response(200, "OPTIONS"))
    handle = alice.core.send_request("OPTIONS", BOB, net.now)
    net.run(duration=0.1)
    got = bob.of(RequestReceived)
    assert len(got) == 1 and got[0].call is None
    bob.core.respond(got[0].transaction, 200, net.now, headers=[("Accept", "application/sdp")])
    net.run(duration=2)
    # Timer E re-sent the OPTIONS, Bob's transaction answered with the stored 200
    assert len(net.sent_by(alice, request("OPTIONS"))) == 2
    assert len(bob.of(RequestReceived)) == 1
    assert [(r.transaction, r.response.status_code) for r in alice.of(ResponseReceived)] == [
        (handle, 200)
    ]


def test_request_timeout_timer_f(net: Network, alice: Node) -> None:
    handle = alice.core.send_request(
        "MESSAGE", Uri.parse("sip:x@10.0.0.99"), net.now, body=b"hi", content_type="text/plain"
    )
    net.run()
    assert alice.of(TransactionTimeout) == [TransactionTimeout(handle, "MESSAGE")]
    assert net.now == pytest.approx(32.0)


def test_transport_error_is_reported() -> None:
    core = make_core("alice", "10.0.0.1", transport="tcp")
    handle = core.send_request("OPTIONS", Uri.parse("sip:bob@10.0.0.2;transport=tcp"), 0.0)
    ((_, destination),) = core.messages_to_send()
    assert destination == Address("tcp", "10.0.0.2", 5060)
    core.transport_error(destination, 0.1)
    assert core.next_event() == TransportError(handle, destination)
    assert core.get_timer() is None


def test_outbound_proxy_is_a_preloaded_loose_route() -> None:
    config = CoreConfig(
        local=(Address("udp", "10.0.0.1", 5060),),
        aor=NameAddr(None, Uri.parse("sip:alice@example.com")),
        outbound_proxy=Uri.parse("sip:proxy.example.com:5070"),
    )
    core = UserAgentCore(config, ids=iter(map(str, range(100))).__next__, rand=lambda: 0.5)
    core.invite(Uri.parse("sip:bob@example.com"), 0.0, body=b"x")
    ((data, destination),) = core.messages_to_send()
    invite = parse_message(data)
    assert isinstance(invite, Request)
    assert destination == Address("udp", "proxy.example.com", 5070)
    assert invite.headers.get_all("Route") == ["<sip:proxy.example.com:5070;lr>"]
    assert str(invite.uri) == "sip:bob@example.com"
    assert (invite.top_via.branch or "").startswith("z9hG4bK")
    assert invite.top_via.rport is True


# --- digest retry hook (401/407) ----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    header: str
    value: str

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        return ((self.header, self.value),)


def test_401_retried_with_credentials_and_new_cseq(net: Network, bob: Node) -> None:
    seen: list[tuple[str, int]] = []

    def authorize(req: Request, challenge: Response) -> Answer:
        seen.append((req.method, challenge.status_code))
        return Answer("Authorization", 'Digest username="alice", response="..."')

    core = make_core("alice", "10.0.0.1")
    core.authorize = authorize
    alice = net.add("alice", core)
    handle = alice.core.send_request("OPTIONS", BOB, net.now)
    net.run(duration=0.1)
    first = bob.of(RequestReceived)[0]
    bob.core.respond(
        first.transaction,
        401,
        net.now,
        headers=[("WWW-Authenticate", 'Digest realm="x", nonce="n"')],
    )
    net.run(duration=0.1)
    second = bob.of(RequestReceived)[1]
    assert second.request.cseq.seq == first.request.cseq.seq + 1  # §8.1.3.5
    assert second.request.call_id == first.request.call_id
    assert second.request.headers.get("Authorization") is not None
    assert second.request.top_via.branch != first.request.top_via.branch
    bob.core.respond(second.transaction, 200, net.now)
    net.run(duration=0.1)
    assert seen == [("OPTIONS", 401)]
    assert [(r.transaction, r.response.status_code) for r in alice.of(ResponseReceived)] == [
        (handle, 200)
    ]


def test_407_on_invite_retried(net: Network) -> None:
    def authorize(req: Request, challenge: Response) -> Answer:
        return Answer("Proxy-Authorization", 'Digest username="alice"')

    core = make_core("alice", "10.0.0.1")
    core.authorize = authorize
    alice = net.add("alice", core)
    inbox = net.listen(PEER)
    call = alice.core.invite(Uri.parse("sip:bob@10.0.0.7"), net.now, body=b"offer")
    net.run(duration=0.1)
    first = parsed(inbox[0])
    assert isinstance(first, Request)
    challenge = make_response(first, 407, to_tag="p1")
    challenge.headers.add("Proxy-Authenticate", 'Digest realm="x", nonce="n"')
    net.inject(bytes(challenge), PEER, inbox[0].src)
    net.run(duration=0.1)
    methods = [(p.method, p.header("CSeq")) for p in inbox]
    assert methods == [("INVITE", "1 INVITE"), ("ACK", "1 ACK"), ("INVITE", "2 INVITE")]
    second = parsed(inbox[2])
    assert isinstance(second, Request) and second.headers.get("Proxy-Authorization")
    assert second.from_.tag == first.from_.tag and second.call_id == first.call_id
    ok = make_response(second, 200, to_tag="b1")
    ok.headers.add("Contact", "<sip:bob@10.0.0.7>")
    net.inject(bytes(ok), PEER, inbox[0].src)
    net.run(duration=0.1)
    assert len(alice.of(CallAnswered)) == 1 and alice.of(CallAnswered)[0].call == call
    assert inbox[-1].method == "ACK" and inbox[-1].header("CSeq") == "2 ACK"


def test_unanswerable_challenge_is_passed_up(net: Network, bob: Node) -> None:
    def authorize(req: Request, challenge: Response) -> Answer:
        raise ProtocolError("no acceptable algorithm", 401)

    core = make_core("alice", "10.0.0.1")
    core.authorize = authorize
    alice = net.add("alice", core)
    alice.core.send_request("OPTIONS", BOB, net.now)
    net.run(duration=0.1)
    bob.core.respond(bob.of(RequestReceived)[0].transaction, 401, net.now)
    net.run(duration=0.1)
    assert [r.response.status_code for r in alice.of(ResponseReceived)] == [401]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_invite_with_the_digest_client(net: Network) -> None:
    """Wired to sippa.sip.digest: the strongest challenge is answered, a refusal ends the call."""
    core = make_core("alice", "10.0.0.1")
    core.authorize = DigestClient("alice", "secret", cnonce=lambda: "0a4f113b").authorize
    alice = net.add("alice", core)
    inbox = net.listen(PEER)
    call = alice.core.invite(Uri.parse("sip:bob@10.0.0.7"), net.now, body=b"offer")
    net.run(duration=0.1)
    first = parsed(inbox[0])
    assert isinstance(first, Request)
    challenge = make_response(first, 401, to_tag="p1")
    challenge.headers.add("WWW-Authenticate", 'Digest realm="sippa.test", nonce="n1", qop="auth"')
    challenge.headers.add(
        "WWW-Authenticate",
        'Digest realm="sippa.test", nonce="n2", qop="auth", algorithm=SHA-256',
    )
    net.inject(bytes(challenge), PEER, inbox[0].src)
    net.run(duration=0.1)
    second = parsed(inbox[2])
    assert isinstance(second, Request) and second.cseq.seq == 2
    auth = parse_authorization(second.headers.get("Authorization") or "")
    assert (auth.username, auth.realm, auth.nonce, auth.algorithm) == (
        "alice",
        "sippa.test",
        "n2",
        "SHA-256",
    )
    ha1 = _sha256("alice:sippa.test:secret")
    ha2 = _sha256(f"INVITE:{auth.uri}")
    assert auth.response == _sha256(f"{ha1}:n2:{auth.nc}:{auth.cnonce}:auth:{ha2}")
    # the same challenge again: the credentials were refused, no third INVITE (§22.2)
    again = make_response(second, 401, to_tag="p1")
    again.headers.add(
        "WWW-Authenticate",
        'Digest realm="sippa.test", nonce="n2", qop="auth", algorithm=SHA-256',
    )
    net.inject(bytes(again), PEER, inbox[0].src)
    net.run(duration=0.1)
    assert [p.method for p in inbox] == ["INVITE", "ACK", "INVITE", "ACK"]
    assert alice.of(CallEnded) == [CallEnded(call, "rejected", 401)]
