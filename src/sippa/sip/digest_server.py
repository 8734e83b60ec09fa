"""Digest on the answering side: challenge a request and verify its credentials (RFC 7616,
RFC 8760, RFC 3261 §22.4).

The phone uses it for requests that change its state from outside a call, such as
``NOTIFY Event: resync`` (the Cisco "Auth Resync-Reboot" setting): the sender must prove it knows
a line's password.

Nonces are stateless: ``expiry:HMAC(secret, expiry)``, so no table grows with challenges; a
nonce is good for :data:`NONCE_LIFETIME` seconds. Replays are refused by remembering the
highest ``nc`` seen per nonce (bounded: nonces expire). Challenges are offered strongest first
(SHA-512-256, SHA-256, then MD5 only when allowed: RFC 8760 §2.4 has the client take the topmost
it supports). Sans-IO: the secret and the time come in as arguments.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sippa.errors import RemoteProtocolError
from sippa.sip.digest import (
    ALGORITHMS,
    DigestChallenge,
    compute_response,
    format_challenge,
    parse_authorization,
)

__all__ = ["NONCE_LIFETIME", "DigestVerifier", "Verdict"]

NONCE_LIFETIME = 300.0
_DEFAULT_ALGORITHMS = ("SHA-512-256", "SHA-256", "MD5")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of :meth:`DigestVerifier.verify`."""

    ok: bool
    username: str | None = None
    reason: str = ""
    stale: bool = False
    """The credentials were right but for an expired nonce: challenge again with stale=true."""


class DigestVerifier:
    """Challenges and verifies Digest credentials for one realm."""

    def __init__(
        self,
        realm: str,
        secret: bytes,
        passwords: Callable[[str], str | None],
        *,
        algorithms: Sequence[str] = _DEFAULT_ALGORITHMS,
        allow_md5: bool = True,
    ) -> None:
        """``passwords(username)`` gives the password of a user name, or None if unknown."""
        if len(secret) < 16:
            raise ValueError("the nonce secret needs at least 16 bytes")
        self.realm = realm
        self._secret = secret
        self._passwords = passwords
        self._algorithms = tuple(
            a for a in algorithms if allow_md5 or not a.upper().startswith("MD5")
        )
        self._highest_nc: dict[str, int] = {}

    # RFC 7616 §3.3: the nonce is opaque to the client; ours carries its own expiry.
    def _nonce(self, expiry: int) -> str:
        mac = hmac.new(self._secret, f"{expiry}:{self.realm}".encode(), "sha256").hexdigest()
        return f"{expiry}:{mac[:32]}"

    def _nonce_expiry(self, nonce: str) -> int | None:
        expiry_text, _, _ = nonce.partition(":")
        if not expiry_text.isdigit() or len(expiry_text) > 12:
            return None
        expiry = int(expiry_text)
        return expiry if hmac.compare_digest(self._nonce(expiry), nonce) else None

    def challenges(self, now: float, *, stale: bool = False) -> list[str]:
        """``WWW-Authenticate`` values to send with a 401, strongest first."""
        nonce = self._nonce(int(now + NONCE_LIFETIME))
        return [
            format_challenge(
                DigestChallenge(self.realm, nonce, algorithm=a, qop=("auth",), stale=stale)
            )
            for a in self._algorithms
        ]

    def verify(
        self, method: str, authorization: Iterable[str], now: float, body: bytes = b""
    ) -> Verdict:
        """Check the request's ``Authorization`` values for our realm."""
        for value in authorization:
            try:
                creds = parse_authorization(value)
            except RemoteProtocolError as exc:
                return Verdict(False, reason=f"malformed credentials: {exc.reason}")
            if creds.realm != self.realm:
                continue
            algorithm = ALGORITHMS.get((creds.algorithm or "MD5").lower())
            if algorithm is None or algorithm.name not in self._algorithms:
                return Verdict(False, reason=f"algorithm {creds.algorithm} was not offered")
            if creds.qop != "auth" or creds.nc is None or creds.cnonce is None:
                return Verdict(False, reason="qop=auth with nc and cnonce is required")
            expiry = self._nonce_expiry(creds.nonce)
            if expiry is None:
                return Verdict(False, reason="not a nonce we issued")
            password = self._passwords(creds.username) if not creds.userhash else None
            if password is None:
                return Verdict(False, reason=f"unknown user {creds.username!r}")
            expected = compute_response(
                algorithm, username=creds.username, password=password, realm=self.realm,
                nonce=creds.nonce, method=method, uri=creds.uri, qop=creds.qop, nc=creds.nc,
                cnonce=creds.cnonce, body=body,
            )
            if not hmac.compare_digest(expected, creds.response.lower()):
                return Verdict(False, reason="wrong credentials")
            if now > expiry:
                return Verdict(False, reason="the nonce has expired", stale=True)
            try:
                nc = int(creds.nc, 16)
            except ValueError:
                return Verdict(False, reason="bad nonce count")
            self._forget_expired(now)
            if nc <= self._highest_nc.get(creds.nonce, 0):
                return Verdict(False, reason="replayed credentials (nonce count not increasing)")
            self._highest_nc[creds.nonce] = nc
            return Verdict(True, username=creds.username)
        return Verdict(False, reason="no credentials for our realm")

    def _forget_expired(self, now: float) -> None:
        for nonce in [n for n in self._highest_nc if int(n.partition(":")[0]) < now]:
            del self._highest_nc[nonce]
