"""The ASGI application: pages, REST API, static files, and the protections around them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sippa import __version__
from sippa.app.accounts import Accounts
from sippa.app.provisioning import ProvisioningService
from sippa.app.store import ConfigStore
from sippa.app.webserver import TrustAnchors
from sippa.interfaces.web.auth import COOKIE, Principal, Sessions, tokens_equal
from sippa.interfaces.web.phone import EventHub, PhoneService

__all__ = ["NeedLogin", "WebContext", "create_app", "principal"]

HERE = Path(__file__).parent

# A CSP with no inline script or style at all; pages load one CSS file and small JS files.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make Origin "null"
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), geolocation=(), microphone=()"),
]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class WebContext:
    """Everything the web interface talks to (all from ``sippa.app``)."""

    store: ConfigStore
    accounts: Accounts
    trust: TrustAnchors
    phone: PhoneService | None = None
    clock: Callable[[], float] = time.time
    web_fingerprint: str | None = None
    """SHA-256 of the web server's certificate, shown so a person can check it."""
    port_follows_setting: bool = False
    """The HTTPS listener moves when Web Server Port changes (set by the web server)."""
    provisioning: ProvisioningService | None = None
    """The daemon's resync/updates/profiles (None: the Provisioning page says it is off)."""
    sessions: Sessions = field(init=False)
    events: EventHub = field(default_factory=EventHub)

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.clock)


class NeedLogin(Exception):
    """No (valid) session or token: pages redirect to the login, the API answers 401."""


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


def principal(request: Request) -> Principal:
    """The caller (session cookie or bearer token); raise :class:`NeedLogin` when none."""
    ctx = context(request)
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        role = ctx.accounts.check_token(header[7:].strip())
        if role is None:
            raise NeedLogin
        return Principal(role)
    session = ctx.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise NeedLogin
    p = Principal(session.role, session)
    if request.method in UNSAFE:
        submitted = request.headers.get("x-csrf-token")
        if submitted is None and request.url.path.startswith("/api/"):
            raise Forbidden("missing CSRF token (X-CSRF-Token)")
        if submitted is not None and not tokens_equal(submitted, session.csrf):
            raise Forbidden("bad CSRF token")
    return p


class SecurityHeaders:
    """Adds the security headers to every response; refuses cross-site unsafe requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] in UNSAFE and _cross_site(headers):
            response = JSONResponse({"detail": "cross-site request refused"}, status_code=403)
            await response(scope, receive, self._wrap(send, scope))
            return
        await self.app(scope, receive, self._wrap(send, scope))

    @staticmethod
    def _wrap(send: Send, scope: Scope) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
                if not scope["path"].startswith("/static/"):
                    message["headers"].append((b"cache-control", b"no-store"))
            await send(message)

        return send_with_headers


def _cross_site(headers: dict[str, str]) -> bool:
    """True when the browser says the request comes from another origin."""
    if headers.get("sec-fetch-site") in {"cross-site", "same-site"}:
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    host = headers.get("host", "")
    return origin == "null" or urlsplit(origin).netloc.lower() != host.lower()


def create_app(ctx: WebContext) -> FastAPI:
    """The web UI and the REST API of one phone."""
    # they import this module
    from sippa.interfaces.web.api import router as api_router  # noqa: PLC0415
    from sippa.interfaces.web.pages import router as pages_router  # noqa: PLC0415
    from sippa.interfaces.web.provisioning import (  # noqa: PLC0415
        api_router as provisioning_api,
    )
    from sippa.interfaces.web.provisioning import router as provisioning_pages  # noqa: PLC0415
    from sippa.interfaces.web.trace import api_router as trace_api  # noqa: PLC0415
    from sippa.interfaces.web.trace import router as trace_pages  # noqa: PLC0415

    app = FastAPI(
        title="sippa",
        version=__version__,
        description="REST API of the sippa phone: settings, lines, calls, trust anchors, tokens. "
        "Authenticate with `Authorization: Bearer <token>` (tokens are made on the API "
        "tokens page or with POST /api/v1/tokens).",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ctx = ctx
    ctx.store.subscribe(
        lambda changed: ctx.events.publish(
            "settings", {"changed": sorted({k for k, _ in changed})}
        )
    )
    if ctx.phone is not None:
        ctx.phone.subscribe(ctx.events.publish)

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, exc: NeedLogin) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"detail": "authentication required"},
                status_code=401,
                headers={"www-authenticate": "Bearer"},
            )
        target = "/setup" if ctx.accounts.needs_setup else "/login"
        path = request.url.path
        nxt = f"?next={quote(path)}" if path not in {"/", "/login"} else ""
        return RedirectResponse(target + nxt, status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return JSONResponse({"detail": exc.message}, status_code=403)

    @app.get("/api/v1/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> dict[str, Any]:
        principal(request)
        return app.openapi()

    app.include_router(api_router)
    app.include_router(provisioning_api)
    app.include_router(trace_api)
    app.include_router(pages_router)
    app.include_router(provisioning_pages)
    app.include_router(trace_pages)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(SecurityHeaders)
    return app
