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


def test_alternate_proxy_settings() -> None:
    from sippa.app.settings import SCHEMA, SettingError

    store = ConfigStore()
    assert SCHEMA["proxy_fallback_intvl"].default == 3600  # Cisco default
    assert SCHEMA["alternate_proxy"].cisco_name(2) == "Alternate_Proxy_2_"
    assert SCHEMA["alternate_outbound_proxy"].cisco_name(1) == "Alternate_Outbound_Proxy_1_"
    assert SCHEMA["proxy_fallback_intvl"].page == "Ext"
    with pytest.raises(SettingError):
        store.update({("alternate_proxy", 1): "bad host!"})
    with pytest.raises(SettingError):
        store.update({("proxy_fallback_intvl", 1): 0})
    store.update({("proxy", 1): "pbx.example.test", ("user_id", 1): "alice",
                  ("sip_transport", 1): "TLS", ("alternate_proxy", 1): "sip:backup.test:5071",
                  ("alternate_outbound_proxy", 1): "obp2.test", ("proxy_fallback_intvl", 1): 60})
    cfg = LineConfig.from_store(store, 1)
    # without an outbound proxy the Alternate Proxy is the alternate; the domain stays
    assert cfg.alternate_uri is not None
    assert (str(cfg.alternate_uri), cfg.proxy_fallback_intvl) == ("sips:backup.test:5071", 60)
    assert str(cfg.aor) == "sips:alice@pbx.example.test"
    # with one, the Alternate Outbound Proxy (or the Alternate Proxy when it is empty)
    store.update({("outbound_proxy", 1): "obp.test", ("use_outbound_proxy", 1): True})
    assert str(LineConfig.from_store(store, 1).alternate_uri) == "sips:obp2.test"
    store.update({("alternate_outbound_proxy", 1): ""})
    assert str(LineConfig.from_store(store, 1).alternate_uri) == "sips:backup.test:5071"
    # no Proxy, no alternate
    store.update({("proxy", 1): "", ("use_outbound_proxy", 1): False})
    assert LineConfig.from_store(store, 1).alternate_uri is None
