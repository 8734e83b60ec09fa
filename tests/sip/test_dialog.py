"""Dialogs (RFC 3261 §12): creation, route sets, loose and strict routing, CSeq rules."""

from __future__ import annotations

import pytest

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.sip.dialog import Dialog, DialogState
from sippa.sip.headers import NameAddr
from sippa.sip.message import Request, Response, make_response, parse_message
from sippa.sip.uri import Uri


def parse_req(text: str) -> Request:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Request)
    return message


INVITE = """INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>
Content-Length: 0

"""


def ok(request: Request, *, status: int = 200, contact: str = "<sip:bob@192.0.2.4>") -> Response:
    response = make_response(request, status, to_tag="a6c85cf", record_route=True)
    response.headers.add("Contact", contact)
    return response


def test_uac_dialog_from_2xx() -> None:
    invite = parse_req(INVITE)
    dialog = Dialog.create_uac(invite, ok(invite))
    assert dialog.state is DialogState.CONFIRMED
    assert (dialog.call_id, dialog.local_tag, dialog.remote_tag) == (
        "a84b4c76e66710",
        "1928301774",
        "a6c85cf",
    )
    assert dialog.id.remote_tag == "a6c85cf"
    # §12.1.2: route set = Record-Route reversed; remote target = Contact
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
    ]
    assert str(dialog.remote_target) == "sip:bob@192.0.2.4"
    assert dialog.local_seq == 314159 and dialog.remote_seq is None
    assert dialog.remote_uri.tag is None and dialog.local_uri.tag is None
    assert not dialog.secure


def test_uas_dialog_from_invite() -> None:
    invite = parse_req(INVITE)
    contact = NameAddr(None, Uri.parse("sip:bob@192.0.2.4"))
    dialog = Dialog.create_uas(invite, "a6c85cf", contact)
    assert dialog.state is DialogState.EARLY
    assert dialog.local_tag == "a6c85cf" and dialog.remote_tag == "1928301774"
    # §12.1.1: route set = Record-Route in order
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p2.example.com;lr",
        "sip:p1.example.com;lr",
    ]
    assert str(dialog.remote_target) == "sip:alice@pc33.atlanta.example.com"
    assert dialog.remote_seq == 314159
    dialog.confirm()
    assert dialog.state is DialogState.CONFIRMED


def test_uas_dialog_needs_a_contact() -> None:
    invite = parse_req(INVITE.replace("Contact: <sip:alice@pc33.atlanta.example.com>\n", ""))
    with pytest.raises(RemoteProtocolError):
        Dialog.create_uas(invite, "x", None)


def test_early_dialog_then_2xx_recomputes_route_set_and_target() -> None:
    invite = parse_req(INVITE)
    ringing = ok(invite, status=180, contact="<sip:bob@early.example.com>")
    dialog = Dialog.create_uac(invite, ringing)
    assert dialog.state is DialogState.EARLY
    final = make_response(invite, 200, to_tag="a6c85cf")  # no Record-Route this time
    final.headers.add("Contact", "<sip:bob@final.example.com>")
    dialog.confirm(final)
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.route_set == []
    assert str(dialog.remote_target) == "sip:bob@final.example.com"


def test_loose_routing_request() -> None:
    invite = parse_req(INVITE)
    dialog = Dialog.create_uac(invite, ok(invite))
    bye = dialog.create_request("BYE")
    # §12.2.1.1 loose routing: Request-URI = remote target, Route = route set
    assert str(bye.uri) == "sip:bob@192.0.2.4"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.cseq.seq == 314160 and bye.cseq.method == "BYE"
    assert bye.from_.tag == "1928301774" and bye.to.tag == "a6c85cf"
    assert bye.call_id == "a84b4c76e66710"
    assert "Contact" not in bye.headers
    assert str(dialog.next_hop()) == "sip:p1.example.com;lr"
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n")
    assert reinvite.cseq.seq == 314161
    assert str(reinvite.contacts[0].uri) == "sip:alice@pc33.atlanta.example.com"
    assert reinvite.content_type == "application/sdp"
    ack = dialog.create_ack(314161)
    assert ack.cseq.seq == 314161 and ack.cseq.method == "ACK"
    assert dialog.local_seq == 314161  # ACK takes no new number


def test_strict_routing_request() -> None:
    invite = parse_req(
        INVITE.replace(
            "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>",
            "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;method=INVITE>",
        )
    )
    dialog = Dialog.create_uac(invite, ok(invite))
    bye = dialog.create_request("BYE")
    # §12.2.1.1 strict routing: Request-URI = first route (stripped of "method"), the remote
    # target goes last in Route
    assert str(bye.uri) == "sip:p1.example.com"
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:bob@192.0.2.4>"]
    assert str(dialog.next_hop()) == "sip:p1.example.com;method=INVITE"


def test_no_route_set_goes_to_remote_target() -> None:
    invite = parse_req(
        INVITE.replace("Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\n", "")
    )
    dialog = Dialog.create_uac(invite, ok(invite))
    bye = dialog.create_request("BYE")
    assert "Route" not in bye.headers
    assert str(dialog.next_hop()) == "sip:bob@192.0.2.4"


def test_remote_cseq_must_increase() -> None:
    invite = parse_req(INVITE)
    dialog = Dialog.create_uas(invite, "t", None)
    bye = parse_req(INVITE.replace("INVITE sip", "BYE sip").replace("314159 INVITE", "314160 BYE"))
    dialog.receive_request(bye)
    assert dialog.remote_seq == 314160
    stale = parse_req(
        INVITE.replace("INVITE sip", "INFO sip").replace("314159 INVITE", "314150 INFO")
    )
    with pytest.raises(RemoteProtocolError) as info:
        dialog.receive_request(stale)
    assert info.value.status_code == 500  # §12.2.2
    ack = parse_req(INVITE.replace("INVITE sip", "ACK sip").replace("314159 INVITE", "314159 ACK"))
    dialog.receive_request(ack)  # ACK reuses the INVITE's number: not checked


def test_uas_local_cseq_starts_at_one_and_target_refresh() -> None:
    invite = parse_req(INVITE)
    dialog = Dialog.create_uas(invite, "t", NameAddr(None, Uri.parse("sip:bob@192.0.2.4")))
    bye = dialog.create_request("BYE")
    assert bye.cseq.seq == 1
    assert str(bye.uri) == "sip:alice@pc33.atlanta.example.com"
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    reinvite = parse_req(
        INVITE.replace(
            "Contact: <sip:alice@pc33.atlanta.example.com>", "Contact: <sip:alice@new.example.com>"
        )
    )
    dialog.refresh_target(reinvite)
    assert str(dialog.remote_target) == "sip:alice@new.example.com"


def test_ack_and_cancel_need_the_invite_cseq() -> None:
    invite = parse_req(INVITE)
    dialog = Dialog.create_uac(invite, ok(invite))
    with pytest.raises(LocalProtocolError):
        dialog.create_request("ACK")


def test_secure_flag_for_sips_over_tls() -> None:
    invite = parse_req(
        INVITE.replace("INVITE sip:bob@biloxi", "INVITE sips:bob@biloxi").replace(
            "SIP/2.0/UDP", "SIP/2.0/TLS"
        )
    )
    dialog = Dialog.create_uac(invite, ok(invite))
    assert dialog.secure
    # the peer's plain sip: Record-Route is still reached over TLS
    assert str(dialog.next_hop()) == "sips:p1.example.com;lr"
    plain = parse_req(INVITE)
    assert Dialog.create_uas(plain, "t", None, secure=True).secure


def test_secure_flag_without_via_yet() -> None:
    invite = parse_req(INVITE.replace("INVITE sip:bob@biloxi", "INVITE sips:bob@biloxi"))
    invite.headers.remove("Via")
    dialog = Dialog.create_uac(invite, ok(invite))
    assert dialog.secure
