"""RFC 4028 session timers: the header grammar, the §9 table, and calls between two UA cores on
the in-memory loop network (422 retry, refresh, expiry, refresh failure, the peer's refreshes)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sippa.errors import RemoteProtocolError
from sippa.sip.events import (
    CallAnswered,
    CallEnded,
    IncomingCall,
    ReinviteReceived,
    SessionRefreshDue,
    SessionTimerChanged,
)
from sippa.sip.invite import CallState
from sippa.sip.message import Headers, Request, make_response, parse_message
from sippa.sip.session_timer import (
    SessionExpires,
    SessionTimer,
    SessionTimerConfig,
    expiry_margin,
    parse_min_se,
    request_headers,
    supports_timer,
    uac_timer,
    uas_decision,
)
from sippa.sip.uri import Uri
from tests.sip.loop import Network, Node, Packet, make_core, request, response

BOB = Uri.parse("sip:bob@10.0.0.2")
OFFER = b"v=0\r\no=alice 1 1 IN IP4 10.0.0.1\r\n"
ANSWER = b"v=0\r\no=bob 1 1 IN IP4 10.0.0.2\r\n"
ON = SessionTimerConfig(1800, 90)


def node(net: Network, name: str, host: str, timer: SessionTimerConfig | None = ON) -> Node:
    kwargs = {} if timer is None else {"session_timer": timer}
    return net.add(name, make_core(name, host, **kwargs))


def establish(net: Network, alice: Node, bob: Node, **invite: object) -> tuple[str, str]:
    call = alice.core.invite(BOB, net.now, body=OFFER, **invite)  # type: ignore[arg-type]
    net.run(duration=0.1)
    bcall = bob.of(IncomingCall)[-1].call
    bob.core.answer(bcall, net.now, body=ANSWER)
    net.run(duration=0.1)
    assert alice.core.call_state(call) is CallState.CONFIRMED
    return call, bcall


def invite_request(headers: list[tuple[str, str]]) -> Request:
    fields = Headers([
        ("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1"), ("From", "<sip:a@x>;tag=1"),
        ("To", "<sip:b@y>"), ("Call-ID", "c1"), ("CSeq", "1 INVITE"),
    ])
    for name, value in headers:
        fields.add(name, value)
    return Request("INVITE", BOB, fields, b"")


# --- grammar (§4) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "interval", "refresher"),
    [
        ("1800", 1800, None),
        ("1800;refresher=uac", 1800, "uac"),
        (" 90 ;refresher=UAS", 90, "uas"),
        ("4000;foo=bar;refresher=uas", 4000, "uas"),
        ("600;refresher=other", 600, None),
        ("99999999999"[:10], 2**31 - 1, None),
    ],
)
def test_session_expires_parses(text: str, interval: int, refresher: str | None) -> None:
    se = SessionExpires.parse(text)
    assert (se.interval, se.refresher) == (interval, refresher)


@pytest.mark.parametrize("text", ["", "abc", "-5", "1800;", "1800 x", "18 00", "12345678901"])
def test_malformed_session_expires_is_a_400(text: str) -> None:
    with pytest.raises(RemoteProtocolError) as exc:
        SessionExpires.parse(text)
    assert exc.value.status_code == 400


def test_min_se_and_serialisation() -> None:
    assert parse_min_se("120") == 120 and parse_min_se("90;x=y") == 90
    with pytest.raises(RemoteProtocolError):
        parse_min_se("ninety")
    assert str(SessionExpires(1800, "uac")) == "1800;refresher=uac"
    assert str(SessionExpires(90)) == "90"
    # the compact form x (§4) is read like the long one
    req = invite_request([("x", "300;refresher=uas"), ("k", "timer")])
    assert supports_timer(req)
    decision = uas_decision(req, ON)
    assert decision.timer == SessionTimer(300, True)


def test_expiry_margin_and_refresh_points() -> None:
    assert expiry_margin(1800) == 32 and expiry_margin(90) == 30
    timer = SessionTimer(1800, True)
    assert timer.refresh_after == 900 and timer.expire_after == 1768
    assert timer.refresher_param(sending=True) == "uac"
    assert timer.refresher_param(sending=False) == "uas"


def test_request_headers_off_initial_and_refresh() -> None:
    assert request_headers(SessionTimerConfig(0), 90, None, 0) == []
    assert request_headers(ON, 90, None, 1800) == [
        ("Supported", "timer"), ("Session-Expires", "1800"), ("Min-SE", "90")
    ]
    refresh = request_headers(ON, 120, SessionTimer(600, False), 1800)
    assert ("Session-Expires", "600;refresher=uas") in refresh and ("Min-SE", "120") in refresh


# --- the UAS table (§9) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "timer", "require", "too_small"),
    [
        # UAC supports, asks 1800, leaves the refresher to us: it refreshes (uac)
        ([("Supported", "timer"), ("Session-Expires", "1800")], SessionTimer(1800, False),
         True, None),
        ([("Supported", "timer"), ("Session-Expires", "1800;refresher=uas")],
         SessionTimer(1800, True), True, None),
        # too small with Supported: 422 with our Min-SE
        ([("Supported", "timer"), ("Session-Expires", "60")], None, False, 300),
        # too small without Supported (a proxy's header): raised to our minimum, we refresh
        ([("Session-Expires", "60")], SessionTimer(300, True), False, None),
        # longer than we like: reduced, but never under their Min-SE
        ([("Supported", "timer"), ("Session-Expires", "7200"), ("Min-SE", "3600")],
         SessionTimer(3600, False), True, None),
        ([("Supported", "timer"), ("Session-Expires", "7200")], SessionTimer(1800, False),
         True, None),
        # supports but asks nothing: we ask (uac refreshes)
        ([("Supported", "timer")], SessionTimer(1800, False), True, None),
        # knows nothing of RFC 4028: we keep a timer and refresh ourselves (uas), no Require
        ([], SessionTimer(1800, True), False, None),
    ],
)
def test_uas_decision(
    headers: list[tuple[str, str]], timer: SessionTimer | None, require: bool,
    too_small: int | None,
) -> None:
    decision = uas_decision(invite_request(headers), SessionTimerConfig(1800, 300))
    assert (decision.timer, decision.require, decision.too_small) == (timer, require, too_small)


def test_uas_decision_off_and_headers() -> None:
    req = invite_request([("Supported", "timer"), ("Session-Expires", "60")])
    assert uas_decision(req, SessionTimerConfig(0)).timer is None
    decision = uas_decision(invite_request([("Supported", "timer")]), ON)
    assert decision.response_headers() == [
        ("Supported", "timer"), ("Session-Expires", "1800;refresher=uac"), ("Require", "timer")
    ]


def test_uac_timer_rules() -> None:
    def ok(*headers: tuple[str, str]) -> object:
        resp = make_response(invite_request([]), 200, to_tag="t")
        for name, value in headers:
            resp.headers.add(name, value)
        return resp

    # §7.2: no Session-Expires, no session expiration
    assert uac_timer(ok(), ON, None, peer_supports=True) is None  # type: ignore[arg-type]
    got = uac_timer(ok(("Session-Expires", "600;refresher=uas")), ON, None,  # type: ignore[arg-type]
                    peer_supports=True)
    assert got == SessionTimer(600, False)
    # Require: timer without Session-Expires (malformed): no session timer either
    assert uac_timer(ok(("Require", "timer")), ON, None,  # type: ignore[arg-type]
                     peer_supports=True) is None
    # refresher missing: we refresh; below 90: raised to 90; malformed: as absent
    assert uac_timer(ok(("Session-Expires", "10")), ON, None,  # type: ignore[arg-type]
                     peer_supports=True) == SessionTimer(90, True)
    assert uac_timer(ok(("Session-Expires", "x;;")), ON, None,  # type: ignore[arg-type]
                     peer_supports=True) is None
    # a peer without the extension answers our refresh without the header: our timer stays
    mine = SessionTimer(1800, True)
    assert uac_timer(ok(), ON, mine, peer_supports=False) is mine  # type: ignore[arg-type]
    assert uac_timer(ok(), ON, mine, peer_supports=True) is None  # type: ignore[arg-type]


# --- calls: negotiation -------------------------------------------------------------------------


def test_both_sides_agree_and_the_caller_refreshes() -> None:
    net = Network()
    alice, bob = node(net, "alice", "10.0.0.1"), node(net, "bob", "10.0.0.2")
    call, bcall = establish(net, alice, bob)
    invite = net.sent_by(alice, request("INVITE"))[0]
    assert invite.header("Supported") == "timer"
    assert invite.header("Session-Expires") == "1800" and invite.header("Min-SE") == "90"
    ok = net.sent_by(bob, response(200, "INVITE"))[0]
    assert ok.header("Session-Expires") == "1800;refresher=uac"
    assert ok.header("Require") == "timer"
    assert alice.core.session_timer(call) == SessionTimer(1800, True)
    assert bob.core.session_timer(bcall) == SessionTimer(1800, False)
    changed = alice.of(SessionTimerChanged)[0]
    assert (changed.interval, changed.local_refresher) == (1800, True)
    # half the interval later the refresher is told to refresh, not before
    start = net.now
    net.run(until=start + 899)
    assert not alice.of(SessionRefreshDue)
    net.run(until=start + 901)
    assert alice.of(SessionRefreshDue) == [SessionRefreshDue(call)]
    alice.core.reinvite(call, net.now, body=OFFER)
    net.run(duration=0.1)
    refresh = net.sent_by(alice, request("INVITE"))[-1]
    assert refresh.header("Session-Expires") == "1800;refresher=uac"
    assert refresh.header("Min-SE") == "90" and refresh.header("CSeq") == "2 INVITE"
    bob.core.accept_reinvite(bcall, net.now, body=ANSWER)
    net.run(duration=0.1)
    assert net.sent_by(bob, response(200, "INVITE"))[-1].header("Session-Expires") == (
        "1800;refresher=uac"
    )
    # both timers restarted: nobody ends the call at the old expiry
    refreshed_at = net.now
    net.run(until=start + 1800)
    assert not alice.of(CallEnded) and not bob.of(CallEnded)
    assert len(alice.of(SessionRefreshDue)) == 1
    net.run(until=refreshed_at + 901)
    assert len(alice.of(SessionRefreshDue)) == 2


def test_an_ignored_refresh_is_asked_for_again() -> None:
    net = Network()
    alice, bob = node(net, "alice", "10.0.0.1"), node(net, "bob", "10.0.0.2")
    call, _ = establish(net, alice, bob)
    net.run(duration=900.5)
    assert len(alice.of(SessionRefreshDue)) == 1
    net.run(duration=10)  # the application did nothing: asked again
    assert len(alice.of(SessionRefreshDue)) == 2
    alice.core.reinvite(call, net.now, body=OFFER)  # under way: no more asking
    net.run(duration=30)
    assert len(alice.of(SessionRefreshDue)) == 2


def test_timers_off_by_default_change_nothing() -> None:
    net = Network()
    alice, bob = node(net, "alice", "10.0.0.1", None), node(net, "bob", "10.0.0.2", None)
    call, _ = establish(net, alice, bob)
    invite = net.sent_by(alice, request("INVITE"))[0]
    assert invite.header("Session-Expires") is None and invite.header("Supported") is None
    assert net.sent_by(bob, response(200, "INVITE"))[0].header("Session-Expires") is None
    assert alice.core.session_timer(call) is None
    assert not alice.of(SessionTimerChanged)


def test_callee_refreshes_for_a_caller_without_the_extension() -> None:
    net = Network()
    # alice allows no UPDATE: bob's refreshes are re-INVITEs the application sends
    alice = net.add("alice", make_core("alice", "10.0.0.1",
                                       methods=("INVITE", "ACK", "BYE", "CANCEL")))
    bob = node(net, "bob", "10.0.0.2", SessionTimerConfig(600, 90))
    call, bcall = establish(net, alice, bob)
    ok = net.sent_by(bob, response(200, "INVITE"))[0]
    assert ok.header("Session-Expires") == "600;refresher=uas"
    assert ok.header("Require") is None  # the UAC did not say Supported: timer
    assert bob.core.session_timer(bcall) == SessionTimer(600, True)
    net.run(duration=301)
    assert bob.of(SessionRefreshDue) == [SessionRefreshDue(bcall)]
    bob.core.reinvite(bcall, net.now, body=ANSWER)
    net.run(duration=0.1)
    assert net.sent_by(bob, request("INVITE"))[-1].header("Session-Expires") == (
        "600;refresher=uac"
    )
    alice.core.accept_reinvite(call, net.now, body=OFFER)
    net.run(duration=0.1)
    # alice's 2xx has no Session-Expires (she knows nothing of it): bob keeps refreshing
    assert bob.core.session_timer(bcall) == SessionTimer(600, True)
    net.run(duration=301)
    assert len(bob.of(SessionRefreshDue)) == 2


def allowing_update(net: Network, caller_timer: SessionTimerConfig | None = None,
                    callee_timer: SessionTimerConfig | None = ON) -> tuple[Node, Node, str, str]:
    """Bob refreshes (alice knows no session timers) and alice allows UPDATE (her Allow)."""
    alice = node(net, "alice", "10.0.0.1", caller_timer)
    bob = node(net, "bob", "10.0.0.2", callee_timer)
    call, bcall = establish(net, alice, bob)
    assert "UPDATE" in (net.sent_by(alice, request("INVITE"))[0].header("Allow") or "")
    assert bob.core.session_timer(bcall) == SessionTimer(1800, True)
    return alice, bob, call, bcall


def updates(net: Network, node: Node) -> list[str]:
    """The CSeq of each UPDATE ``node`` sent (retransmissions once)."""
    return sorted({p.header("CSeq") or "" for p in net.sent_by(node, request("UPDATE"))})


def test_refresh_by_update_when_the_peer_allows_it() -> None:
    net = Network()
    alice, bob, call, _ = allowing_update(net)
    start = net.now
    net.run(until=start + 901)
    # no application round trip: the core sends an UPDATE without a body
    assert not bob.of(SessionRefreshDue)
    sent = net.sent_by(bob, request("UPDATE"))
    assert updates(net, bob) == ["1 UPDATE"]
    assert sent[0].header("Session-Expires") == "1800;refresher=uac"
    assert sent[0].header("Content-Length") == "0"
    assert alice.of(ReinviteReceived)[-1].method == "UPDATE"
    alice.core.accept_reinvite(call, net.now)
    net.run(duration=0.1)
    assert len(bob.of(SessionTimerChanged)) == 2  # set, then refreshed
    net.run(until=start + 1802)
    assert not bob.of(CallEnded)
    assert updates(net, bob) == ["1 UPDATE", "2 UPDATE"]  # the next one, 900 s later


@pytest.mark.parametrize(("status", "reason"), [(481, "dialog-gone"), (408, "timeout")])
def test_refresh_update_481_or_408_ends_the_call(status: int, reason: str) -> None:
    net = Network()
    alice, bob, call, bcall = allowing_update(net)
    net.run(duration=901)
    alice.core.reject_reinvite(call, net.now, status)
    net.run(duration=1)
    assert bob.of(CallEnded) == [CallEnded(bcall, reason, status)]
    assert net.sent_by(bob, request("BYE"))


def test_refresh_update_timeout_ends_the_call() -> None:
    net = Network()
    _, bob, _, bcall = allowing_update(net)
    net.drop(request("UPDATE"), times=100)
    net.run(duration=901 + 40)
    assert bob.of(CallEnded) == [CallEnded(bcall, "timeout", 408)]


def test_refresh_update_glare_is_retried() -> None:
    net = Network()
    alice, bob, call, bcall = allowing_update(net)
    net.run(duration=901)
    alice.core.reject_reinvite(call, net.now, 491)
    net.run(duration=0.1)
    assert updates(net, bob) == ["1 UPDATE"]
    net.run(duration=4.1)  # §14.1 delay, at most 4 s: tried again
    assert updates(net, bob) == ["1 UPDATE", "2 UPDATE"]
    # a 422 without Min-SE asks for nothing better: not retried, the call goes on
    alice.core.reject_reinvite(call, net.now, 422)
    net.run(duration=1)
    assert updates(net, bob) == ["1 UPDATE", "2 UPDATE"]
    assert not bob.of(CallEnded) and bob.core.call_state(bcall) is CallState.CONFIRMED


def test_refresh_update_422_is_retried_with_the_larger_interval() -> None:
    net = Network()
    alice, bob, call, bcall = allowing_update(net)
    # alice turns session timers on with a large minimum during the call
    alice.core.config = replace(alice.core.config, session_timer=SessionTimerConfig(3600, 3600))
    net.run(duration=901)
    assert net.sent_by(alice, response(422, "UPDATE"))[0].header("Min-SE") == "3600"
    assert updates(net, bob) == ["1 UPDATE", "2 UPDATE"]
    again = net.sent_by(bob, request("UPDATE"))[-1]
    assert again.header("Session-Expires") == "3600;refresher=uac"
    alice.core.accept_reinvite(call, net.now)
    net.run(duration=0.1)
    assert bob.core.session_timer(bcall) == SessionTimer(3600, True)
    assert alice.core.session_timer(call) == SessionTimer(3600, False)


# --- 422 (§7.3, §9) ------------------------------------------------------------------------------


def test_422_then_retry_with_the_larger_min_se() -> None:
    net = Network()
    alice = node(net, "alice", "10.0.0.1", SessionTimerConfig(120, 90))
    bob = node(net, "bob", "10.0.0.2", SessionTimerConfig(1800, 1000))
    call, bcall = establish(net, alice, bob)
    invites = net.sent_by(alice, request("INVITE"))
    assert len(invites) == 2
    first, retry = invites
    assert net.sent_by(bob, response(422))[0].header("Min-SE") == "1000"
    assert first.header("Session-Expires") == "120" and first.header("CSeq") == "1 INVITE"
    assert retry.header("Session-Expires") == "1000" and retry.header("Min-SE") == "1000"
    assert retry.header("CSeq") == "2 INVITE"
    assert retry.header("Call-ID") == first.header("Call-ID")
    assert retry.header("From") == first.header("From")
    assert retry.header("Via") != first.header("Via")  # a new transaction
    assert len(bob.of(IncomingCall)) == 1  # the 422 made no call at bob
    assert alice.core.session_timer(call) == SessionTimer(1000, True)
    assert bob.core.session_timer(bcall) == SessionTimer(1000, False)
    # the next in-dialog request continues the CSeq of the retry
    alice.core.bye(call, net.now)
    net.run(duration=1)
    assert net.sent_by(alice, request("BYE"))[0].header("CSeq") == "3 BYE"


PEER = Uri.parse("sip:bob@10.0.0.9")


def answer_422(net: Network, packet: Packet, min_se: str | None) -> None:
    invite = parse_message(packet.data)
    assert isinstance(invite, Request)
    out = make_response(invite, 422, to_tag="p1")
    if min_se is not None:
        out.headers.add("Min-SE", min_se)
    net.inject(bytes(out), packet.dst, packet.src)


@pytest.mark.parametrize(
    ("min_ses", "invites"),
    [
        (["1000", "2000"], 2),  # retried once, never again
        ([None], 1),  # nothing to retry with
        (["bad"], 1),
        (["60"], 1),  # not larger than what we asked
    ],
)
def test_422_retry_is_bounded(min_ses: list[str | None], invites: int) -> None:
    net = Network()
    alice = node(net, "alice", "10.0.0.1", SessionTimerConfig(120, 90))
    inbox = net.listen(replace(alice.core.config.local[0], host="10.0.0.9"))
    call = alice.core.invite(PEER, net.now, body=OFFER)
    for min_se in min_ses:
        net.run(duration=0.1)
        sent = [p for p in inbox if p.method == "INVITE"]
        answer_422(net, sent[-1], min_se)
    net.run(duration=1)
    assert len([p for p in inbox if p.method == "INVITE"]) == invites
    assert alice.of(CallEnded) == [CallEnded(call, "rejected", 422)]


def test_malformed_session_expires_in_an_invite_gets_400() -> None:
    net = Network()
    alice, bob = node(net, "alice", "10.0.0.1", None), node(net, "bob", "10.0.0.2")
    alice.core.invite(BOB, net.now, body=OFFER, headers=[("Session-Expires", "soon")])
    net.run(duration=1)
    assert net.sent_by(bob, response(400))
    assert not bob.of(IncomingCall)
    assert alice.of(CallEnded)[0].status == 400


def test_proxy_inserted_small_interval_is_raised_not_422() -> None:
    net = Network()
    alice = node(net, "alice", "10.0.0.1", None)
    bob = node(net, "bob", "10.0.0.2", SessionTimerConfig(1800, 300))
    _, bcall = establish(net, alice, bob, headers=[("Session-Expires", "100")])
    ok = net.sent_by(bob, response(200, "INVITE"))[0]
    assert ok.header("Session-Expires") == "300;refresher=uas"
    assert bob.core.session_timer(bcall) == SessionTimer(300, True)


# --- ending a dead session (§10) -----------------------------------------------------------------


def test_no_refresh_ends_the_call_with_bye_before_expiry() -> None:
    net = Network()
    alice, bob = node(net, "alice", "10.0.0.1"), node(net, "bob", "10.0.0.2")
    call, bcall = establish(net, alice, bob)
    start = net.sent_by(bob, response(200, "INVITE"))[0].sent_at
    # alice (the refresher) never refreshes: the application ignores SessionRefreshDue
    net.run(until=start + 1767.9)
    assert not net.sent_by(bob, request("BYE")) and not net.sent_by(alice, request("BYE"))
    net.run(until=start + 1770)
    byes = net.sent_by(bob, request("BYE")) + net.sent_by(alice, request("BYE"))
    assert byes
    # 1800 - min(32, 1800/3): the side that did not refresh (bob, who started first) sends it
    assert byes[0].sent_at == pytest.approx(start + 1768, abs=0.05)
    ended = bob.of(CallEnded) + alice.of(CallEnded)
    assert len(ended) == 2 and "session-expired" in {e.reason for e in ended}
    assert bob.core.call_state(bcall) is None and alice.core.call_state(call) is None


def test_refresh_timeout_ends_the_call() -> None:
    net = Network()
    alice, bob = node(net, "alice", "10.0.0.1"), node(net, "bob", "10.0.0.2")
    call, _ = establish(net, alice, bob)
    net.run(duration=901)
    assert alice.of(SessionRefreshDue)
    net.drop(request("INVITE"), times=100)  # the refresh never arrives
    alice.core.reinvite(call, net.now, body=OFFER)
    net.run(duration=40)
    assert alice.of(CallEnded) == [CallEnded(call, "timeout", 408)]
    assert net.sent_by(alice, request("BYE"))


def test_refresh_481_ends_the_call() -> None:
    net = Network()
    alice, bob = node(net, "alice", "10.0.0.1"), node(net, "bob", "10.0.0.2")
    call, bcall = establish(net, alice, bob)
    # bob lost the dialog (restarted): his core answers the refresh with 481
    bob.core.session_ended(bob.core._sessions[bcall])
    net.run(duration=901)
    alice.core.reinvite(call, net.now, body=OFFER)
    net.run(duration=5)
    assert net.sent_by(bob, response(481, "INVITE"))
    assert alice.of(CallEnded)[0].reason == "dialog-gone"
    assert alice.of(CallEnded)[0].status == 481


def test_refresh_while_an_invite_is_pending_waits() -> None:
    net = Network()
    alice, bob = node(net, "alice", "10.0.0.1"), node(net, "bob", "10.0.0.2")
    call, bcall = establish(net, alice, bob)
    net.run(until=net.now + 899.5)
    bob.core.reinvite(bcall, net.now, body=ANSWER)  # bob's re-INVITE, not yet answered
    net.run(duration=1)
    assert alice.of(ReinviteReceived) and not alice.of(SessionRefreshDue)
    alice.core.accept_reinvite(call, net.now, body=OFFER)
    net.run(duration=0.5)
    # bob's re-INVITE refreshed the session: alice's refresh moved 900 s on
    assert not alice.of(SessionRefreshDue)
    assert net.sent_by(bob, request("INVITE"))[-1].header("Session-Expires") == (
        "1800;refresher=uas"
    )
    assert alice.core.session_timer(call) == SessionTimer(1800, True)


# --- the peer's refreshes (§9 for re-INVITE and UPDATE) -------------------------------------------


def test_peer_update_refresh_restarts_our_timer() -> None:
    net = Network()
    alice, bob = node(net, "alice", "10.0.0.1"), node(net, "bob", "10.0.0.2")
    call, bcall = establish(net, alice, bob)
    start = net.now
    net.run(until=start + 1000)
    alice.core.send_request("UPDATE", BOB, net.now, call=call)  # the core adds the headers
    net.run(duration=0.1)
    update = net.sent_by(alice, request("UPDATE"))[0]
    assert update.header("Session-Expires") == "1800;refresher=uac"
    assert bob.of(ReinviteReceived)[-1].method == "UPDATE"
    bob.core.accept_reinvite(bcall, net.now)
    net.run(duration=0.1)
    ok = net.sent_by(bob, response(200, "UPDATE"))[0]
    assert ok.header("Session-Expires") == "1800;refresher=uac"
    assert ok.header("Require") == "timer"
    # both timers moved: nothing at start + 1768
    net.run(until=start + 1800)
    assert not bob.of(CallEnded) and not alice.of(CallEnded)
    assert alice.core.session_timer(call) == SessionTimer(1800, True)
    expires = [e.expires_at for e in bob.of(SessionTimerChanged)]
    assert expires[-1] == pytest.approx(start + 1000 + 1800, abs=0.2)


def test_peer_refresh_too_small_gets_422_and_the_session_stays() -> None:
    net = Network()
    alice, bob = node(net, "alice", "10.0.0.1"), node(net, "bob", "10.0.0.2")
    call, bcall = establish(net, alice, bob)
    alice.core.send_request(
        "UPDATE", BOB, net.now, call=call,
        headers=[("Supported", "timer"), ("Session-Expires", "30;refresher=uac")],
    )
    net.run(duration=0.1)
    too_small = net.sent_by(bob, response(422, "UPDATE"))
    assert too_small and too_small[0].header("Min-SE") == "90"
    assert not bob.of(ReinviteReceived)
    assert bob.core.session_timer(bcall) == SessionTimer(1800, False)


def test_422_to_our_refresh_is_retried_with_the_larger_interval() -> None:
    net = Network()
    alice, bob = node(net, "alice", "10.0.0.1"), node(net, "bob", "10.0.0.2")
    call, bcall = establish(net, alice, bob)
    # bob's policy changed during the call
    bob.core.config = replace(bob.core.config, session_timer=SessionTimerConfig(3600, 3600))
    alice.core.reinvite(call, net.now, body=OFFER)
    net.run(duration=0.1)
    assert net.sent_by(bob, response(422, "INVITE"))
    again = net.sent_by(alice, request("INVITE"))[-1]
    assert again.header("Session-Expires") == "3600;refresher=uac"
    assert again.header("Min-SE") == "3600"
    bob.core.accept_reinvite(bcall, net.now, body=ANSWER)
    net.run(duration=0.1)
    assert alice.core.session_timer(call) == SessionTimer(3600, True)


def test_answered_call_reports_timer_to_the_application() -> None:
    net = Network()
    alice, bob = node(net, "alice", "10.0.0.1"), node(net, "bob", "10.0.0.2")
    call, bcall = establish(net, alice, bob)
    assert alice.of(CallAnswered)
    a = alice.of(SessionTimerChanged)[-1]
    b = bob.of(SessionTimerChanged)[-1]
    assert (a.call, a.interval, a.local_refresher) == (call, 1800, True)
    assert (b.call, b.interval, b.local_refresher) == (bcall, 1800, False)
    alice.core.bye(call, net.now)
    net.run(duration=1)
    assert alice.core.session_timer(call) is None

