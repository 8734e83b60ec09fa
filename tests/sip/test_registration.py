"""The registration state machine against a scripted registrar, with a fake clock."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sippa.errors import LocalProtocolError
from sippa.sip.message import Request, Response, make_response, parse_message
from sippa.sip.registration import (
    AuthFailed,
    Credentials,
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

LOCAL = LocalContact("TLS", "127.0.0.1", 50123)


def _authorize(request: Request, response: Response) -> Credentials:
    header = "Authorization" if response.status_code == 401 else "Proxy-Authorization"
    return Credentials.single(header, 'Digest username="alice", response="x"', "SHA-256")


def make(**kw: object) -> Registration:
    rng = random.Random(7)
    cfg = RegistrationConfig(Uri.parse("sips:alice@example.test"), retry_base=10, retry_max=80)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return Registration(cfg, rng.getrandbits, authorize=_authorize, prefix="[t]")


def send(reg: Registration, now: float = 0.0) -> Request:
    assert reg.wants_send() is not None
    req = reg.build_request(LOCAL, now)
    # what goes on the wire parses back (all mandatory headers present)
    parsed = parse_message(bytes(req))
    assert isinstance(parsed, Request)
    return parsed


def answer(req: Request, code: int, **headers: str) -> Response:
    resp = make_response(req, code, to_tag="reg")
    for name, value in headers.items():
        resp.headers.add(name.replace("_", "-"), value)
    return resp


def events(reg: Registration) -> list[object]:
    return list(iter(reg.next_event, None))


def test_register_challenge_then_ok() -> None:
    reg = make()
    reg.start(0.0)
    req = send(reg)
    assert str(req.uri) == "sips:example.test"
    assert req.top_via.transport == "TLS" and req.top_via.rport is True
    assert req.top_via.branch and req.top_via.branch.startswith("z9hG4bK")
    assert req.headers.get("Expires") == "3600"
    assert req.headers.get("Contact") == "<sips:alice@127.0.0.1:50123>"
    assert req.headers.get("Authorization") is None
    reg.response_received(answer(req, 401), 0.1)
    req2 = send(reg, 0.1)
    assert req2.cseq.seq == req.cseq.seq + 1
    assert req2.call_id == req.call_id and req2.from_.tag == req.from_.tag
    assert req2.top_via.branch != req.top_via.branch
    assert (req2.headers.get("Authorization") or "").startswith("Digest")
    reg.response_received(answer(req2, 200, Expires="600"), 0.2)
    (ev,) = events(reg)
    assert isinstance(ev, Registered)
    assert ev.expires == 600 and ev.algorithm == "SHA-256"
    assert reg.status.registered and reg.status.state is RegState.REGISTERED
    # refresh between 50% and 90% of the granted lifetime
    timer = reg.get_timer()
    assert timer is not None and 0.2 + 300 <= timer <= 0.2 + 540
    reg.handle_timer(timer - 1)
    assert reg.wants_send() is None
    reg.handle_timer(timer)
    assert reg.status.state is RegState.REFRESHING and reg.status.registered
    req3 = send(reg, timer)
    assert req3.call_id == req.call_id and req3.cseq.seq == req2.cseq.seq + 1


@pytest.mark.parametrize(
    ("aor", "transport", "contact"),
    [
        # RFC 3261 §26.2.2: "transport=tls" is deprecated; over TLS the Contact is a sips URI
        # (TLS to us on every hop, and the scheme Kamailio and the core's own Contact use)
        ("sips:alice@example.test", "TLS", "<sips:alice@10.0.0.5:5061>"),
        ("sip:alice@example.test", "TLS", "<sips:alice@10.0.0.5:5061>"),
        ("sip:alice@example.test", "TCP", "<sip:alice@10.0.0.5:5061;transport=tcp>"),
        ("sip:alice@example.test", "UDP", "<sip:alice@10.0.0.5:5061>"),
    ],
)
def test_contact_names_the_flow_without_transport_tls(
    aor: str, transport: str, contact: str
) -> None:
    reg = make(aor=Uri.parse(aor))
    reg.start(0.0)
    req = reg.build_request(LocalContact(transport, "10.0.0.5", 5061), 0.0)
    assert req.headers.get("Contact") == contact
    assert "transport=tls" not in bytes(req).decode().lower()
    assert req.top_via.transport == transport
    # the registrar echoes our binding: its expires is the granted lifetime (§10.2.4)
    ok = make_response(req, 200, to_tag="reg")
    ok.headers.add("Contact", f"{contact};expires=77")
    reg.response_received(ok, 0.0)
    (ev,) = events(reg)
    assert isinstance(ev, Registered) and ev.expires == 77


def test_contact_expires_wins_over_expires_header() -> None:
    reg = make()
    reg.start(0.0)
    req = send(reg)
    ok = answer(req, 200, Expires="3600")
    ok.headers.add("Contact", "<sip:other@10.0.0.1:5060>;expires=99")
    ok.headers.add("Contact", f"{req.headers.get('Contact')};expires=120")
    reg.response_received(ok, 1.0)
    (ev,) = events(reg)
    assert isinstance(ev, Registered) and ev.expires == 120


def test_wrong_password_gives_up_after_max_rounds() -> None:
    reg = make()
    reg.start(0.0)
    for _ in range(2):
        req = send(reg)
        reg.response_received(answer(req, 401), 0.0)
    req = send(reg)
    reg.response_received(answer(req, 401), 0.0)
    (ev,) = events(reg)
    assert isinstance(ev, RegistrationFailed)
    assert "credentials refused" in ev.reason and ev.status_code == 401
    assert reg.status.state is RegState.BACKOFF and not reg.status.registered


def test_unanswerable_challenge_fails_with_reason() -> None:
    def refuse(request: Request, response: Response) -> Credentials:
        raise AuthFailed("MD5 is not allowed and the server offers nothing else", 401)

    reg = make()
    reg.authorize = refuse
    reg.start(0.0)
    reg.response_received(answer(send(reg), 401), 0.0)
    (ev,) = events(reg)
    assert isinstance(ev, RegistrationFailed) and "MD5 is not allowed" in ev.reason


def test_interval_too_brief_uses_min_expires() -> None:
    reg = make(expires=60)
    reg.start(0.0)
    req = send(reg)
    reg.response_received(answer(req, 423, Min_Expires="300"), 0.0)
    req2 = send(reg)
    assert req2.headers.get("Expires") == "300"
    # a 423 that does not raise the floor is a failure, not a loop
    reg.response_received(answer(req2, 423, Min_Expires="300"), 0.0)
    (ev,) = events(reg)
    assert isinstance(ev, RegistrationFailed) and ev.status_code == 423


def test_failover_walks_targets_then_backs_off_with_jitter() -> None:
    reg = make()
    reg.set_targets(3)
    reg.start(0.0)
    assert reg.wants_send() == 0
    send(reg)
    reg.send_failed(SendFailure.TIMEOUT, "timer F", 32.0)
    assert reg.wants_send() == 1
    req = send(reg, 32.0)
    reg.response_received(answer(req, 503), 32.5)
    assert reg.wants_send() == 2
    send(reg, 32.5)
    reg.send_failed(SendFailure.TRANSPORT, "connection refused", 33.0)
    (ev,) = events(reg)
    assert isinstance(ev, RegistrationFailed) and ev.reason == "connection refused"
    # RFC 5626 §4.5: one failure, base 10: 50-100% of 10 * 2^1
    assert ev.retry_at is not None and 33.0 + 10 <= ev.retry_at <= 33.0 + 20
    assert reg.wants_send() is None
    reg.handle_timer(ev.retry_at)
    assert reg.wants_send() == 0  # back to the first target
    # consecutive failures double the wait (capped), always 50-100% of it
    waits = []
    now = ev.retry_at
    for _ in range(5):
        send(reg, now)
        reg.response_received(answer(reg_last(reg), 500), now)
        (fail,) = events(reg)
        assert isinstance(fail, RegistrationFailed) and fail.retry_at is not None
        waits.append(fail.retry_at - now)
        now = fail.retry_at
        reg.handle_timer(now)
    caps = [40, 80, 80, 80, 80]  # failures 2..6: min(80, 10 * 2^n)
    assert all(c / 2 <= w <= c for w, c in zip(waits, caps, strict=True)), waits


@pytest.mark.parametrize(("bits", "factor"), [(0, 0.5), (2**32 - 1, 1.0)])
def test_backoff_is_the_rfc5626_wait_time(bits: int, factor: float) -> None:
    """RFC 5626 §4.5: wait-time = min(max-time, base-time * 2^consecutive-failures), then a
    uniform 50-100% of it; base and max default to Reg_Retry_Intvl 30 / Reg_Retry_Long_Intvl
    1200 of the settings."""
    reg = Registration(
        RegistrationConfig(Uri.parse("sips:alice@example.test")),
        lambda n: bits & ((1 << n) - 1),
        authorize=_authorize,
    )
    assert (reg.config.retry_base, reg.config.retry_max) == (30.0, 1200.0)
    reg.start(0.0)
    now, waits = 0.0, []
    for _ in range(7):
        reg.response_received(answer(send(reg, now), 500), now)
        (fail,) = events(reg)
        assert isinstance(fail, RegistrationFailed) and fail.retry_at is not None
        waits.append(fail.retry_at - now)
        assert reg.status.next_attempt == fail.retry_at
        now = fail.retry_at
        reg.handle_timer(now)
    # the first retry 30-60 s after the first failure; three failures: 30 * 2^3 = 240
    upper = [60, 120, 240, 480, 960, 1200, 1200]
    assert waits == pytest.approx([u * factor for u in upper], rel=1e-6)
    # a success resets the count: the next failure waits min(max, base * 2^1) again
    reg.response_received(answer(send(reg, now), 200), now)
    events(reg)
    reg.handle_timer(reg.get_timer() or 0.0)
    reg.response_received(answer(send(reg, now), 500), now)
    (fail,) = events(reg)
    assert fail.retry_at is not None  # type: ignore[union-attr]
    assert fail.retry_at - now == pytest.approx(60 * factor)  # type: ignore[union-attr]


def reg_last(reg: Registration) -> Request:
    attempt = reg._attempt
    assert attempt is not None and attempt.last_request is not None
    return attempt.last_request


def test_retry_after_is_honoured_on_last_target() -> None:
    reg = make()
    reg.start(0.0)
    reg.response_received(answer(send(reg), 503, Retry_After="500"), 0.0)
    (ev,) = events(reg)
    assert isinstance(ev, RegistrationFailed) and ev.retry_at == 500.0


def test_flow_lost_triggers_immediate_reregistration() -> None:
    reg = make()
    reg.start(0.0)
    reg.response_received(answer(send(reg), 200), 0.0)
    events(reg)
    reg.flow_lost("connection lost", 100.0)
    assert reg.status.state is RegState.REFRESHING
    req = send(reg, 100.0)
    reg.send_failed(SendFailure.TRANSPORT, "connection refused", 100.0)
    (ev,) = events(reg)
    assert isinstance(ev, RegistrationFailed) and not reg.status.registered
    assert ev.retry_at is not None
    reg.handle_timer(ev.retry_at)
    req = send(reg, ev.retry_at)
    reg.response_received(answer(req, 200), ev.retry_at)
    assert isinstance(events(reg)[0], Registered)


def test_stop_unregisters_with_expires_zero() -> None:
    reg = make()
    reg.start(0.0)
    reg.response_received(answer(send(reg), 200), 0.0)
    events(reg)
    reg.stop(5.0)
    assert reg.status.state is RegState.UNREGISTERING
    req = send(reg, 5.0)
    assert req.headers.get("Expires") == "0"
    reg.response_received(answer(req, 401), 5.0)
    req = send(reg, 5.0)
    assert req.headers.get("Expires") == "0" and req.headers.get("Authorization")
    reg.response_received(answer(req, 200), 5.1)
    assert events(reg) == [Unregistered("unregistered")]
    assert reg.status.state is RegState.STOPPED and reg.get_timer() is None


def test_stop_while_backing_off_just_stops() -> None:
    reg = make()
    reg.start(0.0)
    reg.response_received(answer(send(reg), 403), 0.0)
    events(reg)
    reg.stop(1.0)
    assert reg.wants_send() is None and reg.status.state is RegState.STOPPED
    assert events(reg) == [Unregistered("stopped")]


def test_stale_and_provisional_responses_are_ignored() -> None:
    reg = make()
    reg.start(0.0)
    req = send(reg)
    reg.response_received(answer(req, 100), 0.0)
    assert reg.status.state is RegState.REGISTERING and not events(reg)
    with pytest.raises(LocalProtocolError):
        reg.build_request(LOCAL, 0.0)


def test_identifiers_come_from_the_injected_source() -> None:
    counter = itertools.count(1)
    reg = Registration(
        RegistrationConfig(Uri.parse("sip:bob@example.test")), lambda bits: next(counter)
    )
    reg.start(0.0)
    req = reg.build_request(LocalContact("UDP", "::1", 5070), 0.0)
    assert req.call_id.endswith("1") and req.from_.tag is not None
    assert req.top_via.host == "::1" and "transport" not in (req.headers.get("Contact") or "")


# --- any sequence of peer behaviour is handled without a stray exception ----------------------

_ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("resp"), st.sampled_from([100, 180, 200, 202, 401, 403, 407, 423,
                                                     480, 500, 503, 603])),
        st.tuples(st.just("timeout"), st.just(0)),
        st.tuples(st.just("transport"), st.just(0)),
        st.tuples(st.just("lost"), st.just(0)),
        st.tuples(st.just("timer"), st.just(0)),
        st.tuples(st.just("stop"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_ACTIONS, st.integers(1, 3))
def test_any_sequence_keeps_the_machine_consistent(actions, targets) -> None:
    reg = make()
    reg.set_targets(targets)
    reg.start(0.0)
    now = 0.0
    last: Request | None = None
    for kind, code in actions:
        now += 1.0
        if reg.wants_send() is not None:
            assert 0 <= reg.wants_send() < targets  # type: ignore[operator]
            last = send(reg, now)
        if kind == "resp" and last is not None:
            extra = {"Min_Expires": "7200"} if code == 423 else {}
            reg.response_received(answer(last, code, **extra), now)
        elif kind in ("timeout", "transport"):
            failure = SendFailure.TIMEOUT if kind == "timeout" else SendFailure.TRANSPORT
            reg.send_failed(failure, "x", now)
        elif kind == "lost":
            reg.flow_lost("x", now)
        elif kind == "timer":
            timer = reg.get_timer()
            if timer is not None:
                now = max(now, timer)
                reg.handle_timer(now)
        elif kind == "stop":
            reg.stop(now)
        events(reg)
        st_ = reg.status
        if st_.registered:
            assert st_.state in (RegState.REGISTERED, RegState.REFRESHING, RegState.UNREGISTERING)
        if st_.state is RegState.REGISTERED:
            assert st_.registered and reg.get_timer() is not None  # a refresh is always due
        if st_.state is RegState.BACKOFF:
            assert reg.get_timer() is not None and not st_.registered
        if st_.state is RegState.STOPPED:
            assert not st_.registered and reg.get_timer() is None
