"""Dial plans on the web and the control socket: the REST API refuses a barred number with 403
and a number the plan does not take with 422 (the message says which), the CLI's control
socket says the same, and the Ext page has the Dial Plan section with its validation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sippa.app.accounts import Accounts
from sippa.app.control import Controller
from sippa.app.phone import Phone, PhoneOptions
from sippa.app.store import ConfigStore
from sippa.app.webserver import TrustAnchors
from sippa.interfaces.web import PhoneAdapter, WebContext, create_app
from sippa.sip.dialplan import CISCO_DEFAULT

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Phone, ConfigStore]]:
    store = ConfigStore(tmp_path / "sippa.db", lines=2)
    store.update({
        ("rtp_port_min", 0): 45000, ("rtp_port_max", 0): 47999,
        ("line_enable", 1): True, ("user_id", 1): "alice", ("sip_transport", 1): "UDP",
        ("dial_plan", 1): "(!1900xxxxxxx|1xxx[2-9]xxxxxx)",
    })
    phone = Phone(store, PhoneOptions(system_ca=False, tls_port=None, history=False))
    accounts = Accounts(store)
    ctx = WebContext(store, accounts, TrustAnchors(None, system=False), PhoneAdapter(phone))
    token = accounts.create_token("user", "test")
    async with phone, httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(ctx)), base_url="https://testserver",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client, phone, store
    accounts.close()
    store.close()


async def test_api_refuses_barred_403_and_invalid_422(
    setup: tuple[httpx.AsyncClient, Phone, ConfigStore],
) -> None:
    api, phone, store = setup
    r = await api.post("/api/v1/calls", json={"target": "19005551234", "line": 1})
    assert r.status_code == 403, r.text
    assert r.json()["detail"] == (
        "line 1: 19005551234 is barred by the dial plan (!1900xxxxxxx)"
    )
    r = await api.post("/api/v1/calls", json={"target": "1800", "line": 1})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "line 1: 1800 is incomplete for the dial plan"
    r = await api.post("/api/v1/calls", json={"target": "5551234", "line": 1})
    assert r.status_code == 422, r.text
    assert "not a valid number in the dial plan" in r.json()["detail"]
    assert (await api.get("/api/v1/calls")).json() == []
    line = (await api.get("/api/v1/lines")).json()[0]
    assert line["dial_plan"] == "(!1900xxxxxxx|1xxx[2-9]xxxxxx)"

    control = Controller(phone, store)
    answer = await control.handle({"op": "call", "target": "19005551234", "line": 1})
    assert answer == {
        "ok": False, "error": "line 1: 19005551234 is barred by the dial plan (!1900xxxxxxx)",
    }


async def test_ext_page_has_the_dial_plan_and_validates_it(
    admin: httpx.AsyncClient, accounts: Accounts, store: ConfigStore
) -> None:
    page = (await admin.get("/ext/1")).text
    assert "Dial Plan" in page and "Dial_Plan_1_" in page
    assert "[3469]11" in page  # the Cisco default, named in the help text
    assert store.get("dial_plan", 1) == ""  # numbers as typed by default
    token = {"Authorization": f"Bearer {accounts.create_token('admin', 'test')}"}
    r = await admin.patch("/api/v1/settings", headers=token,
                          json={"Dial_Plan_1_": "(xx<:@gw1>)"})
    assert r.status_code == 422, r.text
    assert "gateway gw1" in r.json()["errors"]["Dial_Plan_1_"]
    assert store.get("dial_plan", 1) == ""
    r = await admin.patch("/api/v1/settings", headers=token,
                          json={"Dial_Plan_1_": "(<9:>xx.|!1900x.)"})
    assert r.status_code == 200, r.text
    assert store.get("dial_plan", 1) == "(<9:>xx.|!1900x.)"


async def test_api_says_what_the_plan_does_with_a_typed_number(
    setup: tuple[httpx.AsyncClient, Phone, ConfigStore],
) -> None:
    api, _, store = setup

    async def check(number: str, line: int = 1) -> dict[str, object]:
        r = await api.get("/api/v1/dial-plan", params={"number": number, "line": line})
        assert r.status_code == 200, r.text
        return r.json()

    v = await check("18005551234")
    assert v["outcome"] == "allowed" and v["target"] == "18005551234"
    assert v["rule"] == "1xxx[2-9]xxxxxx" and v["dial_now"] is True and v["line"] == 1
    v = await check("19005551234")
    assert v["outcome"] == "barred" and v["target"] is None and "barred" in str(v["reason"])
    assert (await check("1800"))["outcome"] == "incomplete"
    assert (await check("5551234"))["outcome"] == "no match"
    assert (await check("sip:1@example.test"))["outcome"] == "bypass"
    store.update({("dial_plan", 2): CISCO_DEFAULT})
    v = await check("9555", line=2)
    assert v["outcome"] == "incomplete"
    store.update({("dial_plan", 2): "(<9:>xxx.<:@pbx.test:5070>)"})
    v = await check("9555", line=2)
    assert v["target"] == "555@pbx.test:5070" and v["dial_now"] is False
    store.update({("dial_plan", 2): ""})
    assert (await check("12", line=2))["outcome"] == "no plan"
    r = await api.get("/api/v1/dial-plan", params={"number": "1", "line": 3})
    assert r.status_code == 404


async def test_phone_page_shows_the_dial_plan_hint(admin: httpx.AsyncClient) -> None:
    page = (await admin.get("/phone")).text
    assert 'id="dial-hint"' in page
    js = (await admin.get("/static/phone.js")).text
    assert "/dial-plan?number=" in js
