"""SIP messages (RFC 3261 §7): the header multi-map, Request/Response, parse and serialise.

``parse_message(data)`` takes one whole message (a UDP datagram, or what
:class:`~sippa.sip.framer.StreamFramer` cut from a stream).  The parse path is one split of
head and body, one pass over the header lines, and eager typed parsing of only the headers
that every message must carry (§8.1.1), which are validated; the others are parsed lazily by
the typed accessors and cached until the headers change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.sip.grammar import (
    CALL_ID_RE,
    HEADER_NAME_RE,
    MAX_HEAD_SIZE,
    MAX_HEADERS,
    MAX_MESSAGE_SIZE,
    REQUEST_LINE_RE,
    STATUS_LINE_RE,
    split_comma_list,
)
from sippa.sip.headers import CSeq, NameAddr, Via, parse_name_addr_list, parse_via_list
from sippa.sip.status import reason_phrase
from sippa.sip.uri import Uri

__all__ = [
    "COMPACT_FORMS",
    "Headers",
    "InvalidMessage",
    "Message",
    "Request",
    "Response",
    "canonical_name",
    "make_response",
    "parse_message",
    "unsupported_requirements",
    "validate_request",
]

T = TypeVar("T")

# RFC 3261 §7.3.3 compact forms, plus later RFCs (3515 r, 3892 b, 6665 o/u, 3841 a/j,
# 3841 d, 4028 x, 8224 y, 4474 n).
COMPACT_FORMS = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "u": "Allow-Events",
    "r": "Refer-To",
    "b": "Referred-By",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "x": "Session-Expires",
    "y": "Identity",
    "n": "Identity-Info",
}
_KNOWN_NAMES = [
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "Min-Expires",
    "Min-SE",
    "MIME-Version",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Replaces",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Security-Client",
    "Security-Server",
    "Security-Verify",
    "Server",
    "Service-Route",
    "Session-Expires",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
]
_CANONICAL = {name.lower(): name for name in _KNOWN_NAMES}
_CANONICAL.update({k: v for k, v in COMPACT_FORMS.items()})
# Headers whose value is a comma-separated list (RFC 3261 §7.3.1: "#element" in §25.1).
# Authorization and friends are NOT: their commas separate auth-params of one value.
_LIST_HEADERS = frozenset(
    name.lower()
    for name in [
        "Accept",
        "Accept-Contact",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Error-Info",
        "In-Reply-To",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Path",
        "Privacy",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Reject-Contact",
        "Request-Disposition",
        "Require",
        "Route",
        "Security-Client",
        "Security-Server",
        "Security-Verify",
        "Service-Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
    ]
)
# Headers that must not appear more than once (RFC 4475 §3.3.8).
_SINGLE_HEADERS = frozenset(("to", "from", "call-id", "cseq", "max-forwards", "content-length"))
# A bounded cache of header names seen on the wire -> (key, canonical name); bounded so that a
# peer inventing names cannot grow it without limit.
_NAME_CACHE: dict[str, tuple[str, str]] = {}
_NAME_CACHE_LIMIT = 2048
# The accessor-cache slot of the first value per key, filled by the parser.
_FIRST = "_first"
_REPEATED = "_repeated"  # (and the set of keys that appear on several lines)
_FOLD_RE = re.compile(r"\r\n[ \t]+")
_MAX_FORWARDS_RE = re.compile(r"0*([0-9]{1,3})")
_CONTENT_LENGTH_RE = re.compile(r"0*([0-9]{1,10})")
# SIP-date = rfc1123-date (RFC 3261 §20.17): wkday "," SP date1 SP time SP "GMT"
_DATE_RE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)


def canonical_name(name: str) -> tuple[str, str]:
    """``(lower-case key, canonical spelling)`` for a header name (compact forms expanded)."""
    cached = _NAME_CACHE.get(name)
    if cached is not None:
        return cached
    lower = name.lower()
    canonical = _CANONICAL.get(lower, name)
    result = (canonical.lower(), canonical)
    if len(_NAME_CACHE) < _NAME_CACHE_LIMIT:
        _NAME_CACHE[name] = result
    return result


def _check_field(name: str, value: str) -> None:
    # A caller's header must not smuggle in line breaks (header injection) or a bad name.
    if HEADER_NAME_RE.fullmatch(name) is None:
        raise LocalProtocolError(f"bad header name {name!r}")
    if "\r" in value or "\n" in value:
        raise LocalProtocolError(f"line break in the value of {name}")


class Headers:
    """An ordered, case-insensitive multi-map of header fields (one entry per field line).

    Names are normalised to their canonical long form (``v`` -> ``Via``, ``cseq`` -> ``CSeq``).
    """

    __slots__ = ("_cache", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str, str]] = []
        self._cache: dict[str, Any] = {}
        for name, value in items:
            self.add(name, value)

    @classmethod
    def _from_parsed(cls, items: list[tuple[str, str, str]]) -> Headers:
        headers = cls.__new__(cls)
        headers._items = items
        headers._cache = {}
        return headers

    def get(self, name: str) -> str | None:
        """The first field line's value for ``name`` (not comma-split), or ``None``."""
        key = (_NAME_CACHE.get(name) or canonical_name(name))[0]
        first: dict[str, str] | None = self._cache.get(_FIRST)
        if first is not None:
            return first.get(key)
        for k, _, value in self._items:
            if k == key:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """All values: one per field line, comma lists split for list-valued headers."""
        key = (_NAME_CACHE.get(name) or canonical_name(name))[0]
        cache = self._cache
        first: dict[str, str] | None = cache.get(_FIRST)
        if first is not None and key not in cache[_REPEATED]:
            value = first.get(key)
            values = [] if value is None else [value]
        else:
            values = [value for k, _, value in self._items if k == key]
        if key in _LIST_HEADERS:
            split: list[str] = []
            for value in values:
                split.extend(split_comma_list(value))
            return split
        return values

    def add(self, name: str, value: str) -> None:
        _check_field(name, value)
        key, canonical = canonical_name(name)
        self._items.append((key, canonical, value))
        self._cache.clear()

    def set(self, name: str, value: str) -> None:
        """Replace all field lines of ``name`` by one (at the position of the first)."""
        _check_field(name, value)
        key, canonical = canonical_name(name)
        for i, (k, _, _) in enumerate(self._items):
            if k == key:
                self._items[i] = (key, canonical, value)
                self._items[i + 1 :] = [it for it in self._items[i + 1 :] if it[0] != key]
                break
        else:
            self._items.append((key, canonical, value))
        self._cache.clear()

    def remove(self, name: str) -> None:
        key = canonical_name(name)[0]
        self._items = [it for it in self._items if it[0] != key]
        self._cache.clear()

    def count(self, name: str) -> int:
        """How many field lines carry ``name``."""
        key = canonical_name(name)[0]
        return sum(1 for it in self._items if it[0] == key)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = canonical_name(name)[0]
        return any(it[0] == key for it in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((canonical, value) for _, canonical, value in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def copy(self) -> Headers:
        return Headers._from_parsed(list(self._items))

    def cached(self, slot: str, build: Callable[[], T]) -> T:
        """``build()`` once until the headers change (used by the typed accessors)."""
        try:
            return self._cache[slot]  # type: ignore[no-any-return]
        except KeyError:
            value = self._cache[slot] = build()
            return value


class Message:
    """What requests and responses share: headers, body and the typed accessors."""

    headers: Headers
    body: bytes

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise RemoteProtocolError(f"missing {name} header")
        return value

    # The typed accessors parse on first use and cache in the Headers (cleared on change).
    @property
    def vias(self) -> list[Via]:
        cache = self.headers._cache
        vias: list[Via] | None = cache.get("vias")
        if vias is None:
            vias = cache["vias"] = [Via.parse(v) for v in self.headers.get_all("Via")]
        return vias

    @property
    def top_via(self) -> Via:
        vias = self.vias
        if not vias:
            raise RemoteProtocolError("missing Via header")
        return vias[0]

    @property
    def from_(self) -> NameAddr:
        cache = self.headers._cache
        value: NameAddr | None = cache.get("from")
        if value is None:
            value = cache["from"] = NameAddr.parse(self._required("From"))
        return value

    @property
    def to(self) -> NameAddr:
        cache = self.headers._cache
        value: NameAddr | None = cache.get("to")
        if value is None:
            value = cache["to"] = NameAddr.parse(self._required("To"))
        return value

    @property
    def call_id(self) -> str:
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        cache = self.headers._cache
        value: CSeq | None = cache.get("cseq")
        if value is None:
            value = cache["cseq"] = CSeq.parse(self._required("CSeq"))
        return value

    @property
    def max_forwards(self) -> int | None:
        cache = self.headers._cache
        if "max-forwards" not in cache:
            cache["max-forwards"] = _parse_max_forwards(self.headers.get("Max-Forwards"))
        return cache["max-forwards"]  # type: ignore[no-any-return]

    def _name_addrs(self, name: str) -> list[NameAddr]:
        out: list[NameAddr] = []
        for value in self.headers.get_all(name):
            out.extend(parse_name_addr_list(value))
        return out

    @property
    def contacts(self) -> list[NameAddr]:
        cache = self.headers._cache
        value: list[NameAddr] | None = cache.get("contacts")
        if value is None:
            value = cache["contacts"] = self._name_addrs("Contact")
        return value

    @property
    def routes(self) -> list[NameAddr]:
        return self.headers.cached("routes", lambda: self._name_addrs("Route"))

    @property
    def record_routes(self) -> list[NameAddr]:
        return self.headers.cached("record-routes", lambda: self._name_addrs("Record-Route"))

    @property
    def content_type(self) -> str | None:
        """The Content-Type value as sent (with parameters), or ``None``."""
        return self.headers.get("Content-Type")

    @property
    def media_type(self) -> str | None:
        """The lower-case ``type/subtype`` of Content-Type, without parameters."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip(" \t").lower()

    def _serialise(self, start_line: str) -> bytes:
        if "\r" in start_line or "\n" in start_line:
            raise LocalProtocolError("line break in the start line")
        # Content-Length always states the body's length: in place if present, else last.
        lines = [start_line]
        length_done = False
        for key, canonical, value in self.headers._items:
            if key != "content-length":
                lines.append(f"{canonical}: {value}")
            elif not length_done:
                lines.append(f"{canonical}: {len(self.body)}")
                length_done = True
        if not length_done:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("")
        lines.append("")
        return "\r\n".join(lines).encode() + self.body


@dataclass(eq=True)
class Request(Message):
    """A SIP request (RFC 3261 §7.1)."""

    method: str
    uri: Uri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return self._serialise(f"{self.method} {self.uri} SIP/2.0")


@dataclass(eq=True)
class Response(Message):
    """A SIP response (RFC 3261 §7.2)."""

    status_code: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return self._serialise(f"SIP/2.0 {self.status_code} {self.reason}")


class InvalidMessage(RemoteProtocolError):
    """A message whose start line parsed but which breaks a rule; ``message`` is what parsed.

    With ``message`` (a request) the receiver can still answer ``status_code`` statelessly.
    """

    def __init__(self, reason: str, status_code: int = 400, message: Message | None = None):
        super().__init__(reason, status_code)
        self.message = message


def parse_message(data: bytes) -> Request | Response:
    """Parse one whole SIP message; raise :class:`RemoteProtocolError` (or InvalidMessage).

    Datagram rules (RFC 3261 §18.3): octets beyond Content-Length are discarded; fewer octets
    than Content-Length is an error (400); without Content-Length the body runs to the end.

    Checked here: the start line (400; 505 for a version other than SIP/2.0), header syntax,
    framing, and the headers of §8.1.1 - Via, From, To, Call-ID, CSeq present, single where
    single-valued, and parseable (400).  Max-Forwards is parsed (0-255) but not required:
    RFC 2543 peers omit it and RFC 4475 §3.4.1 asks us to accept that (``max_forwards`` is
    then ``None``).  Once the start line has parsed, errors are :class:`InvalidMessage`
    carrying what parsed, so the caller can still answer a request statelessly.  Semantic
    checks (416, CSeq method mismatch...) are in :func:`validate_request`.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise RemoteProtocolError("message too large", 513)
    # RFC 3261 §7.5: ignore CRLFs before the start line
    if data[:2] == b"\r\n":
        data = data.lstrip(b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head_bytes = data[:end]
        body = data[end + 4 :]
    elif data.endswith(b"\r\n"):
        head_bytes = data[:-2]  # headers end with the datagram (RFC 4475 §3.1.2.15 baddn)
        body = b""
    else:
        raise RemoteProtocolError("message has no end of headers")
    if len(head_bytes) > MAX_HEAD_SIZE:
        raise RemoteProtocolError("message header too large", 513)
    try:
        head = head_bytes.decode()
    except UnicodeDecodeError:
        raise RemoteProtocolError("message header is not UTF-8") from None
    # RFC 3261 §7.3.1: header fields can be folded onto several lines (LWS continuation)
    if "\r\n " in head or "\r\n\t" in head:
        head = _FOLD_RE.sub(" ", head)
    lines = head.split("\r\n")
    n_lines = len(lines)
    if n_lines > MAX_HEADERS + 1:
        raise RemoteProtocolError("too many header fields")
    if head.count("\n") != n_lines - 1 or head.count("\r") != n_lines - 1:
        raise RemoteProtocolError("bare CR or LF in message header")

    # ---- start line (RFC 3261 §7.1, §7.2) ----
    start = lines[0]
    version: str
    bad_uri: RemoteProtocolError | None = None
    is_response = start.startswith("SIP/")
    if is_response:
        m = STATUS_LINE_RE.fullmatch(start)
        if m is None:
            raise RemoteProtocolError(f"malformed Status-Line {start[:80]!r}")
        version = m.group(1)
        code = int(m.group(2))
        if code < 100 or code > 699:  # RFC 3261 §7.2: 1xx-6xx (RFC 4475 §3.1.2.19)
            raise RemoteProtocolError(f"status code {code} out of range")
        reason = m.group(3) or ""
    else:
        m = REQUEST_LINE_RE.fullmatch(start)
        if m is None:
            raise RemoteProtocolError(f"malformed Request-Line {start[:80]!r}")
        version = m.group(3)
        try:
            uri = Uri.parse(m.group(2))
        except RemoteProtocolError as exc:
            bad_uri = exc
            uri = Uri("", opaque=m.group(2))
        method = m.group(1)

    # ---- header fields: one pass (RFC 3261 §7.3) ----
    items, first, repeated, via_values, duplicate = _index_header_lines(lines)
    headers = Headers._from_parsed(items)
    # get() and get_all() answer from these until the headers change (which clears the cache)
    headers._cache[_FIRST] = first
    headers._cache[_REPEATED] = repeated
    message: Request | Response
    if is_response:
        message = Response(code, reason, headers, b"")
    else:
        message = Request(method, uri, headers, b"")

    # ---- body framing (RFC 3261 §18.3, §20.14) ----
    length_text = first.get("content-length")
    if length_text is not None:
        if duplicate == "content-length":
            # RFC 4475 §3.3.9: several values make framing impossible
            raise InvalidMessage("several Content-Length values", 400, message)
        m = _CONTENT_LENGTH_RE.fullmatch(length_text)
        if m is None:
            raise InvalidMessage(f"bad Content-Length {length_text[:20]!r}", 400, message)
        length = int(m.group(1))
        if length > len(body):
            raise InvalidMessage("body shorter than Content-Length", 400, message)
        body = body[:length]
    message.body = body

    if bad_uri is not None:
        raise InvalidMessage(bad_uri.reason, bad_uri.status_code, message)
    # RFC 3261 §8.2.2 / §21.5.6: only SIP/2.0 is spoken here
    if version != "2.0":
        raise InvalidMessage(f"SIP version {version} not supported", 505, message)
    try:
        if duplicate is not None:
            # RFC 4475 §3.3.8: several values in a single-valued header
            name = canonical_name(duplicate)[1]
            raise RemoteProtocolError(f"{name} header appears more than once")
        _check_mandatory(headers, first, via_values)
    except RemoteProtocolError as exc:
        raise InvalidMessage(exc.reason, exc.status_code, message) from None
    return message


def _index_header_lines(
    lines: list[str],
) -> tuple[list[tuple[str, str, str]], dict[str, str], set[str], list[str], str | None]:
    """``(items, first value per key, keys on several lines, Via values, first duplicated
    single header)``."""
    items: list[tuple[str, str, str]] = []
    append = items.append
    cache = _NAME_CACHE
    first: dict[str, str] = {}  # first value of each header
    repeated: set[str] = set()  # keys on more than one line
    via_values: list[str] = []
    duplicate: str | None = None
    for line in lines[1:]:
        # message-header = field-name HCOLON field-value ; HCOLON = *( SP / HTAB ) ":" SWS
        name, colon, value = line.partition(":")
        if not colon:
            raise InvalidMessage(f"header line without colon {line[:60]!r}", 400, None)
        names = cache.get(name)
        if names is None:
            stripped = name.rstrip(" \t")
            if HEADER_NAME_RE.fullmatch(stripped) is None:
                raise InvalidMessage(f"bad header name {name[:60]!r}", 400, None)
            names = canonical_name(stripped)
            if len(cache) < _NAME_CACHE_LIMIT:
                cache[name] = names
        key, canonical = names
        value = value.strip(" \t")
        append((key, canonical, value))
        if key not in first:
            first[key] = value
        else:
            repeated.add(key)
            if key in _SINGLE_HEADERS and duplicate is None:
                duplicate = key
        if key == "via":
            via_values.append(value)
    return items, first, repeated, via_values, duplicate


def _parse_max_forwards(value: str | None) -> int | None:
    # Max-Forwards = "Max-Forwards" HCOLON 1*DIGIT, 0-255 (RFC 3261 §20.22, RFC 4475 §3.1.2.4)
    if value is None:
        return None
    m = _MAX_FORWARDS_RE.fullmatch(value)
    if m is None or int(m.group(1)) > 255:
        raise RemoteProtocolError(f"bad Max-Forwards {value[:20]!r}")
    return int(m.group(1))


def _check_mandatory(headers: Headers, first: dict[str, str], via_values: list[str]) -> None:
    """RFC 3261 §8.1.1: To, From, CSeq, Call-ID and Via must be there and parse.

    The parsed values go into the accessor cache.
    """
    if not via_values:
        raise RemoteProtocolError("missing Via header")
    for key in ("from", "to", "call-id", "cseq"):
        if key not in first:
            raise RemoteProtocolError(f"missing {canonical_name(key)[1]} header")
    vias: list[Via] = []
    parse_via = Via.parse
    for value in via_values:
        if "," in value:
            vias.extend(parse_via_list(value))
        else:
            vias.append(parse_via(value))  # (one via-parm per line: the usual case)
    for via in vias:
        if via.protocol != "SIP/2.0":
            raise RemoteProtocolError(f"Via protocol {via.protocol} not supported", 505)
    if CALL_ID_RE.fullmatch(first["call-id"]) is None:
        raise RemoteProtocolError("malformed Call-ID")
    cache = headers._cache
    cache["vias"] = vias
    cache["from"] = NameAddr.parse(first["from"])
    cache["to"] = NameAddr.parse(first["to"])
    cache["cseq"] = CSeq.parse(first["cseq"])
    cache["max-forwards"] = _parse_max_forwards(first.get("max-forwards"))


def validate_request(request: Request) -> None:
    """The semantic checks an element makes before acting on a parsed request.

    Raises :class:`InvalidMessage` with the status the RFCs ask for: 416 for a Request-URI
    scheme we cannot serve (RFC 3261 §8.2.2.1), 400 for a CSeq method that differs from the
    request method (§8.2.2 / RFC 4475 §3.1.2.17), escaped headers in the Request-URI
    (§19.1.1 table), a malformed Contact (§20.10) or a non-GMT Date (§20.17).
    """
    try:
        if request.uri.scheme not in ("sip", "sips", "tel"):
            raise RemoteProtocolError(f"unsupported URI scheme {request.uri.scheme!r}", 416)
        if request.uri.headers:
            raise RemoteProtocolError("headers are not allowed in the Request-URI")
        if request.cseq.method != request.method:
            raise RemoteProtocolError("CSeq method does not match the request method")
        request.contacts  # noqa: B018 - parse, raising on a malformed Contact
        date = request.headers.get("Date")
        if date is not None and _DATE_RE.fullmatch(date) is None:
            raise RemoteProtocolError("Date is not an RFC 1123 GMT date")
    except InvalidMessage:
        raise
    except RemoteProtocolError as exc:
        raise InvalidMessage(exc.reason, exc.status_code, request) from None


def unsupported_requirements(request: Request, supported: Iterable[str]) -> list[str]:
    """The Require option tags of ``request`` that are not in ``supported``.

    A UAS answers a non-empty result with 420 (Bad Extension) listing them in Unsupported
    (RFC 3261 §8.2.2.3; RFC 4475 §3.3.5).  Never for CANCEL or ACK, whose Require is ignored.
    """
    if request.method in ("CANCEL", "ACK"):
        return []
    known = set(supported)
    return [tag for tag in request.headers.get_all("Require") if tag and tag not in known]


def make_response(
    request: Request,
    status_code: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    record_route: bool = False,
) -> Response:
    """A response to ``request`` per RFC 3261 §8.2.6.2.

    Copies Via (all, in order), From, Call-ID and CSeq; copies To and adds ``to_tag`` if the
    To has no tag yet (never for 100 Trying).  ``record_route=True`` copies Record-Route, as a
    UAS does in dialog-creating 18x/2xx responses (§12.1.1).
    """
    items: list[tuple[str, str]] = []
    for key, canonical, value in request.headers._items:
        if (
            key in ("via", "from", "call-id", "cseq")
            or (record_route and key == "record-route")
            or (key == "timestamp" and status_code == 100)  # RFC 3261 §8.2.6.1
        ):
            items.append((canonical, value))
        elif key == "to":
            to_value = value
            if to_tag is not None and status_code != 100:
                try:
                    to = request.to
                except RemoteProtocolError:
                    to = None  # answering a malformed request: copy its To as it came
                if to is not None and to.tag is None:
                    to_value = str(to.with_tag(to_tag))
            items.append((canonical, to_value))
    return Response(
        status_code,
        reason if reason is not None else reason_phrase(status_code),
        Headers(items),
    )
