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
    assert "[3469]11" in page  # the Cisco default, HTML-escaped or not
    assert store.get("dial_plan", 1) == CISCO_DEFAULT
    token = {"Authorization": f"Bearer {accounts.create_token('admin', 'test')}"}
    r = await admin.patch("/api/v1/settings", headers=token,
                          json={"Dial_Plan_1_": "(xx<:@gw1>)"})
    assert r.status_code == 422, r.text
    assert "gateway gw1" in r.json()["errors"]["Dial_Plan_1_"]
    assert store.get("dial_plan", 1) == CISCO_DEFAULT
    r = await admin.patch("/api/v1/settings", headers=token,
                          json={"Dial_Plan_1_": "(<9:>xx.|!1900x.)"})
    assert r.status_code == 200, r.text
    assert store.get("dial_plan", 1) == "(<9:>xx.|!1900x.)"
