"""The pages over HTTP: first run, login, lockout, CSRF, access levels, validation, headers."""

from __future__ import annotations

import httpx
import pytest

from sippa.app.accounts import MAX_FAILURES, Accounts
from sippa.app.store import ConfigStore
from sippa.interfaces.web import WebContext
from sippa.interfaces.web.auth import COOKIE
from tests.web.conftest import (
    ADMIN_PASSWORD,
    USER_PASSWORD,
    FakePhone,
    csrf_of,
    first_run,
    hidden,
    login,
)

PAGES = ["/", "/phone", "/settings/system", "/settings/sip", "/settings/provisioning",
         "/settings/user", "/settings/phone", "/ext/1", "/ext/2", "/trust", "/tokens"]


@pytest.mark.parametrize("path", PAGES)
async def test_nothing_without_login(client: httpx.AsyncClient, accounts: Accounts,
                                     path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 303 and r.headers["location"].startswith("/setup")
    accounts.set_password("admin", ADMIN_PASSWORD)
    r = await client.get(path)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert ADMIN_PASSWORD not in r.text


@pytest.mark.parametrize("path", ["/api/v1/status", "/api/v1/settings", "/api/v1/calls",
                                  "/api/v1/trust-anchors", "/api/v1/tokens", "/api/v1/events",
                                  "/api/v1/openapi.json"])
async def test_api_needs_authentication(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 401
    r = await client.get(path, headers={"Authorization": "Bearer sippa_0000_nope"})
    assert r.status_code == 401


async def test_first_run_needs_the_setup_token(client: httpx.AsyncClient,
                                               accounts: Accounts) -> None:
    page = await client.get("/setup")
    assert page.status_code == 200 and "setup token" in page.text
    r = await client.post("/setup", data={"pre": hidden(page.text, "pre"), "token": "guess",
                                          "password": ADMIN_PASSWORD, "confirm": ADMIN_PASSWORD})
    assert r.status_code == 400 and "wrong setup token" in r.text
    assert accounts.needs_setup
    r = await client.post("/setup", data={"pre": hidden(page.text, "pre"),
                                          "token": accounts.setup_token(),
                                          "password": "short", "confirm": "short"})
    assert r.status_code == 400 and "8 to 127" in r.text
    assert accounts.needs_setup
    await first_run(client, accounts)
    assert not accounts.needs_setup and accounts.setup_token() is None
    assert (await client.get("/")).status_code == 200  # logged in as admin
    # the setup page is gone
    assert (await client.get("/setup")).headers["location"] == "/login"


async def test_setup_form_needs_its_csrf_cookie(client: httpx.AsyncClient,
                                                accounts: Accounts) -> None:
    r = await client.post("/setup", data={"pre": "forged", "token": accounts.setup_token(),
                                          "password": ADMIN_PASSWORD, "confirm": ADMIN_PASSWORD})
    assert r.status_code == 403
    assert accounts.needs_setup


async def test_session_cookie_flags(client: httpx.AsyncClient, accounts: Accounts) -> None:
    accounts.set_password("admin", ADMIN_PASSWORD)
    r = await login(client, "admin", ADMIN_PASSWORD)
    assert r.status_code == 303
    cookie = next(v for k, v in r.headers.multi_items()
                  if k == "set-cookie" and v.startswith(COOKIE))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags


async def test_login_is_rate_limited_and_locks(client: httpx.AsyncClient, ctx: WebContext,
                                               accounts: Accounts) -> None:
    accounts.set_password("admin", ADMIN_PASSWORD)
    for _ in range(MAX_FAILURES):
        r = await login(client, "admin", "Wrong-passw0rd")
        assert r.status_code == 401 and "wrong login or password" in r.text
    # now even the right password is refused until the lockout ends
    r = await login(client, "admin", ADMIN_PASSWORD)
    assert r.status_code == 429 and "too many failed logins" in r.text
    ctx.test_clock[0] += 301  # type: ignore[attr-defined]
    r = await login(client, "admin", ADMIN_PASSWORD)
    assert r.status_code == 303


async def test_sessions_expire(admin: httpx.AsyncClient, ctx: WebContext) -> None:
    assert (await admin.get("/")).status_code == 200
    ctx.test_clock[0] += 31 * 60  # type: ignore[attr-defined]
    assert (await admin.get("/")).status_code == 303


async def test_logout_ends_the_session(admin: httpx.AsyncClient) -> None:
    token = await csrf_of(admin)
    r = await admin.post("/logout", data={"csrf": token})
    assert r.status_code == 303
    assert (await admin.get("/")).status_code == 303


SECURITY_HEADERS = {
    "content-security-policy", "strict-transport-security", "x-frame-options",
    "x-content-type-options", "referrer-policy",
}


@pytest.mark.parametrize("path", ["/", "/login", "/static/sippa.css", "/api/v1/status"])
async def test_security_headers(admin: httpx.AsyncClient, path: str) -> None:
    r = await admin.get(path)
    assert set(r.headers) >= SECURITY_HEADERS
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "max-age=" in r.headers["strict-transport-security"]


async def test_pages_have_no_inline_script_or_style(admin: httpx.AsyncClient) -> None:
    for path in PAGES:
        text = (await admin.get(path)).text
        assert "<script>" not in text and "<style" not in text and " style=" not in text
        assert " onclick=" not in text.lower()
        assert "http://" not in text and "https://" not in text  # nothing from elsewhere


async def test_csrf_is_required_on_forms(admin: httpx.AsyncClient, store: ConfigStore) -> None:
    r = await admin.post("/ext/1", data={"Display_Name_1_": "Mallory"})
    assert r.status_code == 403
    r = await admin.post("/ext/1", data={"Display_Name_1_": "Mallory", "csrf": "forged"})
    assert r.status_code == 403
    assert store.get("display_name", 1) == ""
    token = await csrf_of(admin)
    r = await admin.post("/ext/1", data={"Display_Name_1_": "Alice", "csrf": token})
    assert r.status_code == 303
    assert store.get("display_name", 1) == "Alice"


async def test_cross_site_posts_are_refused(admin: httpx.AsyncClient,
                                            store: ConfigStore) -> None:
    token = await csrf_of(admin)
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site"}):
        r = await admin.post("/ext/1", data={"Display_Name_1_": "X", "csrf": token},
                             headers=headers)
        assert r.status_code == 403
    assert store.get("display_name", 1) == ""
    r = await admin.post("/ext/1", data={"Display_Name_1_": "Y", "csrf": token},
                         headers={"Origin": "https://testserver"})
    assert r.status_code == 303 and store.get("display_name", 1) == "Y"


async def test_bad_values_are_shown_beside_the_field_and_nothing_is_saved(
    admin: httpx.AsyncClient, store: ConfigStore
) -> None:
    token = await csrf_of(admin)
    r = await admin.post("/ext/1", data={
        "csrf": token, "Display_Name_1_": "Alice", "Proxy_1_": "bad host name!",
        "Register_Expires_1_": "5", "SIP_Transport_1_": "TLS",
    })
    assert r.status_code == 422
    assert "Nothing was saved" in r.text
    assert 'id="e-Proxy_1_"' in r.text and "is not a host name or address" in r.text
    assert 'id="e-Register_Expires_1_"' in r.text and "must be at least 10" in r.text
    assert 'value="bad host name!"' in r.text  # what was typed stays in the field
    assert store.get("display_name", 1) == "" and store.get("proxy", 1) == ""
    assert store.get("register_expires", 1) == 3600


async def test_a_valid_save_applies_live(admin: httpx.AsyncClient, store: ConfigStore) -> None:
    seen: list[dict[object, object]] = []
    store.subscribe(seen.append)
    token = await csrf_of(admin)
    r = await admin.post("/ext/2", data={
        "csrf": token, "Proxy_2_": "sip.example.test:5061", "User_ID_2_": "bob",
        "Line_Enable_2_": "Yes", "Password_2_": "digest-secret",
    })
    assert r.status_code == 303 and r.headers["location"] == "/ext/2?saved=1"
    assert store.get("proxy", 2) == "sip.example.test:5061"
    assert store.get("line_enable", 2) is True and store.get("password", 2) == "digest-secret"
    assert seen and ("proxy", 2) in seen[-1]
    page = await admin.get("/ext/2?saved=1")
    assert "Saved" in page.text and "digest-secret" not in page.text
    # an empty password field keeps the password
    r = await admin.post("/ext/2", data={"csrf": token, "Password_2_": "", "User_ID_2_": "bob"})
    assert r.status_code == 303 and store.get("password", 2) == "digest-secret"


async def test_line_keys_page_validates_extended_functions(
    user: httpx.AsyncClient, store: ConfigStore
) -> None:
    nav = (await user.get("/")).text
    assert 'href="/settings/phone"' in nav and ">Line Keys<" in nav
    page = await user.get("/settings/phone")
    assert "Line Key 8" in page.text and 'name="Extended_Function_1_"' in page.text
    token = await csrf_of(user)
    r = await user.post("/settings/phone", data={"csrf": token, "Extended_Function_1_": "fnc=sd"})
    assert r.status_code == 422 and "fnc must include blf" in r.text
    assert store.get("extended_function_1") == ""
    value = "fnc=blf+sd+cp;sub=bob@$PROXY;nme=Bob"
    r = await user.post("/settings/phone", data={"csrf": token, "Extended_Function_1_": value})
    assert r.status_code == 303 and store.get("extended_function_1") == value


async def test_admin_password_change_uses_the_policy_and_a_hash(
    admin: httpx.AsyncClient, store: ConfigStore, accounts: Accounts
) -> None:
    token = await csrf_of(admin)
    r = await admin.post("/settings/system", data={"csrf": token, "Admin_Password": "weak"})
    assert r.status_code == 422 and "8 to 127" in r.text
    r = await admin.post("/settings/system",
                         data={"csrf": token, "User_Password": USER_PASSWORD})
    assert r.status_code == 303
    assert str(store.get("user_password")).startswith("scrypt$")
    assert accounts.login("user", USER_PASSWORD, now=0)


async def test_user_cannot_see_or_change_admin_only_settings(
    user: httpx.AsyncClient, store: ConfigStore
) -> None:
    page = await user.get("/ext/1")
    assert page.status_code == 200
    assert "Display_Name_1_" in page.text  # rw
    assert 'name="User_ID_1_"' in page.text and "disabled" in page.text  # ro
    assert "Password_1_" not in page.text and "Outbound_Proxy_1_" not in page.text  # na
    system = await user.get("/settings/system")
    assert "User_Password" in system.text and "Admin_Password" not in system.text
    assert "Web_Server_Port" not in system.text
    nav = (await user.get("/")).text
    assert "/settings/provisioning" not in nav and "/tokens" not in nav
    token = await csrf_of(user)
    for field, value in (("Outbound_Proxy_1_", "evil.example"), ("User_ID_1_", "mallory"),
                         ("Admin_Password", "Takeover-123")):
        r = await user.post("/ext/1", data={"csrf": token, field: value})
        # fields of other pages or forbidden ones are ignored by the form: nothing changes
        assert r.status_code in (303, 403, 422)
    assert store.get("outbound_proxy", 1) == "" and store.get("user_id", 1) == ""
    assert (await user.get("/tokens")).status_code == 403
    r = await user.post("/ext/1", data={"csrf": token, "Display_Name_1_": "Me"})
    assert r.status_code == 303 and store.get("display_name", 1) == "Me"


async def test_trust_anchor_upload(admin: httpx.AsyncClient, ctx: WebContext,
                                   phone: FakePhone) -> None:
    from tests.web.certs import make_ca, make_leaf

    token = await csrf_of(admin)
    r = await admin.post("/trust", data={"csrf": token},
                         files={"pem": ("leaf.pem", make_leaf(), "application/x-pem-file")})
    assert r.status_code == 422 and "is not a CA certificate" in r.text
    r = await admin.post("/trust", data={"csrf": token},
                         files={"pem": ("junk.pem", b"hello", "application/x-pem-file")})
    assert r.status_code == 422 and "not a PEM certificate" in r.text
    assert ctx.trust.anchors() == []
    r = await admin.post("/trust", data={"csrf": token},
                         files={"pem": ("ca.pem", make_ca("Test Lab CA"), "text/plain")})
    assert r.status_code == 303
    assert phone.commands == [("reload_trust",)]  # the lines use it at once
    page = await admin.get("/trust?added=1")
    anchor = ctx.trust.anchors()[0]
    assert "CN=Test Lab CA" in page.text and anchor.sha256 in page.text
    assert anchor.not_after.strftime("%Y-%m-%d") in page.text
    r = await admin.post("/trust/remove", data={"csrf": token, "sha256": anchor.sha256})
    assert r.status_code == 303 and ctx.trust.anchors() == []


async def test_user_cannot_upload_trust_anchors(user: httpx.AsyncClient,
                                                ctx: WebContext) -> None:
    from tests.web.certs import make_ca

    token = await csrf_of(user)
    r = await user.post("/trust", data={"csrf": token}, files={"pem": ("ca.pem", make_ca("X"))})
    assert r.status_code == 403 and ctx.trust.anchors() == []


async def test_info_and_phone_pages(admin: httpx.AsyncClient) -> None:
    info = await admin.get("/")
    assert "alice@example.test" in info.text and "Registered" in info.text
    page = await admin.get("/phone")
    assert '<script src="/static/phone.js" defer>' in page.text
    assert 'data-key="#"' in page.text and "sip:bob@example.test" in page.text
    # the voicemail light of the line
    assert 'class="mwi waiting" role="status">Voicemail: 2 new (1 urgent), 8 old<' in page.text
    assert "2 new (1 urgent), 8 old</td>" in info.text
    # the busy lamp field key
    assert '<li data-key="1" title="sips:bob@example.test">' in page.text
    assert 'class="lamp lamp-busy"' in page.text and "Bob: on a call (with Carol)<" in page.text
    assert '<button type="button" class="key-dial" data-target="sips:bob@example.test">' in (
        page.text)
    js = await admin.get("/static/phone.js")
    assert js.status_code == 200 and "EventSource" in js.text


async def test_tokens_page_shows_a_new_token_once(admin: httpx.AsyncClient,
                                                  accounts: Accounts) -> None:
    token = await csrf_of(admin)
    r = await admin.post("/tokens", data={"csrf": token, "label": "backup", "role": "user"})
    new = hidden(r.text.replace('id="new-token">', 'name="new" value="').replace(
        "</code></p>", '"', 1), "new")
    assert accounts.check_token(new) == "user"
    listing = await admin.get("/tokens")
    assert "backup" in listing.text and new not in listing.text


async def test_saving_a_new_web_port_follows_it(admin: httpx.AsyncClient, ctx: WebContext,
                                                store: ConfigStore) -> None:
    token = await csrf_of(admin)
    r = await admin.post("/settings/system", data={"csrf": token, "Web_Server_Port": "9443"})
    assert r.status_code == 303 and r.headers["location"] == "/settings/system?saved=1"
    ctx.port_follows_setting = True
    r = await admin.post("/settings/system", data={"csrf": token, "Web_Server_Port": "9444"})
    assert r.headers["location"] == "https://testserver:9444/settings/system?saved=1"
    assert store.get("web_server_port") == 9444
