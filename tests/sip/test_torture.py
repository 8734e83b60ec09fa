"""RFC 4475 torture tests: all 49 messages, as datagrams, whole and byte at a time on a stream.

Each message has an expected outcome (from tests/vectors/rfc4475/index.tsv and the RFC):

* ``accept``: ``parse_message`` and ``validate_request`` succeed; concrete values are checked;
* ``semantic``: the message parses but ``validate_request`` raises the RFC's status (416, 400);
* ``reject``: ``parse_message`` raises :class:`RemoteProtocolError` with the RFC's status.

The stream column says what :class:`StreamFramer` does with the same bytes: ``frame`` (one
message out, parsing to the same result), ``wait`` (incomplete, needs more data), ``error``
(unrecoverable framing: the connection is closed), ``first`` (the first message frames, the
noise after it is a framing error).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sippa.errors import RemoteProtocolError
from sippa.sip.framer import StreamFramer
from sippa.sip.headers import CSeq
from sippa.sip.message import (
    Request,
    Response,
    parse_message,
    unsupported_requirements,
    validate_request,
)
from sippa.sip.uri import Uri

VECTORS = Path(__file__).parent.parent / "vectors" / "rfc4475"
INDEX = {
    row["name"]: row
    for row in csv.DictReader(
        (VECTORS / "index.tsv").read_text(encoding="utf-8").splitlines(), delimiter="\t"
    )
}

# name: (datagram outcome, status or None, stream behaviour)
EXPECT: dict[str, tuple[str, int | None, str]] = {
    # 3.1.1 valid messages
    "wsinv": ("accept", None, "frame"),
    "intmeth": ("accept", None, "frame"),
    "esc01": ("accept", None, "frame"),
    "escnull": ("accept", None, "frame"),
    "esc02": ("accept", None, "frame"),
    "lwsdisp": ("accept", None, "frame"),
    "longreq": ("accept", None, "frame"),
    "dblreq": ("accept", None, "first"),
    "semiuri": ("accept", None, "frame"),
    "transports": ("accept", None, "frame"),
    "mpart01": ("accept", None, "frame"),
    "unreason": ("accept", None, "frame"),
    "noreason": ("accept", None, "frame"),
    # 3.1.2 invalid messages
    "badinv01": ("reject", 400, "frame"),
    "clerr": ("reject", 400, "wait"),
    "ncl": ("reject", 400, "error"),
    "scalar02": ("reject", 400, "frame"),
    "scalarlg": ("reject", 400, "frame"),  # a response: dropped
    "quotbal": ("reject", 400, "frame"),
    "ltgtruri": ("reject", 400, "frame"),
    "lwsruri": ("reject", 400, "frame"),
    "lwsstart": ("reject", 400, "frame"),
    "trws": ("reject", 400, "frame"),
    "escruri": ("semantic", 400, "frame"),
    "baddate": ("semantic", 400, "frame"),
    "regbadct": ("semantic", 400, "frame"),
    "badaspec": ("reject", 400, "frame"),
    "baddn": ("reject", 400, "wait"),  # the archive file has no blank line after the headers
    "badvers": ("reject", 505, "frame"),
    "mismatch01": ("semantic", 400, "frame"),
    "mismatch02": ("semantic", 400, "frame"),
    "bigcode": ("reject", 400, "frame"),  # a response: dropped
    # 3.2 transaction layer
    "badbranch": ("accept", None, "frame"),
    # 3.3 application layer
    "insuf": ("reject", 400, "frame"),
    "unkscm": ("semantic", 416, "frame"),
    "novelsc": ("semantic", 416, "frame"),
    "unksm2": ("accept", None, "frame"),
    "bext01": ("accept", None, "frame"),
    "invut": ("accept", None, "frame"),
    "regaut01": ("accept", None, "frame"),
    "multi01": ("reject", 400, "frame"),
    "mcl01": ("reject", 400, "error"),
    "bcast": ("accept", None, "frame"),
    "zeromf": ("accept", None, "frame"),
    "cparam01": ("accept", None, "frame"),
    "cparam02": ("accept", None, "frame"),
    "regescrt": ("accept", None, "frame"),
    "sdp01": ("accept", None, "frame"),
    # 3.4 backward compatibility
    "inv2543": ("accept", None, "error"),  # no Content-Length: only framable in a datagram
}

Msg = Any
CHECKS: dict[str, Callable[[Msg], None]] = {}


def check(name: str) -> Callable[[Callable[[Msg], None]], Callable[[Msg], None]]:
    def register(fn: Callable[[Msg], None]) -> Callable[[Msg], None]:
        CHECKS[name] = fn
        return fn

    return register


def load(name: str) -> bytes:
    return (VECTORS / f"{name}.dat").read_bytes()


# ---- concrete values per accepted / semantically rejected message ------------------------------
@check("wsinv")
def _wsinv(m: Msg) -> None:
    assert m.method == "INVITE"
    assert m.uri == Uri(
        "sip", "vivekg", None, "chair-dnrc.example.com", None, (("unknownparam", None),)
    )
    assert m.to.uri == Uri.parse("sip:vivekg@chair-dnrc.example.com")
    assert m.to.tag == "1918181833n"
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert m.cseq == CSeq(9, "INVITE")
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert [(v.transport, v.host, v.branch) for v in m.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert len(m.headers) == 14
    assert m.headers.get("Subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (route,) = m.routes
    assert route.uri.params == (("lr", None), ("unknownwith", "value"), ("unknown-no-value", None))
    (contact,) = m.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert contact.q == 0.33
    assert m.media_type == "application/sdp"
    assert len(m.body) == 150 and m.body.startswith(b"v=0\r\n")


@check("intmeth")
def _intmeth(m: Msg) -> None:
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.method == method
    assert m.cseq == CSeq(139122385, method)
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.uri.host == "example.com"
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_.params == (
        ("fromparam''~+*_!.-%", '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"'),
        ("tag", "_token~1'+`*%!-."),
    )
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.max_forwards == 255
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"
    assert m.body == b""


@check("esc01")
def _esc01(m: Msg) -> None:
    assert m.uri.user == "sips:user@example.com"
    assert m.uri.host == "example.net"
    assert m.to.uri.user == "user"
    assert m.from_.uri.user == "I have spaces"
    assert m.from_.tag == "938"
    assert m.call_id == "esc01.239409asdfakjkn23onasd0-3234"
    (contact,) = m.contacts
    assert contact.uri.user == "caller"
    assert contact.uri.params == (("lr", None), ("name", "value%41"))
    assert m.content_type == "application/sdp"
    assert len(m.body) == 150


@check("escnull")
def _escnull(m: Msg) -> None:
    assert m.to.uri.user == "null-\x00-null"
    assert m.from_.uri.user == "null-\x00-null"
    assert [c.uri.user for c in m.contacts] == ["\x00", "\x00\x00"]
    assert not m.contacts[0].uri.equivalent(m.contacts[1].uri)


@check("esc02")
def _esc02(m: Msg) -> None:
    assert m.method == "RE%47IST%45R"
    assert m.method != "REGISTER"
    assert m.to.display_name == "%Z%45"
    assert m.from_.display_name == "%Z%45"
    assert [c.uri.host for c in m.contacts] == ["host1.example.com", "host3.example.com"]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert m.top_via.branch == "z9hG4bK209%fzsnel234"


@check("lwsdisp")
def _lwsdisp(m: Msg) -> None:
    assert m.from_.display_name == "caller"
    assert m.from_.uri == Uri.parse("sip:caller@example.com")
    assert m.from_.tag == "323"


@check("longreq")
def _longreq(m: Msg) -> None:
    assert m.to.display_name == f"I have a user name of {'extreme' * 10} proportion"
    assert m.to.uri.port == 6000
    assert m.to.uri.param("unknownparam1") == f"very{'long' * 20}value"
    assert m.to.uri.param(f"longparam{'name' * 25}") == "shortvalue"
    assert m.to.uri.has_param(f"very{'long' * 25}parameternamewithnovalue")
    assert m.from_.uri.user == "amazinglylongcallername" * 5
    assert m.from_.tag is not None and len(m.from_.tag) == 155
    assert m.from_.tag.startswith("1298298298") and m.from_.tag.endswith("982424")
    assert m.call_id == f"longreq.one{'really' * 20}longcallid"
    assert m.cseq == CSeq(3882340, "INVITE")
    assert len(m.vias) == 34
    assert m.vias[0].host == "sip33.example.com"
    assert len(m.headers) == 43
    name = f"Unknown-{'Long' * 20}-Name"
    value = m.headers.get(name)
    assert value is not None and value.endswith(f"unknown-{'long' * 20}-parameter-value")


@check("dblreq")
def _dblreq(m: Msg) -> None:
    assert m.method == "REGISTER"
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert m.body == b""


@check("semiuri")
def _semiuri(m: Msg) -> None:
    assert m.uri.user == "user;par=u@example.net"
    assert m.uri.host == "example.com"
    assert m.uri.params == ()
    assert m.headers.get_all("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


@check("transports")
def _transports(m: Msg) -> None:
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert [v.host for v in m.vias] == [f"t{i}.example.com" for i in range(1, 6)]


@check("mpart01")
def _mpart01(m: Msg) -> None:
    assert m.method == "MESSAGE"
    assert m.media_type == "multipart/mixed"
    assert len(m.body) == 553
    assert b"\x00" in m.body


@check("unreason")
def _unreason(m: Msg) -> None:
    assert isinstance(m, Response)
    assert m.status_code == 200
    assert m.reason == (
        "= 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e"
        "\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441"
        "\u0442\u043e\u0435"
    )
    assert len(m.body) == 154


@check("noreason")
def _noreason(m: Msg) -> None:
    assert isinstance(m, Response)
    assert (m.status_code, m.reason) == (100, "")
    assert m.to.tag == "902jndnke3"


@check("badbranch")
def _badbranch(m: Msg) -> None:
    assert m.top_via.branch == "z9hG4bK"  # the transaction layer decides what to do with it


@check("unkscm")
def _unkscm(m: Msg) -> None:
    assert m.uri.scheme == "nobodyknowsthisscheme"
    assert m.uri.opaque == "totallyopaquecontent"
    assert m.to.uri.host == "example.com"


@check("novelsc")
def _novelsc(m: Msg) -> None:
    assert m.uri.scheme == "soap.beep"
    assert m.uri.opaque == "//192.0.2.103:3002"


@check("unksm2")
def _unksm2(m: Msg) -> None:
    assert (m.to.uri.scheme, m.to.uri.opaque) == ("isbn", "2983792873")
    assert (m.from_.uri.scheme, m.from_.uri.opaque) == ("http", "//www.example.com")
    assert m.from_.tag == "3234233"
    assert [str(c.uri) for c in m.contacts] == ["name:John_Smith"]


@check("bext01")
def _bext01(m: Msg) -> None:
    assert m.headers.get_all("Require") == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert m.headers.get_all("Proxy-Require") == [
        "noProxiesSupportThis",
        "norDoAnyProxiesSupportThis",
    ]
    assert m.top_via.transport == "TLS"
    # a UAS answers 420 listing the Require tags it does not support (RFC 4475 §3.3.5)
    assert unsupported_requirements(m, {"timer", "nothingSupportsThis"}) == [
        "nothingSupportsThisEither"
    ]


@check("invut")
def _invut(m: Msg) -> None:
    assert m.media_type == "application/unknownformat"
    assert len(m.body) == int(m.headers.get("Content-Length"))


@check("regaut01")
def _regaut01(m: Msg) -> None:
    assert m.headers.get_all("Authorization") == ["NoOneKnowsThisScheme opaque-data=here"]


@check("bcast")
def _bcast(m: Msg) -> None:
    assert isinstance(m, Response) and m.status_code == 200
    assert [v.host for v in m.vias] == ["192.0.2.198", "255.255.255.255"]


@check("zeromf")
def _zeromf(m: Msg) -> None:
    assert m.max_forwards == 0


@check("cparam01")
def _cparam01(m: Msg) -> None:
    (contact,) = m.contacts
    assert str(contact.uri) == "sip:+19725552222@gw1.example.net"
    assert contact.params == (("unknownparam", None),)


@check("cparam02")
def _cparam02(m: Msg) -> None:
    (contact,) = m.contacts
    assert contact.uri.params == (("unknownparam", None),)
    assert contact.params == ()
    assert str(contact.uri) == "sip:+19725552222@gw1.example.net;unknownparam"


@check("regescrt")
def _regescrt(m: Msg) -> None:
    (contact,) = m.contacts
    assert contact.uri.headers == (("Route", "<sip:sip.example.com>"),)
    assert str(contact.uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"


@check("sdp01")
def _sdp01(m: Msg) -> None:
    assert m.headers.get_all("Accept") == ["text/nobodyKnowsThis"]
    assert m.media_type == "application/sdp"


@check("inv2543")
def _inv2543(m: Msg) -> None:
    assert m.top_via.branch is None
    assert m.from_.tag is None
    assert m.max_forwards is None
    assert "Content-Length" not in m.headers
    assert m.body.startswith(b"v=0\r\n")  # the body is the rest of the datagram
    assert m.record_routes[0].uri.param("maddr") == "ss1.example.com"


@check("escruri")
def _escruri(m: Msg) -> None:
    assert m.uri.headers == (("Route", "<sip:example.com>"),)


@check("baddate")
def _baddate(m: Msg) -> None:
    assert m.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


@check("regbadct")
def _regbadct(m: Msg) -> None:
    assert m.method == "REGISTER"


@check("mismatch01")
def _mismatch01(m: Msg) -> None:
    assert (m.method, m.cseq.method) == ("OPTIONS", "INVITE")


@check("mismatch02")
def _mismatch02(m: Msg) -> None:
    assert (m.method, m.cseq.method) == ("NEWMETHOD", "INVITE")


# ---- the runs --------------------------------------------------------------------------------
def run_datagram(name: str, data: bytes) -> Msg | None:
    """Parse ``data`` as a datagram and check the expected outcome; the message if parsed."""
    outcome, status, _ = EXPECT[name]
    if outcome == "reject":
        with pytest.raises(RemoteProtocolError) as info:
            parse_message(data)
        assert info.value.status_code == status, info.value
        return None
    msg = parse_message(data)
    if isinstance(msg, Request):
        if outcome == "semantic":
            with pytest.raises(RemoteProtocolError) as info:
                validate_request(msg)
            assert info.value.status_code == status, info.value
        else:
            validate_request(msg)
    else:
        assert outcome == "accept"
    CHECKS[name](msg)
    return msg


NAMES = sorted(EXPECT)


@pytest.mark.parametrize("name", NAMES)
def test_datagram(name: str) -> None:
    run_datagram(name, load(name))


@pytest.mark.parametrize("name", NAMES)
def test_datagram_with_trailing_data(name: str) -> None:
    data = load(name)
    msg = run_datagram(name, data + b"\r\nTRAILING GARBAGE")
    if msg is not None and "Content-Length" in msg.headers:
        assert msg == parse_message(data)  # the trailing octets were discarded (RFC 3261 §18.3)
    elif msg is not None:
        assert msg.body == parse_message(data).body + b"\r\nTRAILING GARBAGE"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("chunk", [0, 1], ids=["whole", "byte-at-a-time"])
def test_stream(name: str, chunk: int) -> None:
    data = load(name)
    behaviour = EXPECT[name][2]
    framer = StreamFramer()
    out: list[bytes] = []
    error: RemoteProtocolError | None = None
    pieces = [data] if chunk == 0 else [data[i : i + 1] for i in range(len(data))]
    try:
        for piece in pieces:
            out += framer.feed(piece)
    except RemoteProtocolError as exc:
        error = exc
    if error is None:
        error = framer.error
    if behaviour == "frame":
        assert error is None and len(out) == 1 and framer.buffered == 0
        assert out[0] == data
        run_datagram(name, out[0])
    elif behaviour == "wait":
        assert error is None and out == [] and framer.buffered == len(data)
    elif behaviour == "error":
        assert error is not None and error.status_code == 400 and out == []
    else:
        assert behaviour == "first"
        # the REGISTER frames; the INVITE-like noise frames too, then its tail breaks framing
        assert error is not None and len(out) == 2
        run_datagram(name, out[0])


@pytest.mark.parametrize("name", [n for n in NAMES if EXPECT[n][2] == "frame"])
def test_stream_with_trailing_message(name: str) -> None:
    data = load(name)
    follow = b"OPTIONS sip:x@example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    stream = b"\r\n\r\n" + data + b"\r\n" + follow + b"OPTIONS sip:partial"
    framer = StreamFramer()
    out: list[bytes] = []
    for i in range(0, len(stream), 7):
        out += framer.feed(stream[i : i + 7])
    assert out == [data, follow]
    assert framer.pings == 1 and framer.pongs == 1
    assert framer.buffered == len(b"OPTIONS sip:partial")


def test_all_49_handled() -> None:
    files = sorted(p.stem for p in VECTORS.glob("*.dat"))
    assert files == sorted(INDEX) == NAMES
    handled = 0
    for name in NAMES:
        outcome, _status, _ = EXPECT[name]
        # our expectation agrees with the index: valid=yes parses, valid=no is refused
        assert (INDEX[name]["valid"] == "yes") == (
            outcome != "reject"
            and name not in {"escruri", "baddate", "regbadct", "mismatch01", "mismatch02"}
        ), name
        assert outcome == "reject" or name in CHECKS, f"{name} has no value checks"
        data = load(name)
        run_datagram(name, data)
        handled += 1
    print(f"RFC 4475: {handled} of {len(INDEX)} torture messages handled")
    assert handled == len(INDEX) == 49
