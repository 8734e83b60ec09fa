"""Fixtures for the web tests: an app over a real store, and an httpx client that logs in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sippa.app.accounts import Accounts
from sippa.app.store import ConfigStore
from sippa.app.webserver import TrustAnchors
from sippa.interfaces.web import WebContext, create_app

ADMIN_PASSWORD = "Adm1n-secret"
USER_PASSWORD = "Us3r-secret"
BASE = "https://testserver"


class FakePhone:
    """A PhoneService that records commands (the real phone is tested in tests/app)."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.active: dict[str, dict[str, Any]] = {}
        self.commands: list[tuple[str, ...]] = []

    def lines(self) -> list[dict[str, Any]]:
        return [{"line": 1, "enabled": True, "aor": "alice@example.test", "registered": True,
                 "state": "registered", "reason": None,
                 "mwi": {"messages_waiting": True, "new": 2, "old": 8, "new_urgent": 1,
                         "old_urgent": 0, "account": "sip:alice@example.test",
                         "updated": 1700000000.0, "source": "subscription",
                         "subscription": "active", "reason": None},
                 "blf": [{"key": 1, "label": "Bob", "uri": "sips:bob@example.test",
                          "lamp": "busy", "subscription": "active", "reason": None,
                          "remote": "Carol", "updated": 1700000000.0,
                          "speed_dial": True}]}]

    def calls(self) -> list[dict[str, Any]]:
        return list(self.active.values())

    def history(self, count: int = 50) -> list[dict[str, Any]]:
        return [{"direction": "outgoing", "remote": "sip:bob@example.test", "result": "200"}]

    async def dial(self, target: str, line: int | None = None) -> dict[str, Any]:
        if target == "busy":
            raise ValueError("486 Busy Here")
        call = {
            "id": f"c{len(self.active) + 1}", "remote": target, "direction": "outgoing",
            "state": "confirmed", "line": line or 1,
            "security": {"padlock": True, "signalling_secure": True, "media_encrypted": True,
                         "reasons": [], "transport": "TLS", "tls_version": "TLSv1.3",
                         "cipher": "TLS_AES_256_GCM_SHA384", "group": "X25519",
                         "peer_subject": "CN=bob", "srtp_suite": "AES_256_CM_HMAC_SHA1_80"},
        }
        self.active[call["id"]] = call
        self.commands.append(("dial", target))
        for listener in self.listeners:
            listener("call", {"id": call["id"], "state": "confirmed"})
        return call

    def _get(self, call_id: str) -> dict[str, Any]:
        if call_id not in self.active:
            raise KeyError(call_id)
        return self.active[call_id]

    def ring(self, remote: str = "sips:bob@example.test") -> str:
        """An incoming call rings (as the phone would show it)."""
        call_id = f"in{len(self.active) + 1}"
        self.active[call_id] = {
            "id": call_id, "remote": remote, "direction": "incoming", "state": "incoming",
            "line": 1, "security": {"padlock": False, "reasons": ["media not negotiated yet"],
                                    "transport": "TLS", "signalling_secure": True},
        }
        for listener in self.listeners:
            listener("call", {"id": call_id, "state": "incoming"})
        return call_id

    async def answer(self, call_id: str) -> None:
        self._get(call_id)["state"] = "active"
        self.commands.append(("answer", call_id))

    async def hangup(self, call_id: str) -> None:
        self._get(call_id)
        del self.active[call_id]
        self.commands.append(("hangup", call_id))

    async def hold(self, call_id: str, on: bool) -> None:
        self._get(call_id)["state"] = "held" if on else "active"
        self.commands.append(("hold" if on else "resume", call_id))

    async def dtmf(self, call_id: str, digits: str) -> None:
        self._get(call_id)
        self.commands.append(("dtmf", call_id, digits))

    async def transfer(self, call_id: str, target: str) -> None:
        self._get(call_id)
        self.commands.append(("transfer", call_id, target))

    def reload_trust(self) -> None:
        self.commands.append(("reload_trust",))

    def trace(self, call_id: str) -> dict[str, Any]:
        return {"id": call_id, "call": self._get(call_id), "entries": []}

    def traces(self) -> list[dict[str, Any]]:
        return [{"id": c, "call": v, "started": None, "messages": 0}
                for c, v in self.active.items()]

    def subscribe(self, listener: Callable[[str, dict[str, Any]], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)


@pytest.fixture
def store(tmp_path: Path) -> ConfigStore:
    s = ConfigStore(tmp_path / "sippa.db", lines=2)
    yield s
    s.close()


@pytest.fixture
def accounts(store: ConfigStore) -> Accounts:
    a = Accounts(store)
    yield a
    a.close()


@pytest.fixture
def phone() -> FakePhone:
    return FakePhone()


@pytest.fixture
def ctx(store: ConfigStore, accounts: Accounts, phone: FakePhone, tmp_path: Path) -> WebContext:
    clock = [1000.0]
    c = WebContext(store, accounts, TrustAnchors(tmp_path / "ca", system=False), phone,
                   clock=lambda: clock[0])
    c.test_clock = clock  # type: ignore[attr-defined]
    return c


@pytest.fixture
async def client(ctx: WebContext) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ctx)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE, follow_redirects=False
    ) as c:
        yield c


def hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no hidden field {name}"
    return m.group(1)


async def first_run(client: httpx.AsyncClient, accounts: Accounts) -> None:
    page = await client.get("/setup")
    r = await client.post("/setup", data={
        "pre": hidden(page.text, "pre"), "token": accounts.setup_token() or "",
        "password": ADMIN_PASSWORD, "confirm": ADMIN_PASSWORD,
    })
    assert r.status_code == 303, r.text


async def login(client: httpx.AsyncClient, role: str, password: str) -> httpx.Response:
    page = await client.get("/login")
    return await client.post("/login", data={
        "pre": hidden(page.text, "pre"), "role": role, "password": password, "next": "/",
    })


async def csrf_of(client: httpx.AsyncClient) -> str:
    page = await client.get("/")
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert m
    return m.group(1)


@pytest.fixture
async def admin(client: httpx.AsyncClient, accounts: Accounts) -> httpx.AsyncClient:
    """The client, logged in as admin after the first-run setup."""
    await first_run(client, accounts)
    return client


@pytest.fixture
async def user(client: httpx.AsyncClient, accounts: Accounts) -> httpx.AsyncClient:
    """The client, logged in as user (the admin set both passwords)."""
    accounts.set_password("admin", ADMIN_PASSWORD)
    accounts.set_password("user", USER_PASSWORD)
    r = await login(client, "user", USER_PASSWORD)
    assert r.status_code == 303
    return client
