"""The SIP grammar (RFC 3261 §25.1) as regexes under the ABNF they implement, plus size limits.

Every regex is meant for ``fullmatch`` (or ``match`` at a position when scanning a value).
The message layer works on ``str`` decoded from UTF-8 (RFC 3261 §7: SIP text is UTF-8).
"""

from __future__ import annotations

import re

from sippa.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAX_HEADERS",
    "MAX_HEADER_VALUE",
    "MAX_HEAD_SIZE",
    "MAX_MESSAGE_SIZE",
    "SEPARATORS",
    "quote_string",
    "split_comma_list",
    "unquote_string",
]

# ---- size limits ---------------------------------------------------------------------------
# A UDP datagram cannot exceed 65535 bytes, and RFC 3261 §18.1.1 expects anything near the path
# MTU to go over TCP anyway; 64 KiB bounds the memory a single peer can make us buffer.
MAX_MESSAGE_SIZE = 65536
# The start line and headers of real messages are a few KiB (RFC 4475 longreq is 3.5 KiB);
# 16 KiB leaves room for long Route sets and certificates in headers, yet stops a slow-loris
# peer that never sends the blank line from growing our buffer to the full message size.
MAX_HEAD_SIZE = 16384
# Header field lines per message: real messages carry 10-40; every line costs a parse.
MAX_HEADERS = 256
# A single (unfolded) header value; long enough for Identity/Route headers.
MAX_HEADER_VALUE = 8192

# ---- core rules ----------------------------------------------------------------------------
# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"  # noqa: S105 - not a password
TOKEN = rf"[{TOKEN_CHARS}]+"
TOKEN_RE = re.compile(TOKEN)
# separators = "(" / ")" / "<" / ">" / "@" / "," / ";" / ":" / "\" / DQUOTE / "/" / "[" / "]"
#              / "?" / "=" / "{" / "}" / SP / HTAB
SEPARATORS = '()<>@,;:\\"/[]?={} \t'
# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" / "(" / ")"
#        / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}")
WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
# callid = word [ "@" word ]                                           (RFC 3261 §25.1)
CALL_ID_RE = re.compile(rf"{WORD}(?:@{WORD})?")
# LWS = [*WSP CRLF] 1*WSP ; after unfolding only SP / HTAB remain.  SWS = [LWS]
SWS = r"[ \t]*"
LWS = r"[ \t]+"
# quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
# qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
# quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
# (possessive runs "++" (Python >= 3.11) keep matching linear: no backtracking into a run)
QUOTED_STRING = r'"(?:[^"\\\r\n]++|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*+"'
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
_NEEDS_QUOTED_PAIR = re.compile(r'[\x00-\x08\x0a-\x1f\x7f"\\]')

# Method = INVITEm / ACKm / ... / extension-method ; extension-method = token
# Request-Line = Method SP Request-URI SP SIP-Version CRLF ; SIP-Version = "SIP" "/" 1*DIGIT
# "." 1*DIGIT.  Exactly one SP between the elements (RFC 4475 §3.1.2.9/§3.1.2.10).
REQUEST_LINE_RE = re.compile(rf"({TOKEN}) ([^ \t]+) SIP/([0-9]+\.[0-9]+)")
# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF ; Status-Code = 3DIGIT
# Reason-Phrase = *(reserved / unreserved / escaped / UTF8-NONASCII / UTF8-CONT / SP / HTAB)
# (a missing SP + Reason-Phrase is tolerated: some stacks send "SIP/2.0 200")
STATUS_LINE_RE = re.compile(
    r"SIP/([0-9]+\.[0-9]+) ([0-9]{3})(?: ([^\r\n\x00-\x08\x0a-\x1f\x7f]*))?"
)
# message-header = field-name HCOLON field-value ; HCOLON = *( SP / HTAB ) ":" SWS
HEADER_NAME_RE = re.compile(TOKEN)

# ---- URI pieces (RFC 3261 §25.1, RFC 3986 for IPv6) --------------------------------------------
# unreserved = alphanum / mark ; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
# escaped = "%" HEXDIG HEXDIG
UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
ESCAPED = r"%[0-9A-Fa-f]{2}"
# user = 1*( unreserved / escaped / user-unreserved )
# user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
USER = rf"(?:[{UNRESERVED}&=+$,;?/]++|{ESCAPED})+"
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
PASSWORD = rf"(?:[{UNRESERVED}&=+$,]++|{ESCAPED})*"
# hostname = *( domainlabel "." ) toplabel [ "." ] ; domainlabel = alphanum /
#   alphanum *( alphanum / "-" ) alphanum ; toplabel = ALPHA / ALPHA *( alphanum / "-" ) alphanum
# (leading digits in the top label are accepted: many deployments use such names)
# (labels written as alnum runs joined by hyphen runs, with possessive repeats: the same
# language, matched without backtracking)
_LABEL = r"[A-Za-z0-9]++(?:-++[A-Za-z0-9]++)*+"
HOSTNAME = rf"{_LABEL}(?:\.{_LABEL})*+\.?"
# IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT: the hostname rule above
# already matches it (labels of digits), so host = hostname / IPv6reference suffices here.
# IPv6reference = "[" IPv6address "]" ; the address itself is checked with ipaddress.
IPV6_REFERENCE = r"\[[0-9A-Fa-f:.]+\]"
HOST = rf"(?:{IPV6_REFERENCE}|{HOSTNAME})"
# port = 1*DIGIT
PORT = r"[0-9]{1,5}"
# uri-parameter: pname [ "=" pvalue ] ; pname = 1*paramchar ; pvalue = 1*paramchar
# paramchar = param-unreserved / unreserved / escaped
# param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
PARAMCHARS = rf"(?:[{UNRESERVED}\[\]/:&+$]++|{ESCAPED})+"
# header = hname "=" hvalue ; hname = 1*( hnv-unreserved / unreserved / escaped )
# hvalue = *( hnv-unreserved / unreserved / escaped )
# hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
HNVCHARS = rf"(?:[{UNRESERVED}\[\]/?:+$]++|{ESCAPED})"
# SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
SIP_URI_RE = re.compile(
    rf"(?P<scheme>[Ss][Ii][Pp][Ss]?):"
    rf"(?:(?P<user>{USER})(?::(?P<password>{PASSWORD}))?@)?"
    rf"(?P<host>{HOST})(?::(?P<port>{PORT}))?"
    rf"(?P<params>(?:;{PARAMCHARS}(?:={PARAMCHARS})?)*)"
    rf"(?:\?(?P<headers>{HNVCHARS}+={HNVCHARS}*(?:&{HNVCHARS}+={HNVCHARS}*)*))?"
)
# telephone-subscriber (RFC 3966): global-number / local-number, then ;par
# phonedigit = DIGIT / visual-separator ; visual-separator = "-" / "." / "(" / ")"
TEL_URI_RE = re.compile(
    rf"(?P<scheme>[Tt][Ee][Ll]):(?P<number>\+?[0-9A-Fa-f*#\-.()pPwW]+)"
    rf"(?P<params>(?:;{PARAMCHARS}(?:={PARAMCHARS})?)*)"
)
# absoluteURI = scheme ":" ( hier-part / opaque-part ) ; scheme = ALPHA *( ALPHA / DIGIT / "+"
# / "-" / "." ).  Characters: uric = reserved / unreserved / escaped ; reserved = ";" / "/" /
# "?" / ":" / "@" / "&" / "=" / "+" / "$" / ","
SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
ABSOLUTE_URI_RE = re.compile(
    rf"(?P<scheme>{SCHEME}):(?P<rest>(?:[{UNRESERVED};/?:@&=+$,]|{ESCAPED})+)"
)

# ---- header pieces -------------------------------------------------------------------------
# generic-param = token [ EQUAL gen-value ] ; gen-value = token / host / quoted-string
# EQUAL = SWS "=" SWS ; SEMI = SWS ";" SWS
# (an IPv6address, for via-received = "received" EQUAL (IPv4address / IPv6address), comes first)
GEN_VALUE = rf"(?:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*|{TOKEN}|{HOST}|{QUOTED_STRING})"
# (the lookahead makes the split into parameters unique, so findall() agrees with fullmatch())
PARAM = rf"{SWS};{SWS}({TOKEN})(?:{SWS}={SWS}({GEN_VALUE}))?(?=[ \t]*(?:;|\Z))"
PARAM_RE = re.compile(PARAM)
# (atomic: TOKEN and HOST overlap, and without it a failing match would retry every
# combination of alternatives, exponential in the number of parameters)
PARAMS_RE = re.compile(rf"(?:(?>{PARAM}))*+{SWS}")
# The common case, no LWS and no quoted values: ";name=value;flag" (a strict subset of PARAMS_RE
# that splits the same way), checked with one regex and split with str methods.
SIMPLE_PARAMS_RE = re.compile(rf"(?:;{TOKEN}(?:=(?:{TOKEN}|[0-9A-Fa-f:.]+|{IPV6_REFERENCE}))?)*")
# display-name = *(token LWS)/ quoted-string ; name-addr = [ display-name ] LAQUOT addr-spec
# RAQUOT.  RFC 4475 §3.1.1.6: accept a token display name with no LWS before "<".
DISPLAY_NAME_RE = re.compile(rf"{SWS}(?:({QUOTED_STRING})|({TOKEN}(?:{LWS}{TOKEN})*))?{SWS}<")
# sent-protocol = protocol-name SLASH protocol-version SLASH transport ; SLASH = SWS "/" SWS
# via-parm = sent-protocol LWS sent-by *( SEMI via-params ) ; sent-by = host [ COLON port ]
VIA_RE = re.compile(
    rf"{SWS}({TOKEN}){SWS}/{SWS}({TOKEN}){SWS}/{SWS}({TOKEN}){LWS}"
    rf"({HOST})(?:{SWS}:{SWS}({PORT}))?"
)


def unquote_string(text: str) -> str:
    """The content of a quoted-string (with its quotes) with quoted-pairs resolved."""
    inner = text[1:-1]
    if "\\" not in inner:
        return inner
    return _QUOTED_PAIR_RE.sub(r"\1", inner)


def quote_string(text: str) -> str:
    """``text`` as a quoted-string (RFC 3261 §25.1).

    DQUOTE, backslash and control characters become quoted-pairs; CR and LF cannot be
    represented at all (quoted-pair excludes them), so they are a caller error.
    """
    if _NEEDS_QUOTED_PAIR.search(text) is None:
        return f'"{text}"'
    if "\r" in text or "\n" in text:
        raise LocalProtocolError("CR or LF cannot appear in a quoted-string")
    return '"' + _NEEDS_QUOTED_PAIR.sub(r"\\\g<0>", text) + '"'


def split_comma_list(value: str) -> list[str]:
    """Split a header value at commas that are not inside quotes or ``<>`` (RFC 3261 §7.3.1).

    Empty elements are kept (as ``""``) so that callers can reject them.
    """
    if "," not in value:
        return [value.strip(" \t")]
    if '"' not in value and "<" not in value:
        return [part.strip(" \t") for part in value.split(",")]
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if in_quotes:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            parts.append(value[start:i].strip(" \t"))
            start = i + 1
        i += 1
    if in_quotes:
        raise RemoteProtocolError("unterminated quoted string")
    parts.append(value[start:].strip(" \t"))
    return parts
