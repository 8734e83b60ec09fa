"""The SIP trace page (ladder diagram) and API, over the real phone calling the echo service."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sippa.app.accounts import Accounts
from sippa.app.call import CallState
from sippa.app.echo import EchoService
from sippa.app.phone import Phone, PhoneOptions
from sippa.app.store import ConfigStore
from sippa.app.webserver import TrustAnchors
from sippa.interfaces.web import PhoneAdapter, WebContext, create_app
from sippa.interfaces.web.trace import ladder
from tests.web.conftest import ADMIN_PASSWORD, USER_PASSWORD, login

pytestmark = pytest.mark.timeout(60)
BASE = "https://testserver"
PROVISIONAL = {"100 Trying", "180 Ringing", "183 Session Progress"}


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str, Accounts]]:
    """A web app over a real phone that made one call to the echo service (and hung up)."""
    echo = EchoService(tmp_path / "echo")
    await echo.start()
    store = ConfigStore(tmp_path / "sippa.db", lines=1)
    store.update({("rtp_port_min", 0): 48000, ("rtp_port_max", 0): 49999})
    options = PhoneOptions(system_ca=False, tls_port=None, history=False)
    options.extra_ca_pem.append(echo.pem)
    options.aliases["echo"] = echo.uri
    phone = Phone(store, options)
    accounts = Accounts(store)
    accounts.set_password("admin", ADMIN_PASSWORD)
    accounts.set_password("user", USER_PASSWORD)
    ctx = WebContext(store, accounts, TrustAnchors(None, system=False), PhoneAdapter(phone))
    async with phone, httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(ctx)), base_url=BASE
    ) as client:
        call = await phone.dial("echo")
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 10)
        await phone.hangup(call.id)
        await phone.wait_call(call.id, lambda c: c.is_over, 5)
        for _ in range(100):  # the 200 to our BYE
            if [e.label for e in phone.trace(call.id)][-1:] == ["200 OK"]:
                break
            await asyncio.sleep(0.02)
        yield client, call.id, accounts
    accounts.close()
    await echo.stop()
    store.close()


def _without_provisional(labels: list[str]) -> list[str]:
    return [label for label in labels if label not in PROVISIONAL]


async def test_api_returns_the_calls_messages(
    traced: tuple[httpx.AsyncClient, str, Accounts],
) -> None:
    client, call_id, accounts = traced
    assert (await client.get(f"/api/v1/calls/{call_id}/trace")).status_code == 401
    user = accounts.create_token("user", "t")
    r = await client.get(f"/api/v1/calls/{call_id}/trace",
                         headers={"Authorization": f"Bearer {user}"})
    assert r.status_code == 403
    admin = {"Authorization": f"Bearer {accounts.create_token('admin', 't')}"}
    r = await client.get(f"/api/v1/calls/{call_id}/trace", headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == call_id and body["call"]["state"] == "ended"
    entries = body["entries"]
    assert _without_provisional([e["label"] for e in entries]) == [
        "INVITE", "PRACK", "200 OK", "200 OK", "ACK", "BYE", "200 OK"
    ]
    assert [e["direction"] for e in entries if e["label"] not in PROVISIONAL] == [
        "out", "out", "in", "in", "out", "out", "in"
    ]
    assert {e["transport"] for e in entries} == {"TLS"}
    assert entries[0]["text"].startswith("INVITE sip") and "inline:***" in entries[0]["text"]
    assert not re.search(r"inline:(?!\*\*\*)", r.text)  # no SDES key anywhere
    r = await client.get("/api/v1/calls/nope/trace", headers=admin)
    assert r.status_code == 404


async def test_page_draws_the_ladder(traced: tuple[httpx.AsyncClient, str, Accounts]) -> None:
    client, call_id, _ = traced
    page = await client.get(f"/phone/calls/{call_id}/trace")
    assert page.status_code == 303 and "/login" in page.headers["location"]
    assert (await login(client, "user", USER_PASSWORD)).status_code == 303
    assert (await client.get(f"/phone/calls/{call_id}/trace")).status_code == 403
    assert (await client.get("/phone/traces")).status_code == 403
    await client.post("/logout", data={})
    client.cookies.clear()
    assert (await login(client, "admin", ADMIN_PASSWORD)).status_code == 303

    listing = await client.get("/phone/traces")
    assert listing.status_code == 200
    assert f'href="/phone/calls/{call_id}/trace"' in listing.text
    assert 'href="/phone/traces"' in (await client.get("/phone")).text

    page = await client.get(f"/phone/calls/{call_id}/trace")
    assert page.status_code == 200, page.text
    text = page.text
    assert "<svg" in text and 'class="ladder"' in text
    assert "<script" not in text.split("<main>", 1)[1]  # nothing inline (the CSP forbids it)
    assert " style=" not in text
    assert '<link rel="stylesheet" href="/static/trace.css">' in text
    labels = [html.unescape(m) for m in re.findall(r'data-label="([^"]*)"', text)]
    assert _without_provisional(labels) == [
        "INVITE", "PRACK", "200 OK", "200 OK", "ACK", "BYE", "200 OK"  # 180 PRACKed (100rel)
    ]
    # each arrow: its label, its transport, a time offset, a link to the full message
    arrows = re.findall(r'<a href="#msg-(\d+)" class="arrow (in|out)"', text)
    assert [int(n) for n, _ in arrows] == list(range(len(labels)))
    assert arrows[0][1] == "out"
    assert text.count(">TLS</text>") == len(labels)
    assert ">+0.000 s</text>" in text
    details = re.findall(r'<pre id="msg-(\d+)">(.*?)</pre>', text, re.DOTALL)
    assert len(details) == len(labels)
    assert html.unescape(details[0][1]).startswith("INVITE sip")
    assert "inline:***" in details[0][1]
    assert (await client.get("/static/trace.css")).status_code == 200
    missing = await client.get("/phone/calls/nope/trace")
    assert missing.status_code == 404 and "no trace" in missing.text


def test_ladder_layout() -> None:
    entries = [
        {"time": 10.0, "direction": "out", "label": "INVITE", "transport": "UDP",
         "local": "127.0.0.1:5060", "remote": "127.0.0.1:5070"},
        {"time": 10.25, "direction": "in", "label": "200 OK", "transport": "UDP",
         "local": "127.0.0.1:5060", "remote": "127.0.0.1:5070"},
    ]
    lay = ladder(entries)
    out, back = lay.arrows
    assert (out.x1, out.x2) == (lay.left, lay.right)  # sent: from our lane to the peer's
    assert (back.x1, back.x2) == (lay.right, lay.left)
    assert back.y > out.y and lay.height > back.y
    assert (out.offset, back.offset) == ("+0.000 s", "+0.250 s")
    assert (lay.local, lay.remote) == ("127.0.0.1:5060", "127.0.0.1:5070")
    assert ladder([]).arrows == []
