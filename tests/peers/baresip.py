"""baresip 1.0 (Debian ``baresip-core``) as an interop peer, plus a tiny test-only SIP UAC.

- :class:`Baresip` writes a headless configuration (``baresip/config.in``), a tone WAV it
  sends into every call, optional TLS certificates, starts baresip on 127.0.0.1 on ports the
  test chose and stops it by pid. What it received is recorded to ``rec/*-dec.wav``.
- :class:`ProbeCall` sends ONE hand-made INVITE over UDP with an SDP offer, ACKs the answer
  and sends BYE (adapted from the interop lab's ``sdp-probe.py``). It is NOT the product's
  SIP stack: it exists so media tests do not depend on it.
- :func:`make_offer` / :func:`parse_answer` build and read just enough SDP for that.

Lab findings this relies on: baresip in ``srtp-mand`` mode accepts RTP/SAVP offers with
AES_CM_128_HMAC_SHA1_80/_32, AEAD_AES_128_GCM and AEAD_AES_256_GCM, picks the first supported
a=crypto line and answers with its tag; it sends one clear 16-byte RTCP APP "PING" before its
SRTCP starts; the Request-URI user must equal the account user.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
import secrets
import socket
import string
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.peers.process import LOOPBACK, PeerHarness, PeerProcess, require_binary, wait_tcp

HERE = Path(__file__).parent / "baresip"
_MODULE_DIRS = (
    "/usr/lib/baresip/modules",
    "/usr/lib/x86_64-linux-gnu/baresip/modules",
    "/usr/lib/aarch64-linux-gnu/baresip/modules",
    "/usr/local/lib/baresip/modules",
)
_ANSI = re.compile(rb"\x1b\[[0-9;]*m")


def module_path() -> str:
    for d in _MODULE_DIRS:
        if Path(d, "g711.so").is_file():
            return d
    raise RuntimeError("baresip modules (g711.so) not found; install baresip-core")


def write_tone_wav(path: Path, hz: float, seconds: float, rate: int = 8000) -> None:
    """An 8 kHz mono 16-bit sine at half scale (what aufile needs)."""
    n = np.arange(int(seconds * rate))
    pcm = (np.sin(2 * np.pi * hz * n / rate) * 16383).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def make_certs(out: Path) -> None:
    """A private test CA and one leaf for 127.0.0.1/localhost (the lab's make-certs.sh)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sippa test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ua.example.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("ua.example.test"),
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (out / "ca.pem").write_bytes(ca.public_bytes(pem))
    (out / "ua.pem").write_bytes(leaf.public_bytes(pem))
    # baresip's sip_certificate wants certificate and key in one file.
    (out / "ua-combined.pem").write_bytes(leaf.public_bytes(pem) + key_pem)


@dataclass
class Baresip(PeerHarness):
    """One headless baresip instance. Use as a context manager."""

    workdir: Path
    sip_port: int
    ctrl_port: int
    rtp_min: int
    rtp_max: int
    user: str = "ua"
    mediaenc: str = "srtp-mand"
    """srtp-mand (RTP/SAVP), srtp-mandf (RTP/SAVPF), srtp (optional) or none."""
    tone_hz: float = 1000.0
    tone_seconds: float = 120.0
    codecs: str = "PCMU,PCMA"
    rtcp_mux: bool = False
    answermode: str = "auto"
    tls: bool = False
    """Also listen for SIP over TLS on sip_port + 1 (certificates in workdir/certs)."""
    siptrace: bool = True

    def __post_init__(self) -> None:
        self.binary = require_binary("baresip", "baresip-core")
        self.process: PeerProcess | None = None

    @property
    def tls_port(self) -> int:
        return self.sip_port + 1

    @property
    def rec_dir(self) -> Path:
        return self.workdir / "rec"

    @property
    def log(self) -> Path:
        return self.workdir / "baresip.log"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rec_dir.mkdir(exist_ok=True)
        tls_lines = ""
        if self.tls:
            make_certs(self.workdir / "certs")
            tls_lines = "sip_certificate\t\tcerts/ua-combined.pem\nsip_cafile\t\tcerts/ca.pem"
        template = string.Template((HERE / "config.in").read_text())
        (self.workdir / "config").write_text(
            template.substitute(
                sip_port=self.sip_port,
                tls_lines=tls_lines,
                rtp_min=self.rtp_min,
                rtp_max=self.rtp_max,
                rtcp_mux="yes" if self.rtcp_mux else "no",
                module_path=module_path(),
                ctrl_port=self.ctrl_port,
            )
        )
        menc = "" if self.mediaenc == "none" else f";mediaenc={self.mediaenc}"
        (self.workdir / "accounts").write_text(
            f"<sip:{self.user}@{LOOPBACK}>;regint=0;answermode={self.answermode}"
            f"{menc};audio_codecs={self.codecs}\n"
        )
        (self.workdir / "contacts").write_text("")
        write_tone_wav(self.workdir / "source.wav", self.tone_hz, self.tone_seconds)

    def start(self, timeout: float = 15.0) -> Baresip:
        self.write_config()
        argv = [self.binary, "-f", ".", "-v"]
        if self.siptrace:
            argv.insert(3, "-s")
        self.process = PeerProcess(argv, log=self.log, cwd=self.workdir).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.process.check_alive()
            if b"baresip is ready" in self.log_bytes():
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise TimeoutError(f"baresip not ready after {timeout} s:\n{self.log_text()[-3000:]}")
        wait_tcp(self.ctrl_port, timeout=max(1.0, deadline - time.monotonic()))
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def log_bytes(self) -> bytes:
        try:
            return self.log.read_bytes()
        except FileNotFoundError:
            return b""

    def log_text(self) -> str:
        return _ANSI.sub(b"", self.log_bytes()).decode(errors="replace")

    def recordings(self, kind: str = "dec") -> list[Path]:
        """rec/dump-*-{dec,enc}.wav, oldest first (``dec``: what baresip received)."""
        return sorted(self.rec_dir.glob(f"*-{kind}.wav"), key=lambda p: p.stat().st_mtime)



# --- SDP just sufficient for the probe (the product has its own SDP layer) ---


def make_offer(
    rtp_port: int,
    crypto: list[tuple[int, str, bytes]],
    *,
    proto: str = "RTP/SAVP",
    host: str = LOOPBACK,
    rtcp_mux: bool = False,
) -> str:
    """An audio offer: PCMU/PCMA (+ telephone-event 101), one a=crypto per (tag, suite, key)."""
    lines = [
        "v=0",
        f"o=- {secrets.randbelow(2**31)} 1 IN IP4 {host}",
        "s=sippa-test",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=audio {rtp_port} {proto} 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    ]
    if rtcp_mux:
        lines.append("a=rtcp-mux")
    for tag, suite, key in crypto:
        lines.append(f"a=crypto:{tag} {suite} inline:{base64.b64encode(key).decode()}")
    return "\r\n".join(lines) + "\r\n"


@dataclass
class Answer:
    host: str
    port: int
    proto: str
    payload_types: list[int]
    crypto: list[tuple[int, str, bytes]]
    rtcp_port: int | None
    rtcp_mux: bool
    direction: str


def parse_answer(sdp: str) -> Answer:
    host, port, proto, pts = LOOPBACK, 0, "", []
    crypto: list[tuple[int, str, bytes]] = []
    rtcp_port = None
    mux = False
    direction = "sendrecv"
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("c=IN IP4 "):
            host = line.split()[2]
        elif line.startswith("m=audio "):
            parts = line.split()
            port, proto, pts = int(parts[1]), parts[2], [int(p) for p in parts[3:]]
        elif line.startswith("a=crypto:"):
            tag, suite, keyparams = line[len("a=crypto:") :].split()[:3]
            key = keyparams.split(":", 1)[1].split("|")[0]
            crypto.append((int(tag), suite, base64.b64decode(key)))
        elif line.startswith("a=rtcp:"):
            rtcp_port = int(line[len("a=rtcp:") :].split()[0])
        elif line == "a=rtcp-mux":
            mux = True
        elif line[2:] in ("sendrecv", "sendonly", "recvonly", "inactive") and line[:2] == "a=":
            direction = line[2:]
    return Answer(host, port, proto, pts, crypto, rtcp_port, mux, direction)


# --- one UDP INVITE dialog, by hand ---


def _token(n: int = 10) -> str:
    return secrets.token_hex(n // 2 + 1)[:n]


class ProbeCall:
    """INVITE/ACK/BYE over UDP to a UA on loopback (test-only helper, blocking)."""

    def __init__(self, port: int, user: str, host: str = LOOPBACK) -> None:
        self.host, self.port, self.user = host, port, user
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.local_port = self.sock.getsockname()[1]
        self.call_id = f"{_token(16)}@{LOOPBACK}"
        self.from_tag = _token(8)
        self.ruri = f"sip:{user}@{host}:{port}"
        self.to = f"<{self.ruri}>"
        self.remote_target = self.ruri
        self.cseq = 0
        self.status: int | None = None
        self.answer: str = ""

    def _send(self, method: str, cseq: int, uri: str, branch: str, body: str = "") -> None:
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {LOOPBACK}:{self.local_port};branch=z9hG4bK{branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:probe@{LOOPBACK}>;tag={self.from_tag}",
            f"To: {self.to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:probe@{LOOPBACK}:{self.local_port}>",
            "User-Agent: sippa-test-probe",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        data = ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
        self.sock.sendto(data, (self.host, self.port))

    def _final(self, method: str, timeout: float) -> tuple[int, dict[str, str], str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode(errors="replace").split("\r\n")
            if not lines[0].startswith("SIP/2.0 "):
                continue  # a request from the UA (its BYE); not needed here
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), value.strip())
            if method not in headers.get("cseq", ""):
                continue
            code = int(lines[0].split()[1])
            if code >= 200:
                return code, headers, body.decode(errors="replace")
        raise TimeoutError(f"no final response to {method}")

    def invite(self, offer: str, timeout: float = 8.0) -> tuple[int, str]:
        """Send the INVITE; ACK the final response. Returns (status, answer SDP)."""
        self.cseq += 1
        branch = _token(12)
        self._send("INVITE", self.cseq, self.ruri, branch, offer)
        code, headers, body = self._final("INVITE", timeout)
        self.status = code
        self.to = headers.get("to", self.to)
        if 200 <= code < 300:
            contact = headers.get("contact", f"<{self.ruri}>")
            if "<" in contact:
                contact = contact[contact.find("<") + 1 : contact.find(">")]
            self.remote_target = contact
            self._send("ACK", self.cseq, self.remote_target, _token(12))
            self.answer = body
        else:
            self._send("ACK", self.cseq, self.ruri, branch)  # non-2xx ACK: same branch
        return code, body

    def bye(self, timeout: float = 3.0) -> int:
        self.cseq += 1
        self._send("BYE", self.cseq, self.remote_target, _token(12))
        return self._final("BYE", timeout)[0]

    def close(self) -> None:
        self.sock.close()
