"""Start a third-party peer on loopback, wait until it listens, stop it by pid.

Every interop fixture goes through :func:`require_binary` and :class:`PeerProcess` so that:

- a missing peer skips the test on a developer machine but FAILS it in CI (``CI=true``);
- the peer only ever listens on 127.0.0.1, on ports the test picked (:func:`free_port`);
- the peer is stopped by its own pid at the end, even when the test fails.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import pytest

LOOPBACK = "127.0.0.1"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_binary(name: str, package: str) -> str:
    """Return the path of ``name``; skip (or fail in CI) when it is not installed."""
    path = shutil.which(name) or next(
        (p for d in ("/usr/sbin", "/sbin") if os.access(p := f"{d}/{name}", os.X_OK)), None
    )
    if path is None:
        message = (
            f"{name} not found: install the Debian package {package} "
            "(./scripts/test does, as root)"
        )
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_module(name: str, extra: str = "test") -> Any:
    """Import ``name``; skip (or fail in CI) when the Python package is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"{name} is not installed: pip install -e '.[{extra}]' (./scripts/test does)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def free_port(kind: int = socket.SOCK_STREAM, *, also_udp: bool = False) -> int:
    """A port that is free on 127.0.0.1 (for TCP, and for UDP too when ``also_udp``)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((LOOPBACK, 0))
            port = int(s.getsockname()[1])
        if port > 65000:
            continue
        if also_udp:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind((LOOPBACK, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port on loopback")


def free_port_block(count: int, *, udp: bool = True) -> int:
    """First port of ``count`` consecutive ports free on 127.0.0.1 for TCP (and UDP)."""
    for _ in range(200):
        base = free_port(also_udp=udp)
        if base + count > 65000:
            continue
        ok = True
        for p in range(base, base + count):
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,):
                with socket.socket(socket.AF_INET, kind) as s:
                    try:
                        s.bind((LOOPBACK, p))
                    except OSError:
                        ok = False
            if not ok:
                break
        if ok:
            return base
    raise RuntimeError(f"no block of {count} free ports on loopback")


def wait_tcp(port: int, timeout: float = 15.0, host: str = LOOPBACK) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


class PeerProcess:
    """One peer process, its log file and its pid. Use as a context manager."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log = log
        self.cwd = cwd
        self.env = dict(os.environ, **env) if env else None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> PeerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.argv[0]} exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}"
            )

    def log_text(self) -> str:
        return read_log(self.log)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the process group we started (by pid), SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)

    def __enter__(self) -> PeerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_listening(
    argv: list[str], log: Path, port: int, *, name: str, timeout: float = 10.0
) -> PeerProcess:
    """Start a peer and wait until it accepts TCP on ``port`` (it must stay alive meanwhile);
    on failure the peer is stopped and the error carries the tail of its log."""
    proc = PeerProcess(argv, log=log).start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            proc.check_alive()
            try:
                wait_tcp(port, timeout=0.2)
                return proc
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
    except BaseException:
        tail = proc.log_text()[-4000:]
        proc.stop()
        raise RuntimeError(f"{name} did not start; log tail:\n{tail}") from None


def read_log(path: Path) -> str:
    """A peer's log so far ("" before it wrote one)."""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


class PeerHarness:
    """Base of the peer wrappers: ``with Peer(...) as peer`` starts it and always stops it."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
