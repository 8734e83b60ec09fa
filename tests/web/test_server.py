"""The real HTTPS server on 127.0.0.1: certificate, TLS policy, HTTP redirect, event stream."""

from __future__ import annotations

import asyncio
import json
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sippa.app.accounts import Accounts
from sippa.app.store import ConfigStore
from sippa.app.webserver import TrustAnchors
from sippa.interfaces.web import WebContext, WebServer
from sippa.net.tls import TlsPolicyError, set_groups
from tests.web.conftest import ADMIN_PASSWORD, FakePhone


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[WebServer]:
    store = ConfigStore(tmp_path / "sippa.db", lines=1)
    accounts = Accounts(store)
    accounts.set_password("admin", ADMIN_PASSWORD)
    ctx = WebContext(store, accounts, TrustAnchors(tmp_path / "ca", system=False), FakePhone())
    web = WebServer(ctx, data_dir=tmp_path, port=0, http_port=0)
    await web.start()
    try:
        yield web
    finally:
        await web.stop()
        accounts.close()
        store.close()


def _client_ctx(cert: Path, **kw: object) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


async def test_https_with_a_generated_certificate(server: WebServer, tmp_path: Path) -> None:
    cert, key = tmp_path / "web-cert.pem", tmp_path / "web-key.pem"
    assert cert.exists() and stat.S_IMODE(key.stat().st_mode) == 0o600
    token = server.ctx.accounts.create_token("admin", "t")
    async with httpx.AsyncClient(verify=_client_ctx(cert)) as c:
        r = await c.get(f"https://127.0.0.1:{server.port}/api/v1/status",
                        headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["phone_running"]
        r = await c.get(f"https://localhost:{server.port}/login")
        assert r.status_code == 200 and "strict-transport-security" in r.headers
        assert "server" not in r.headers
    assert server.ctx.web_fingerprint and len(server.ctx.web_fingerprint) == 95


async def test_tls_version_and_groups(server: WebServer, tmp_path: Path) -> None:
    cert = tmp_path / "web-cert.pem"
    tls12 = _client_ctx(cert, maximum_version=ssl.TLSVersion.TLSv1_2)
    _, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=tls12)
    obj = writer.get_extra_info("ssl_object")
    assert obj.version() == "TLSv1.2" and "ECDHE" in obj.cipher()[0]
    writer.close()
    weak = _client_ctx(cert)
    try:
        # OpenSSL's default server accepts FFDHE groups; the policy allows only ECDHE ones
        set_groups(weak, ["ffdhe2048"])
    except TlsPolicyError:
        pytest.skip("cannot set groups on this Python")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.open_connection("127.0.0.1", server.port, ssl=weak)


async def test_tls13_minimum(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "sippa.db", lines=1)
    store.set("tls_server_min_version", "TLS 1.3")
    ctx = WebContext(store, Accounts(store), TrustAnchors(None, system=False))
    async with WebServer(ctx, data_dir=tmp_path, port=0) as web:
        tls12 = _client_ctx(tmp_path / "web-cert.pem", maximum_version=ssl.TLSVersion.TLSv1_2)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await asyncio.open_connection("127.0.0.1", web.port, ssl=tls12)
        _, writer = await asyncio.open_connection(
            "127.0.0.1", web.port, ssl=_client_ctx(tmp_path / "web-cert.pem"))
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
        writer.close()
    store.close()


async def test_http_port_redirects_to_https(server: WebServer) -> None:
    async with httpx.AsyncClient() as c:
        r = await c.get(f"http://127.0.0.1:{server.http_port}/ext/1?x=1")
    assert r.status_code == 308
    assert r.headers["location"] == f"https://127.0.0.1:{server.port}/ext/1?x=1"


async def test_configured_certificate_is_used(tmp_path: Path) -> None:
    from sippa.app.webserver import ensure_certificate

    cert, key = ensure_certificate(tmp_path / "mine")
    store = ConfigStore(":memory:", lines=1)
    ctx = WebContext(store, Accounts(store), TrustAnchors(None, system=False))
    async with (
        WebServer(ctx, data_dir=tmp_path, port=0, certfile=cert, keyfile=key) as web,
        httpx.AsyncClient(verify=_client_ctx(cert)) as c,
    ):
        assert (await c.get(f"https://127.0.0.1:{web.port}/login")).status_code == 303
    assert not (tmp_path / "web-cert.pem").exists()


async def test_event_stream(server: WebServer, tmp_path: Path) -> None:
    token = server.ctx.accounts.create_token("user", "t")
    headers = {"Authorization": f"Bearer {token}"}
    base = f"https://127.0.0.1:{server.port}/api/v1"
    async with (
        httpx.AsyncClient(verify=_client_ctx(tmp_path / "web-cert.pem"), timeout=10) as c,
        c.stream("GET", f"{base}/events", headers=headers) as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = stream.aiter_lines()

        async def next_event() -> tuple[str, dict[str, object]]:
            kind = ""
            async for line in events:
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    return kind, json.loads(line[6:])
            raise AssertionError("stream ended")

        kind, data = await asyncio.wait_for(next_event(), 5)
        assert kind == "hello" and data["lines"][0]["line"] == 1
        r = await c.post(f"{base}/calls", json={"target": "bob"}, headers=headers)
        assert r.status_code == 201
        kind, data = await asyncio.wait_for(next_event(), 5)
        assert kind == "call" and data["state"] == "confirmed"
        r = await c.patch(f"{base}/settings", json={"Display_Name_1_": "A"}, headers=headers)
        assert r.status_code == 200
        kind, data = await asyncio.wait_for(next_event(), 5)
        assert kind == "settings" and data == {"changed": ["display_name"]}


async def test_new_tls_minimum_and_port_apply_live(tmp_path: Path) -> None:
    from tests.peers.process import free_port

    store = ConfigStore(tmp_path / "sippa.db", lines=1)
    first, second = free_port(), free_port()
    store.set("web_server_port", first)
    accounts = Accounts(store)
    token = accounts.create_token("admin", "t")
    ctx = WebContext(store, accounts, TrustAnchors(None, system=False))
    cert = tmp_path / "web-cert.pem"
    headers = {"Authorization": f"Bearer {token}"}
    async with WebServer(ctx, data_dir=tmp_path) as web:
        assert web.port == first
        async with httpx.AsyncClient(verify=_client_ctx(cert)) as c:
            r = await c.patch(f"https://127.0.0.1:{first}/api/v1/settings", headers=headers,
                              json={"TLS_Server_Min_Version": "TLS 1.3"})
            assert r.status_code == 200
        tls12 = _client_ctx(cert, maximum_version=ssl.TLSVersion.TLSv1_2)
        for _ in range(50):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", first, ssl=tls12)
            except ConnectionRefusedError:  # restarting
                await asyncio.sleep(0.1)
                continue
            except (ssl.SSLError, ConnectionResetError):
                break  # the handshake is refused
            w.close()
            await w.wait_closed()
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("TLS 1.2 still accepted after the change")
        async with httpx.AsyncClient(verify=_client_ctx(cert)) as c:
            r = await c.patch(f"https://127.0.0.1:{first}/api/v1/settings", headers=headers,
                              json={"Web_Server_Port": second})
            assert r.status_code == 200
        for _ in range(50):
            if web.port == second and web._https is not None:
                break
            await asyncio.sleep(0.1)
        async with httpx.AsyncClient(verify=_client_ctx(cert)) as c:
            r = await c.get(f"https://127.0.0.1:{second}/api/v1/status", headers=headers)
            assert r.status_code == 200
            with pytest.raises(httpx.ConnectError):
                await c.get(f"https://127.0.0.1:{first}/api/v1/status", headers=headers)
    accounts.close()
    store.close()
