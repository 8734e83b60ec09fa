"""A line's settings as the phone reads them: server addresses and URIs."""

from __future__ import annotations

import pytest

from sippa.app.line import LineConfig, split_host_port
from sippa.app.store import ConfigStore


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pbx.example.test", ("pbx.example.test", None)),
        ("pbx.example.test:5061", ("pbx.example.test", 5061)),
        ("[2001:db8::1]:5070", ("2001:db8::1", 5070)),
        ("[2001:db8::1]", ("2001:db8::1", None)),
        ("192.0.2.7", ("192.0.2.7", None)),
        # the Proxy settings accept URIs: the scheme, user, parameters and headers go
        ("sip:pbx.example.test", ("pbx.example.test", None)),
        ("sips:pbx.example.test:5061;transport=tls", ("pbx.example.test", 5061)),
        ("SIP:alice@pbx.example.test:5080?x=y", ("pbx.example.test", 5080)),
        ("sip:[2001:db8::1]:5070;lr", ("2001:db8::1", 5070)),
    ],
)
def test_split_host_port(text: str, expected: tuple[str, int | None]) -> None:
    assert split_host_port(text) == expected


def test_a_proxy_given_as_a_uri_is_the_domain_and_the_next_hop() -> None:
    store = ConfigStore()
    store.update({("proxy", 1): "sips:pbx.example.test:5061", ("sip_transport", 1): "TLS",
                  ("user_id", 1): "alice"})
    cfg = LineConfig.from_store(store, 1)
    assert cfg.domain == "pbx.example.test"
    assert str(cfg.aor) == "sips:alice@pbx.example.test"
    assert cfg.proxy_uri is not None
    assert (cfg.proxy_uri.host, cfg.proxy_uri.port) == ("pbx.example.test", 5061)
