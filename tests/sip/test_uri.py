"""URI parsing and serialisation (RFC 3261 §19.1, §25.1; RFC 3966)."""

from __future__ import annotations

import pytest

from sippa.errors import RemoteProtocolError
from sippa.sip.uri import Uri


def test_full_sip_uri() -> None:
    uri = Uri.parse(
        "sip:alice:secret@Example.COM:5070;transport=TCP;lr;maddr=239.255.255.1?subject=x&priority=urgent"
    )
    assert uri.scheme == "sip"
    assert uri.user == "alice"
    assert uri.password == "secret"
    assert uri.host == "Example.COM"
    assert uri.port == 5070
    assert uri.params == (("transport", "TCP"), ("lr", None), ("maddr", "239.255.255.1"))
    assert uri.transport == "tcp"
    assert uri.has_param("LR") and uri.param("lr") is None
    assert uri.param("maddr") == "239.255.255.1"
    assert uri.headers == (("subject", "x"), ("priority", "urgent"))
    assert uri.host_port == "Example.COM:5070"
    assert not uri.is_secure
    assert Uri.parse(str(uri)) == uri


def test_sips_host_only() -> None:
    uri = Uri.parse("SIPS:example.com")
    assert (uri.scheme, uri.user, uri.host, uri.port, uri.params) == (
        "sips",
        None,
        "example.com",
        None,
        (),
    )
    assert uri.is_secure
    assert str(uri) == "sips:example.com"


def test_ipv6_reference() -> None:
    uri = Uri.parse("sip:bob@[2001:db8::10]:5061;transport=tls")
    assert uri.host == "2001:db8::10"
    assert uri.port == 5061
    assert uri.host_port == "[2001:db8::10]:5061"
    assert str(uri) == "sip:bob@[2001:db8::10]:5061;transport=tls"


@pytest.mark.parametrize(
    "text",
    [
        "sip:[2001:db8::zz]",
        "sip:bob@[1:2:3:4:5:6:7:8:9]",
        "sip:a@b:99999",
        "sip:",
        "sip:a@",
        "<sip:a@b>",
        "sip:a b@c",
        "sip:a@b;lr?",
        "sip:user@host;=x",
        "tel:",
        "1234",
        ":foo",
        "sip:a@b c",
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        Uri.parse(text)
    assert info.value.status_code == 400


def test_escapes_are_decoded_and_reencoded() -> None:
    uri = Uri.parse("sip:sips%3Auser%40example.com@example.net")
    assert uri.user == "sips:user@example.com"
    assert str(uri) == "sip:sips%3Auser%40example.com@example.net"
    assert Uri.parse(str(uri)) == uri
    # escaped unreserved characters are equivalent to the literal ones (RFC 3261 §19.1.4)
    assert Uri.parse("sip:%61lice@atlanta.com;transport=TCP").equivalent(
        Uri.parse("sip:alice@AtLanTa.CoM;Transport=tcp")
    )


def test_user_with_semicolon_params() -> None:
    # RFC 4475 §3.1.1.9: the user part of the URI contains ';' and an escaped '@'
    uri = Uri.parse("sip:user;par=u%40example.net@example.com")
    assert uri.user == "user;par=u@example.net"
    assert uri.host == "example.com"
    assert uri.params == ()


def test_tel_uri() -> None:
    uri = Uri.parse("tel:+1-201-555-0123;phone-context=example.com")
    assert uri.scheme == "tel"
    assert uri.user == "+1-201-555-0123"
    assert uri.param("phone-context") == "example.com"
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com"


def test_other_scheme_is_opaque() -> None:
    uri = Uri.parse("http://www.example.com/a?b=c")
    assert uri.scheme == "http"
    assert uri.opaque == "//www.example.com/a?b=c"
    assert str(uri) == "http://www.example.com/a?b=c"
    assert not uri.is_sip


def test_with_params_and_replace() -> None:
    uri = Uri.parse("sip:bob@biloxi.com;transport=udp")
    assert str(uri.with_params(transport="tcp", lr=None)) == "sip:bob@biloxi.com;transport=tcp;lr"
    assert str(uri.without_params("transport")) == "sip:bob@biloxi.com"
    assert str(uri.replace(port=5080)) == "sip:bob@biloxi.com:5080;transport=udp"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # RFC 3261 §19.1.4 equivalent pairs
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
        ("sip:[2001:db8::1]", "sip:[2001:DB8:0::1]"),
    ],
)
def test_equivalent(a: str, b: str) -> None:
    assert Uri.parse(a).equivalent(Uri.parse(b))
    assert Uri.parse(b).equivalent(Uri.parse(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # RFC 3261 §19.1.4 non-equivalent pairs
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
        ("sips:bob@biloxi.com", "sip:bob@biloxi.com"),
    ],
)
def test_not_equivalent(a: str, b: str) -> None:
    assert not Uri.parse(a).equivalent(Uri.parse(b))


def test_too_long() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        Uri.parse("sip:" + "a" * 5000 + "@example.com")
    assert info.value.status_code == 414
