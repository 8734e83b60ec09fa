"""Sessions, CSRF tokens, API tokens and who may see or change which setting.

- Sessions are server-side: the cookie holds only a random id (``secrets.token_urlsafe``),
  ``Secure; HttpOnly; SameSite=Strict``; a new id at each login (no fixation); an idle and an
  absolute lifetime; every session of a login ends when its password changes.
- CSRF: a synchronizer token per session, in every form (``csrf`` field) and, for API calls made
  with the session cookie, in the ``X-CSRF-Token`` header; the login and setup forms use a
  double-submit cookie. On top, unsafe requests whose ``Origin`` (or ``Sec-Fetch-Site``) says
  they come from another site are refused (see :mod:`sippa.interfaces.web.app`).
- Scripts authenticate with ``Authorization: Bearer <token>`` (no cookie, so no CSRF).
- The admin may do everything; the user login sees a setting when its access is ``ro`` or
  ``rw`` and changes it only when ``rw`` (the profile's ``ua``).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sippa.app.settings import Access, Setting

__all__ = ["Principal", "Session", "Sessions", "can_edit", "can_see", "tokens_equal"]

COOKIE = "__Host-sippa_session"  # __Host-: Secure, Path=/, no Domain (RFC 6265bis §4.1.3.2)
PRE_COOKIE = "__Host-sippa_pre"  # double-submit CSRF cookie of the login and setup forms


def can_see(role: str, s: Setting) -> bool:
    return role == "admin" or s.access in (Access.RO, Access.RW)


def can_edit(role: str, s: Setting) -> bool:
    return role == "admin" or s.access is Access.RW


def tokens_equal(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


@dataclass
class Session:
    sid: str
    role: str
    csrf: str
    created: float
    last_seen: float


@dataclass(frozen=True)
class Principal:
    """Who is asking: a role, and the session (None for a bearer token)."""

    role: str
    session: Session | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session else ""


@dataclass
class Sessions:
    """Server-side sessions in memory (a restart logs everybody out)."""

    clock: Callable[[], float]
    idle: float = 30 * 60.0
    absolute: float = 12 * 3600.0
    _by_id: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, role: str) -> Session:
        now = self.clock()
        s = Session(secrets.token_urlsafe(32), role, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._expire(now)
            self._by_id[s.sid] = s
        return s

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        now = self.clock()
        with self._lock:
            self._expire(now)
            s = self._by_id.get(sid)
            if s is not None:
                s.last_seen = now
            return s

    def drop(self, sid: str) -> None:
        with self._lock:
            self._by_id.pop(sid, None)

    def drop_role(self, role: str, *, keep: str | None = None) -> None:
        """End every session of ``role`` (after its password changed), except ``keep``."""
        with self._lock:
            for sid in [k for k, s in self._by_id.items() if s.role == role and k != keep]:
                del self._by_id[sid]

    def _expire(self, now: float) -> None:
        for sid in [
            k
            for k, s in self._by_id.items()
            if now - s.last_seen > self.idle or now - s.created > self.absolute
        ]:
            del self._by_id[sid]

    def __len__(self) -> int:
        return len(self._by_id)
