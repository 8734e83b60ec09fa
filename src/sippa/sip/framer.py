"""Cut SIP messages out of a byte stream (TCP/TLS; RFC 3261 §18.3, RFC 5626 §4.4.1).

``StreamFramer.feed(data)`` returns each complete raw message (head + exactly Content-Length
octets of body), ready for :func:`~sippa.sip.message.parse_message`.  On a stream the
Content-Length header is mandatory (§18.3) and a bad one makes framing impossible: the
framer raises :class:`RemoteProtocolError` and stays broken, and the runtime closes the
connection.  CRLF keep-alives between messages are skipped; each double-CRLF "ping" is
counted in ``pings`` so the runtime can answer it with a single CRLF "pong".
"""

from __future__ import annotations

import re

from sippa.errors import RemoteProtocolError
from sippa.sip.grammar import MAX_HEAD_SIZE, MAX_MESSAGE_SIZE

__all__ = ["StreamFramer"]

_CONTENT_LENGTH_NAMES = (b"content-length", b"l")
_DIGITS = re.compile(rb"[ \t]*0*([0-9]{1,10})[ \t]*")


class StreamFramer:
    """Incremental framer for one stream connection."""

    def __init__(
        self, max_message_size: int = MAX_MESSAGE_SIZE, max_header_size: int = MAX_HEAD_SIZE
    ) -> None:
        self.max_message_size = max_message_size
        self.max_header_size = max_header_size
        #: double-CRLF keep-alive pings received (RFC 5626 §4.4.1); answer each with CRLF
        self.pings = 0
        #: single-CRLF pongs (or stray CRLFs) received between messages
        self.pongs = 0
        self._buffer = bytearray()
        self._scanned = 0  # how far we searched for the end of the head
        self._need: int | None = None  # total size of the message being collected
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned as a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received octets; return the messages they complete (possibly none)."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        out: list[bytes] = []
        try:
            self._drain(out)
        except RemoteProtocolError as exc:
            self._error = exc
            if not out:
                raise
            # Hand out what was complete before the bad part; the error comes next call.
        return out

    @property
    def error(self) -> RemoteProtocolError | None:
        """The framing error that broke this stream (then close the connection), if any."""
        return self._error

    def _drain(self, out: list[bytes]) -> None:
        buf = self._buffer
        while True:
            if self._need is None:
                # keep-alives between messages (RFC 5626 §4.4.1, RFC 3261 §7.5)
                while buf[:2] == b"\r\n":
                    if buf[:4] == b"\r\n\r\n":
                        self.pings += 1
                        del buf[:4]
                        self._scanned = 0
                    elif len(buf) == 2 or (len(buf) == 3 and buf[2:3] == b"\r"):
                        return  # could still become a ping: wait for more
                    else:
                        self.pongs += 1
                        del buf[:2]
                        self._scanned = 0
                if not buf:
                    return
                end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
                if end < 0:
                    self._scanned = len(buf)
                    if len(buf) > self.max_header_size:
                        raise RemoteProtocolError("message header too large", 513)
                    return
                if end > self.max_header_size:
                    raise RemoteProtocolError("message header too large", 513)
                length = self._content_length(bytes(buf[:end]))
                self._need = end + 4 + length
                if self._need > self.max_message_size:
                    raise RemoteProtocolError("message too large", 513)
            if len(buf) < self._need:
                return
            out.append(bytes(buf[: self._need]))
            del buf[: self._need]
            self._need = None
            self._scanned = 0

    @staticmethod
    def _content_length(head: bytes) -> int:
        """The Content-Length of a raw head, folded lines included (RFC 3261 §7.3.1, §20.14)."""
        values: list[list[bytes]] = []
        current: list[bytes] | None = None
        for line in head.split(b"\r\n")[1:]:
            if line[:1] in (b" ", b"\t"):
                if current is not None:
                    current.append(line.strip(b" \t"))
                continue
            name, colon, value = line.partition(b":")
            if colon and name.rstrip(b" \t").lower() in _CONTENT_LENGTH_NAMES:
                current = [value.strip(b" \t")]
                values.append(current)
            else:
                current = None
        if not values:
            raise RemoteProtocolError("Content-Length is required on stream transports")
        joined = {b" ".join(p for p in parts if p) for parts in values}
        # RFC 4475 §3.3.9: conflicting values make framing impossible
        if len(joined) > 1:
            raise RemoteProtocolError("several Content-Length values")
        m = _DIGITS.fullmatch(joined.pop())
        if m is None:
            raise RemoteProtocolError("bad Content-Length")  # e.g. negative (RFC 4475 §3.1.2.3)
        return int(m.group(1))
