"""Typed header values: Via, name-addr, CSeq (RFC 3261 §20, §25.1)."""

from __future__ import annotations

import contextlib

import pytest

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.sip.headers import STAR, CSeq, NameAddr, Via, parse_name_addr_list, parse_via_list
from sippa.sip.uri import Uri


def test_via_basic() -> None:
    via = Via.parse(
        "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport;received=192.0.2.1"
    )
    assert via.transport == "UDP"
    assert via.host == "pc33.atlanta.com"
    assert via.port == 5066
    assert via.branch == "z9hG4bK776asdhds"
    assert via.rport is True
    assert via.received == "192.0.2.1"
    assert (
        str(via)
        == "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport;received=192.0.2.1"
    )
    assert Via.parse(str(via)) == via


def test_via_lws_everywhere() -> None:
    via = Via.parse("SIP  /   2.0 / tcp     spindle.example.com   ;  branch  =   z9hG4bK9ikj8")
    assert (via.transport, via.host, via.port, via.branch) == (
        "TCP",
        "spindle.example.com",
        None,
        "z9hG4bK9ikj8",
    )


def test_via_ipv6_and_rport_value() -> None:
    via = Via.parse(
        "SIP/2.0/TLS [2001:db8::9]:5061;rport=40000;received=2001:db8::1;branch=z9hG4bKx"
    )
    assert via.host == "2001:db8::9"
    assert via.host_port == "[2001:db8::9]:5061"
    assert via.rport == 40000
    assert via.received == "2001:db8::1"
    assert Via.parse(str(via)) == via


def test_via_list_and_with_params() -> None:
    vias = parse_via_list(
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com:5070"
    )
    assert [v.host for v in vias] == ["a.example.com", "b.example.com"]
    assert vias[1].branch is None and vias[1].rport is None
    changed = vias[0].with_params(received="10.0.0.1", rport="5060")
    assert str(changed) == "SIP/2.0/UDP a.example.com;branch=z9hG4bK1;received=10.0.0.1;rport=5060"
    assert changed.rport == 5060


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP",
        "SIP/2.0 host",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP host;branch",
        "SIP/2.0/UDP host;rport=x",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP [::zz]",
        "SIP/2.0/UDP [1:2:3:4:5:6:7:8:9]:5060",
        "garbage",
        "",
    ],
)
def test_via_malformed(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_via_list(text)


def test_name_addr_forms() -> None:
    na = NameAddr.parse('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8')
    assert na.display_name == 'J Rosenberg \\"'
    assert na.uri == Uri.parse("sip:jdrosen@example.com")
    assert na.tag == "98asjd8"
    assert NameAddr.parse(str(na)) == na

    plain = NameAddr.parse("sip:+19725552222@gw1.example.net;unknownparam")
    assert plain.display_name is None
    assert plain.uri.params == ()  # RFC 4475 §3.3.12: a header param, not a URI param
    assert plain.params == (("unknownparam", None),)

    angle = NameAddr.parse("<sip:+19725552222@gw1.example.net;unknownparam>")
    assert angle.uri.params == (("unknownparam", None),)
    assert angle.params == ()

    tokens = NameAddr.parse("Bob Smith<sip:bob@example.com>")
    assert tokens.display_name == "Bob Smith"


def test_name_addr_with_tag_and_params() -> None:
    na = NameAddr.parse("<sip:bob@biloxi.com>;expires=3600;q=0.7")
    assert na.expires == 3600 and na.q == 0.7
    tagged = na.with_tag("abc")
    assert tagged.tag == "abc"
    assert str(tagged) == "<sip:bob@biloxi.com>;expires=3600;q=0.7;tag=abc"
    assert tagged.with_tag("def").tag == "def"


@pytest.mark.parametrize(
    "text",
    [
        '"unterminated <sip:a@b>',
        "< sip:a@b >",
        "<sip:a@b",
        "sip:a@b?x=y",
        "Bell, A <sip:a@b>",
        "<sip:a@b>;;",
        "<sip:a@b> junk",
        "",
        "*",
    ],
)
def test_name_addr_malformed(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        NameAddr.parse(text)


def test_contact_list_and_star() -> None:
    contacts = parse_name_addr_list('"A, B" <sip:a@x.com>;q=1, <sip:b@y.com;lr>, sip:c@z.com')
    assert [str(c.uri) for c in contacts] == ["sip:a@x.com", "sip:b@y.com;lr", "sip:c@z.com"]
    assert contacts[0].display_name == "A, B"
    assert parse_name_addr_list(" * ") == [STAR]
    assert STAR.is_star and str(STAR) == "*"


def test_cseq() -> None:
    assert CSeq.parse("0009 INVITE") == CSeq(9, "INVITE")
    assert str(CSeq(4711, "REGISTER")) == "4711 REGISTER"
    assert CSeq.parse(str(CSeq(2**32 - 1, "ACK"))).seq == 2**32 - 1
    for bad in (
        "INVITE",
        "1",
        "-1 INVITE",
        "4294967296 INVITE",
        "1 INV ITE",
        "99999999999999999999999 BYE",
    ):
        with pytest.raises(RemoteProtocolError):
            CSeq.parse(bad)


def test_display_name_quoting() -> None:
    na = NameAddr('BEL:\x07 "q" \\', Uri.parse("sip:a@b"))
    text = str(na)
    assert text == '"BEL:\\\x07 \\"q\\" \\\\" <sip:a@b>'
    assert NameAddr.parse(text) == na
    with pytest.raises(LocalProtocolError):
        str(NameAddr("two\r\nlines", Uri.parse("sip:a@b")))


@pytest.mark.parametrize(
    "text",
    [
        "sip:" + "%41" * 1000,
        "sip:h" + ";a" * 1000 + "=",
        "sip:" + "a-" * 1000,
        "sip:" + "a." * 1000 + "-",
        "SIP/2.0/UDP h;x=" + "a" * 3000 + "g:",
        # TOKEN and host overlap in gen-value: this once backtracked exponentially
        "SIP/2.0/UDP h" + " ; a = b" * 200 + ";",
        "<sip:a@b>" + ' ; a = "x"' * 200 + ";",
        "a " * 2000 + "b",
        '"' + "\\a" * 2000,
        '"a",' * 1000 + '"',
    ],
    ids=lambda t: t[:12],
)
def test_no_catastrophic_backtracking(text: str) -> None:
    # Linear-time grammar: each of these fails (or parses) at once; a regression hangs the test
    # until pytest-timeout fails it.
    for parser in (Uri.parse, Via.parse, NameAddr.parse, parse_via_list, parse_name_addr_list):
        with contextlib.suppress(RemoteProtocolError):
            parser(text)
