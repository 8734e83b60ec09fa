"""Reliable provisional responses (RFC 3262, "100rel"): the RSeq and RAck headers and the
sequence rules of both sides.

Pure functions and values; :mod:`sippa.sip.invite` applies them to a call (the UAS sends its
18x reliably and retransmits it until the PRACK, holding the 2xx meanwhile; the UAC PRACKs each
in-order reliable 18x on its early dialog) and :mod:`sippa.sip.core` answers a ``Require:
100rel`` it does not support with 420 (RFC 3261 §8.2.2.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sippa.errors import RemoteProtocolError
from sippa.sip.message import Message

__all__ = [
    "MAX_RSEQ",
    "OPTION_TAG",
    "RAck",
    "first_rseq",
    "is_reliable_provisional",
    "parse_rseq",
    "requires_100rel",
    "supports_100rel",
]

OPTION_TAG = "100rel"
"""§10.1: the option tag (Supported/Require)."""
MAX_RSEQ = 2**32 - 1
"""§7.1: RSeq is "1*DIGIT" in 1..2**32-1."""
_FIRST_RSEQ_MAX = 2**31 - 1
"""§3: the first RSeq "MUST be ... between 1 and 2**31 - 1"."""

# §7.1: RSeq = "RSeq" HCOLON response-num ; response-num = 1*DIGIT
_RSEQ_RE = re.compile(r"[ \t]*([0-9]{1,10})[ \t]*")
# §7.2: RAck = "RAck" HCOLON response-num LWS CSeq-num LWS Method
_RACK_RE = re.compile(r"[ \t]*([0-9]{1,10})[ \t]+([0-9]{1,10})[ \t]+([A-Za-z!%*_+`'~.-]+)[ \t]*")


def _tags(message: Message, name: str) -> list[str]:
    return [tag.strip().lower() for tag in message.headers.get_all(name)]


def requires_100rel(message: Message) -> bool:
    """True if ``message`` lists ``100rel`` in Require."""
    return OPTION_TAG in _tags(message, "Require")


def supports_100rel(message: Message) -> bool:
    """True if ``message`` lists ``100rel`` in Supported or Require."""
    return requires_100rel(message) or OPTION_TAG in _tags(message, "Supported")


def parse_rseq(text: str) -> int:
    """An RSeq value; RemoteProtocolError (400) when malformed or out of range."""
    m = _RSEQ_RE.fullmatch(text)
    if m is None or not 1 <= int(m.group(1)) <= MAX_RSEQ:
        raise RemoteProtocolError(f"malformed RSeq {text[:40]!r}")
    return int(m.group(1))


def is_reliable_provisional(message: Message) -> int | None:
    """§4: the RSeq of a reliable provisional response (101-199 with Require: 100rel and an
    RSeq), None for an unreliable one (or one whose RSeq is missing or malformed: it cannot
    be PRACKed, so it is treated as unreliable)."""
    status = getattr(message, "status_code", 0)
    if not 100 < status < 200 or not requires_100rel(message):
        return None
    value = message.headers.get("RSeq")
    if value is None:
        return None
    try:
        return parse_rseq(value)
    except RemoteProtocolError:
        return None


def first_rseq(rand: float) -> int:
    """§3: the first RSeq of a call from ``rand`` in [0, 1): 1 .. 2**30, leaving room below
    2**31 - 1 for the responses that follow."""
    return 1 + int(rand * 2**30) % _FIRST_RSEQ_MAX


@dataclass(frozen=True, slots=True)
class RAck:
    """§7.2: which reliable provisional a PRACK acknowledges."""

    rseq: int
    cseq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> RAck:
        """RemoteProtocolError (400) for a malformed value."""
        m = _RACK_RE.fullmatch(text)
        if m is None:
            raise RemoteProtocolError(f"malformed RAck {text[:60]!r}")
        rseq, cseq = int(m.group(1)), int(m.group(2))
        if not 1 <= rseq <= MAX_RSEQ or cseq >= 2**31:
            raise RemoteProtocolError(f"RAck out of range {text[:60]!r}")
        return cls(rseq, cseq, m.group(3))

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"
