"""The SIP trace of each call: the recent messages, as we sent and received them in clear.

We are the endpoint, so what TLS carries is plain text here. The endpoint pump reports every
message (:attr:`sippa.net.endpoint.Endpoint.on_message`); :class:`TraceStore` keeps those of
INVITE dialogs, grouped by SIP Call-ID, in ring buffers bounded by messages per call and by
calls, so memory stays bounded however long the phone runs.

Secrets never enter the store: digest ``response=`` values (RFC 3261 §22.4, RFC 7616 §3.4),
SDES ``inline:`` keys (RFC 4568 §6.1) and passwords in SIP URIs are masked before a message
is kept.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_CALLS",
    "MAX_CALL_TEXT",
    "MAX_MESSAGES",
    "TraceEntry",
    "TraceStore",
    "message_head",
    "redact",
]

MAX_MESSAGES = 200
"""Messages kept per call (the oldest go first: a long call's re-INVITEs cannot grow it)."""
MAX_CALLS = 50
"""Calls kept (as many as ``Phone.calls`` keeps ended calls)."""
MAX_TEXT = 8192
"""Characters of one message kept (a huge body is cut, its head is what a trace needs)."""
MAX_CALL_TEXT = 256 * 1024
"""Characters kept per call, all messages together: with :data:`MAX_CALLS` the store holds
at most ~13 M characters however large the messages peers send."""

MASK = "***"

# RFC 3261 §25.1: header = name HCOLON value; compact forms §7.3.3 (i = Call-ID).
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_CSEQ = re.compile(
    rb"^cseq[ \t]*:[ \t]*\d+[ \t]+([A-Za-z!%'*+.`~_-]+)", re.IGNORECASE | re.MULTILINE
)
# Authorization / Proxy-Authorization: response="32/64 hex" (RFC 3261 §25.1 request-digest)
_AUTH_LINE = re.compile(r"^((?:proxy-)?authorization[ \t]*:.*)$", re.IGNORECASE | re.MULTILINE)
_RESPONSE = re.compile(r'(\bresponse[ \t]*=[ \t]*)("[^"]*"|[^,\s]*)', re.IGNORECASE)
# a=crypto:<tag> <suite> inline:<key||lifetime|MKI> (RFC 4568 §9.2): mask the key only
_INLINE = re.compile(r"(inline:)([A-Za-z0-9+/=]+)", re.IGNORECASE)
# userinfo = user [":" password] "@" (RFC 3261 §19.1.1, NOT RECOMMENDED, but peers send it)
_URI_PASSWORD = re.compile(r"(\bsips?:[^:@\s;>\"]+:)([^@\s;>\"]+)(@)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One SIP message of a call, as sent or received."""

    time: float
    """Wall-clock time (seconds since the epoch)."""
    direction: str
    """``"in"`` (received) or ``"out"`` (sent)."""
    transport: str
    """``UDP``, ``TCP`` or ``TLS``."""
    local: str
    """Our ``host:port`` of the flow."""
    remote: str
    """The peer's (first hop's) ``host:port``."""
    first_line: str
    """Request-Line or Status-Line (``INVITE sip:…  SIP/2.0``, ``SIP/2.0 200 OK``)."""
    text: str
    """The whole message, secrets masked."""

    @property
    def label(self) -> str:
        """What a ladder arrow says: the method, or the status code and reason."""
        if self.first_line.startswith("SIP/"):
            return self.first_line.partition(" ")[2]
        return self.first_line.partition(" ")[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "direction": self.direction,
            "transport": self.transport,
            "local": self.local,
            "remote": self.remote,
            "first_line": self.first_line,
            "label": self.label,
            "text": self.text,
        }


def message_head(data: bytes) -> tuple[str, str | None, str | None]:
    """(first line, Call-ID, CSeq method) of a message; empty first line for a keep-alive."""
    head = data.split(b"\r\n\r\n", 1)[0].lstrip(b"\r\n")
    first = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    call_id = _CALL_ID.search(head)
    cseq = _CSEQ.search(head)
    return (
        first,
        call_id.group(1).decode("utf-8", "replace") if call_id else None,
        cseq.group(1).decode("ascii").upper() if cseq else None,
    )


def redact(text: str) -> str:
    """``text`` with digest responses, SDES keys and URI passwords masked (never shown)."""
    text = _AUTH_LINE.sub(lambda m: _RESPONSE.sub(rf"\g<1>{MASK}", m.group(1)), text)
    text = _URI_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text)
    return _INLINE.sub(rf"\g<1>{MASK}", text)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class TraceStore:
    """Recent messages of recent INVITE dialogs, per SIP Call-ID (bounded ring buffers)."""

    def __init__(
        self,
        max_calls: int = MAX_CALLS,
        max_messages: int = MAX_MESSAGES,
        max_call_text: int = MAX_CALL_TEXT,
    ) -> None:
        if max_calls < 1 or max_messages < 1:
            raise ValueError("a trace keeps at least one call and one message")
        self.max_calls = max_calls
        self.max_messages = max_messages
        self.max_call_text = max_call_text
        self._calls: OrderedDict[str, deque[TraceEntry]] = OrderedDict()
        self._sizes: dict[str, int] = {}  # Call-ID -> characters of its kept texts

    def record(
        self,
        direction: str,
        data: bytes,
        *,
        now: float,
        transport: str,
        local: tuple[str, int],
        remote: tuple[str, int],
    ) -> TraceEntry | None:
        """Keep one message if it belongs to an INVITE dialog; returns what was kept.

        A trace starts with a message whose CSeq method is INVITE; later messages with the
        same Call-ID (ACK, BYE, re-INVITE, REFER, NOTIFY, INFO…) join it."""
        first, call_id, method = message_head(data)
        if not first or call_id is None:
            return None
        entries = self._calls.get(call_id)
        if entries is None:
            if method != "INVITE":
                return None
            entries = self._calls[call_id] = deque(maxlen=self.max_messages)
            self._sizes[call_id] = 0
            while len(self._calls) > self.max_calls:
                gone, _ = self._calls.popitem(last=False)
                del self._sizes[gone]
        text = data[:MAX_TEXT].decode("utf-8", "replace")
        entry = TraceEntry(
            now, direction, transport.upper(), _hostport(*local), _hostport(*remote),
            redact(first), redact(text),
        )
        if len(entries) == entries.maxlen:
            self._sizes[call_id] -= len(entries[0].text)
        entries.append(entry)
        self._sizes[call_id] += len(entry.text)
        while self._sizes[call_id] > self.max_call_text and len(entries) > 1:
            self._sizes[call_id] -= len(entries.popleft().text)
        return entry

    def get(self, call_id: str) -> list[TraceEntry]:
        """The messages of SIP Call-ID ``call_id``, oldest first (empty when unknown)."""
        return list(self._calls.get(call_id, ()))

    def call_ids(self) -> list[str]:
        """The traced Call-IDs, oldest first."""
        return list(self._calls)

    def __len__(self) -> int:
        return len(self._calls)
