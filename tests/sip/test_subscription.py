"""The RFC 6665 subscriber state machine against a scripted notifier, with a fake clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.sip.headers import NameAddr
from sippa.sip.message import Request, Response, make_response, parse_message
from sippa.sip.mwi import CONTENT_TYPE, MessageCounts, MessageSummary
from sippa.sip.registration import Credentials
from sippa.sip.subscription import (
    Notified,
    Subscribed,
    Subscription,
    SubscriptionConfig,
    SubscriptionFailed,
    SubState,
    Unsubscribed,
    parse_subscription_state,
)
from sippa.sip.uri import Uri

CONTACT = NameAddr.parse("<sip:alice@127.0.0.1:5070;transport=tcp>")
PROXY = Uri.parse("sip:127.0.0.1:5060;transport=tcp")
NOTIFIER_CONTACT = "<sip:mwi@127.0.0.1:5060;transport=tcp>"


def _authorize(request: Request, response: Response) -> Credentials:
    header = "Authorization" if response.status_code == 401 else "Proxy-Authorization"
    return Credentials.single(header, 'Digest username="alice", response="x"', "SHA-256")


def make(**kw: object) -> Subscription:
    cfg = SubscriptionConfig(
        Uri.parse("sip:alice@example.test"),
        NameAddr.parse('"Alice" <sip:alice@example.test>'),
        "message-summary",
        accept=(CONTENT_TYPE,),
        expires=600,
        retry_base=10,
        retry_max=80,
        parse_body=MessageSummary.parse,
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return Subscription(cfg, random.Random(3).getrandbits, authorize=_authorize, prefix="[t]")


def send(sub: Subscription, now: float = 0.0, outbound: Uri | None = PROXY) -> Request:
    assert sub.wants_send()
    request, _hop = sub.build_request(CONTACT, now, outbound=outbound)
    request.headers = _with_via(request)
    parsed = parse_message(bytes(request))  # what goes on the wire parses back
    assert isinstance(parsed, Request)
    return parsed


def _with_via(request: Request):  # type: ignore[no-untyped-def]
    from sippa.sip.message import Headers

    headers = Headers([("Via", "SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKtest")])
    for name, value in request.headers:
        headers.add(name, value)
    return headers


def answer(req: Request, code: int, **headers: str) -> Response:
    resp = make_response(req, code, to_tag="notifier")
    if 200 <= code < 300:
        resp.headers.add("Contact", NOTIFIER_CONTACT)
    for name, value in headers.items():
        resp.headers.add(name.replace("_", "-"), value)
    return resp


def notify(
    sub: Subscription, state: str, body: bytes = b"", *, seq: int = 1, tag: str = "notifier",
    event: str = "message-summary", content_type: str = CONTENT_TYPE,
) -> Request:
    lines = [
        "NOTIFY sip:alice@127.0.0.1:5070;transport=tcp SIP/2.0",
        "Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKn" + str(seq),
        f"From: <sip:alice@example.test>;tag={tag}",
        f"To: <sip:alice@example.test>;tag={sub.from_tag}",
        f"Call-ID: {sub.call_id}",
        f"CSeq: {seq} NOTIFY",
        "Max-Forwards: 70",
        f"Contact: {NOTIFIER_CONTACT}",
        f"Event: {event}",
        f"Subscription-State: {state}",
    ]
    if body:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    assert isinstance(msg, Request)
    return msg


def events(sub: Subscription) -> list[object]:
    out = []
    while (e := sub.next_event()) is not None:
        out.append(e)
    return out


SUMMARY = b"Messages-Waiting: yes\r\nVoice-Message: 2/8 (0/2)\r\n"


def subscribed(now: float = 0.0) -> tuple[Subscription, Request]:
    sub = make()
    sub.start(now)
    req = send(sub, now)
    sub.response_received(answer(req, 202, Expires="600"), now)
    assert events(sub) == [Subscribed(600, None)]
    return sub, req


def test_initial_subscribe_headers() -> None:
    sub = make()
    sub.start(0.0)
    request, hop = sub.build_request(CONTACT, 0.0, outbound=PROXY)
    assert request.method == "SUBSCRIBE"
    assert str(request.uri) == "sip:alice@example.test"
    assert request.headers.get("Event") == "message-summary"
    assert request.headers.get("Accept") == CONTENT_TYPE
    assert request.headers.get("Expires") == "600"
    assert request.headers.get("Route") == "<sip:127.0.0.1:5060;transport=tcp;lr>"
    assert request.from_.tag == sub.from_tag and request.to.tag is None
    assert request.contacts[0].uri == CONTACT.uri
    assert hop.has_param("lr") and hop.host == "127.0.0.1"
    with pytest.raises(LocalProtocolError):
        sub.build_request(CONTACT, 0.0)  # nothing is due any more


def test_without_outbound_the_request_uri_is_the_next_hop() -> None:
    sub = make()
    sub.start(0.0)
    request, hop = sub.build_request(CONTACT, 0.0)
    assert "Route" not in request.headers
    assert hop == request.uri


def test_accepted_then_notified_with_counts() -> None:
    sub, _ = subscribed()
    assert sub.status.state is SubState.SUBSCRIBED
    assert sub.notify_received(notify(sub, "active;expires=600", SUMMARY), 1.0) == 200
    [event] = events(sub)
    assert isinstance(event, Notified) and event.state == "active"
    assert isinstance(event.content, MessageSummary)
    assert event.content.voice == MessageCounts(2, 8, 0, 2)
    assert sub.status.substate == "active"


def test_refresh_in_dialog_before_expiry() -> None:
    sub, first = subscribed()
    timer = sub.get_timer()
    assert timer is not None and 300 <= timer <= 540  # 50-90 % of 600 s
    sub.handle_timer(timer - 1)
    assert not sub.wants_send()
    sub.handle_timer(timer)
    assert sub.status.state is SubState.REFRESHING
    refresh = send(sub, timer)
    assert refresh.to.tag == "notifier"  # in the dialog
    assert refresh.call_id == first.call_id
    assert refresh.cseq.seq == first.cseq.seq + 1
    assert str(refresh.uri) == "sip:mwi@127.0.0.1:5060;transport=tcp"  # the remote target
    sub.response_received(answer(refresh, 200, Expires="300"), timer)
    assert events(sub) == [Subscribed(300, None)]
    assert sub.status.state is SubState.SUBSCRIBED


def test_digest_retry_then_success() -> None:
    sub = make()
    sub.start(0.0)
    req = send(sub)
    sub.response_received(answer(req, 407), 0.0)
    retry = send(sub)
    assert retry.cseq.seq == req.cseq.seq + 1 and retry.call_id == req.call_id
    assert retry.from_.tag == req.from_.tag
    assert (retry.headers.get("Proxy-Authorization") or "").startswith("Digest")
    sub.response_received(answer(retry, 202, Expires="600"), 0.0)
    assert events(sub) == [Subscribed(600, "SHA-256")]


def test_wrong_password_gives_up_after_the_rounds_and_backs_off() -> None:
    sub = make()
    sub.start(0.0)
    for _ in range(3):
        req = send(sub)
        sub.response_received(answer(req, 401), 0.0)
    [failed] = events(sub)
    assert isinstance(failed, SubscriptionFailed) and "credentials refused" in failed.reason
    assert sub.status.state is SubState.BACKOFF
    assert failed.retry_at is not None and 10 <= failed.retry_at <= 20


def test_backoff_grows_and_a_new_dialog_is_made() -> None:
    sub = make()
    sub.start(0.0)
    now, delays, call_ids = 0.0, [], set()
    for _ in range(5):
        req = send(sub, now)
        call_ids.add(req.call_id)
        sub.response_received(answer(req, 500), now)
        timer = sub.get_timer()
        assert timer is not None
        delays.append(timer - now)
        now = timer
        sub.handle_timer(now)
    assert len(call_ids) == 5  # each attempt is a new subscription
    bounds = [(10, 20), (20, 40), (40, 80), (40, 80), (40, 80)]
    assert all(lo <= d <= hi for d, (lo, hi) in zip(delays, bounds, strict=True))


def test_retry_after_is_honoured() -> None:
    sub = make()
    sub.start(0.0)
    req = send(sub)
    sub.response_received(answer(req, 503, Retry_After="300"), 0.0)
    assert sub.get_timer() == 300.0


@pytest.mark.parametrize("code", [489, 405, 501])
def test_unsupported_package_is_not_retried(code: int) -> None:
    sub = make()
    sub.start(0.0)
    sub.response_received(answer(send(sub), code), 0.0)
    [failed] = events(sub)
    assert isinstance(failed, SubscriptionFailed) and failed.retry_at is None
    assert sub.status.state is SubState.GIVEN_UP and sub.get_timer() is None
    sub.start(5.0)  # a settings change starts it again
    assert sub.wants_send()


def test_423_raises_expires_to_min_expires() -> None:
    sub = make()
    sub.start(0.0)
    sub.response_received(answer(send(sub), 423, Min_Expires="3600"), 0.0)
    assert send(sub).headers.get("Expires") == "3600"


def test_timeout_backs_off() -> None:
    sub = make()
    sub.start(0.0)
    send(sub)
    sub.send_failed("no response (timeout)", 32.0)
    assert sub.status.state is SubState.BACKOFF
    assert sub.status.reason == "no response (timeout)"


def test_notify_before_the_2xx_creates_the_dialog() -> None:
    sub = make()
    sub.start(0.0)
    req = send(sub)
    assert sub.notify_received(notify(sub, "pending;expires=600"), 0.1) == 200
    assert sub.dialog is not None and sub.dialog.remote_tag == "notifier"
    sub.response_received(answer(req, 202, Expires="600"), 0.2)
    assert [type(e) for e in events(sub)] == [Notified, Subscribed]
    timer = sub.get_timer()
    assert timer is not None
    sub.handle_timer(timer)
    refresh = send(sub, timer)
    assert refresh.cseq.seq == req.cseq.seq + 1  # our CSeq space went on from the SUBSCRIBE


def test_notify_expires_shortens_the_refresh() -> None:
    sub, _ = subscribed()
    sub.notify_received(notify(sub, "active;expires=100"), 0.0)
    timer = sub.get_timer()
    assert timer is not None and timer <= 90


@pytest.mark.parametrize("reason", ["deactivated", "timeout"])
def test_terminated_deactivated_resubscribes_at_once(reason: str) -> None:
    sub, first = subscribed()
    assert sub.notify_received(notify(sub, f"terminated;reason={reason}"), 5.0) == 200
    assert sub.status.state is SubState.BACKOFF
    assert sub.get_timer() == 5.0
    sub.handle_timer(5.0)
    again = send(sub, 5.0)
    assert again.to.tag is None and again.call_id != first.call_id


def test_terminated_with_retry_after() -> None:
    sub, _ = subscribed()
    sub.notify_received(notify(sub, "terminated;reason=probation;retry-after=120"), 5.0)
    assert sub.get_timer() == 125.0


@pytest.mark.parametrize("reason", ["rejected", "noresource", "invariant"])
def test_terminated_for_good_is_not_retried(reason: str) -> None:
    sub, _ = subscribed()
    sub.notify_received(notify(sub, f"terminated;reason={reason}"), 5.0)
    assert sub.status.state is SubState.GIVEN_UP and sub.get_timer() is None


def test_481_on_refresh_makes_a_new_subscription() -> None:
    sub, _ = subscribed()
    timer = sub.get_timer()
    assert timer is not None
    sub.handle_timer(timer)
    refresh = send(sub, timer)
    sub.response_received(answer(refresh, 481), timer)
    assert sub.get_timer() == timer
    sub.handle_timer(timer)
    assert send(sub, timer).to.tag is None


def test_unsubscribe_sends_expires_zero_in_the_dialog() -> None:
    sub, first = subscribed()
    sub.stop(10.0)
    bye = send(sub, 10.0)
    assert bye.headers.get("Expires") == "0" and bye.to.tag == "notifier"
    assert bye.call_id == first.call_id
    sub.response_received(answer(bye, 200, Expires="0"), 10.0)
    assert events(sub) == [Unsubscribed("unsubscribed")]
    assert sub.status.state is SubState.STOPPED
    # the notifier's final NOTIFY still finds the dialog
    assert sub.notify_received(notify(sub, "terminated;reason=timeout", seq=2), 10.1) == 200
    assert sub.status.state is SubState.STOPPED and sub.get_timer() is None


def test_stop_while_backing_off_just_stops() -> None:
    sub = make()
    sub.start(0.0)
    sub.response_received(answer(send(sub), 500), 0.0)
    events(sub)
    sub.stop(1.0)
    assert not sub.wants_send() and sub.status.state is SubState.STOPPED
    assert events(sub) == [Unsubscribed("stopped")]


def test_bad_notifies_get_their_status() -> None:
    sub, _ = subscribed()
    assert sub.notify_received(notify(sub, "active", tag="other"), 1.0) == 481  # other dialog
    assert sub.notify_received(notify(sub, "active", event="presence", seq=2), 1.0) == 489
    assert sub.notify_received(notify(sub, "active", b"Messages-Waiting: perhaps\r\n", seq=3),
                               1.0) == 400
    assert sub.notify_received(notify(sub, "active", b"<xml/>", seq=4,
                                      content_type="application/xml"), 1.0) == 415
    assert sub.notify_received(notify(sub, "active;expires=x", seq=5), 1.0) == 400
    assert sub.notify_received(notify(sub, "active", seq=6), 1.0) == 200
    assert sub.notify_received(notify(sub, "active", seq=6), 1.0) == 500  # CSeq not increasing
    assert sub.status.state is SubState.SUBSCRIBED  # none of them broke the subscription


def test_notify_for_another_call_id_is_not_ours() -> None:
    sub, _ = subscribed()
    other = make()
    other.random_bits = random.Random(9).getrandbits
    other.start(0.0)
    assert not sub.matches(notify(other, "active"))
    assert sub.notify_received(notify(other, "active"), 0.0) == 481


def test_a_stale_response_is_ignored() -> None:
    sub = make()
    sub.start(0.0)
    req = send(sub)
    sub.response_received(answer(req, 401), 0.0)
    retry = send(sub)
    sub.response_received(answer(req, 500), 0.0)  # the first request's, late
    assert sub.status.state is SubState.SUBSCRIBING
    sub.response_received(answer(retry, 200, Expires="60"), 0.0)
    assert sub.status.state is SubState.SUBSCRIBED


def test_subscription_state_grammar() -> None:
    assert parse_subscription_state("Active ; Expires=60") == ("active", {"expires": "60"})
    assert parse_subscription_state("terminated;reason=noresource") == (
        "terminated", {"reason": "noresource"}
    )
    for bad in ("", ";expires=1", "active;retry-after=soon", "act ive"):
        with pytest.raises(RemoteProtocolError):
            parse_subscription_state(bad)


def test_a_subscribe_that_cannot_be_sent_backs_off() -> None:
    sub = make()
    sub.start(0.0)
    sub.send_failed("cannot locate example.test", 0.0)  # before build_request
    assert not sub.wants_send() and sub.status.state is SubState.BACKOFF


def test_a_2xx_with_a_bad_contact_is_a_failure_not_a_crash() -> None:
    sub = make()
    sub.start(0.0)
    req = send(sub)
    resp = make_response(req, 202, to_tag="n")
    resp.headers.add("Contact", "<<garbage")
    resp.headers.add("Expires", "600")
    sub.response_received(resp, 0.0)
    assert sub.status.state is SubState.BACKOFF
    assert "202" in (sub.status.reason or "")


def test_refresh_now() -> None:
    sub, first = subscribed()
    sub.refresh(10.0)
    again = send(sub, 10.0)
    assert again.to.tag == "notifier" and again.cseq.seq == first.cseq.seq + 1
    sub.refresh(10.0)  # only when subscribed: nothing due twice
    assert not sub.wants_send()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
       st.binary(max_size=300))
def test_any_notify_gets_a_status_never_an_exception(state: str, body: bytes) -> None:
    """h11's fuzz invariant for the NOTIFY path (fuzz/fuzz_mwi.py runs the same by hand)."""
    sub, _ = subscribed()
    try:
        request = notify(sub, state, body)
    except RemoteProtocolError:
        return  # not even a message
    assert sub.notify_received(request, 1.0) in (200, 400, 415, 489, 481, 500)
