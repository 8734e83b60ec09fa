"""Message summaries for message waiting indication (RFC 3842), sans-IO.

The body of a ``message-summary`` NOTIFY (``application/simple-message-summary``)::

    Messages-Waiting: yes
    Message-Account: sip:alice@vmail.example.com
    Voice-Message: 4/8 (1/2)

:meth:`MessageSummary.parse` reads it and ``bytes(summary)`` writes it (parse/serialise pair).
Unknown lines (extension headers, message context classes we do not know) are ignored, the
optional message headers after the first empty line too; anything malformed in what we use is a
:class:`~sippa.errors.RemoteProtocolError` (400) naming the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sippa.errors import RemoteProtocolError

__all__ = [
    "CONTENT_TYPE",
    "CONTEXT_CLASSES",
    "EVENT_PACKAGE",
    "MAX_SUMMARY_BYTES",
    "MessageCounts",
    "MessageSummary",
]

EVENT_PACKAGE = "message-summary"
"""RFC 3842 §3.1: the event package name (``Event: message-summary``)."""
CONTENT_TYPE = "application/simple-message-summary"
"""RFC 3842 §3.4: the body format of its NOTIFYs."""

# RFC 3842 §5.2 message-context-class, from RFC 3458 §4.2 (case-insensitive tokens).
CONTEXT_CLASSES = (
    "voice-message",
    "fax-message",
    "pager-message",
    "multimedia-message",
    "text-message",
    "none",
)

# Limits. A summary is a few short lines; the optional message headers (RFC 3842 §5.2
# opt-msg-headers, one block per message) can make it longer, but a phone shows counts only:
# 16 KiB and 200 lines bound the work one NOTIFY can cause, long lines are refused.
MAX_SUMMARY_BYTES = 16 * 1024
MAX_LINES = 200
MAX_LINE = 1024
# RFC 3842 §5.2: "msg-count ... MUST NOT exceed 2^32-1".
MAX_COUNT = 2**32 - 1

# RFC 3842 §5.2 (HCOLON = *( SP / HTAB ) ":" SWS):
#   msg-summary-line = message-context-class HCOLON newmsgs SLASH oldmsgs
#                      [ LPAREN new-urgentmsgs SLASH old-urgentmsgs RPAREN ]
#   msg-count = 1*DIGIT
_HEADER_LINE = re.compile(r"([!%'*+\-.0-9A-Z_`a-z~]+)[ \t]*:[ \t]*(.*?)[ \t]*")
_COUNTS = re.compile(
    r"([0-9]{1,10})[ \t]*/[ \t]*([0-9]{1,10})"
    r"(?:[ \t]*\([ \t]*([0-9]{1,10})[ \t]*/[ \t]*([0-9]{1,10})[ \t]*\))?"
)
# Account-URI = SIP-URI / SIPS-URI / absoluteURI: one token of URI characters
_ACCOUNT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[!-~]+")


@dataclass(frozen=True, slots=True)
class MessageCounts:
    """The counts of one message context class (``Voice-Message: 2/8 (0/2)``)."""

    new: int
    """Messages not yet heard or read."""
    old: int
    """Messages already heard or read."""
    new_urgent: int = 0
    """Of ``new``, how many are urgent."""
    old_urgent: int = 0
    """Of ``old``, how many are urgent."""

    def __str__(self) -> str:
        text = f"{self.new}/{self.old}"
        if self.new_urgent or self.old_urgent:
            text += f" ({self.new_urgent}/{self.old_urgent})"
        return text


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """One ``application/simple-message-summary`` body (RFC 3842 §5)."""

    messages_waiting: bool
    """``Messages-Waiting: yes``: the light is on."""
    account: str | None = None
    """``Message-Account``: the mailbox the summary is about (a URI), if given."""
    counts: Mapping[str, MessageCounts] = field(default_factory=dict)
    """Counts by lower-cased message context class (``voice-message``...)."""

    @property
    def voice(self) -> MessageCounts | None:
        """The ``Voice-Message`` counts, if the summary has them."""
        return self.counts.get("voice-message")

    # RFC 3842 §5.2
    @classmethod
    def parse(cls, data: bytes) -> MessageSummary:
        """Read a summary; raises :class:`RemoteProtocolError` (400) when it is malformed."""
        if len(data) > MAX_SUMMARY_BYTES:
            raise RemoteProtocolError(
                f"message summary longer than {MAX_SUMMARY_BYTES} bytes", 400
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError("message summary is not UTF-8", 400) from None
        lines = text.replace("\r\n", "\n").split("\n")
        if len(lines) > MAX_LINES:
            raise RemoteProtocolError(f"message summary has more than {MAX_LINES} lines", 400)
        waiting: bool | None = None
        account: str | None = None
        counts: dict[str, MessageCounts] = {}
        for number, line in enumerate(lines, 1):
            if not line.strip():
                break  # opt-msg-headers follow an empty line: not used
            if len(line) > MAX_LINE:
                raise RemoteProtocolError(f"message summary line {number} is too long", 400)
            m = _HEADER_LINE.fullmatch(line)
            if m is None:
                raise RemoteProtocolError(
                    f"message summary line {number} is not 'name: value'", 400
                )
            name, value = m.group(1).lower(), m.group(2)
            if name == "messages-waiting":
                if waiting is not None:
                    raise RemoteProtocolError("Messages-Waiting appears twice", 400)
                if value.lower() not in ("yes", "no"):
                    raise RemoteProtocolError(
                        f"Messages-Waiting must be yes or no, not {value[:40]!r}", 400
                    )
                waiting = value.lower() == "yes"
            elif name == "message-account":
                if account is not None:
                    raise RemoteProtocolError("Message-Account appears twice", 400)
                if _ACCOUNT.fullmatch(value) is None:
                    raise RemoteProtocolError(
                        f"Message-Account is not a URI: {value[:40]!r}", 400
                    )
                account = value
            elif name in CONTEXT_CLASSES:
                if name in counts:
                    raise RemoteProtocolError(f"{m.group(1)} appears twice", 400)
                counts[name] = _parse_counts(m.group(1), value)
            # RFC 3842 §5.2: other lines (extension headers, new classes) are ignored
        if waiting is None:
            raise RemoteProtocolError("message summary without Messages-Waiting", 400)
        return cls(waiting, account, counts)

    def __bytes__(self) -> bytes:
        lines = [f"Messages-Waiting: {'yes' if self.messages_waiting else 'no'}"]
        if self.account is not None:
            lines.append(f"Message-Account: {self.account}")
        for name, value in self.counts.items():
            title = "-".join(part.capitalize() for part in name.split("-"))
            lines.append(f"{title}: {value}")
        return ("\r\n".join(lines) + "\r\n").encode()


def _parse_counts(name: str, value: str) -> MessageCounts:
    m = _COUNTS.fullmatch(value)
    if m is None:
        raise RemoteProtocolError(f"{name}: counts must be new/old (urgent/urgent)", 400)
    numbers = [int(g) if g is not None else 0 for g in m.groups()]
    if any(n > MAX_COUNT for n in numbers):
        raise RemoteProtocolError(f"{name}: a count exceeds 2^32-1", 400)
    return MessageCounts(*numbers)
