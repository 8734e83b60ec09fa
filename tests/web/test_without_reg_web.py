"""Make/Ans Call Without Reg on the web: the REST API refuses a dial on an unregistered line
with 409 and says why, the lines show why calls are refused (API, Info and Phone pages), and
the Ext page has the two settings."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sippa.app.accounts import Accounts
from sippa.app.echo import EchoService
from sippa.app.phone import Phone, PhoneOptions
from sippa.app.store import ConfigStore
from sippa.app.webserver import TrustAnchors
from sippa.interfaces.web import PhoneAdapter, WebContext, create_app
from tests.web.conftest import FakePhone

pytestmark = pytest.mark.timeout(60)

REFUSED = "not registered: calls can be neither made nor answered"


@pytest.fixture
def silent_registrar() -> Iterator[str]:
    """A UDP socket that takes the REGISTERs and never answers: the line stays unregistered."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    yield f"{host}:{port}"
    sock.close()


@pytest.fixture
async def api(tmp_path: Path, silent_registrar: str) -> AsyncIterator[httpx.AsyncClient]:
    echo = EchoService(tmp_path / "echo")
    await echo.start()
    store = ConfigStore(tmp_path / "sippa.db", lines=2)
    store.update({
        ("rtp_port_min", 0): 45000, ("rtp_port_max", 0): 47999,
        ("line_enable", 1): True, ("user_id", 1): "alice", ("proxy", 1): silent_registrar,
        ("sip_transport", 1): "UDP",
    })
    options = PhoneOptions(system_ca=False, tls_port=None, history=False)
    options.extra_ca_pem.append(echo.pem)
    options.aliases["echo"] = echo.uri
    phone = Phone(store, options)
    accounts = Accounts(store)
    ctx = WebContext(store, accounts, TrustAnchors(None, system=False), PhoneAdapter(phone))
    token = accounts.create_token("user", "test")
    async with phone, httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(ctx)), base_url="https://testserver",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client
    accounts.close()
    await echo.stop()
    store.close()


async def test_dial_on_an_unregistered_line_is_409_not_registered(
    api: httpx.AsyncClient,
) -> None:
    r = await api.post("/api/v1/calls", json={"target": "bob", "line": 1})
    assert r.status_code == 409, r.text
    assert "not registered" in r.json()["detail"]
    assert (await api.get("/api/v1/calls")).json() == []
    line = (await api.get("/api/v1/lines")).json()[0]
    assert line["registers"] and not line["registered"]
    assert line["calls_refused"] == REFUSED
    assert line["make_call_without_reg"] is False and line["ans_call_without_reg"] is False
    # the built-in echo service is local: it never needs the registration
    r = await api.post("/api/v1/calls", json={"target": "echo", "line": 1})
    assert r.status_code == 201, r.text
    assert (await api.post(f"/api/v1/calls/{r.json()['id']}/hangup")).status_code == 204


async def test_pages_show_why_calls_are_refused(
    admin: httpx.AsyncClient, phone: FakePhone, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = phone.lines()
    lines[0].update(registered=False, state="backoff", reason="401 Unauthorized",
                    calls_refused=REFUSED)

    def unregistered() -> list[dict[str, Any]]:
        return lines

    monkeypatch.setattr(phone, "lines", unregistered)
    assert f'<span class="noreg">{REFUSED}</span>' in (await admin.get("/phone")).text
    assert REFUSED in (await admin.get("/")).text
    js = (await admin.get("/static/phone.js")).text
    assert "calls_refused" in js
    ext = (await admin.get("/ext/1")).text
    assert "Make Call Without Reg" in ext and "Ans Call Without Reg" in ext
