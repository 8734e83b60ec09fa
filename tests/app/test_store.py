from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sippa.app.settings import SCHEMA, SettingError, by_cisco_name, parse_value, setting
from sippa.app.store import SCHEMA_VERSION, ConfigStore


def test_defaults_without_a_database_row(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "c.db")
    assert store.get("sip_transport", 1) == "TLS"
    assert store.get("tls_name_validate", 2) is True
    assert store.get("web_server_port") == 8443
    assert store.is_default("proxy", 1)


def test_values_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = ConfigStore(path)
    store.update({("proxy", 1): "example.test", ("register_expires", 1): "600", ("sip_t1", 0): 1})
    store.close()
    again = ConfigStore(path)
    assert again.get("proxy", 1) == "example.test"
    assert again.get("register_expires", 1) == 600
    assert again.get("sip_t1") == 1.0
    assert again.get("proxy", 2) == ""


def test_database_is_private_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    ConfigStore(path).close()
    assert (path.stat().st_mode & 0o777) == 0o600
    version = sqlite3.connect(path).execute(
        "SELECT value FROM meta WHERE name='schema_version'"
    ).fetchone()
    assert version == (str(SCHEMA_VERSION),)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    ConfigStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE name='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(RuntimeError, match="newer sippa"):
        ConfigStore(path)


def test_a_bad_value_in_a_batch_changes_nothing(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "c.db")
    store.set("proxy", "good.example", line=1)
    with pytest.raises(SettingError) as info:
        store.update(
            {
                ("proxy", 1): "other.example",
                ("register_expires", 1): "soon",
                ("sip_transport", 2): "SCTP",
                ("web_server_port", 0): 70000,
            }
        )
    errors = info.value.errors
    assert errors[("register_expires", 1)] == "must be a whole number"
    assert errors[("sip_transport", 2)] == "must be one of UDP, TCP, TLS, AUTO"
    assert errors[("web_server_port", 0)] == "must be at most 65535"
    assert store.get("proxy", 1) == "good.example"
    assert ConfigStore(store.path).get("proxy", 1) == "good.example"


def test_cross_field_rules() -> None:
    store = ConfigStore()
    with pytest.raises(SettingError, match="must not be above"):
        store.update({("rtp_port_min", 0): 30000, ("rtp_port_max", 0): 20000})
    with pytest.raises(SettingError, match="at least 4 even ports"):
        store.update({("rtp_port_min", 0): 20000, ("rtp_port_max", 0): 20002})
    store.update({("rtp_port_min", 0): 20000, ("rtp_port_max", 0): 20010})
    assert store.get("rtp_port_max") == 20010


@pytest.mark.parametrize(
    ("key", "line", "message"),
    [
        ("no_such", 0, "no setting named"),
        ("proxy", 0, "per-line setting"),
        ("proxy", 9, "lines 1..4"),
        ("sip_t1", 1, "not a per-line setting"),
    ],
)
def test_unknown_keys_and_lines(key: str, line: int, message: str) -> None:
    with pytest.raises(SettingError, match=message):
        ConfigStore().update({(key, line): "x"})


@pytest.mark.parametrize(
    ("key", "raw", "problem"),
    [
        ("proxy", "exa mple.test", "not a host name"),
        ("proxy", "example.test:0", "port '0'"),
        ("proxy", "[::1", "closed with ]"),
        ("user_id", "al ice", "only letters"),
        ("display_name", "a\x00b", "control characters"),
        ("sip_t1", "nan", "finite"),
        ("use_dns_srv", "maybe", "Yes or No"),
        ("profile_rule", "http://a b", "no spaces"),
    ],
)
def test_field_validation(key: str, raw: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_value(setting(key), raw)


def test_good_values_parse() -> None:
    assert parse_value(setting("proxy"), " sips:example.test:5061 ") == "sips:example.test:5061"
    assert parse_value(setting("proxy"), "[2001:db8::1]:5061") == "[2001:db8::1]:5061"
    assert parse_value(setting("use_dns_srv"), "Yes") is True
    assert parse_value(setting("sip_transport"), "auto") == "AUTO"


def test_export_hides_passwords_unless_asked(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "c.db")
    store.update({("password", 1): "s3cret", ("proxy", 1): "example.test"})
    exported = store.export()
    assert exported["Proxy_1_"] == "example.test"
    assert exported["Use_DNS_SRV_1_"] == "Yes"
    assert "Password_1_" not in exported
    assert "s3cret" not in repr(store)
    assert store.export(include_secrets=True)["Password_1_"] == "s3cret"


def test_every_setting_has_a_unique_cisco_name_that_maps_back() -> None:
    names = set()
    for s in SCHEMA.values():
        for line in (1, 2) if s.per_line else (0,):
            name = s.cisco_name(line)
            assert name not in names
            names.add(name)
            assert by_cisco_name(name) == (s, line)
        parse_value(s, s.default)  # every default is valid
    assert by_cisco_name("Proxy_12_") == (setting("proxy"), 12)
    assert by_cisco_name("Unknown_Thing") is None


def test_listeners_hear_changes_only() -> None:
    store = ConfigStore()
    heard: list[dict[tuple[str, int], object]] = []
    unsubscribe = store.subscribe(heard.append)
    store.set("proxy", "a.example", 1)
    store.set("proxy", "a.example", 1)
    unsubscribe()
    store.set("proxy", "b.example", 1)
    assert heard == [{("proxy", 1): "a.example"}]


def test_killing_a_writer_never_leaves_half_a_configuration(tmp_path: Path) -> None:
    """Kill -9 a process that saves two related settings in a loop; each save is all or nothing."""
    path = tmp_path / "c.db"
    ConfigStore(path).close()
    writer = textwrap.dedent(
        f"""
        from sippa.app.store import ConfigStore
        store = ConfigStore({str(path)!r})
        i = 0
        print("ready", flush=True)
        while True:
            i += 1
            store.update({{("proxy", 1): f"h{{i}}.example", ("display_name", 1): f"n{{i}}"}})
        """
    )
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        store = ConfigStore(path)
        proxy, name = store.get("proxy", 1), store.get("display_name", 1)
        store.close()
        assert isinstance(proxy, str) and proxy.startswith("h"), proxy
        assert proxy[1:].split(".")[0] == str(name)[1:], (proxy, name)
