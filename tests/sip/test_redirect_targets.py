"""The Contacts of a 3xx, in the order a UAC tries them (RFC 3261 §8.1.3.4, §16.7)."""

from __future__ import annotations

import pytest

from sippa.sip.invite import redirect_targets
from sippa.sip.message import Response, parse_message


def _response(*contacts: str) -> Response:
    lines = [
        "SIP/2.0 302 Moved Temporarily",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1",
        "From: <sip:a@127.0.0.1>;tag=1",
        "To: <sip:b@127.0.0.1>;tag=2",
        "Call-ID: x",
        "CSeq: 1 INVITE",
        *(f"Contact: {c}" for c in contacts),
        "Content-Length: 0",
    ]
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Response)
    return message


def test_highest_q_first_and_no_q_counts_as_one() -> None:
    response = _response(
        "<sip:low@h>;q=0.1", "<sip:none@h>", "<sip:mid@h>;q=0.5, <sips:top@h>;q=1.0"
    )
    assert redirect_targets(response) == ("sip:none@h", "sips:top@h", "sip:mid@h", "sip:low@h")


def test_a_bad_q_counts_as_one_and_no_contact_gives_none() -> None:
    assert redirect_targets(_response("<sip:a@h>;q=0.2", "<sip:b@h>;q=7")) == (
        "sip:b@h", "sip:a@h",
    )
    assert redirect_targets(_response()) == ()


def test_a_malformed_contact_gives_none() -> None:
    assert redirect_targets(_response("<sip:a@h")) == ()


def test_the_core_reports_a_3xx_contacts_and_reuses_the_handle() -> None:
    from sippa.errors import LocalProtocolError
    from sippa.sip.events import Address, CallEnded, Event
    from sippa.sip.message import Request, make_response
    from sippa.sip.uri import Uri
    from tests.sip.loop import make_core

    core = make_core("alice", "10.0.0.1")
    handle = core.invite(Uri.parse("sip:bob@10.0.0.2"), 0.0, body=b"x")
    ((data, _),) = core.messages_to_send()
    invite = parse_message(data)
    assert isinstance(invite, Request)
    with pytest.raises(LocalProtocolError):
        core.invite(Uri.parse("sip:carol@10.0.0.3"), 0.0, handle=handle)  # still live
    moved = make_response(invite, 302)
    moved.headers.add("Contact", "<sip:c1@10.0.0.3>;q=0.3, <sip:c2@10.0.0.4>;q=0.9")
    core.receive(bytes(moved), Address("udp", "10.0.0.2", 5060), 0.1)
    events: list[Event] = []
    while (event := core.next_event()) is not None:
        events.append(event)
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert ended == [
        CallEnded(handle, "rejected", 302, ("sip:c2@10.0.0.4", "sip:c1@10.0.0.3"))
    ]
    # RFC 3261 §8.1.3.4: the retry is a new INVITE that keeps the application's handle
    assert core.invite(Uri.parse("sip:c2@10.0.0.4"), 0.2, body=b"x", handle=handle) == handle
    retry = parse_message(core.messages_to_send()[-1][0])
    assert isinstance(retry, Request) and retry.method == "INVITE"
    assert str(retry.uri) == "sip:c2@10.0.0.4"
