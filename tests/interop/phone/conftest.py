"""Phone interop fixtures: baresip instances (direct TLS, or registered to Kamailio) and a
small client for baresip's ``ctrl_tcp`` (netstring JSON) to make it dial and hang up."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sippa.app.phone import Phone, PhoneOptions
from sippa.app.store import ConfigStore
from tests.peers.baresip import Baresip
from tests.peers.process import LOOPBACK, free_port, free_port_block

TONE_BARESIP = 1000.0
TONE_SIPPA = 500.0


@dataclass
class RegisteredBaresip(Baresip):
    """baresip with an account registered to Kamailio (over UDP), trusting the lab CA."""

    account: str = ""

    def write_config(self) -> None:
        super().write_config()
        (self.workdir / "accounts").write_text(self.account + "\n")


def baresip_command(port: int, command: str, params: str = "", timeout: float = 5.0
                    ) -> dict[str, Any]:
    """One ctrl_tcp command; returns baresip's response object."""
    body = json.dumps({"command": command, "params": params, "token": "sippa"}).encode()
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(f"{len(body)}:".encode() + body + b",")
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            while b":" in buf:
                size_text, _, rest = buf.partition(b":")
                size = int(size_text)
                if len(rest) < size + 1:
                    break
                message, buf = json.loads(rest[:size]), rest[size + 1:]
                if message.get("response"):
                    return dict(message)
    raise TimeoutError(f"baresip did not answer {command!r}")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def make_baresip(workdir: Path, **kw: Any) -> Baresip:
    rtp = free_port_block(20)
    cls = RegisteredBaresip if "account" in kw else Baresip
    # the TLS listener is sip_port + 1: both must be free
    return cls(workdir, sip_port=free_port_block(2), ctrl_port=free_port(),
               rtp_min=rtp, rtp_max=rtp + 19, tone_hz=TONE_BARESIP, **kw)


@pytest.fixture
def baresip_tls(tmp_path: Path) -> Iterator[Baresip]:
    """baresip listening on TLS (its own CA in workdir/certs), SRTP mandatory, auto answer."""
    with make_baresip(tmp_path / "baresip", tls=True, mediaenc="srtp-mand") as peer:
        yield peer


def phone_store(**line1: Any) -> ConfigStore:
    store = ConfigStore(":memory:", lines=2)
    changes: dict[tuple[str, int], Any] = {
        ("rtp_port_min", 0): 46000, ("rtp_port_max", 0): 47999,
        ("line_enable", 1): True, ("user_id", 1): "alice",
    }
    changes.update({(k, 1): v for k, v in line1.items()})
    store.update(changes)
    return store


def phone_for(store: ConfigStore, **options: Any) -> Phone:
    return Phone(store, PhoneOptions(system_ca=False, history=False, **options))


class BaresipEvents:
    """Collects baresip's ctrl_tcp events (CALL_INCOMING, CALL_DTMF_START, ...) in a thread."""

    def __init__(self, port: int) -> None:
        import threading

        self.events: list[dict[str, Any]] = []
        self._sock = socket.create_connection((LOOPBACK, port), timeout=5)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b":" in buf:
                size_text, _, rest = buf.partition(b":")
                size = int(size_text)
                if len(rest) < size + 1:
                    break
                message, buf = json.loads(rest[:size]), rest[size + 1:]
                if message.get("event"):
                    self.events.append(dict(message))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("type") == kind]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


def finished_recording(peer: Baresip, timeout: float = 5.0) -> Path:
    """baresip's latest ``*-dec.wav`` once it is complete (written when the call closes)."""
    import wave

    def complete() -> bool:
        recs = peer.recordings()
        if not recs:
            return False
        try:
            with wave.open(str(recs[-1]), "rb") as w:
                return w.getnframes() > 0
        except (wave.Error, EOFError):
            return False

    wait_for(complete, timeout, "baresip's recording")
    return peer.recordings()[-1]
