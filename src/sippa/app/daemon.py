"""``sippa serve``: the phone as a service, and the same set-up for one-shot CLI commands.

:class:`PhoneRuntime` opens the settings database, starts the built-in echo service (a
loopback TLS+SRTP user that answers and echoes, see :mod:`sippa.app.echo`), gives the phone
its own TLS certificate (self-signed, for incoming TLS calls) and starts it. :func:`serve`
adds the control socket and runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sippa import __version__
from sippa.app.control import Controller, serve_control
from sippa.app.echo import EchoService, make_self_signed
from sippa.app.phone import Phone, PhoneOptions
from sippa.app.provisioning import ProvisioningService, phone_provisioning
from sippa.app.store import ConfigStore, default_database_path
from sippa.app.updates import lines_health_check, reexec_restart

__all__ = ["PhoneRuntime", "RuntimeOptions", "default_control_path", "serve"]

log = logging.getLogger(__name__)


def default_control_path(db: Path) -> Path:
    """The control socket beside the database."""
    return db.parent / "sippa.sock"


@dataclass(slots=True)
class RuntimeOptions:
    db: Path | None = None
    """Settings database (default: ``sippa.db`` in the user's data directory)."""
    host: str = "127.0.0.1"
    sip_port: int = 0
    """UDP and TCP port (0: any free port)."""
    tls_port: int = 0
    echo: bool = True
    """Run the built-in echo service."""
    ca_files: tuple[Path, ...] = ()
    dns: str | None = None

    @property
    def database(self) -> Path:
        return self.db or default_database_path()


class PhoneRuntime:
    """Store + echo service + phone, started and stopped together."""

    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.store: ConfigStore | None = None
        self.echo: EchoService | None = None
        self.phone: Phone | None = None
        self.provisioning: ProvisioningService | None = None

    async def start(self) -> Phone:
        opts = self.options
        db = opts.database
        self.store = ConfigStore(db)
        data = db.parent
        phone_options = PhoneOptions(
            host=opts.host, udp_port=opts.sip_port, tcp_port=opts.sip_port,
            tls_port=opts.tls_port, ca_files=list(opts.ca_files), dns=opts.dns,
            ca_dir=data / "ca",
        )
        own = make_self_signed(data / "tls", opts.host, stem="phone", common_name="sippa phone")
        phone_options.tls_cert, phone_options.tls_key = own.cert, own.key
        if opts.echo:
            self.echo = EchoService(data / "tls", host=opts.host)
            await self.echo.start()
            phone_options.extra_ca_pem.append(self.echo.pem)
            phone_options.aliases["echo"] = self.echo.uri
        self.phone = Phone(self.store, phone_options)
        await self.phone.start()
        phone = self.phone
        # Profile/CA/Upgrade rules; an authenticated NOTIFY Event: resync resyncs (phone.on_resync)
        self.provisioning = phone_provisioning(
            self.store, data_dir=data, ca_files=opts.ca_files, software_version=__version__,
            is_busy=lambda: any(not c.is_over for c in phone.calls.values()),
            ip=lambda: opts.host,
            # a signed update re-executes the daemon; healthy = every line registers again
            restart=reexec_restart(),
            health_check=lines_health_check(lambda: phone.status()["lines"]),
            on_trust_change=phone.reload_trust,
        )
        await self.provisioning.start()
        phone.on_resync = self.provisioning.on_resync_notify
        return self.phone

    async def stop(self) -> None:
        if self.provisioning is not None:
            await self.provisioning.stop()
        if self.phone is not None:
            await self.phone.stop()
        if self.echo is not None:
            await self.echo.stop()
        if self.store is not None:
            self.store.close()

    async def __aenter__(self) -> PhoneRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(
    options: RuntimeOptions,
    control: Path | None = None,
    *,
    ready: Callable[[PhoneRuntime, Path], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the phone and its control socket until ``stop`` is set or SIGINT/SIGTERM."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runtime = PhoneRuntime(options)
    path = control or default_control_path(options.database)
    server: asyncio.AbstractServer | None = None
    try:
        phone = await runtime.start()
        assert runtime.store is not None
        server = await serve_control(Controller(phone, runtime.store), path)
        if ready is not None:
            ready(runtime, path)
        await stop.wait()
    finally:
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        await runtime.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
