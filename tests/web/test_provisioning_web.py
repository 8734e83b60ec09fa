"""The Provisioning section of the web UI and /api/v1/provisioning, over a real
ProvisioningService and Updater (only the HTTP fetch is a local fake serving fixed files)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from sippa.app.accounts import Accounts
from sippa.app.provisioning import ProvisioningService
from sippa.app.store import ConfigStore
from sippa.app.updates import Updater, sign_manifest
from sippa.app.webserver import TrustAnchors
from sippa.interfaces.web import WebContext, create_app
from sippa.net.http import FetchError, Request
from sippa.net.tls import TrustStore
from tests.peers.process import require_binary
from tests.web.conftest import csrf_of

KEY = Ed25519PrivateKey.generate()
WHEEL = b"PK\x03\x04 pretend wheel"
MAC = "00:11:22:aa:bb:cc"


class Server:
    """Answers fetches from a dict of URL -> body (404 otherwise)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def __call__(self, request: Request) -> bytes:
        if request.url not in self.files:
            raise FetchError(f"{request.url}: HTTP 404 Not Found")
        return self.files[request.url]


def profile(**values: str) -> bytes:
    body = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    return f"<flat-profile>{body}</flat-profile>".encode()


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def service(store: ConfigStore, tmp_path: Path, server: Server) -> ProvisioningService:
    async def installer(env: Path, wheel: Path) -> None:
        raise AssertionError("nothing is installed in these tests")

    updater = Updater(
        store, root=tmp_path / "rel", public_keys=[KEY.public_key()], current_version="0.2.0",
        fetch=server, installer=installer,
    )
    return ProvisioningService(
        store, data_dir=tmp_path, trust=lambda: TrustStore.from_files([], system=False),
        mac=MAC, fetch=server, updater=updater,
    )


@pytest.fixture
def with_service(ctx: WebContext, service: ProvisioningService) -> WebContext:
    ctx.provisioning = service
    return ctx


async def post(client: httpx.AsyncClient, path: str, **kw: object) -> httpx.Response:
    data = dict(kw.pop("data", {}))  # type: ignore[call-overload]
    data["csrf"] = await csrf_of(client)
    return await client.post(path, data=data, **kw)  # type: ignore[arg-type]


async def test_not_running(admin: httpx.AsyncClient) -> None:
    page = await admin.get("/settings/provisioning")
    assert page.status_code == 200 and "Provisioning is not running" in page.text
    r = await admin.get("/api/v1/provisioning/status")
    assert r.status_code == 409 and "not running" in r.json()["detail"]
    r = await post(admin, "/provisioning/resync")
    assert r.status_code == 409 and "not running" in r.text


async def test_resync_status_per_rule(
    with_service: WebContext, admin: httpx.AsyncClient, server: Server, store: ConfigStore
) -> None:
    store.update({
        ("profile_rule", 0): "http://prov.test/$MA.xml",
        ("profile_rule_b", 0): "https://prov.test/missing.xml",
    })
    server.files["http://prov.test/001122aabbcc.xml"] = profile(Resync_Periodic="7200")
    page = await admin.get("/settings/provisioning")
    assert "never" in page.text and "Resync now" in page.text
    r = await post(admin, "/provisioning/resync")
    assert r.status_code == 200 and "Resync failed" in r.text
    rows = re.findall(r"<tr[^>]*>\s*<td>(Profile_Rule[^<]*)</td>(.*?)</tr>", r.text, re.S)
    assert [name for name, _ in rows] == ["Profile_Rule", "Profile_Rule_B"]
    assert "plain http" in rows[0][1] and "404" not in rows[0][1]
    assert "HTTP 404" in rows[1][1]
    assert store.get("resync_periodic") == 3600  # a failed rule changes nothing
    store.update({("profile_rule_b", 0): ""})
    r = await post(admin, "/provisioning/resync")
    assert "Resync done: 1 settings changed" in r.text
    assert store.get("resync_periodic") == 7200
    status = (await admin.get("/api/v1/provisioning/status")).json()
    assert status["resync"]["state"] == "ok" and status["resync"]["last_success"]
    assert status["rules"][0]["plain_http"] is True
    assert any("plain http" in w for w in status["resync"]["warnings"])


async def test_update_notes_and_advisories_escaped(
    with_service: WebContext, admin: httpx.AsyncClient, server: Server, store: ConfigStore
) -> None:
    store.update({("upgrade_rule", 0): "https://up.test/manifest.json"})
    server.files["https://up.test/manifest.json"] = sign_manifest({
        "name": "sippa", "version": "0.2.0", "wheel": "sippa-0.2.0-py3-none-any.whl",
        "sha256": hashlib.sha256(WHEEL).hexdigest(),
        "notes": "Better <script>alert(1)</script> things.",
        "advisories": [{"id": "SIPPA-2026-07", "severity": "critical",
                        "summary": "fixes <b>a hole</b>"}],
    }, KEY)
    page = await admin.get("/settings/provisioning")
    assert "SIPPA-2026-07" not in page.text
    r = await post(admin, "/provisioning/check-updates")
    assert r.status_code == 200 and "up-to-date" in r.text
    assert "Install 0.2.0" not in r.text  # nothing newer to install
    assert 'class="advisory severity-critical"' in r.text and "SIPPA-2026-07" in r.text
    assert "fixes &lt;b&gt;a hole&lt;/b&gt;" in r.text and "<b>a hole" not in r.text
    assert "&lt;script&gt;alert(1)" in r.text and "<script>alert" not in r.text
    api = (await admin.get("/api/v1/provisioning/status")).json()
    assert api["updates"]["available"]["advisories"][0]["id"] == "SIPPA-2026-07"
    assert api["updates"]["current_version"] == "0.2.0"


async def test_import_is_all_or_nothing(
    with_service: WebContext, admin: httpx.AsyncClient, store: ConfigStore
) -> None:
    bad = profile(Resync_Periodic="7200", Resync_Error_Retry_Delay="soon")
    r = await post(admin, "/provisioning/import", files={"profile": ("p.xml", bad)},
                   data={"key": ""})
    assert r.status_code == 422 and "Nothing was imported" in r.text
    assert re.search(r"<td><code>Resync_Error_Retry_Delay</code></td><td>[^<]+</td>", r.text)
    assert store.get("resync_periodic") == 3600 and store.get("resync_error_retry_delay") == 3600
    assert 'action="/settings/provisioning"' in r.text  # the settings form still saves there
    good = profile(Resync_Periodic="7200", Display_Name_1_="Desk &lt;7&gt;", Nope="1")
    r = await post(admin, "/provisioning/import", files={"profile": ("p.xml", good)})
    assert r.status_code == 200 and "Imported: 2 settings changed" in r.text
    assert "<code>Resync_Periodic</code>" in r.text and "Nope" in r.text  # the warning
    assert store.get("resync_periodic") == 7200 and store.get("display_name", 1) == "Desk <7>"


async def test_export_hides_passwords_unless_ticked(
    with_service: WebContext, admin: httpx.AsyncClient, store: ConfigStore
) -> None:
    store.update({("password", 1): "line-secret-1"})
    r = await post(admin, "/provisioning/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert "attachment" in r.headers["content-disposition"]
    assert b"<Resync_Periodic" in r.content and b"line-secret-1" not in r.content
    r = await post(admin, "/provisioning/export", data={"secrets": "1"})
    assert b"line-secret-1" in r.content
    r = await admin.get("/api/v1/provisioning/export")
    assert r.status_code == 200 and b"line-secret-1" not in r.content
    r = await admin.get("/api/v1/provisioning/export?secrets=true")
    assert b"line-secret-1" in r.content


async def test_api_import_and_resync(
    with_service: WebContext, admin: httpx.AsyncClient, store: ConfigStore
) -> None:
    csrf = await csrf_of(admin)
    r = await admin.post("/api/v1/provisioning/import", content=profile(Resync_Periodic="60"),
                         headers={"x-csrf-token": csrf})
    assert r.status_code == 200 and r.json()["changed"] == ["Resync_Periodic"]
    r = await admin.post("/api/v1/provisioning/import", content=profile(Resync_Periodic="x"),
                         headers={"x-csrf-token": csrf})
    assert r.status_code == 422 and "Resync_Periodic" in r.json()["errors"]
    assert store.get("resync_periodic") == 60
    r = await admin.post("/api/v1/provisioning/import", content=profile(Resync_Periodic="61"))
    assert r.status_code == 403  # a session needs the CSRF header
    r = await admin.post("/api/v1/provisioning/resync", headers={"x-csrf-token": csrf})
    assert r.status_code == 200 and r.json()["resync"]["state"] == "ok"


async def test_csrf_required(
    with_service: WebContext, admin: httpx.AsyncClient, store: ConfigStore
) -> None:
    for path in ("/provisioning/resync", "/provisioning/export", "/provisioning/import"):
        r = await admin.post(path, data={"csrf": "forged"},
                             files={"profile": ("p.xml", profile(Resync_Periodic="9"))})
        assert r.status_code == 403, path
    assert store.get("resync_periodic") == 3600


async def test_user_login_refused(
    with_service: WebContext, user: httpx.AsyncClient, store: ConfigStore
) -> None:
    page = await user.get("/settings/provisioning")
    assert "Resync now" not in page.text and "Export profile" not in page.text
    r = await post(user, "/provisioning/import",
                   files={"profile": ("p.xml", profile(Resync_Periodic="9"))})
    assert r.status_code == 403
    r = await post(user, "/provisioning/export", data={"secrets": "1"})
    assert r.status_code == 403 and b"flat-profile" not in r.content
    for path in ("/api/v1/provisioning/status", "/api/v1/provisioning/export"):
        assert (await user.get(path)).status_code == 403
    assert store.get("resync_periodic") == 3600


async def test_encrypted_import_with_key(
    with_service: WebContext, admin: httpx.AsyncClient, store: ConfigStore, tmp_path: Path
) -> None:
    openssl = require_binary("openssl", "openssl")
    (tmp_path / "p.xml").write_bytes(profile(Resync_Periodic="4321"))
    subprocess.run(
        [str(openssl), "enc", "-aes-256-cbc", "-pbkdf2", "-salt", "-k", "pass phrase",
         "-in", str(tmp_path / "p.xml"), "-out", str(tmp_path / "p.enc")], check=True,
    )
    data = (tmp_path / "p.enc").read_bytes()
    r = await post(admin, "/provisioning/import", files={"profile": ("p.enc", data)},
                   data={"key": "wrong"})
    assert r.status_code == 422 and "wrong --key" in r.text
    r = await post(admin, "/provisioning/import", files={"profile": ("p.enc", data)})
    assert r.status_code == 422 and "encrypted" in r.text
    assert store.get("resync_periodic") == 3600
    r = await admin.post("/api/v1/provisioning/import", content=data, headers={
        "x-csrf-token": await csrf_of(admin), "x-profile-key": "pass phrase"})
    assert r.status_code == 200 and store.get("resync_periodic") == 4321
    store.update({("resync_periodic", 0): 3600})
    r = await post(admin, "/provisioning/import", files={"profile": ("p.enc", data)},
                   data={"key": "pass phrase"})
    assert r.status_code == 200 and store.get("resync_periodic") == 4321


class SlowServer(Server):
    """Holds the wheel download half-way until ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def __call__(self, request: Request) -> bytes:
        if request.url.endswith(".whl") and request.progress is not None:
            request.progress(512, 1024)
            await self.gate.wait()
        return await super().__call__(request)


async def test_update_progress_then_installed_version(
    ctx: WebContext, admin: httpx.AsyncClient, store: ConfigStore, tmp_path: Path
) -> None:
    server = SlowServer()

    installed: list[Path] = []

    async def installer(env: Path, wheel: Path) -> None:
        assert wheel.read_bytes() == WHEEL
        env.mkdir(parents=True)
        installed.append(env)

    updater = Updater(
        store, root=tmp_path / "rel", public_keys=[KEY.public_key()], current_version="0.1.0",
        fetch=server, installer=installer,
    )
    ctx.provisioning = ProvisioningService(
        store, data_dir=tmp_path, trust=lambda: TrustStore.from_files([], system=False),
        mac=MAC, fetch=server, updater=updater,
    )
    store.update({("upgrade_rule", 0): "https://up.test/manifest.json"})
    server.files["https://up.test/manifest.json"] = sign_manifest({
        "name": "sippa", "version": "0.2.0", "wheel": "sippa-0.2.0-py3-none-any.whl",
        "sha256": hashlib.sha256(WHEEL).hexdigest(), "notes": "New things.",
    }, KEY)
    server.files["https://up.test/sippa-0.2.0-py3-none-any.whl"] = WHEEL
    r = await post(admin, "/provisioning/check-updates")  # a check installs nothing
    assert "Update check done: available." in r.text and "Install 0.2.0" in r.text
    assert updater.status.current_version == "0.1.0" and not installed
    check = asyncio.create_task(post(admin, "/provisioning/install-update"))
    for _ in range(200):
        if updater.status.state == "downloading":
            break
        await asyncio.sleep(0.01)
    page = await admin.get("/settings/provisioning")
    assert '<progress value="512" max="1024">' in page.text
    assert "Release 0.2.0" in page.text and "New things." in page.text
    server.gate.set()
    r = await check
    assert r.status_code == 200 and "Update: installed." in r.text
    status = (await admin.get("/api/v1/provisioning/status")).json()["updates"]
    assert status["current_version"] == "0.2.0" and status["progress"] is None
    assert "<progress" not in (await admin.get("/settings/provisioning")).text


async def test_install_installs_the_release_that_was_shown(
    ctx: WebContext, admin: httpx.AsyncClient, store: ConfigStore, tmp_path: Path
) -> None:
    server = Server()
    installed: list[Path] = []

    async def installer(env: Path, wheel: Path) -> None:
        env.mkdir(parents=True)
        installed.append(env)

    updater = Updater(
        store, root=tmp_path / "rel", public_keys=[KEY.public_key()], current_version="0.1.0",
        fetch=server, installer=installer,
    )
    ctx.provisioning = ProvisioningService(
        store, data_dir=tmp_path, trust=lambda: TrustStore.from_files([], system=False),
        mac=MAC, fetch=server, updater=updater,
    )
    store.update({("upgrade_rule", 0): "https://up.test/manifest.json"})

    def publish(version: str) -> None:
        server.files["https://up.test/manifest.json"] = sign_manifest({
            "name": "sippa", "version": version, "wheel": f"sippa-{version}-py3-none-any.whl",
            "sha256": hashlib.sha256(WHEEL).hexdigest(),
        }, KEY)
        server.files[f"https://up.test/sippa-{version}-py3-none-any.whl"] = WHEEL

    publish("0.2.0")
    r = await post(admin, "/provisioning/check-updates")
    assert 'name="version" value="0.2.0"' in r.text
    publish("0.3.0")  # the manifest changed between the check and the click
    r = await post(admin, "/provisioning/install-update", data={"version": "0.2.0"})
    assert r.status_code == 200 and not installed
    assert "the release changed: 0.3.0 is available now, not 0.2.0" in r.text
    assert "Install 0.3.0" in r.text
    r = await post(admin, "/provisioning/install-update", data={"version": "0.3.0"})
    assert installed and "Update: installed." in r.text


def test_provisioning_api_fuzzed(tmp_path: Path) -> None:
    """The provisioning operations with a running service: random profiles never make a 500."""
    store = ConfigStore(tmp_path / "sippa.db", lines=2)
    accounts = Accounts(store)
    try:
        accounts.set_password("admin", "Adm1n-secret")
        headers = {"Authorization": f"Bearer {accounts.create_token('admin', 'fuzz')}"}
        server = Server()
        service = ProvisioningService(
            store, data_dir=tmp_path, trust=lambda: TrustStore.from_files([], system=False),
            mac=MAC, fetch=server,
        )
        store.update({("profile_rule", 0): "https://prov.test/p.xml"})
        ctx = WebContext(store, accounts, TrustAnchors(tmp_path / "ca", system=False),
                         provisioning=service)
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(ctx),
                                                headers=headers)
        operations = [r.ok() for r in schema.get_all_operations()
                      if r.ok().path.startswith("/api/v1/provisioning/")]
        assert len(operations) == 6
        checks = [not_a_server_error, response_schema_conformance, status_code_conformance]
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case: schemathesis.Case) -> None:
                response = case.call(headers=headers)
                case.validate_response(response, checks=checks)

            run()
        assert store.get("resync_periodic") == 3600
    finally:
        accounts.close()
        store.close()
