"""Cisco flat-profile import/export: round trip, access, passwords, bad profiles, encodings."""

from __future__ import annotations

import contextlib
import gzip
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sippa.app.accounts import verify_password
from sippa.app.profile import (
    MAX_PROFILE_BYTES,
    AccessMap,
    ProfileError,
    decode_profile,
    export_profile,
    import_profile,
    parse_profile,
)
from sippa.app.rules import RuleError, parse_rule
from sippa.app.settings import SCHEMA, Access, Kind, Setting
from sippa.app.store import ConfigStore
from tests.peers.process import require_binary


def _other_value(s: Setting, line: int) -> str:
    """A valid value different from the default, as a profile would give it."""
    if s.kind is Kind.BOOL:
        return "No" if s.default else "Yes"
    if s.kind is Kind.CHOICE:
        return next((c for c in s.choices if c != s.default), str(s.default))
    if s.kind is Kind.PASSWORD:
        return "Sw0rdfish-pass" if s.key != "password" else f"digest secret {line}"
    if s.kind in (Kind.INT, Kind.FLOAT):
        special = {"sip_tcp_port_max": 65000, "rtp_port_max": 40000, "sip_tcp_port_min": 50000}
        if s.key in special:
            return str(special[s.key])
        value = s.minimum if s.minimum is not None and s.minimum != s.default else s.default + 1
        assert s.maximum is None or value <= s.maximum
        return str(int(value)) if s.kind is Kind.INT else str(float(value))
    if "rule" in s.key:
        return f"[--uid u{line} --pwd p] https://prov.example.test/$MA-{s.key}.xml"
    if s.check is not None and s.key in {"proxy", "outbound_proxy", "dns_server",
                                         "voice_mail_server", "alternate_proxy",
                                         "alternate_outbound_proxy"}:
        return f"host{line}.example.test:5061"
    if s.key in ("user_id", "mailbox_id"):
        return f"user{line}"
    if s.key == "dial_plan":
        return f"(<9:>xxx.|!1900x.|{line}xx<:@host{line}.example.test>)"
    if s.key.startswith("extended_function_"):
        return f"fnc=blf+sd+cp;sub={s.key}@$PROXY;nme=Key <&> {s.key}"
    return f"value of {s.key} <&> line {line}"


def _busy_store(tmp_path: Path) -> ConfigStore:
    store = ConfigStore(tmp_path / "busy.db")
    text = {
        f"{s.cisco_name(n)}": _other_value(s, n)
        for s in SCHEMA.values()
        for n in (range(1, store.lines + 1) if s.per_line else [0])
        if s.key not in {"admin_password", "user_password"}
    }
    body = "".join(
        f"<{k}>{v.replace('&', '&amp;').replace('<', '&lt;')}</{k}>" for k, v in text.items()
    )
    import_profile(f"<flat-profile>{body}</flat-profile>".encode(), store)
    return store


def test_export_then_import_gives_the_same_configuration(tmp_path: Path) -> None:
    store = _busy_store(tmp_path)
    store.update({("admin_password", 0): "scrypt$1$1$1$AAAA$BBBB"})  # a stored hash
    defaults = sum(store.is_default(k, n or None) for k, n in store.keys())  # noqa: SIM118 - ConfigStore.keys()
    assert defaults <= 3  # nearly everything differs from the default
    access = AccessMap(tmp_path / "access.json")
    access.update({("proxy", 2): Access.RW, ("debug_level", 0): Access.RO})
    data = export_profile(store, include_secrets=True, access=access)

    other = ConfigStore(tmp_path / "other.db")
    other_access = AccessMap(tmp_path / "other-access.json")
    import_profile(data, other, access=other_access)
    assert other.snapshot() == store.snapshot()
    assert other_access.get("proxy", 2) is Access.RW
    assert other_access.get("proxy", 1) is SCHEMA["proxy"].access
    assert AccessMap(tmp_path / "other-access.json").get("debug_level") is Access.RO
    # and again: export of the copy is byte for byte the same
    assert export_profile(other, include_secrets=True, access=other_access) == data


def test_export_hides_secrets_by_default(tmp_path: Path) -> None:
    store = _busy_store(tmp_path)
    data = export_profile(store).decode()
    assert "Password_1_" not in data and "digest secret" not in data
    assert '<Proxy_1_ ua="ro">host1.example.test:5061</Proxy_1_>' in data
    assert "&lt;&amp;&gt;" in data


def test_login_passwords_are_hashed(tmp_path: Path) -> None:
    store = ConfigStore()
    import_profile(
        b"<flat-profile><Admin_Password>Adm1n-Passw0rd</Admin_Password></flat-profile>", store
    )
    stored = str(store.get("admin_password"))
    assert stored.startswith("scrypt$") and "Adm1n" not in stored
    assert verify_password("Adm1n-Passw0rd", stored)
    with pytest.raises(ProfileError, match="Admin_Password"):
        import_profile(b"<flat-profile><Admin_Password>weak</Admin_Password></flat-profile>", store)
    with pytest.raises(ProfileError, match="cannot be cleared"):
        import_profile(b"<flat-profile><Admin_Password/></flat-profile>", store)
    assert store.get("admin_password") == stored


def test_empty_element_empties_and_attribute_only_changes_access(tmp_path: Path) -> None:
    store = ConfigStore()
    store.update({("profile_rule_b", 0): "https://a.test/x", ("proxy", 1): "pbx.test"})
    access = AccessMap()
    result = import_profile(
        b'<flat-profile><Profile_Rule_B /><Proxy_1_ ua="rw"/></flat-profile>', store, access=access
    )
    assert store.get("profile_rule_b") == ""
    assert store.get("proxy", 1) == "pbx.test"
    assert access.get("proxy", 1) is Access.RW
    assert result.access == {("proxy", 1): Access.RW}


def test_nested_flat_profile_and_unknown_elements(tmp_path: Path) -> None:
    store = ConfigStore()
    result = import_profile(
        b"<device><x/><flat-profile><No_Such_Thing>1</No_Such_Thing>"
        b"<Resync_Periodic>600</Resync_Periodic><Proxy_9_>x.test</Proxy_9_>"
        b"<!-- a comment --></flat-profile></device>",
        store,
    )
    assert store.get("resync_periodic") == 600
    assert any("No_Such_Thing" in w for w in result.warnings)
    assert any("Proxy_9_" in w for w in result.warnings)


def test_one_invalid_value_changes_nothing() -> None:
    store = ConfigStore()
    before = store.snapshot()
    with pytest.raises(ProfileError) as info:
        import_profile(
            b"<flat-profile><Resync_Periodic>600</Resync_Periodic>"
            b"<SIP_Transport_2_>CARRIER-PIGEON</SIP_Transport_2_>"
            b'<Proxy_1_ ua="everyone">a.test</Proxy_1_></flat-profile>',
            store,
        )
    assert store.snapshot() == before
    # the second pass names the value error once the ua error is fixed
    assert "Proxy_1_" in info.value.errors
    with pytest.raises(ProfileError) as info:
        import_profile(
            b"<flat-profile><Resync_Periodic>600</Resync_Periodic>"
            b"<SIP_Transport_2_>CARRIER-PIGEON</SIP_Transport_2_></flat-profile>",
            store,
        )
    assert "must be one of" in info.value.errors["SIP_Transport_2_"]
    assert store.snapshot() == before


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"<flat-profile><Proxy_1_>a</flat-profile>", "malformed"),
        (b"", "malformed"),
        (b"<other/>", "no <flat-profile>"),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<flat-profile><Proxy_1_>&x;</Proxy_1_></flat-profile>",
            "refused XML",
        ),
        (
            b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><flat-profile>'
            b"<GPP_A>&c;</GPP_A></flat-profile>",
            "refused XML",
        ),
        (
            b"<flat-profile>"
            + b"<GPP_A>x</GPP_A>" * (MAX_PROFILE_BYTES // 16)
            + b"</flat-profile>",
            "larger than",
        ),
    ],
)
def test_bad_profiles_are_refused(data: bytes, match: str) -> None:
    store = ConfigStore()
    before = store.snapshot()
    with pytest.raises(ProfileError, match=match):
        import_profile(data, store)
    assert store.snapshot() == before


def test_attribute_only_and_text_elements_parse() -> None:
    entries, warnings = parse_profile(
        b'<flat-profile><A ua="na"/><B/><C ua="rw">v</C><D><E/></D></flat-profile>'
    )
    assert [(e.name, e.value, e.ua) for e in entries] == [
        ("A", None, "na"),
        ("B", "", None),
        ("C", "v", "rw"),
    ]
    assert warnings and "D" in warnings[0]


PROFILE = b"<flat-profile><Resync_Periodic>1234</Resync_Periodic></flat-profile>\n"


def test_gzip_profile_and_gzip_bomb() -> None:
    assert decode_profile(gzip.compress(PROFILE)) == PROFILE
    bomb = gzip.compress(b"<flat-profile>" + b" " * (MAX_PROFILE_BYTES * 4))
    assert len(bomb) < MAX_PROFILE_BYTES
    with pytest.raises(ProfileError, match="larger than"):
        decode_profile(bomb)
    with pytest.raises(ProfileError, match=r"truncated|bad gzip"):
        decode_profile(gzip.compress(PROFILE)[:-12])


def _openssl() -> str:
    return require_binary("openssl", "openssl")  # skips locally, fails in CI


@pytest.mark.parametrize(
    "args",
    [["-md", "md5"], ["-md", "sha256"], [], ["-pbkdf2"], ["-pbkdf2", "-md", "sha256"]],
    ids=["md5", "sha256", "default", "pbkdf2", "pbkdf2-sha256"],
)
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_openssl_enc_profiles(tmp_path: Path, args: list[str], compressed: bool) -> None:
    clear = gzip.compress(PROFILE) if compressed else PROFILE
    (tmp_path / "p").write_bytes(clear)
    subprocess.run(
        [
            _openssl(),
            "enc",
            "-aes-256-cbc",
            *args,
            "-salt",
            "-k",
            "s3cret key",
            "-in",
            str(tmp_path / "p"),
            "-out",
            str(tmp_path / "p.enc"),
        ],
        check=True,
    )
    data = (tmp_path / "p.enc").read_bytes()
    assert data.startswith(b"Salted__")
    store = ConfigStore()
    import_profile(data, store, key="s3cret key")
    assert store.get("resync_periodic") == 1234
    with pytest.raises(ProfileError, match="wrong --key"):
        decode_profile(data, key="not the key")
    with pytest.raises(ProfileError, match="encrypted"):
        decode_profile(data)


# -- fuzz: parse it or raise ProfileError, nothing else ----------------------------------------

_names = st.sampled_from(["Proxy_1_", "GPP_A", "Resync_Periodic", "SIP_Transport_2_", "X", "a b"])
_xmlish = st.lists(
    st.one_of(
        _names.map(lambda n: f"<{n}>"),
        _names.map(lambda n: f"</{n}>"),
        _names.map(lambda n: f'<{n} ua="rw"/>'),
        st.sampled_from(
            [
                "<flat-profile>",
                "</flat-profile>",
                "&amp;",
                "&x;",
                "<!DOCTYPE a>",
                "<?xml version='1.0'?>",
                "<!-- c -->",
                "]]>",
                "\x00",
                "é",
            ]
        ),
        st.text(max_size=8),
    ),
    max_size=20,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), _xmlish.map(str.encode)))
def test_any_input_imports_or_raises_profile_error(data: bytes) -> None:
    store = ConfigStore()
    before = store.snapshot()
    try:
        import_profile(data, store)
    except ProfileError:
        assert store.snapshot() == before


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_rule_parses_or_raises_rule_error(text: str) -> None:
    with contextlib.suppress(RuleError):
        rule = parse_rule(text, {"MA": "00", "A": "x y"})
        assert rule is None or rule.url.lower().startswith(("http://", "https://"))
