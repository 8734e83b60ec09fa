"""Register one line once and report how it went (what ``sippa register`` runs).

Builds the pieces from plain options: the DNS resolver, the TLS client context (net-tls
policy, custom CA files, validation against the SIP domain), the digest answerer (sip-digest,
strongest algorithm first unless told to follow the server's order, MD5 optionally refused),
an :class:`~sippa.net.endpoint.Endpoint` and a :class:`~sippa.net.registrar.LineRegistrar`;
waits for the first outcome, then un-registers unless asked to stay.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sippa.errors import ProtocolError
from sippa.net.dns import Resolver, parse_server
from sippa.net.endpoint import Endpoint
from sippa.net.ports import PortRange
from sippa.net.registrar import LineRegistrar, LineStatus
from sippa.net.tls import ClientCertificate, TlsConfigError, TrustStore, make_client_context
from sippa.net.transport import TransportSettings
from sippa.sip.digest import DigestClient
from sippa.sip.locate import TransportChoice
from sippa.sip.message import Request, Response
from sippa.sip.registration import AuthFailed, Authorize, Credentials, RegistrationConfig
from sippa.sip.uri import Uri

__all__ = ["RegisterOptions", "RegisterResult", "make_authorize", "register_once"]


@dataclass(slots=True)
class RegisterOptions:
    """Options of ``sippa register`` (one line)."""

    aor: str
    """Address of record, e.g. ``sips:alice@example.test``."""
    password: str
    auth_id: str | None = None
    """Authentication user name; default: the AoR's user."""
    proxy: str | None = None
    """Registrar/outbound proxy URI or host[:port]; default: the AoR's domain."""
    transport: str = "auto"
    dns: str | None = None
    """DNS server ``ip[:port]``; default: the system's resolver."""
    ca_files: list[str] = field(default_factory=list)
    system_ca: bool = True
    verify: bool = True
    digest_order: str = "strongest"
    """``strongest`` (SHA-512-256 > SHA-256 > MD5) or ``server`` (the order of the challenges)."""
    allow_md5: bool = True
    expires: int = 3600
    timeout: float = 20.0
    """How long to wait for the first outcome."""
    unregister: bool = True
    """Remove the binding again after success."""
    tcp_port_min: int | None = None
    tcp_port_max: int | None = None
    client_cert: str | None = None
    """PEM file with our client certificate chain (and key, unless ``client_key``)."""
    client_key: str | None = None


@dataclass(slots=True)
class RegisterResult:
    """The outcome: the line's status and whether it counts as success."""

    ok: bool
    status: LineStatus
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        st = self.status
        tls = st.tls
        return {
            "ok": self.ok,
            "registered": st.registered,
            "reason": self.error or st.reason,
            "status_code": st.status_code,
            "transport": st.transport,
            "target": st.target,
            "local": st.local,
            "expires": st.expires,
            "digest_algorithm": st.algorithm,
            "server_auth_report": st.auth_info,
            "tls": None
            if tls is None
            else {
                "version": tls.version,
                "cipher": tls.cipher,
                "group": tls.group,
                "peer_subject": tls.peer_subject,
                "server_name": tls.server_name,
                "verified": tls.verified,
            },
        }


def make_authorize(
    username: str, password: str, *, order: str = "strongest", allow_md5: bool = True
) -> Authorize:
    """The digest answerer of sip-digest, as :data:`~sippa.sip.registration.Authorize`."""
    client = DigestClient(
        username,
        password,
        follow_server_order=(order == "server"),
        allow_md5=allow_md5,
        cnonce=lambda: secrets.token_hex(16),
    )

    def authorize(request: Request, response: Response) -> Credentials:
        try:
            answer = client.authorize(request, response)
        except ProtocolError as exc:
            raise AuthFailed(exc.reason, response.status_code) from None
        return Credentials(answer.headers, answer.algorithm)

    return authorize


def _proxy_uri(text: str | None, aor: Uri) -> Uri | None:
    if not text:
        return None
    if ":" in text.split("@")[0] and text.split(":")[0].lower() in ("sip", "sips"):
        return Uri.parse(text)
    return Uri.parse(f"{aor.scheme}:{text}")


async def register_once(
    options: RegisterOptions, *, on_status: Callable[[LineStatus], None] | None = None
) -> RegisterResult:
    """Register once, wait for the outcome, un-register (unless told not to)."""
    try:
        aor = Uri.parse(options.aor)
    except ProtocolError as exc:
        return RegisterResult(False, LineStatus(), f"bad AoR {options.aor!r}: {exc.reason}")
    if aor.scheme not in ("sip", "sips") or not aor.user:
        return RegisterResult(False, LineStatus(), "the AoR must be sip:user@domain or sips:...")
    try:
        proxy = _proxy_uri(options.proxy, aor)
        transport = TransportChoice(options.transport.upper())
        resolver = Resolver(*parse_server(options.dns)) if options.dns else Resolver()
        trust = TrustStore.from_files(options.ca_files, system=options.system_ca)
        cert = None
        if options.client_cert:
            key = Path(options.client_key) if options.client_key else None
            cert = ClientCertificate(Path(options.client_cert), key)
        ctx = make_client_context(trust, cert, verify=options.verify)
        authorize = make_authorize(
            options.auth_id or aor.user,
            options.password,
            order=options.digest_order,
            allow_md5=options.allow_md5,
        )
    except (ValueError, ProtocolError, TlsConfigError, OSError) as exc:
        return RegisterResult(False, LineStatus(), f"configuration: {exc}")
    ports = None
    if options.tcp_port_min or options.tcp_port_max:
        ports = PortRange.narrowed(options.tcp_port_min, options.tcp_port_max)
    endpoint = Endpoint(
        settings=TransportSettings(tcp_ports=ports), tls_client=lambda name: ctx
    )
    config = RegistrationConfig(aor, expires=options.expires)
    line = LineRegistrar(
        endpoint, config, authorize, resolver, proxy=proxy, transport=transport, name="cli"
    )
    try:
        line.start()
        try:
            status = await line.wait_outcome(options.timeout)
        except TimeoutError:
            return RegisterResult(False, line.status, f"no outcome within {options.timeout:g}s")
        if on_status is not None:
            on_status(status)
        snapshot = LineStatus(**{k: getattr(status, k) for k in LineStatus.__slots__})
        return RegisterResult(status.registered, snapshot)
    finally:
        with contextlib.suppress(Exception):
            await line.stop(unregister=options.unregister)
        await endpoint.close()
