"""The REST API: bearer tokens, settings with validation, calls, trust anchors, tokens, CSRF."""

from __future__ import annotations

import httpx
import pytest

from sippa.app.accounts import Accounts
from sippa.app.store import ConfigStore
from sippa.interfaces.web import WebContext
from tests.web.certs import make_ca, make_leaf
from tests.web.conftest import ADMIN_PASSWORD, FakePhone, csrf_of


@pytest.fixture
def admin_token(accounts: Accounts) -> dict[str, str]:
    accounts.set_password("admin", ADMIN_PASSWORD)
    return {"Authorization": f"Bearer {accounts.create_token('admin', 'test')}"}


@pytest.fixture
def user_token(accounts: Accounts) -> dict[str, str]:
    return {"Authorization": f"Bearer {accounts.create_token('user', 'test')}"}


async def test_status_and_lines(client: httpx.AsyncClient, admin_token: dict[str, str]) -> None:
    r = await client.get("/api/v1/status", headers=admin_token)
    assert r.status_code == 200
    body = r.json()
    assert body["phone_running"] and body["lines"][0]["registered"] is True
    assert (await client.get("/api/v1/lines", headers=admin_token)).json()[0]["line"] == 1
    mwi = body["lines"][0]["mwi"]  # the voicemail light
    assert mwi["messages_waiting"] is True and (mwi["new"], mwi["old"]) == (2, 8)
    assert mwi["subscription"] == "active" and mwi["updated"] == 1700000000.0
    (key,) = body["lines"][0]["blf"]  # a busy lamp field key
    assert (key["key"], key["label"], key["lamp"], key["remote"]) == (1, "Bob", "busy", "Carol")


async def test_lines_without_a_phone(ctx: WebContext, client: httpx.AsyncClient,
                                     store: ConfigStore, admin_token: dict[str, str]) -> None:
    ctx.phone = None
    store.update({("line_enable", 1): True, ("user_id", 1): "alice", ("proxy", 1): "pbx.test"})
    lines = (await client.get("/api/v1/lines", headers=admin_token)).json()
    assert lines[0] == {"line": 1, "enabled": True, "aor": "alice@pbx.test", "registered": False,
                        "state": "not running", "reason": "the phone is not running",
                        "source_restriction": None,
                        "mwi": None, "blf": []}
    r = await client.post("/api/v1/calls", json={"target": "bob"}, headers=admin_token)
    assert r.status_code == 503


async def test_settings_are_filtered_by_access(client: httpx.AsyncClient,
                                               admin_token: dict[str, str],
                                               user_token: dict[str, str]) -> None:
    admin = {s["name"]: s for s in
             (await client.get("/api/v1/settings", headers=admin_token)).json()["settings"]}
    user = {s["name"]: s for s in
            (await client.get("/api/v1/settings", headers=user_token)).json()["settings"]}
    assert "Admin_Password" in admin and admin["Admin_Password"]["value"] is None
    assert admin["Admin_Password"]["is_set"] is True
    assert "Admin_Password" not in user and "Password_1_" not in user
    assert "Outbound_Proxy_1_" not in user and "Web_Server_Port" not in user
    assert user["User_ID_1_"]["editable"] is False and user["Display_Name_1_"]["editable"]
    assert set(user) < set(admin)
    only_sip = (await client.get("/api/v1/settings?page=SIP", headers=admin_token)).json()
    assert {s["page"] for s in only_sip["settings"]} == {"SIP"}


async def test_patch_settings(client: httpx.AsyncClient, store: ConfigStore,
                              admin_token: dict[str, str]) -> None:
    r = await client.patch("/api/v1/settings", headers=admin_token,
                           json={"Proxy_1_": "pbx.example.test", "Register_Expires_1_": 600,
                                 "Use_DNS_SRV_1_": False})
    assert r.status_code == 200
    assert set(r.json()["changed"]) == {"Proxy_1_", "Register_Expires_1_", "Use_DNS_SRV_1_"}
    assert store.get("register_expires", 1) == 600 and store.get("use_dns_srv", 1) is False


async def test_patch_errors_are_422_and_nothing_is_saved(
    client: httpx.AsyncClient, store: ConfigStore, admin_token: dict[str, str]
) -> None:
    r = await client.patch("/api/v1/settings", headers=admin_token, json={
        "Display_Name_1_": "Alice", "SIP_Transport_1_": "SCTP", "No_Such_Thing": "1",
        "Proxy_9_": "x", "RTP_Port_Min": 30000, "RTP_Port_Max": 20000,
    })
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert errors["SIP_Transport_1_"] == "must be one of UDP, TCP, TLS, AUTO"
    assert errors["No_Such_Thing"] == "no such setting"
    assert "lines 1 to 2" in errors["Proxy_9_"]
    assert store.get("display_name", 1) == ""
    # cross-field rule, alone
    r = await client.patch("/api/v1/settings", headers=admin_token,
                           json={"RTP_Port_Min": 30000, "RTP_Port_Max": 20000})
    assert r.status_code == 422 and "RTP_Port_Min" in r.json()["errors"]
    assert store.get("rtp_port_min") == 16384


async def test_user_cannot_patch_admin_settings(client: httpx.AsyncClient, store: ConfigStore,
                                                user_token: dict[str, str]) -> None:
    for name in ("Admin_Password", "Outbound_Proxy_1_", "User_ID_1_", "Web_Server_Port"):
        r = await client.patch("/api/v1/settings", headers=user_token,
                               json={name: "Takeover-123", "Display_Name_1_": "Me"})
        assert r.status_code == 403, name
    assert store.get("display_name", 1) == "" and store.get("user_id", 1) == ""
    r = await client.patch("/api/v1/settings", headers=user_token,
                           json={"Display_Name_1_": "Me", "DND_Setting": True})
    assert r.status_code == 200 and store.get("dnd_setting") is True


async def test_password_change_via_api_ends_other_sessions(
    admin: httpx.AsyncClient, ctx: WebContext, accounts: Accounts, admin_token: dict[str, str]
) -> None:
    assert len(ctx.sessions) == 1
    r = await admin.patch("/api/v1/settings", headers=admin_token,
                          json={"Admin_Password": "weak"})
    assert r.status_code == 422 and "8 to 127" in r.json()["errors"]["Admin_Password"]
    r = await admin.patch("/api/v1/settings", headers=admin_token,
                          json={"Admin_Password": "N3w-admin-pass"})
    assert r.status_code == 200
    assert accounts.login("admin", "N3w-admin-pass", now=0)
    assert len(ctx.sessions) == 0
    assert (await admin.get("/")).status_code == 303


async def test_api_with_session_cookie_needs_csrf_header(admin: httpx.AsyncClient,
                                                         store: ConfigStore) -> None:
    r = await admin.patch("/api/v1/settings", json={"Display_Name_1_": "X"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = await admin.patch("/api/v1/settings", json={"Display_Name_1_": "X"},
                          headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    assert store.get("display_name", 1) == ""
    token = await csrf_of(admin)
    r = await admin.patch("/api/v1/settings", json={"Display_Name_1_": "X"},
                          headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and store.get("display_name", 1) == "X"
    # reading needs no token
    assert (await admin.get("/api/v1/settings")).status_code == 200


async def test_calls(client: httpx.AsyncClient, phone: FakePhone,
                     user_token: dict[str, str]) -> None:
    h = user_token
    r = await client.post("/api/v1/calls", json={"target": "sips:bob@example.test", "line": 1},
                          headers=h)
    assert r.status_code == 201
    call = r.json()
    assert call["security"]["padlock"] is True
    cid = call["id"]
    assert [c["id"] for c in (await client.get("/api/v1/calls", headers=h)).json()] == [cid]
    for path, body in (("hold", None), ("resume", None), ("dtmf", {"digits": "12#"}),
                       ("transfer", {"target": "carol"}), ("answer", None)):
        r = await client.post(f"/api/v1/calls/{cid}/{path}", json=body, headers=h)
        assert r.status_code == 204, path
    assert (await client.post(f"/api/v1/calls/{cid}/dtmf", json={"digits": "x"},
                              headers=h)).status_code == 422
    assert (await client.post("/api/v1/calls/nope/hangup", headers=h)).status_code == 404
    assert (await client.post("/api/v1/calls", json={"target": "busy"},
                              headers=h)).status_code == 409
    assert (await client.post(f"/api/v1/calls/{cid}/hangup", headers=h)).status_code == 204
    assert phone.commands == [
        ("dial", "sips:bob@example.test"), ("hold", cid), ("resume", cid), ("dtmf", cid, "12#"),
        ("transfer", cid, "carol"), ("answer", cid), ("hangup", cid),
    ]
    assert (await client.get("/api/v1/history", headers=h)).json()[0]["result"] == "200"


async def test_trust_anchors_api(client: httpx.AsyncClient, ctx: WebContext, phone: FakePhone,
                                 admin_token: dict[str, str], user_token: dict[str, str]) -> None:
    r = await client.post("/api/v1/trust-anchors", json={"pem": make_ca("X").decode()},
                          headers=user_token)
    assert r.status_code == 403
    r = await client.post("/api/v1/trust-anchors", json={"pem": make_leaf().decode()},
                          headers=admin_token)
    assert r.status_code == 422 and "not a CA" in r.json()["detail"]
    r = await client.post("/api/v1/trust-anchors", json={"pem": make_ca("API CA").decode()},
                          headers=admin_token)
    assert r.status_code == 201
    fp = r.json()[0]["sha256"]
    listed = (await client.get("/api/v1/trust-anchors", headers=user_token)).json()
    assert listed[0]["subject"] == "CN=API CA" and listed[0]["custom"] is True
    assert (await client.delete(f"/api/v1/trust-anchors/{fp}",
                                headers=admin_token)).status_code == 204
    assert (await client.delete(f"/api/v1/trust-anchors/{fp}",
                                headers=admin_token)).status_code == 404
    assert phone.commands == [("reload_trust",), ("reload_trust",)]


def test_built_in_anchors_are_listed(tmp_path: object) -> None:
    from sippa.app.webserver import TrustAnchors

    anchors = TrustAnchors(None).anchors()
    if not anchors:
        pytest.skip("this system has no CA store")
    assert all(not a.custom and len(a.sha256) == 95 for a in anchors)


async def test_tokens_api(client: httpx.AsyncClient, accounts: Accounts,
                          admin_token: dict[str, str], user_token: dict[str, str]) -> None:
    assert (await client.post("/api/v1/tokens", json={"role": "admin", "label": "x"},
                              headers=user_token)).status_code == 403
    r = await client.post("/api/v1/tokens", json={"role": "user", "label": "cron"},
                          headers=admin_token)
    assert r.status_code == 201
    new = r.json()
    assert accounts.check_token(new["token"]) == "user"
    listed = (await client.get("/api/v1/tokens", headers=admin_token)).json()
    assert {"id": new["id"], "role": "user", "label": "cron"} in listed
    assert all("token" not in t for t in listed)
    assert (await client.delete(f"/api/v1/tokens/{new['id']}",
                                headers=admin_token)).status_code == 204
    r = await client.get("/api/v1/status", headers={"Authorization": f"Bearer {new['token']}"})
    assert r.status_code == 401


async def test_openapi_document_covers_the_api(client: httpx.AsyncClient,
                                               admin_token: dict[str, str]) -> None:
    doc = (await client.get("/api/v1/openapi.json", headers=admin_token)).json()
    paths = set(doc["paths"])
    assert {"/api/v1/settings", "/api/v1/calls", "/api/v1/calls/{call_id}/hangup",
            "/api/v1/calls/{call_id}/dtmf", "/api/v1/trust-anchors", "/api/v1/tokens",
            "/api/v1/events", "/api/v1/lines", "/api/v1/status"} <= paths
    assert not any(p.startswith(("/ext", "/settings", "/login")) for p in paths)


def test_custom_ca_rule_bundle_is_listed_and_not_removable(tmp_path: object) -> None:
    from pathlib import Path

    from sippa.app.trust import RULE_BUNDLE_NAME
    from sippa.app.webserver import TrustAnchors

    directory = Path(str(tmp_path)) / "ca"
    trust = TrustAnchors(directory, system=False)
    assert trust.anchors() == []
    directory.mkdir()
    (directory / RULE_BUNDLE_NAME).write_bytes(make_ca("Rule CA"))  # written by the rule
    [anchor] = trust.anchors()  # picked up without a restart
    assert anchor.source == "Custom CA Rule" and not anchor.custom
    assert not trust.remove(anchor.sha256)
    assert (directory / RULE_BUNDLE_NAME).exists()
