"""Dial plans in the Phone: typed numbers on a line go through its ``Dial_Plan_n_`` (rewritten,
routed, barred, refused as invalid); URIs, ``user@host`` and names bypass it; the setting is
validated, per line, on the Ext page, and changes apply to the next call.

Real sockets on loopback: line 1's proxy is a fake registrar (tests.app.test_without_reg) that
records the INVITEs it gets and refuses them with 480; Make Call Without Reg is on, so the line
dials whether registered or not."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sippa.app.line import LineConfig
from sippa.app.phone import CallError, DialPlanRefused, Phone, PhoneOptions
from sippa.app.settings import SCHEMA, SettingError, by_cisco_name
from sippa.app.store import ConfigStore
from sippa.interfaces.cli import main
from sippa.sip.dialplan import CISCO_DEFAULT, Outcome
from sippa.sip.message import Request, parse_message
from tests.app.test_without_reg import FakeRegistrar, _until

pytestmark = pytest.mark.timeout(30)

PLAN = "(<9:>xxx.|!1900xxxxxxx|1xxx[2-9]xxxxxx|<:+1>[2-9]xxxxxxxxx|<*67:>x.)"


def _store(registrar: str, plan: str = PLAN) -> ConfigStore:
    store = ConfigStore(":memory:", lines=2)
    store.update({
        ("rtp_port_min", 0): 45000, ("rtp_port_max", 0): 45999,
        ("line_enable", 1): True, ("user_id", 1): "alice", ("proxy", 1): registrar,
        ("sip_transport", 1): "UDP", ("secure_call_option", 1): "Off",
        ("restrict_source_ip", 1): False, ("register_expires", 1): 300,
        ("make_call_without_reg", 1): True, ("dial_plan", 1): plan,
    })
    return store


@pytest.fixture
async def registrar() -> AsyncIterator[FakeRegistrar]:
    fake = FakeRegistrar()
    task = asyncio.get_running_loop().create_task(fake.run())
    yield fake
    task.cancel()
    fake.sock.close()


@pytest.fixture
async def phone(registrar: FakeRegistrar) -> AsyncIterator[Phone]:
    p = Phone(_store(registrar.address), PhoneOptions(
        system_ca=False, tls_port=None, tcp_port=None, history=True))
    async with p:
        yield p


@pytest.fixture
def gateway() -> Iterator[socket.socket]:
    """Another host than the line's proxy (127.0.0.1 is its domain): 127.0.0.2, loopback."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.2", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def _invites(registrar: FakeRegistrar) -> list[str]:
    return [r.uri.user or "" for r in registrar.received if r.method == "INVITE"]


async def _dialled(phone: Phone, registrar: FakeRegistrar, target: str) -> str:
    """Dial ``target`` on line 1; the Request-URI user of the INVITE the proxy gets."""
    before = len(_invites(registrar))
    call = await phone.dial(target, 1)
    await _until(lambda: len(_invites(registrar)) > before, f"an INVITE for {target}")
    await phone.wait_call(call.id, lambda c: c.is_over, 5)
    return _invites(registrar)[-1]


def test_the_setting_is_per_line_on_the_ext_page_empty_by_default() -> None:
    s = SCHEMA["dial_plan"]
    assert s.cisco == "Dial_Plan_{n}_" and s.per_line and s.default == ""
    assert s.page == "Ext" and s.section == "Dial Plan" and s.label == "Dial Plan"
    assert by_cisco_name("Dial_Plan_2_") == (s, 2)
    store = ConfigStore(":memory:", lines=2)
    assert LineConfig.from_store(store, 1).dial_plan == ""  # numbers as typed
    store.update({("dial_plan", 1): CISCO_DEFAULT, ("dial_plan", 2): "  "})
    assert LineConfig.from_store(store, 2).dial_plan == ""  # empty: no plan
    with pytest.raises(SettingError, match="backwards"):
        store.update({("dial_plan", 1): "([9-1]xx)"})
    with pytest.raises(SettingError, match="gateway gw0"):
        store.update({("dial_plan", 1): "(xx.<:@gw0>)"})
    assert LineConfig.from_store(store, 1).dial_plan == CISCO_DEFAULT  # nothing saved


async def test_rewritten_numbers_arrive_rewritten(
    phone: Phone, registrar: FakeRegistrar
) -> None:
    assert await _dialled(phone, registrar, "9555") == "555"
    assert await _dialled(phone, registrar, "4085551234") == "+14085551234"
    assert await _dialled(phone, registrar, "*675551234") == "5551234"
    assert await _dialled(phone, registrar, "18005551234") == "18005551234"
    assert phone.status()["lines"][0]["dial_plan"] == PLAN


async def test_a_barred_number_never_leaves_the_phone(
    phone: Phone, registrar: FakeRegistrar
) -> None:
    with pytest.raises(DialPlanRefused, match="line 1: 19005551234 is barred") as info:
        await phone.dial("19005551234", 1)
    assert info.value.barred and info.value.verdict.rule == "!1900xxxxxxx"
    with pytest.raises(DialPlanRefused, match="12 is incomplete") as info:
        await phone.dial("12", 1)
    assert not info.value.barred and info.value.verdict.outcome is Outcome.INCOMPLETE
    with pytest.raises(CallError, match="not a valid number"):
        await phone.dial("*1#", 1)
    await asyncio.sleep(0.3)
    assert _invites(registrar) == [] and phone.calls == {}
    assert phone.history is not None
    reasons = [e.end_reason for e in phone.history.recent(10)]
    assert {"barred", "incomplete", "no match"} <= set(reasons)


async def test_uris_user_at_host_and_names_bypass_the_plan(
    phone: Phone, registrar: FakeRegistrar
) -> None:
    host = registrar.address
    assert await _dialled(phone, registrar, f"sip:19005551234@{host}") == "19005551234"
    assert await _dialled(phone, registrar, f"12@{host}") == "12"
    assert await _dialled(phone, registrar, "carol") == "carol"
    assert await _dialled(phone, registrar, "+19005551234") == "+19005551234"


async def test_a_change_applies_to_the_next_call_and_empty_means_no_plan(
    phone: Phone, registrar: FakeRegistrar
) -> None:
    phone.store.update({("dial_plan", 1): ""})
    await _until(lambda: phone.lines[1].config.dial_plan == "", "the new plan")
    assert await _dialled(phone, registrar, "19005551234") == "19005551234"
    assert await _dialled(phone, registrar, "12") == "12"
    phone.store.update({("dial_plan", 1): "(!x.)"})
    await _until(lambda: phone.lines[1].config.dial_plan == "(!x.)", "the new plan")
    with pytest.raises(DialPlanRefused, match="barred"):
        await phone.dial("12", 1)


async def test_a_plan_routes_a_pattern_to_a_host(
    phone: Phone, registrar: FakeRegistrar, gateway: socket.socket
) -> None:
    host, port = gateway.getsockname()
    phone.store.update({("dial_plan", 1): f"(<8:>xxx<:@{host}:{port}>|xx.)"})
    await _until(lambda: "@" in phone.lines[1].config.dial_plan, "the new plan")
    call = await phone.dial("8123", 1)
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(gateway, 65535), 5)
    invite = parse_message(data)
    assert isinstance(invite, Request) and invite.method == "INVITE"
    assert invite.uri.user == "123" and invite.uri.host == host and invite.uri.port == port
    assert _invites(registrar) == []  # not through the line's proxy
    await phone.hangup(call.id)


async def test_an_invalid_stored_plan_refuses_numbers_with_a_message(
    phone: Phone, registrar: FakeRegistrar
) -> None:
    # a store written before the setting was validated (or edited by hand)
    from dataclasses import replace
    line = phone.lines[1]
    line.config = replace(line.config, dial_plan="([9-1])")
    with pytest.raises(DialPlanRefused, match="the dial plan is invalid: the range 9-1"):
        await phone.dial("9", 1)
    assert await _dialled(phone, registrar, "bob") == "bob"


def test_dial_plan_status_for_the_keypad() -> None:
    from sippa.app.line import dial_plan_status

    assert dial_plan_status("([9-1])", "9")["outcome"] == "invalid plan"
    assert "range 9-1" in str(dial_plan_status("([9-1])", "9")["reason"])
    assert dial_plan_status(PLAN, " 9555 ")["target"] == "555"
    assert dial_plan_status(PLAN, "bob") == {
        "number": "bob", "plan": PLAN, "outcome": "bypass", "target": "bob", "rule": None,
        "dial_now": False, "reason": None,
    }


def test_cli_says_barred_and_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "s.db")
    for key, value in (("line_enable", "yes"), ("user_id", "alice"), ("sip_transport", "UDP"),
                       ("secure_call_option", "Off"), ("dial_plan", PLAN)):
        assert main(["config", "set", key, value, "--line", "1", "--db", db]) == 0
    assert main(["config", "set", "dial_plan", "([9-1]x)", "--line", "1", "--db", db]) != 0
    assert "backwards" in capsys.readouterr().err
    assert main(["call", "19005551234", "--line", "1", "--db", db]) != 0
    err = capsys.readouterr().err
    assert "error: line 1: 19005551234 is barred by the dial plan (!1900xxxxxxx)" in err, err
    assert main(["call", "12", "--line", "1", "--db", db]) != 0
    assert "error: line 1: 12 is incomplete for the dial plan" in capsys.readouterr().err


def test_a_cisco_profile_sets_the_dial_plan_and_a_bad_one_changes_nothing() -> None:
    from sippa.app.profile import ProfileError, import_profile

    store = ConfigStore(":memory:", lines=2)
    good = (b"<flat-profile><Dial_Plan_2_>( 9xx | &lt;9:&gt;xxx. | !1900xxxxxxx )"
            b"</Dial_Plan_2_></flat-profile>")
    import_profile(good, store)
    assert store.get("dial_plan", 2) == "( 9xx | <9:>xxx. | !1900xxxxxxx )"
    assert LineConfig.from_store(store, 2).dial_plan == "( 9xx | <9:>xxx. | !1900xxxxxxx )"
    bad = (b"<flat-profile><Display_Name_1_>A</Display_Name_1_>"
           b"<Dial_Plan_1_>(xx.&lt;:@gw0&gt;)</Dial_Plan_1_></flat-profile>")
    with pytest.raises(ProfileError, match=r"<Dial_Plan_1_> gateway gw0 is not configured"):
        import_profile(bad, store)
    assert store.get("dial_plan", 1) == "" and store.get("display_name", 1) == ""
