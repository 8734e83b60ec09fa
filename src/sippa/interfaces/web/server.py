"""Serving the web app: HTTPS with the phone's TLS policy, and an optional HTTP redirect port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from starlette.types import Receive, Scope, Send

from sippa.app.accounts import Accounts
from sippa.app.phone import Phone
from sippa.app.provisioning import ProvisioningService
from sippa.app.settings import Value
from sippa.app.store import ConfigStore
from sippa.app.webserver import TrustAnchors, custom_ca_dir
from sippa.interfaces.web.app import WebContext, create_app
from sippa.interfaces.web.phone import PhoneAdapter

__all__ = ["WebServer", "redirect_app", "run_phone_web", "run_web"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the daemon owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def redirect_app(https_port: int):  # type: ignore[no-untyped-def]
    """An ASGI app answering every HTTP request with a redirect to the HTTPS port."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        if host.startswith("["):
            name = host[: host.find("]") + 1] or "localhost"
        else:
            name = host.split(":")[0] or "localhost"
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        location = f"https://{name}:{https_port}{path.decode('latin-1')}"
        if query:
            location += "?" + query.decode("latin-1")
        await send(
            {
                "type": "http.response.start",
                "status": 308,
                "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


class WebServer:
    """The web UI and API of one phone, over HTTPS (and optionally an HTTP redirect port)."""

    def __init__(
        self,
        ctx: WebContext,
        *,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        http_port: int | None = None,
        certfile: Path | None = None,
        keyfile: Path | None = None,
    ) -> None:
        self.ctx = ctx
        self.data_dir = data_dir
        self.host = host
        self.port_from_settings = port is None
        self.port = int(ctx.store.get("web_server_port")) if port is None else port
        self.http_port = http_port
        self.certfile, self.keyfile = certfile, keyfile
        self._servers: list[tuple[_Server, asyncio.Task[None], socket.socket]] = []
        self._https: tuple[_Server, asyncio.Task[None], socket.socket] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._restarting: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in {"0.0.0.0", "[::]"}:  # noqa: S104 - showing where to connect
            host = "localhost"
        return f"https://{host}:{self.port}/"

    async def start(self) -> None:
        # imported here: only serving needs the certificate tools of sippa.app
        from sippa.app.webserver import ensure_certificate  # noqa: PLC0415

        self._loop = asyncio.get_running_loop()
        if self.certfile is None or self.keyfile is None:
            self.certfile, self.keyfile = ensure_certificate(self.data_dir)
        cert = x509.load_pem_x509_certificate(Path(self.certfile).read_bytes())
        self.ctx.web_fingerprint = ":".join(
            f"{b:02X}" for b in cert.fingerprint(hashes.SHA256())
        )
        self.ctx.port_follows_setting = self.port_from_settings
        self.app = create_app(self.ctx)
        await self._start_https()
        if self.http_port is not None:
            plain = _listen(self.host, self.http_port)
            self.http_port = plain.getsockname()[1]
            self._servers.append(await self._serve(redirect_app(self.port), plain, None))
        self._unsubscribe = self.ctx.store.subscribe(self._on_settings)
        log.info("web pages at %s", self.url)

    async def _start_https(self) -> None:
        from sippa.app.webserver import server_context  # noqa: PLC0415

        assert self.certfile is not None and self.keyfile is not None
        tls = server_context(
            Path(self.certfile), Path(self.keyfile),
            min_version=str(self.ctx.store.get("tls_server_min_version")),
        )
        sock = _listen(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._https = await self._serve(self.app, sock, tls)

    def _on_settings(self, changed: dict[tuple[str, int], Value]) -> None:
        """A new Web Server Port or TLS minimum applies at once: the listener restarts."""
        port_changed = ("web_server_port", 0) in changed and self.port_from_settings
        if not port_changed and ("tls_server_min_version", 0) not in changed:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._schedule_restart)

    def _schedule_restart(self) -> None:
        previous = self._restarting
        self._restarting = asyncio.get_running_loop().create_task(self._restart_https(previous))

    async def _restart_https(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous  # one restart after the other
        await asyncio.sleep(0.3)  # let the answer to the save go out first
        if self._https is None:
            return
        old, self._https = self._https, None
        await self._stop_one(old)
        if self.port_from_settings:
            self.port = int(self.ctx.store.get("web_server_port"))
        try:
            await self._start_https()
        except (OSError, ValueError) as exc:
            log.error("cannot serve the web pages on port %s: %s", self.port, exc)
            raise
        log.info("web pages now at %s", self.url)

    async def _serve(
        self, app: object, sock: socket.socket, ssl_context: ssl.SSLContext | None
    ) -> tuple[_Server, asyncio.Task[None], socket.socket]:
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=2,
            ssl_context_factory=(lambda _c, _d: ssl_context) if ssl_context else None,
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the web server did not start")
            await asyncio.sleep(0.01)
        return server, task, sock

    @staticmethod
    async def _stop_one(entry: tuple[_Server, asyncio.Task[None], socket.socket]) -> None:
        server, task, sock = entry
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 5)
        except TimeoutError:
            log.warning("the web server did not stop in time")
        except Exception:
            log.exception("the web server failed while stopping")
        sock.close()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._restarting is not None and not self._restarting.done():
            self._restarting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._restarting
        entries = [*self._servers, *([self._https] if self._https else [])]
        self._servers.clear()
        self._https = None
        for entry in entries:
            await self._stop_one(entry)

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def run_web(
    ctx: WebContext,
    *,
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    http_port: int | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    announce: bool = True,
) -> None:
    """Serve until cancelled; on first start print the setup URL and one-time token."""
    server = WebServer(
        ctx, data_dir=data_dir, host=host, port=port, http_port=http_port,
        certfile=certfile, keyfile=keyfile,
    )
    await server.start()
    try:
        if announce:
            print(f"sippa web pages: {server.url}", flush=True)
            print(f"  certificate SHA-256: {ctx.web_fingerprint}", flush=True)
            token = ctx.accounts.setup_token()
            if token is not None:
                print(
                    f"  first start: set the admin password at {server.url}setup "
                    f"with the one-time setup token {token}",
                    flush=True,
                )
        await asyncio.Event().wait()
    finally:
        await server.stop()


async def run_phone_web(
    phone: Phone,
    store: ConfigStore,
    *,
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    http_port: int | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    ca_files: tuple[Path, ...] = (),
    provisioning: ProvisioningService | None = None,
) -> None:
    """``sippa serve``'s web UI for a running phone, until cancelled."""
    accounts = Accounts(store)
    trust = TrustAnchors(custom_ca_dir(data_dir), extra_files=ca_files)
    ctx = WebContext(store, accounts, trust, PhoneAdapter(phone), provisioning=provisioning)
    try:
        await run_web(
            ctx, data_dir=data_dir, host=host, port=port, http_port=http_port,
            certfile=certfile, keyfile=keyfile,
        )
    finally:
        accounts.close()
