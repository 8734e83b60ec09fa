"""``openssl s_server`` (Debian ``openssl``) as a deliberately bad (or good) TLS server.

Each profile in :data:`PROFILES` is one server the TLS client policy must refuse or accept:
weak ECDHE groups only, TLS 1.0/1.1 only, and the certificate variants of
:mod:`tests.peers.certs`. The server listens on 127.0.0.1:<free port> and serves one
connection after the other for as long as it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.peers.certs import CertPair, LabCerts
from tests.peers.process import (
    LOOPBACK,
    PeerHarness,
    PeerProcess,
    free_port,
    read_log,
    require_binary,
    start_listening,
)

# @SECLEVEL=0 lets Debian's OpenSSL (default level 2) really speak TLS 1.0/1.1 and weak groups;
# ECDHE-only cipher suites so that a client refusing the weak group cannot fall back to
# static-RSA key exchange (the lab found that fallback silently "succeeds").
WEAK_GROUP_ARGS = ("-tls1_2", "-groups", "secp192r1:secp224r1", "-cipher", "ECDHE:@SECLEVEL=0")
OLD_TLS_ARGS = ("-no_tls1_2", "-no_tls1_3", "-cipher", "DEFAULT:@SECLEVEL=0")


@dataclass(frozen=True)
class ServerProfile:
    """Which certificate the server presents and extra ``s_server`` arguments."""

    cert: str  # attribute name in LabCerts: server, evil, expired, ...
    args: tuple[str, ...] = ()


PROFILES: dict[str, ServerProfile] = {
    "good": ServerProfile("server"),
    "good-tls12": ServerProfile("server", ("-tls1_2",)),
    "weak-groups": ServerProfile("server", WEAK_GROUP_ARGS),
    "old-tls": ServerProfile("server", OLD_TLS_ARGS),
    "expired": ServerProfile("expired"),
    "not-yet-valid": ServerProfile("not_yet_valid"),
    "self-signed": ServerProfile("self_signed"),
    "unknown-ca": ServerProfile("unknown_ca"),
    "wrong-name": ServerProfile("evil"),
}


@dataclass
class OpensslServer(PeerHarness):
    """``openssl s_server`` on 127.0.0.1:``port`` presenting ``pair``."""

    workdir: Path
    pair: CertPair
    args: tuple[str, ...] = ()
    name: str = "s_server"
    port: int = 0
    _proc: PeerProcess | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_profile(cls, workdir: Path, certs: LabCerts, profile: str) -> OpensslServer:
        p = PROFILES[profile]
        pair: CertPair = getattr(certs, p.cert)
        return cls(workdir / profile, pair, p.args, name=profile)

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def log(self) -> Path:
        return self.workdir / "s_server.log"

    def start(self, timeout: float = 10.0) -> OpensslServer:
        binary = require_binary("openssl", "openssl")
        argv = [
            binary,
            "s_server",
            "-accept",
            f"{LOOPBACK}:{self.port}",
            "-cert",
            str(self.pair.cert),
            "-key",
            str(self.pair.key),
            "-www",  # answer HTTP GETs, never read stdin (which would close each connection)
            *self.args,
        ]
        self._proc = start_listening(
            argv, self.log, self.port, name="openssl s_server", timeout=timeout
        )
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop()

    def log_text(self) -> str:
        return read_log(self.log)

    def describe(self) -> str:
        return f"openssl s_server[{self.name}] {LOOPBACK}:{self.port} {' '.join(self.args)}"
