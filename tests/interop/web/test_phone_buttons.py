"""The phone page's buttons in real headless Chromium, against the web server and a fake phone:
an incoming call rings live (event stream), then answer, hold, resume, DTMF, transfer, hang up."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sippa.app.accounts import Accounts
from sippa.app.store import ConfigStore
from sippa.app.webserver import TrustAnchors
from sippa.interfaces.web import WebContext, WebServer
from tests.interop.web.test_chromium import CHROMIUM_ARGS
from tests.peers.process import require_binary, require_module
from tests.web.conftest import ADMIN_PASSWORD, FakePhone

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, FakePhone, asyncio.AbstractEventLoop]]:
    """The web server on its own event loop thread, with a fake phone."""
    store = ConfigStore(tmp_path / "sippa.db", lines=1)
    accounts = Accounts(store)
    accounts.set_password("admin", ADMIN_PASSWORD)
    phone = FakePhone()
    ctx = WebContext(store, accounts, TrustAnchors(None, system=False), phone)
    ready, stop = threading.Event(), threading.Event()
    box: dict[str, object] = {}

    async def main() -> None:
        async with WebServer(ctx, data_dir=tmp_path, port=0) as web:
            box["port"], box["loop"] = web.port, asyncio.get_running_loop()
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield box["port"], phone, box["loop"]  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(10)
        accounts.close()
        store.close()


def test_phone_page_buttons(served: tuple[int, FakePhone, asyncio.AbstractEventLoop]) -> None:
    chromium = require_binary("chromium", "chromium")
    sync_api = require_module("playwright.sync_api")
    port, phone, loop = served
    base = f"https://127.0.0.1:{port}"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(base + "/login")
            page.fill("#password", ADMIN_PASSWORD)
            page.click("main button[type=submit]")
            page.wait_for_url(base + "/")
            page.goto(base + "/phone")
            page.locator("#calls .none").wait_for()
            # an incoming call appears without a reload (server-sent events)
            loop.call_soon_threadsafe(phone.ring)
            call_id = "in1"
            card = page.locator(f'.call-card[data-call="{call_id}"]')
            card.wait_for(timeout=10000)
            assert card.locator(".padlock").get_attribute("data-padlock") == "no"
            card.locator("text=Answer").click()
            card.locator("text=Hold").wait_for()
            card.locator("text=Hold").click()
            card.locator("text=Resume").wait_for()
            card.locator("text=Resume").click()
            card.locator("text=Hold").wait_for()
            page.click('#pad button[data-key="5"]')
            page.click('#pad button[data-key="#"]')
            page.fill("#target", "sips:carol@example.test")
            card.locator("text=Transfer").click()
            card.locator(".hangup").click()
            page.locator("#calls .none").wait_for(timeout=10000)
        finally:
            browser.close()
    assert phone.commands == [
        ("answer", "in1"), ("hold", "in1"), ("resume", "in1"), ("dtmf", "in1", "5"),
        ("dtmf", "in1", "#"), ("transfer", "in1", "sips:carol@example.test"),
        ("hangup", "in1"),
    ]
