"""The phone's two logins, ``admin`` and ``user``, and API tokens for scripts.

- Never a default password: until the admin password is set, :meth:`Accounts.setup_token`
  returns a one-time token (printed on the console by ``sippa serve``) that the first-run page
  asks for. The token is kept in memory only and is gone once a password is set.
- Passwords are stored as scrypt hashes (``Admin_Password``/``User_Password`` hold the hash),
  checked in constant time, and must be 8 to 127 characters from at least three of lower case,
  upper case, digits and other characters (as the MPP firmware asks).
- Failed logins are limited per login AND client address (an IPv6 client by its /64): after
  :data:`MAX_FAILURES` failures within :data:`FAILURE_WINDOW` seconds that client is locked
  out of that login for :data:`LOCKOUT` seconds, so someone guessing from one address cannot
  lock the admin out everywhere; attempts still being checked count as failures, so parallel
  requests get no more guesses. Against guessing from many addresses, once a login collects
  :data:`GLOBAL_MAX_FAILURES` failures within the window from all clients together, only
  clients that logged in successfully before (within :data:`TRUSTED_FOR`) may try it until the
  failures age out. Time comes in as an argument, so tests need no sleep; the state is in
  memory and bounded (:data:`MAX_CLIENTS` addresses, least recently seen forgotten first).
- API tokens are random 32-byte values shown once; only their SHA-256 is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sippa.app.store import ConfigStore

__all__ = [
    "FAILURE_WINDOW",
    "GLOBAL_MAX_FAILURES",
    "LOCKOUT",
    "MAX_CLIENTS",
    "MAX_FAILURES",
    "TRUSTED_FOR",
    "Accounts",
    "LockedOut",
    "PasswordRejected",
    "check_password_policy",
    "hash_password",
    "verify_password",
]

ROLES = ("admin", "user")
_V = TypeVar("_V")
MAX_FAILURES = 5
FAILURE_WINDOW = 300.0
LOCKOUT = 300.0
GLOBAL_MAX_FAILURES = 50
TRUSTED_FOR = 30 * 86400.0
MAX_CLIENTS = 4096

# scrypt cost: n=2**15, r=8 (32 MiB, ~50 ms here): slow for guessing, fine for a login.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_PREFIX = "scrypt"


class PasswordRejected(ValueError):
    """A new password that the policy refuses (the message says why)."""


class LockedOut(Exception):
    def __init__(self, role: str, retry_after: float) -> None:
        super().__init__(f"too many failed logins for {role}: try again in {retry_after:.0f} s")
        self.retry_after = retry_after


def check_password_policy(password: str) -> None:
    if not 8 <= len(password) <= 127:
        raise PasswordRejected("a password has 8 to 127 characters")
    classes = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if classes < 3:
        raise PasswordRejected(
            "a password mixes at least three of: lower case, upper case, digits, other characters"
        )


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=64 * 2**20
    )
    salt_b64, digest_b64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"{_PREFIX}${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt_b64}${digest_b64}"


def verify_password(password: str, stored: str) -> bool:
    try:
        prefix, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if prefix != _PREFIX:
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        digest = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), maxmem=64 * 2**20
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest, expected)


@dataclass
class _Failures:
    times: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    checking: int = 0
    """Attempts whose password is being checked right now (scrypt takes a while)."""


def _client_key(client: str) -> str:
    """Who a failure counts against: the address, or its /64 for IPv6 (one host usually
    holds a whole /64, and would otherwise get a fresh budget per address)."""
    try:
        ip = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        return client
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else str(ip)


class _Bounded(OrderedDict[tuple[str, str], _V]):
    """A dict that forgets its least recently used keys beyond ``MAX_CLIENTS``."""

    def touch(self, key: tuple[str, str], make: Callable[[], _V]) -> _V:
        value = self.get(key)
        if value is None:
            value = self[key] = make()
        self.move_to_end(key)
        while len(self) > MAX_CLIENTS:
            self.popitem(last=False)
        return value


class Accounts:
    """Logins and tokens of one phone, stored beside its settings."""

    def __init__(self, store: ConfigStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        # per (login, client address); all clients of a login together; last success
        self._failures: _Bounded[_Failures] = _Bounded()
        self._global: dict[str, list[float]] = {r: [] for r in ROLES}
        self._trusted: _Bounded[float] = _Bounded()
        self._setup_token: str | None = None
        self._db = sqlite3.connect(store.path if store.path != ":memory:" else ":memory:",
                                   check_same_thread=False, isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS api_token ("
            " id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, role TEXT NOT NULL, label TEXT NOT NULL)"
        )

    def close(self) -> None:
        self._db.close()

    # -- first run -----------------------------------------------------------------------

    @property
    def needs_setup(self) -> bool:
        return not self.store.get("admin_password")

    def setup_token(self) -> str | None:
        """The one-time first-run token (None once the admin password is set)."""
        if not self.needs_setup:
            self._setup_token = None
            return None
        if self._setup_token is None:
            self._setup_token = secrets.token_urlsafe(18)
        return self._setup_token

    def complete_setup(self, token: str, admin_password: str) -> None:
        expected = self.setup_token()
        if expected is None:
            raise PermissionError("the admin password is already set")
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise PermissionError("wrong setup token")
        self.set_password("admin", admin_password)
        self._setup_token = None

    # -- passwords -----------------------------------------------------------------------

    def set_password(self, role: str, password: str) -> None:
        if role not in ROLES:
            raise ValueError(f"no login named {role!r}")
        check_password_policy(password)
        self.store.set(f"{role}_password", hash_password(password))

    def has_password(self, role: str) -> bool:
        return bool(self.store.get(f"{role}_password"))

    def login(self, role: str, password: str, *, now: float, client: str = "") -> bool:
        """Check a password from ``client`` (its address); raises :class:`LockedOut` while
        that client is locked out of the login."""
        if role not in ROLES:
            return False
        key = (role, _client_key(client))
        with self._lock:
            state = self._failures.touch(key, _Failures)
            if now < state.locked_until:
                raise LockedOut(role, state.locked_until - now)
            state.times = [t for t in state.times if now - t < FAILURE_WINDOW]
            if len(state.times) + state.checking >= MAX_FAILURES:
                # parallel guesses: each one being checked counts as a failure until it is not
                raise LockedOut(role, 1.0)
            recent = self._global[role] = [
                t for t in self._global[role] if now - t < FAILURE_WINDOW
            ]
            trusted = now - self._trusted.get(key, -TRUSTED_FOR) < TRUSTED_FOR
            if len(recent) >= GLOBAL_MAX_FAILURES and not trusted:
                raise LockedOut(role, FAILURE_WINDOW - (now - recent[0]))
            state.checking += 1
        try:
            stored = str(self.store.get(f"{role}_password"))
            ok = bool(stored) and verify_password(password, stored)
        finally:
            with self._lock:
                state.checking -= 1
        with self._lock:
            if ok:
                state.times.clear()
                self._trusted.touch(key, float)
                self._trusted[key] = now
                return True
            state.times = [t for t in state.times if now - t < FAILURE_WINDOW]
            state.times.append(now)
            if len(state.times) >= MAX_FAILURES:
                state.locked_until = now + LOCKOUT
                state.times.clear()
            recent = self._global[role]
            recent.append(now)
            del recent[: max(0, len(recent) - GLOBAL_MAX_FAILURES)]
        return False

    # -- API tokens ----------------------------------------------------------------------

    def create_token(self, role: str, label: str) -> str:
        """A new token for ``role``; the returned value is shown once and never stored."""
        if role not in ROLES:
            raise ValueError(f"no login named {role!r}")
        token_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        token = f"sippa_{token_id}_{secret}"
        digest = hashlib.sha256(token.encode()).hexdigest()
        self._db.execute(
            "INSERT INTO api_token (id, sha256, role, label) VALUES (?, ?, ?, ?)",
            (token_id, digest, role, label),
        )
        return token

    def check_token(self, token: str) -> str | None:
        """The role of a valid token, else None."""
        parts = token.split("_")
        if len(parts) < 3 or parts[0] != "sippa":
            return None
        row = self._db.execute(
            "SELECT sha256, role FROM api_token WHERE id = ?", (parts[1],)
        ).fetchone()
        if row is None:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        return str(row[1]) if hmac.compare_digest(digest, str(row[0])) else None

    def list_tokens(self) -> list[dict[str, str]]:
        rows = self._db.execute("SELECT id, role, label FROM api_token ORDER BY id").fetchall()
        return [{"id": i, "role": r, "label": lbl} for i, r, lbl in rows]

    def revoke_token(self, token_id: str) -> bool:
        cur = self._db.execute("DELETE FROM api_token WHERE id = ?", (token_id,))
        return cur.rowcount > 0
