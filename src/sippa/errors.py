"""The one protocol-error family of sippa's sans-IO cores.

Every error that the SIP, SDP or RTP cores raise because of bad input is a :class:`ProtocolError`
carrying the SIP status code to answer with (400 Bad Request, 420 Bad Extension, 481, 482, 488,
505, 513, ...). Anything else escaping a parser or a state machine is a bug; the property tests
check this.
"""

from __future__ import annotations

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class ProtocolError(Exception):
    """A protocol rule was broken. ``status_code`` is the SIP status to answer with."""

    def __init__(self, reason: str, status_code: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, status_code={self.status_code})"


class RemoteProtocolError(ProtocolError):
    """The peer sent something that breaks the protocol (a malformed message, a bad SDP...)."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol does not allow (a bug in the caller)."""
