"""The API driving the real phone (in process) against the built-in echo service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, WebContext]]:
    echo = EchoService(tmp_path / "echo")
    await echo.start()
    store = ConfigStore(tmp_path / "sippa.db", lines=2)
    store.update({("rtp_port_min", 0): 45000, ("rtp_port_max", 0): 47999})
    options = PhoneOptions(system_ca=False, tls_port=None)
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
        yield client, ctx
    accounts.close()
    await echo.stop()
    store.close()


async def _wait(client: httpx.AsyncClient, call_id: str, state: str) -> dict[str, Any]:
    for _ in range(200):
        calls = {c["id"]: c for c in (await client.get("/api/v1/calls")).json()}
        if state == "gone" and call_id not in calls:
            return {}
        if call_id in calls and calls[call_id]["state"] == state:
            return calls[call_id]
        await asyncio.sleep(0.05)
    raise AssertionError(f"call {call_id} never became {state}")


async def test_secure_echo_call_through_the_api(
    api: tuple[httpx.AsyncClient, WebContext],
) -> None:
    client, ctx = api
    seen: list[tuple[str, dict[str, Any]]] = []
    assert ctx.phone is not None
    ctx.phone.subscribe(lambda kind, data: seen.append((kind, data)))
    r = await client.post("/api/v1/calls", json={"target": "echo"})
    assert r.status_code == 201, r.text
    call_id = r.json()["id"]
    call = await _wait(client, call_id, "active")
    sec = call["security"]
    assert sec["padlock"] is True, sec["reasons"]
    assert sec["transport"] == "TLS" and sec["srtp_suite"] and "sippa echo" in sec["peer_subject"]
    quality = call["quality"]  # RTP/RTCP counters for the plot
    assert quality is not None and quality["jitter_ms"] >= 0 and quality["packets_lost"] >= 0
    assert (await client.post(f"/api/v1/calls/{call_id}/dtmf",
                              json={"digits": "1#"})).status_code == 204
    assert (await client.post(f"/api/v1/calls/{call_id}/hold")).status_code == 204
    await _wait(client, call_id, "held")
    # a held call cannot be held again: the phone says why
    r = await client.post(f"/api/v1/calls/{call_id}/hold")
    assert r.status_code == 409 and "held" in r.json()["detail"]
    assert (await client.post(f"/api/v1/calls/{call_id}/resume")).status_code == 204
    await _wait(client, call_id, "active")
    assert (await client.post(f"/api/v1/calls/{call_id}/hangup")).status_code == 204
    await _wait(client, call_id, "gone")
    assert (await client.post(f"/api/v1/calls/{call_id}/hangup")).status_code == 404
    history = (await client.get("/api/v1/history")).json()
    assert history and history[0]["padlock"] is True
    assert any(kind == "call" and data["id"] == call_id for kind, data in seen)
    lines = (await client.get("/api/v1/lines")).json()
    assert [line["line"] for line in lines] == [1, 2]


async def test_dial_errors_are_409(api: tuple[httpx.AsyncClient, WebContext]) -> None:
    client, _ = api
    r = await client.post("/api/v1/calls", json={"target": "echo", "line": 9})
    assert r.status_code == 409 and "lines 1 to 2" in r.json()["detail"]
