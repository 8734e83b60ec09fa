"""The built-in echo service: a loopback SIP user that answers over TLS with SRTP and echoes.

It is a second :class:`~sippa.app.phone.Phone` on 127.0.0.1 with one line (``echo``) that
auto-answers and sends back what it hears, with its own self-signed certificate for
``127.0.0.1``. The main phone trusts exactly that certificate (``extra_ca_pem``), so
``sippa call echo`` is a secure call through the real stack: TLS validated against the IP,
SDES keys over that TLS connection, SRTP both ways. Nothing leaves the machine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from sippa.app.call import Call
from sippa.app.certs import write_self_signed
from sippa.app.phone import Phone, PhoneOptions
from sippa.app.store import ConfigStore
from sippa.media import AudioSink, AudioSource, Echo

__all__ = ["EchoService", "SelfSigned", "make_self_signed"]

ECHO_USER = "echo"


@dataclass(frozen=True, slots=True)
class SelfSigned:
    """A self-signed leaf certificate (it is its own trust anchor) and its key."""

    cert: Path
    key: Path
    pem: bytes


def make_self_signed(
    directory: Path,
    host: str = "127.0.0.1",
    *,
    days: int = 365,
    stem: str = "echo",
    common_name: str = "sippa echo service",
) -> SelfSigned:
    """Create (or reuse, while valid) ``{stem}-cert.pem``/``{stem}-key.pem`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}-cert.pem", directory / f"{stem}-key.pem"
    now = dt.datetime.now(dt.UTC)
    if cert_path.is_file() and key_path.is_file():
        pem = cert_path.read_bytes()
        try:
            existing = x509.load_pem_x509_certificate(pem)
            if existing.not_valid_after_utc > now + dt.timedelta(days=1):
                return SelfSigned(cert_path, key_path, pem)
        except ValueError:
            pass
    pem = write_self_signed(
        cert_path, key_path, common_name=common_name, hosts=(host,), days=days, anchor=True
    )
    return SelfSigned(cert_path, key_path, pem)


def _echo_media(call: Call) -> tuple[AudioSource | None, AudioSink | None]:
    echo = Echo()
    return echo, echo


class EchoService:
    """The echo user agent (start/stop it with the main phone)."""

    def __init__(self, directory: Path, *, host: str = "127.0.0.1") -> None:
        self.directory = directory
        self.host = host
        self.phone: Phone | None = None
        self.cert: SelfSigned | None = None

    async def start(self) -> None:
        self.cert = make_self_signed(self.directory, self.host)
        store = ConfigStore(":memory:", lines=1)
        settings: dict[tuple[str, int], bool | int | float | str] = {
            ("line_enable", 1): True,
            ("user_id", 1): ECHO_USER,
            ("register", 1): False,
            ("auto_answer", 1): True,
            ("sip_transport", 1): "TLS",
            ("secure_call_option", 1): "Best Effort",
            ("mediasec_over_tls_only", 1): True,
        }
        store.update(settings)
        options = PhoneOptions(
            host=self.host, udp_port=None, tcp_port=None, tls_port=0,
            tls_cert=self.cert.cert, tls_key=self.cert.key, system_ca=False,
            incoming_media=_echo_media, history=False,
        )
        self.phone = Phone(store, options)
        await self.phone.start()

    @property
    def uri(self) -> str:
        """The URI that reaches the echo service."""
        if self.phone is None:
            raise RuntimeError("the echo service is not started")
        host, port = self.phone.local["tls"]
        return f"sips:{ECHO_USER}@{host}:{port}"

    @property
    def pem(self) -> bytes:
        if self.cert is None:
            raise RuntimeError("the echo service is not started")
        return self.cert.pem

    async def stop(self) -> None:
        if self.phone is not None:
            await self.phone.stop()
            self.phone.store.close()
            self.phone = None
