"""End to end in real headless Chromium against `sippa serve` (and Kamailio).

First-run password setup with the token printed on the console, login, a bad value shown beside
its field, a line edited and registered to Kamailio over TLS, a custom CA listed with the
built-in ones, and a secure call to the built-in echo service showing the padlock and its
details. Screenshots of the main pages are taken too: into docs/screenshots/ with
SIPPA_SCREENSHOTS=1 (to refresh the README's pictures), else into the test's temporary directory.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.phone.conftest import make_baresip
from tests.peers.baresip import Baresip
from tests.peers.kamailio import USERS, Kamailio
from tests.peers.process import (
    PeerProcess,
    free_port,
    require_binary,
    require_module,
    wait_tcp,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
PASSWORD = "Corr3ct-horse-battery"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def _shot(page: object, name: str, *, full: bool = True) -> None:
    directory = SHOTS if os.environ.get("SIPPA_SCREENSHOTS") == "1" else _tmp_shots[0]
    directory.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(directory / f"{name}.png"), full_page=full)  # type: ignore[attr-defined]


_tmp_shots: list[Path] = []


@pytest.fixture
def baresip(tmp_path: Path) -> Iterator[Baresip]:
    """baresip on TLS with its own CA, SRTP mandatory, answering at once."""
    with make_baresip(tmp_path / "baresip", tls=True, mediaenc="srtp-mand") as peer:
        yield peer


@pytest.fixture
def daemon(
    tmp_path: Path, kamailio: Kamailio, lab_certs: object, baresip: Baresip
) -> Iterator[tuple[int, Path]]:
    port = free_port()
    log = tmp_path / "serve.log"
    _tmp_shots[:] = [tmp_path / "screenshots"]
    argv = [
        sys.executable, "-m", "sippa", "serve", "--db", str(tmp_path / "sippa.db"),
        "--web-port", str(port), "--ca", str(lab_certs.ca.cert),  # type: ignore[attr-defined]
        "--ca", str(baresip.workdir / "certs" / "ca.pem"),
    ]
    with PeerProcess(argv, log=log, env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        wait_tcp(port, timeout=20)
        proc.check_alive()
        yield port, log


def _setup_token(log: Path) -> str:
    for _ in range(100):
        m = re.search(r"one-time setup token (\S+)", log.read_text(errors="replace"))
        if m:
            return m.group(1)
        time.sleep(0.1)
    raise AssertionError("no setup token on the console:\n" + log.read_text())


def test_web_end_to_end(daemon: tuple[int, Path], kamailio: Kamailio, baresip: Baresip) -> None:
    chromium = require_binary("chromium", "chromium")
    sync_api = require_module("playwright.sync_api")
    port, log = daemon
    base = f"https://127.0.0.1:{port}"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(ignore_https_errors=True,
                                      viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        try:
            # first start: no default password, the console's token sets the admin password
            page.goto(base + "/")
            assert page.url.startswith(base + "/setup")
            page.fill("#token", _setup_token(log))
            page.fill("#password", PASSWORD)
            page.fill("#confirm", PASSWORD)
            _shot(page, "setup")
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")
            assert "Line Status" in page.content()

            # log out, log in again
            page.click("form.logout button")
            page.wait_for_url(re.compile(r".*/login.*"))
            page.fill("#password", "wrong-Passw0rd")
            page.click("main button[type=submit]")
            assert "wrong login or password" in page.content()
            page.fill("#password", PASSWORD)
            _shot(page, "login")
            page.click("main button[type=submit]")
            page.wait_for_url(base + "/")

            # a bad value is shown beside its field and nothing is saved
            page.goto(base + "/ext/1")
            page.fill("#f-Proxy_1_", "not a host!")
            page.fill("#f-Register_Expires_1_", "3")
            page.click("text=Submit All Changes")
            message = page.locator("#e-Proxy_1_").inner_text()
            assert message == "'not a host!' is not a host name or address"
            assert "must be at least 10" in page.locator("#e-Register_Expires_1_").inner_text()
            _shot(page, "ext-invalid")
            page.goto(base + "/ext/1")
            assert page.input_value("#f-Proxy_1_") == ""

            # a valid line: saved, applied live, registered to Kamailio over TLS
            page.select_option("#f-Line_Enable_1_", "Yes")
            page.fill("#f-Display_Name_1_", "Alice")
            page.fill("#f-User_ID_1_", "alice")
            page.fill("#f-Password_1_", USERS["alice"])
            page.fill("#f-Proxy_1_", "example.test")  # the SIP domain (its certificate's name)
            page.fill("#f-Outbound_Proxy_1_", f"127.0.0.1:{kamailio.tls_port}")
            page.select_option("#f-Use_Outbound_Proxy_1_", "Yes")
            page.select_option("#f-Use_DNS_SRV_1_", "No")
            page.select_option("#f-SIP_Transport_1_", "TLS")
            page.select_option("#f-Secure_Call_Option_1_", "Mandatory")
            page.click("text=Submit All Changes")
            page.wait_for_url(base + "/ext/1?saved=1")
            assert page.input_value("#f-Outbound_Proxy_1_") == f"127.0.0.1:{kamailio.tls_port}"
            _shot(page, "ext")
            page.goto(base + "/")
            row = page.locator('#lines tr[data-line="1"]')
            for _ in range(60):
                if "Registered" in row.inner_text():
                    break
                time.sleep(0.25)
                page.reload()
            assert "Registered" in row.inner_text(), row.inner_text()
            assert "sips:alice@example.test" in row.inner_text()
            _shot(page, "info")

            # trust anchors: the lab CA given with --ca and the built-in ones
            page.goto(base + "/trust")
            text = page.content()
            assert "sippa test lab" in text and "built-in" in text and "CA file" in text
            _shot(page, "trust", full=False)  # hundreds of built-in CAs
            page.goto(base + "/settings/system")
            _shot(page, "system")

            # the user's secure-call default: mandatory
            page.goto(base + "/settings/user")
            page.select_option("#f-Secure_Call_Setting", "Mandatory")
            page.click("text=Submit All Changes")
            page.wait_for_url(base + "/settings/user?saved=1")
            _shot(page, "user")

            # the phone page: a secure call to the echo service with the padlock
            page.goto(base + "/phone")
            page.select_option("#line", "2")
            page.fill("#target", "echo")
            page.click("#dial")
            lock = page.locator(".call-card .padlock")
            lock.wait_for(timeout=15000)
            for _ in range(60):
                if "active" in page.locator(".call-card .state").inner_text():
                    break
                time.sleep(0.1)
            assert lock.get_attribute("data-padlock") == "yes"
            page.click(".call-card summary")
            details = page.locator(".call-card details").inner_text()
            assert "TLS" in details and "SRTP suite" in details
            page.click(".call-card .hangup")
            page.locator("#calls .none").wait_for(timeout=10000)
            page.locator("#history tbody tr").first.wait_for(timeout=10000)
            assert "echo" in page.locator("#history tbody").inner_text()

            # that call's SIP trace: a ladder diagram; an arrow opens its full message
            page.click(".traces-link a")
            page.locator("table.traces tbody tr", has_text="echo").first.locator("a").click()
            page.locator("svg.ladder").wait_for(timeout=10000)
            labels = page.locator("svg.ladder text.label").all_text_contents()
            assert labels[0] == "INVITE" and "ACK" in labels and "BYE" in labels, labels
            page.locator("svg.ladder a").first.click()
            page.locator("#msg-0").wait_for(state="visible", timeout=5000)
            assert "inline:***" in page.locator("#msg-0").inner_text()
            _shot(page, "trace")
            page.goto(base + "/phone")
            page.select_option("#line", "2")

            # baresip over TLS with SRTP: the padlock, and baresip's certificate in the details
            page.fill("#target", f"sips:{baresip.user}@127.0.0.1:{baresip.tls_port}")
            page.click("#dial")
            card = page.locator(".call-card")
            card.wait_for(timeout=15000)
            for _ in range(100):
                if "active" in card.locator(".state").inner_text():
                    break
                time.sleep(0.1)
            assert "active" in card.locator(".state").inner_text(), (
                page.request.get(base + "/api/v1/calls").text()
            )
            assert card.locator(".padlock").get_attribute("data-padlock") == "yes"
            page.click(".call-card summary")
            details = card.locator("details").inner_text()
            assert "SRTP suite" in details and "TLS (certificate validated)" in details
            # the quality plot fills from RTP/RTCP while the call is up
            card.locator(".quality polyline.plot-jitter").wait_for(timeout=10000)
            time.sleep(4)  # a few more samples for the picture
            assert "jitter" in card.locator(".quality .legend").inner_text()
            _shot(page, "phone")
            page.click(".call-card .hangup")
            page.locator("#calls .none").wait_for(timeout=10000)
        finally:
            context.close()
            browser.close()
    # no CSP violations or script errors in the browser (the 401 of the wrong password and the
    # 422 of the bad values are expected "failed to load" messages)
    problems = [e for e in errors if not e.startswith("Failed to load resource")]
    assert not problems, problems
