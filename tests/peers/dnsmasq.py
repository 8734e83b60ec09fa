"""dnsmasq (Debian ``dnsmasq-base``) serving the lab zone example.test on 127.0.0.1:<free port>.

The zone (``dns/dnsmasq.conf.in`` beside this module, adapted from the lab) holds the RFC 3263
records: NAPTR/SRV/A for example.test, the RFC 5922 SRV-redirection case redirect.example.test
-> evil.example.test:EVIL_PORT, srvonly (SRV, no NAPTR), aonly (A only); nothere.example.test
is NXDOMAIN and names outside example.test are REFUSED (nothing is ever forwarded).
The SRV records point at the Kamailio ports given at construction.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers.process import (
    LOOPBACK,
    PeerHarness,
    PeerProcess,
    free_port,
    read_log,
    require_binary,
    start_listening,
)

TEMPLATE = Path(__file__).parent / "dns" / "dnsmasq.conf.in"


@dataclass
class Dnsmasq(PeerHarness):
    """One dnsmasq instance; ``port`` is picked at construction (UDP and TCP)."""

    workdir: Path
    sip_port: int
    tls_port: int
    evil_port: int
    port: int = 0
    _proc: PeerProcess | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.port = self.port or free_port(also_udp=True)
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def conf(self) -> Path:
        return self.workdir / "dnsmasq.conf"

    @property
    def log(self) -> Path:
        return self.workdir / "dnsmasq.log"

    def render(self) -> str:
        text = TEMPLATE.read_text()
        for key, value in {
            "@DNS_IP@": LOOPBACK,
            "@DNS_PORT@": str(self.port),
            "@SIP_PORT@": str(self.sip_port),
            "@TLS_PORT@": str(self.tls_port),
            "@EVIL_PORT@": str(self.evil_port),
        }.items():
            text = text.replace(key, value)
        return text

    def start(self, timeout: float = 10.0) -> Dnsmasq:
        binary = require_binary("dnsmasq", "dnsmasq-base")
        self.conf.write_text(self.render())
        test = subprocess.run(
            [binary, "--test", f"--conf-file={self.conf}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if test.returncode != 0:
            raise RuntimeError(f"dnsmasq config check failed:\n{test.stdout}{test.stderr}")
        argv = [
            binary,
            f"--conf-file={self.conf}",
            "--keep-in-foreground",
            "--pid-file=",  # no pid file: we stop our own child by pid
            "--log-facility=-",  # log to stderr, captured in self.log
        ]
        self._proc = start_listening(argv, self.log, self.port, name="dnsmasq", timeout=timeout)
        return self

    def alive(self) -> bool:
        return (
            self._proc is not None
            and self._proc.proc is not None
            and (self._proc.proc.poll() is None)
        )

    def ensure_running(self) -> Dnsmasq:
        if not self.alive():
            self.stop()
            self.start()
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop()

    def log_text(self) -> str:
        return read_log(self.log)

    def describe(self) -> str:
        return (
            f"dnsmasq {LOOPBACK}:{self.port} (SRV ports sip={self.sip_port} "
            f"tls={self.tls_port} evil={self.evil_port})"
        )
