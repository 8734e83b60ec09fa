"""Kamailio 5.6 (Debian ``kamailio`` + ``kamailio-tls-modules``) as registrar for interop tests.

Adapted from the lab recipe: ``kamailio/kamailio.cfg`` and ``kamailio/tls.cfg.in`` beside this
module, certificates from :mod:`tests.peers.certs`. It listens on 127.0.0.1 only, on ports the
test picked: UDP+TCP ``sip_port``, TLS ``tls_port`` (cert sip.example.test), TLS ``evil_port``
(cert evil.example.test only), binrpc ``ctl_port`` (kamcmd).

Every digest authentication is logged as
``LAB-AUTH OK user=alice method=REGISTER alg=SHA-256 verified-by=auth-module src=... proto=tls``
(:meth:`Kamailio.auth_log` parses those lines) and the REGISTER 200 OK carries ``X-Lab-Auth``.

Gotchas handled here (see the lab README): Kamailio forks workers, and stopping it while they
are still forking can orphan its TCP main process, so :meth:`start` waits until every worker
listed by ``kamcmd core.psx`` exists, and :meth:`stop` signals the whole process group and then
the recorded workers. Kamailio 5.6 crashes under concurrent TLS connection churn: keep TLS tests
against it sequential.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.peers.certs import LabCerts
from tests.peers.process import (
    LOOPBACK,
    PeerHarness,
    PeerProcess,
    free_port,
    in_ci,
    read_log,
    require_binary,
    wait_tcp,
)

HERE = Path(__file__).parent / "kamailio"

# AUTH_MODE -> (first challenge: the auth module's native algorithm, optional second challenge
# built by the config script with the algorithm swapped)
AUTH_MODES: dict[str, tuple[str, str | None]] = {
    "sha256-md5": ("SHA-256", "MD5"),  # RFC 8760 order
    "md5-sha256": ("MD5", "SHA-256"),
    "sha256": ("SHA-256", None),
    "md5": ("MD5", None),
}

USERS = {
    "alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret",
    "555": "555-secret",  # a number: dial-plan tests
}
REALM = "example.test"

_AUTH_RE = re.compile(r"LAB-AUTH (OK|FAIL) (.*)$")


@dataclass(frozen=True)
class AuthLogEntry:
    """One ``LAB-AUTH`` line of Kamailio's log."""

    ok: bool
    fields: dict[str, str]
    line: str

    @property
    def user(self) -> str | None:
        return self.fields.get("user")

    @property
    def method(self) -> str | None:
        return self.fields.get("method")

    @property
    def alg(self) -> str | None:
        return self.fields.get("alg")

    @property
    def proto(self) -> str | None:
        return self.fields.get("proto")


def parse_auth_line(line: str) -> AuthLogEntry | None:
    m = _AUTH_RE.search(line)
    if m is None:
        return None
    fields = dict(re.findall(r"([A-Za-z-]+)=(\S+)", m.group(2)))
    return AuthLogEntry(ok=m.group(1) == "OK", fields=fields, line=line)


@dataclass
class KamailioSettings:
    """How to run Kamailio (the lab's start.sh environment variables)."""

    auth_mode: str = "sha256-md5"
    tls_method: str = "TLSv1.2+"
    # None = OpenSSL defaults; e.g. "secp192r1:secp224r1" restricts the server via OPENSSL_CONF
    tls_groups: str | None = None
    tls_max_proto: str = "TLSv1.2"
    tls_ciphers: str = "ECDHE:@SECLEVEL=0"
    workers: int = 4
    mwi: bool = False
    """Also a message-summary presence server (presence + presence_mwi over db_text)."""
    blf: bool = False
    """Also a dialog presence server (presence_dialoginfo) fed by pua_dialoginfo with the
    calls it relays (RFC 4235 busy lamp field)."""
    # RFC 4028: load dialog + sst and answer 422 to INVITEs asking less than this Min-SE
    sst_min_se: int | None = None

    def key(self) -> tuple[object, ...]:
        return (
            self.mwi,
            self.blf,
            self.sst_min_se,
            self.auth_mode,
            self.tls_method,
            self.tls_groups,
            self.tls_max_proto,
            self.tls_ciphers,
            self.workers,
        )


@dataclass
class Kamailio(PeerHarness):
    """One Kamailio instance in ``workdir`` (config, logs); ports are picked at construction."""

    workdir: Path
    certs: LabCerts
    settings: KamailioSettings = field(default_factory=KamailioSettings)
    sip_port: int = 0
    tls_port: int = 0
    evil_port: int = 0
    ctl_port: int = 0
    _proc: PeerProcess | None = None
    _workers: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.settings.auth_mode not in AUTH_MODES:
            raise ValueError(f"unknown auth_mode {self.settings.auth_mode!r}")
        self.sip_port = self.sip_port or free_port(also_udp=True)
        taken = {self.sip_port}
        for name in ("tls_port", "evil_port", "ctl_port"):
            if not getattr(self, name):
                port = free_port()
                while port in taken:
                    port = free_port()
                setattr(self, name, port)
            taken.add(getattr(self, name))
        self.workdir.mkdir(parents=True, exist_ok=True)

    # -- paths and addresses ---------------------------------------------------------------
    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def log(self) -> Path:
        return self.workdir / "kamailio.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.proc else None

    @property
    def ctl_addr(self) -> str:
        return f"tcp:{LOOPBACK}:{self.ctl_port}"

    def _write_config(self) -> tuple[list[str], dict[str, str]]:
        s = self.settings
        template = (HERE / "tls.cfg.in").read_text()
        values = {
            "@TLS_METHOD@": s.tls_method,
            "@SIP_IP@": LOOPBACK,
            "@EVIL_PORT@": str(self.evil_port),
            "@SERVER_KEY@": str(self.certs.server.key),
            "@SERVER_CERT@": str(self.certs.server.cert),
            "@EVIL_KEY@": str(self.certs.evil.key),
            "@EVIL_CERT@": str(self.certs.evil.cert),
            "@CA_CERT@": str(self.certs.ca.cert),
        }
        for k, v in values.items():
            template = template.replace(k, v)
        tls_cfg = self.workdir / "tls.cfg"
        tls_cfg.write_text(template)
        native, second = AUTH_MODES[s.auth_mode]
        defines = {
            "SIP_IP": LOOPBACK,
            "SIP_PORT": str(self.sip_port),
            "TLS_PORT": str(self.tls_port),
            "EVIL_PORT": str(self.evil_port),
            "CTL_ADDR": f'"{self.ctl_addr}"',
            "TLS_CFG": f'"{tls_cfg}"',
            "NATIVE_ALG": f'"{native}"',
            "WORKERS": str(s.workers),
        }
        if second:
            defines["SECOND_ALG"] = f'"{second}"'
        if s.mwi:
            defines["WITH_MWI"] = "1"
        if s.blf:
            defines["WITH_BLF"] = "1"
            defines["PRESENCE_SERVER"] = f'"sip:{LOOPBACK}:{self.sip_port}"'
        if s.mwi or s.blf:
            defines["DB_URL"] = f'"text://{self._presence_tables()}"'
        if s.sst_min_se is not None:
            defines["SST_MIN_SE"] = str(s.sst_min_se)
        args: list[str] = []
        for k, v in defines.items():
            args += ["-A", f"{k}={v}"]
        env: dict[str, str] = {}
        if s.tls_groups:
            # Kamailio 5.6 has no groups parameter, but its tls module loads the OpenSSL config
            cnf = self.workdir / "openssl.cnf"
            cnf.write_text(
                "openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n"
                "[ssl_sect]\nsystem_default = system_default_sect\n[system_default_sect]\n"
                f"Groups = {s.tls_groups}\nCipherString = {s.tls_ciphers}\n"
                f"MaxProtocol = {s.tls_max_proto}\n"
            )
            env["OPENSSL_CONF"] = str(cnf)
        return args, env

    def _presence_tables(self) -> Path:
        """A fresh db_text directory with the presence tables (from the Debian package)."""
        source = Path("/usr/share/kamailio/dbtext/kamailio")
        tables = self.workdir / "dbtext"
        if tables.exists():
            shutil.rmtree(tables)
        tables.mkdir()
        for name in ("version", "presentity", "active_watchers", "watchers", "pua"):
            if not (source / name).is_file():
                message = f"{source / name} missing: install kamailio (db_text tables)"
                if in_ci():
                    pytest.fail(message)
                pytest.skip(message)
            shutil.copy(source / name, tables / name)
        return tables

    def publish_mwi(self, user: str, body: bytes, expires: int = 3600) -> str:
        """PUBLISH a message summary for ``user@example.test`` (over UDP, as the voicemail
        system would); returns Kamailio's status line."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((LOOPBACK, 0))
            sock.settimeout(5.0)
            port = sock.getsockname()[1]
            tag = os.urandom(6).hex()
            msg = (
                f"PUBLISH sip:{user}@{REALM} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bK{tag};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:voicemail@{REALM}>;tag={tag}\r\n"
                f"To: <sip:{user}@{REALM}>\r\nCall-ID: pub-{tag}@{LOOPBACK}\r\n"
                f"CSeq: 1 PUBLISH\r\nEvent: message-summary\r\nExpires: {expires}\r\n"
                f"Content-Type: application/simple-message-summary\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            sock.sendto(msg, (LOOPBACK, self.sip_port))
            while True:
                data = sock.recv(65535)
                status = data.split(b"\r\n", 1)[0].decode(errors="replace")
                if not status.startswith("SIP/2.0 1"):
                    return status

    # -- life cycle --------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> Kamailio:
        binary = require_binary("kamailio", "kamailio")
        kamcmd = require_binary("kamcmd", "kamailio")
        if not any(Path("/usr/lib").glob("*/kamailio/modules/tls.so")):
            message = "Kamailio's tls.so missing: install the Debian package kamailio-tls-modules"
            if in_ci():
                pytest.fail(message)
            pytest.skip(message)
        if (self.settings.mwi or self.settings.blf) and not any(
            Path("/usr/lib").glob("*/kamailio/modules/presence_mwi.so")
        ):
            message = (
                "Kamailio's presence_mwi.so missing: install the Debian package "
                "kamailio-presence-modules"
            )
            if in_ci():
                pytest.fail(message)
            pytest.skip(message)
        args, env = self._write_config()
        cfg = str(HERE / "kamailio.cfg")
        run_dir = self.workdir / "run"
        run_dir.mkdir(exist_ok=True)
        check = subprocess.run(
            [binary, "-c", "-f", cfg, *args],
            env=dict(os.environ, **env),
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise RuntimeError(f"kamailio config check failed:\n{check.stdout}{check.stderr}")
        with self.log.open("a") as f:
            f.write(f"=== start {time.strftime('%F %T')} {self.settings}\n")
        argv = [binary, "-f", cfg, *args, "-DD", "-E", "-Y", str(run_dir), "-m", "64", "-M", "8"]
        self._proc = PeerProcess(argv, log=self.log, env=env or None).start()
        deadline = time.monotonic() + timeout
        try:
            for port in (self.sip_port, self.tls_port, self.evil_port):
                self._proc.check_alive()
                wait_tcp(port, timeout=max(0.1, deadline - time.monotonic()))
            while True:
                self._proc.check_alive()
                psx = subprocess.run(
                    [kamcmd, "-s", self.ctl_addr, "core.psx"],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if psx.returncode == 0:
                    want = psx.stdout.count("PID:") - 1
                    workers = _children(self._proc.pid)
                    if want > 0 and len(workers) >= want:
                        self._workers = workers
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"kamailio workers not all up after {timeout} s")
                time.sleep(0.1)
        except BaseException:
            log = self.log_text()[-4000:]
            self.stop()
            raise RuntimeError(f"kamailio did not start; log tail:\n{log}") from None
        return self

    def stop(self) -> None:
        """SIGTERM the process group, then the recorded workers; SIGKILL what is left."""
        proc, self._proc = self._proc, None
        if proc is None or proc.proc is None:
            return
        pgid = proc.pid
        workers = sorted(set(self._workers) | set(_children(pgid)))
        proc.stop(timeout=5.0)  # SIGTERM to the group while the main process lives
        if any(_alive(p, pgid) for p in workers):
            # the main process had died (crash) or left workers behind: signal them too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(_alive(p, pgid) for p in workers):
            time.sleep(0.05)
        for p in workers:
            if _alive(p, pgid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
        self._workers = []

    def alive(self) -> bool:
        """True while the main process runs (it may have crashed, e.g. under TLS churn)."""
        return (
            self._proc is not None
            and self._proc.proc is not None
            and (self._proc.proc.poll() is None)
        )

    def ensure_running(self) -> Kamailio:
        """Start again (same ports) if a previous test stopped it or it crashed."""
        if not self.alive():
            if self._proc is not None:
                with self.log.open("a") as f:
                    f.write("=== kamailio found dead: restarting\n")
            self.stop()
            self.start()
        return self

    def restart(self) -> Kamailio:
        """Stop and start again on the SAME ports (re-registration tests)."""
        self.stop()
        return self.start()

    # -- logs ------------------------------------------------------------------------------
    def log_text(self) -> str:
        return read_log(self.log)

    def log_mark(self) -> int:
        """A position in the log; pass it to :meth:`log_lines`/:meth:`auth_log` later."""
        try:
            return self.log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_lines(self, since: int = 0) -> list[str]:
        try:
            with self.log.open("rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def auth_log(self, since: int = 0) -> list[AuthLogEntry]:
        """Every ``LAB-AUTH`` line logged after ``since`` (see :meth:`log_mark`)."""
        return [e for line in self.log_lines(since) if (e := parse_auth_line(line))]

    def wait_auth(self, since: int, timeout: float = 5.0, *, ok: bool = True) -> AuthLogEntry:
        """Wait for the first LAB-AUTH line (OK by default) logged after ``since``."""
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.auth_log(since):
                if entry.ok == ok:
                    return entry
            if time.monotonic() > deadline:
                raise TimeoutError(f"no LAB-AUTH {'OK' if ok else 'FAIL'} line in {timeout} s")
            time.sleep(0.05)

    def describe(self) -> str:
        return (
            f"kamailio pid={self.pid} udp+tcp {LOOPBACK}:{self.sip_port} tls :{self.tls_port} "
            f"evil-tls :{self.evil_port} ctl :{self.ctl_port} {self.settings}"
        )


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc; no process is matched by name)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces, split after the last ')'
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid):
            out.append(int(entry.name))
    return sorted(out)


def _alive(pid: int, pgid: int) -> bool:
    """True while ``pid`` exists, is not a zombie and is still in our process group."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[0] != "Z" and fields[2] == str(pgid)
