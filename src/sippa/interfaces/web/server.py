"""Serving the web app: HTTPS with the phone's TLS policy, and an optional HTTP redirect port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from starlette.types import Receive, Scope, Send

from sippa.app.accounts import Accounts
from sippa.app.phone import Phone
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
        self.port = int(ctx.store.get("web_server_port")) if port is None else port
        self.http_port = http_port
        self.certfile, self.keyfile = certfile, keyfile
        self._servers: list[tuple[_Server, asyncio.Task[None], socket.socket]] = []

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in {"0.0.0.0", "[::]"}:  # noqa: S104 - showing where to connect
            host = "localhost"
        return f"https://{host}:{self.port}/"

    async def start(self) -> None:
        # imported here: only serving needs the certificate tools of sippa.app
        from sippa.app.webserver import ensure_certificate, server_context  # noqa: PLC0415

        if self.certfile is None or self.keyfile is None:
            self.certfile, self.keyfile = ensure_certificate(self.data_dir)
        cert = x509.load_pem_x509_certificate(Path(self.certfile).read_bytes())
        self.ctx.web_fingerprint = ":".join(
            f"{b:02X}" for b in cert.fingerprint(hashes.SHA256())
        )
        tls = server_context(
            Path(self.certfile), Path(self.keyfile),
            min_version=str(self.ctx.store.get("tls_server_min_version")),
        )
        app = create_app(self.ctx)
        sock = _listen(self.host, self.port)
        self.port = sock.getsockname()[1]
        await self._serve(app, sock, ssl_context=tls)
        if self.http_port is not None:
            plain = _listen(self.host, self.http_port)
            self.http_port = plain.getsockname()[1]
            await self._serve(redirect_app(self.port), plain, ssl_context=None)
        log.info("web pages at %s", self.url)

    async def _serve(self, app: object, sock: socket.socket, *, ssl_context: object) -> None:
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=2,
            ssl_context_factory=(lambda _c, _d: ssl_context) if ssl_context else None,  # type: ignore[arg-type,return-value]
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the web server did not start")
            await asyncio.sleep(0.01)
        self._servers.append((server, task, sock))

    async def stop(self) -> None:
        for server, _, _ in self._servers:
            server.should_exit = True
        for _, task, sock in self._servers:
            try:
                await asyncio.wait_for(task, 5)
            except TimeoutError:
                log.warning("the web server did not stop in time")
            except Exception:
                log.exception("the web server failed while stopping")
            sock.close()
        self._servers.clear()

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
) -> None:
    """``sippa serve``'s web UI for a running phone, until cancelled."""
    accounts = Accounts(store)
    trust = TrustAnchors(custom_ca_dir(data_dir), extra_files=ca_files)
    ctx = WebContext(store, accounts, trust, PhoneAdapter(phone))
    try:
        await run_web(
            ctx, data_dir=data_dir, host=host, port=port, http_port=http_port,
            certfile=certfile, keyfile=keyfile,
        )
    finally:
        accounts.close()
