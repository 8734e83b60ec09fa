"""Alternate proxy and fallback (Cisco [Alternate Proxy], [Proxy Fallback Intvl]), fake clock."""

from __future__ import annotations

import random

from sippa.sip.message import Request, Response, make_response, parse_message
from sippa.sip.registration import (
    LocalContact,
    Registered,
    Registration,
    RegistrationConfig,
    RegistrationFailed,
    RegState,
    SendFailure,
    Unregistered,
)
from sippa.sip.uri import Uri

LOCAL = LocalContact("UDP", "127.0.0.1", 50123)


def make(fallback: float = 60.0) -> Registration:
    rng = random.Random(3)
    cfg = RegistrationConfig(
        Uri.parse("sip:alice@primary.test"), expires=600, retry_base=10, retry_max=80,
        fallback_interval=fallback,
    )
    return Registration(cfg, rng.getrandbits, prefix="[t]")


def send(reg: Registration, now: float) -> Request:
    req = reg.build_request(LOCAL, now)
    parsed = parse_message(bytes(req))
    assert isinstance(parsed, Request)
    return parsed


def ok(req: Request) -> Response:
    return make_response(req, 200, to_tag="reg")


def events(reg: Registration) -> list[object]:
    return list(iter(reg.next_event, None))


def on_alternate(reg: Registration, now: float = 0.0) -> float:
    """Proxy targets 0-1, alternate target 2; the proxy times out and refuses."""
    reg.set_targets(3, primary=2)
    reg.start(now)
    assert reg.wants_send() == 0
    send(reg, now)
    reg.send_failed(SendFailure.TIMEOUT, "timer F", now + 32)
    assert reg.wants_send() == 1
    req = send(reg, now + 32)
    reg.response_received(make_response(req, 503), now + 33)
    assert reg.wants_send() == 2  # the alternate's first target
    req = send(reg, now + 33)
    # the SIP domain of the AoR stays the proxy's
    assert str(req.uri) == "sip:primary.test" and "alice@primary.test" in str(req.from_)
    reg.response_received(ok(req), now + 34)
    (ev,) = events(reg)
    assert isinstance(ev, Registered) and ev.target == 2
    return now + 34


def test_all_proxy_targets_fail_then_the_alternate_registers() -> None:
    reg = make()
    now = on_alternate(reg)
    st = reg.status
    assert st.registered and st.alternate and st.target == 2
    assert st.alternate_reason == "proxy failed: 503 Service Unavailable"
    assert st.fallback_at == now + 60
    # the fallback comes before the refresh (300-540 s) and is the next timer
    assert reg.get_timer() == now + 60


def test_fallback_moves_back_and_releases_the_alternate() -> None:
    reg = make()
    now = on_alternate(reg)
    reg.handle_timer(now + 59)
    assert reg.wants_send() is None
    reg.handle_timer(now + 60)
    assert reg.status.state is RegState.REFRESHING and reg.status.registered
    assert reg.wants_send() == 0  # the proxy again
    req = send(reg, now + 60)
    reg.response_received(ok(req), now + 61)
    (ev,) = events(reg)
    assert isinstance(ev, Registered) and ev.target == 0
    st = reg.status
    assert not st.alternate and st.alternate_reason is None and st.fallback_at is None
    assert reg.take_release() == 2
    assert reg.take_release() is None  # once
    # the un-REGISTER at the alternate: same Call-ID, next CSeq, Expires 0
    aside = make()
    aside.call_id, aside.from_tag, aside.cseq = reg.call_id, reg.from_tag, reg.cseq
    aside.set_targets(3, primary=2)
    aside.release(2, now + 61)
    assert aside.wants_send() == 2
    unreg = send(aside, now + 61)
    assert unreg.headers.get("Expires") == "0"
    assert unreg.call_id == req.call_id and unreg.cseq.seq == req.cseq.seq + 1
    aside.response_received(ok(unreg), now + 62)
    assert aside.status.state is RegState.STOPPED
    (gone,) = events(aside)
    assert isinstance(gone, Unregistered) and gone.reason == "unregistered"


def test_fallback_while_the_proxy_still_fails_stays_on_the_alternate() -> None:
    reg = make()
    now = on_alternate(reg)
    reg.handle_timer(now + 60)
    send(reg, now + 60)
    reg.send_failed(SendFailure.TRANSPORT, "connection refused", now + 60)
    assert reg.wants_send() == 1
    send(reg, now + 60)
    reg.send_failed(SendFailure.TRANSPORT, "connection refused", now + 60)
    assert reg.wants_send() == 2
    req = send(reg, now + 60)
    reg.response_received(ok(req), now + 61)
    (ev,) = events(reg)
    assert isinstance(ev, Registered) and reg.status.alternate
    assert reg.status.alternate_reason == "proxy failed: connection refused"
    assert reg.take_release() is None  # nothing to leave behind
    assert reg.status.fallback_at == now + 61 + 60  # tried again a full interval later


def test_refresh_on_the_alternate_stays_there() -> None:
    reg = make(fallback=3600)
    now = on_alternate(reg)
    timer = reg.get_timer()
    assert timer is not None and timer < now + 3600  # the refresh, before the fallback
    reg.handle_timer(timer)
    assert reg.wants_send() == 2


def test_the_alternate_failing_too_backs_off_to_the_proxy_first() -> None:
    reg = make()
    reg.set_targets(2, primary=1)
    reg.start(0.0)
    send(reg, 0.0)
    reg.send_failed(SendFailure.TRANSPORT, "refused", 0.0)
    assert reg.wants_send() == 1
    send(reg, 0.0)
    reg.send_failed(SendFailure.TRANSPORT, "refused too", 0.0)
    (ev,) = events(reg)
    assert isinstance(ev, RegistrationFailed) and ev.reason == "refused too"
    assert ev.retry_at is not None and reg.status.fallback_at is None
    reg.handle_timer(ev.retry_at)
    assert reg.wants_send() == 0


def test_no_alternate_means_no_fallback() -> None:
    reg = make()
    reg.set_targets(2, primary=2)  # all of them the proxy's
    assert reg.primary is None and not reg.is_alternate(1)
    reg.start(0.0)
    send(reg, 0.0)
    reg.send_failed(SendFailure.TIMEOUT, "t", 32.0)
    req = send(reg, 32.0)
    reg.response_received(ok(req), 33.0)
    assert not reg.status.alternate and reg.status.fallback_at is None
    assert reg.status.alternate_reason is None


def test_a_shorter_fallback_interval_applies_at_once() -> None:
    reg = make(fallback=3600)
    now = on_alternate(reg)
    assert reg.status.fallback_at == now + 3600
    reg.set_fallback_interval(5, now + 10)
    assert reg.status.fallback_at == now + 15 and reg.config.fallback_interval == 5
    reg.set_fallback_interval(100, now + 11)  # a longer one waits for the next round
    assert reg.status.fallback_at == now + 15
