"""The provisioning rule syntax: ``[--key K --uid U --pwd P --sha256 H] https://host/$MA.xml``.

One rule names one resource (a profile, a CA bundle, a release manifest) and how to get it:

- options in ONE leading ``[...]`` (Cisco: "URL options"): ``--key`` (the ``openssl enc``
  passphrase of an encrypted profile; ``$SA``..``$SD`` (``GPP_SA``..``GPP_SD``) expand only
  here), ``--uid``/``--pwd`` (HTTP basic authentication, MPP), and sippa's ``--sha256 HEX``
  (pin the resource's digest; required for a CA bundle over http);
- then an ``http://`` or ``https://`` URL. Macros (:mod:`sippa.app.macros`) are expanded in the
  option values and the URL, after the rule has been split, so a macro value cannot inject an
  option.

A rule may be a list of alternatives, ``alt | alt | ...`` (Cisco provisioning guide, "Profile
Rule" syntax), each ``[( condition )?] [( assignments )!] [[options] URL]``; every alternative
but the last needs a condition, and the first whose condition holds is used (none: nothing to
fetch). A condition is comparisons joined by ``and``: ``$SWVER ge 2.0.6 and "$A" ne ""``, with
``= != < <= > >=`` or ``eq ne lt le gt ge`` (``!`` alone is ``!=``; a comparison without a
left side compares ``$SWVER``), between two integers, two version numbers (``1.0.31(b)``) or two
double-quoted strings (equality only). Assignments ``( User_ID_1_ = "uid$B" ; c = "" ; )!``
set parameters by their profile names (``a``..``p`` for ``GPP_A``..``GPP_P``) before the
resource is fetched; only Profile Rules may carry them. Macros in a condition or an assigned
value are expanded after the text has been split into tokens, so a macro value is always one
operand, never an operator or a quote.

Not supported (refused with a message rather than half-implemented): ``--post``/``--alias``,
TFTP and scheme-less URLs (the server would come from DHCP options 66/150).
"""

from __future__ import annotations

import operator
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from sippa.app.macros import expand

__all__ = ["Rule", "RuleError", "check_rule", "parse_rule", "rebuild_rule"]

MAX_RULE_LENGTH = 2048
MAX_ALTERNATIVES = 16
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_OPTIONS_WITH_VALUE = {"--key", "--uid", "--pwd", "--sha256"}
_INT = re.compile(r"-?[0-9]+")
_VERSION = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)(?:\(([A-Za-z0-9]*)\))?")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_OPERATORS = {
    "=": "eq", "eq": "eq", "!=": "ne", "ne": "ne", "!": "ne", "<": "lt", "lt": "lt",
    "<=": "le", "le": "le", ">": "gt", "gt": "gt", ">=": "ge", "ge": "ge",
}
_CONDITION_TOKEN = re.compile(r'\s*(?:"([^"]*)"|(<=|>=|!=|[=<>!])|([^\s"=<>!]+))')


class RuleError(ValueError):
    """A rule that cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One parsed and expanded rule (the alternative that was chosen)."""

    url: str
    """http or https URL, macros expanded; empty for an alternative that only assigns."""
    key: str | None = None
    """``--key``: passphrase of an ``openssl enc`` encrypted resource."""
    username: str | None = None
    """``--uid``: HTTP basic authentication user."""
    password: str | None = None
    """``--pwd``: HTTP basic authentication password."""
    sha256: bytes | None = None
    """``--sha256``: the resource's pinned SHA-256 digest."""
    assignments: tuple[tuple[str, str], ...] = ()
    """``( Name = "value" ; )!``: profile element names and values (macros expanded), to set
    before the resource is fetched."""
    locator: str = field(default="", compare=False)
    """The chosen alternative's ``[options] URL`` as written (for :func:`rebuild_rule`)."""

    @property
    def https(self) -> bool:
        return self.url.lower().startswith("https://")

    def __repr__(self) -> str:  # never show the key or the password
        hidden = [k for k in ("key", "password") if getattr(self, k)]
        return f"Rule(url={self.url!r}, user={self.username!r}, secrets={hidden})"


# -- alternatives, conditions and assignments ------------------------------------------------


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside double quotes, parentheses and brackets."""
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    for i, c in enumerate(text):
        if c == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _group(text: str) -> tuple[str, str]:
    """``text`` starts with ``(``: its inside and what follows the matching ``)``."""
    depth, quoted = 0, False
    for i, c in enumerate(text):
        if c == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[1:i], text[i + 1 :].lstrip()
    raise RuleError("a ( is not closed with )")


Operand = tuple[bool, str]
"""(quoted, text as written)."""


@dataclass(frozen=True, slots=True)
class _Comparison:
    left: Operand
    op: str
    right: Operand


def _parse_condition(text: str) -> tuple[_Comparison, ...]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _CONDITION_TOKEN.match(text, pos)
        if m is None:
            raise RuleError(f"cannot read the condition at {text[pos:]!r}")
        pos = m.end()
        if m.group(1) is not None:
            tokens.append(("str", m.group(1)))
        elif m.group(2) is not None:
            tokens.append(("op", m.group(2)))
        elif m.group(3).lower() in _OPERATORS:
            tokens.append(("op", m.group(3).lower()))
        elif m.group(3).lower() == "and":
            tokens.append(("and", "and"))
        else:
            tokens.append(("bare", m.group(3)))
    if not tokens:
        raise RuleError("an empty condition ()?")
    comparisons = []
    for part in _split_tokens(tokens):
        # legacy: a comparison without a left side ("! 1.0.33") compares $SWVER
        chunk = [("bare", "$SWVER"), *part] if len(part) == 2 and part[0][0] == "op" else part
        if len(chunk) != 3 or chunk[1][0] != "op" or "op" in (chunk[0][0], chunk[2][0]):
            shown = " ".join(t[1] for t in chunk)
            raise RuleError(f"a comparison is 'left op right', not {shown!r}")
        (lk, lv), (_, op), (rk, rv) = chunk
        comparisons.append(_Comparison((lk == "str", lv), _OPERATORS[op], (rk == "str", rv)))
    return tuple(comparisons)


def _split_tokens(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    chunks: list[list[tuple[str, str]]] = [[]]
    for token in tokens:
        if token[0] == "and":
            chunks.append([])
        else:
            chunks[-1].append(token)
    if any(not c for c in chunks):
        raise RuleError("'and' needs a comparison on each side")
    return chunks


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
    "gt": operator.gt, "ge": operator.ge,
}


def _typed(operand: Operand, values: Mapping[str, str]) -> tuple[str, Any]:
    quoted, text = operand
    value = expand(text, values)
    if quoted:
        return "string", value
    if _INT.fullmatch(value):
        return "integer", int(value)
    m = _VERSION.fullmatch(value)
    if m:
        return "version", (int(m[1]), int(m[2]), int(m[3]), m[4] or "")
    if value.startswith("$"):
        raise RuleError(f"{value.split()[0]}: no such macro here")
    raise RuleError(
        f"{text!r} is {value!r}: not a number or a version (put strings in double quotes)"
    )


def _holds(comparison: _Comparison, values: Mapping[str, str]) -> bool:
    lkind, left = _typed(comparison.left, values)
    rkind, right = _typed(comparison.right, values)
    if lkind != rkind:
        raise RuleError(f"cannot compare a {lkind} with a {rkind}")
    if lkind == "string" and comparison.op not in ("eq", "ne"):
        raise RuleError("strings compare only for equality (eq, ne)")
    return bool(_COMPARE[comparison.op](left, right))


def _parse_assignments(text: str) -> tuple[tuple[str, str], ...]:
    out = []
    for raw in _split_top(text, ";"):
        item = raw.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not _NAME.fullmatch(name):
            raise RuleError(f"an assignment is 'Name = \"value\"', not {item!r}")
        if len(value) < 2 or value[0] != '"' or value[-1] != '"' or '"' in value[1:-1]:
            raise RuleError(f"the value of {name} must be in double quotes")
        if len(name) == 1:
            if not "a" <= name <= "p":
                raise RuleError(f"{name!r}: single letters name GPP_A..GPP_P (a..p)")
            name = f"GPP_{name.upper()}"
        out.append((name, value[1:-1]))
    if not out:
        raise RuleError("an empty assignment list ()!")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Alternative:
    condition: tuple[_Comparison, ...] | None
    assignments: tuple[tuple[str, str], ...]
    locator: str


def _parse_alternative(text: str) -> _Alternative:
    text = text.strip()
    condition = None
    assignments: tuple[tuple[str, str], ...] = ()
    if text.startswith("("):
        inside, text = _group(text)
        if text.startswith("?"):
            condition = _parse_condition(inside)
            text = text[1:].lstrip()
            if text.startswith("("):
                inside, text = _group(text)
                if not text.startswith("!"):
                    raise RuleError("the second ( ... ) of an alternative must be ( ... )!")
                assignments = _parse_assignments(inside)
                text = text[1:].lstrip()
        elif text.startswith("!"):
            assignments = _parse_assignments(inside)
            text = text[1:].lstrip()
        else:
            raise RuleError("( ... ) must be followed by ? (a condition) or ! (assignments)")
    return _Alternative(condition, assignments, text)


def parse_rule(
    text: str,
    macros: Mapping[str, str] | None = None,
    *,
    secrets: Mapping[str, str] | None = None,
    assignments: bool = False,
) -> Rule | None:
    """Parse a rule and choose its alternative; None when there is nothing to do.

    ``secrets`` (``SA``..``SD``) expand only in ``--key``. ``assignments``: whether the rule
    may carry ``( ... )!`` (Profile Rules only). Raises :class:`RuleError`.
    """
    text = text.strip()
    if not text:
        return None
    if len(text) > MAX_RULE_LENGTH:
        raise RuleError(f"a rule is at most {MAX_RULE_LENGTH} characters")
    values = macros or {}
    alternatives = _alternatives(text, assignments=assignments)
    chosen = next(
        (a for a in alternatives
         if a.condition is None or all(_holds(c, values) for c in a.condition)),
        None,
    )
    if chosen is None:
        return None
    assigned = tuple((name, expand(value, values)) for name, value in chosen.assignments)
    if not chosen.locator:
        return Rule(url="", assignments=assigned)
    rule = _locate(chosen.locator, values, secrets or {})
    return replace(rule, assignments=assigned, locator=chosen.locator)


def check_rule(text: str, *, assignments: bool = False) -> str | None:
    """Why ``text`` is not a usable rule, or None: its syntax, without evaluating conditions
    or expanding macros (for the settings' validation)."""
    text = text.strip()
    if not text:
        return None
    if len(text) > MAX_RULE_LENGTH:
        return f"a rule is at most {MAX_RULE_LENGTH} characters"
    try:
        for alt in _alternatives(text, assignments=assignments):
            if alt.locator:
                _locate(alt.locator, {}, {})
    except RuleError as exc:
        return str(exc)
    return None


def _alternatives(text: str, *, assignments: bool) -> list[_Alternative]:
    parts = _split_top(text, "|")
    if len(parts) > MAX_ALTERNATIVES:
        raise RuleError(f"a rule has at most {MAX_ALTERNATIVES} alternatives")
    alternatives = [_parse_alternative(part) for part in parts]
    for alt in alternatives[:-1]:
        if alt.condition is None:
            raise RuleError("every alternative but the last needs a ( condition )?")
    for alt in alternatives:
        if alt.assignments and not assignments:
            raise RuleError("only Profile Rules may assign parameters ( ... )!")
        if not alt.locator and not alt.assignments:
            raise RuleError("an alternative needs a URL or ( assignments )!")
    return alternatives


def rebuild_rule(
    rule: Rule, macros: Mapping[str, str], *, secrets: Mapping[str, str] | None = None
) -> Rule:
    """Expand the chosen alternative's options and URL again (after its assignments)."""
    if not rule.locator:
        return rule
    return replace(_locate(rule.locator, macros, secrets or {}), locator=rule.locator)


def _locate(text: str, values: Mapping[str, str], secrets: Mapping[str, str]) -> Rule:
    options: dict[str, str] = {}
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise RuleError("the options [...] are not closed with ]")
        try:
            words = shlex.split(text[1:end])
        except ValueError as exc:
            raise RuleError(f"bad quoting in the options: {exc}") from None
        text = text[end + 1 :].strip()
        i = 0
        while i < len(words):
            word = words[i]
            if word not in _OPTIONS_WITH_VALUE:
                raise RuleError(f"unsupported rule option {word!r}")
            if i + 1 >= len(words):
                raise RuleError(f"{word} needs a value")
            if word in options:
                raise RuleError(f"{word} given twice")
            options[word] = expand(
                words[i + 1], {**values, **secrets} if word == "--key" else values
            )
            i += 2
    url = expand(text, values)
    if any(c.isspace() for c in url):
        raise RuleError("a URL has no spaces")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        _ = parts.port  # "Port out of range 0-65535", not a number
    except ValueError as exc:  # "Invalid IPv6 URL" and kin
        raise RuleError(f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if not scheme or scheme == "tftp":
            raise RuleError("only http:// and https:// rules are supported (no TFTP)")
        raise RuleError(f"unsupported URL scheme {parts.scheme!r}")
    if not hostname:
        raise RuleError("the URL has no host")
    if parts.username or parts.password:
        raise RuleError("give credentials with [--uid U --pwd P], not in the URL")
    if ("--uid" in options) != ("--pwd" in options):
        raise RuleError("--uid and --pwd go together")
    digest = None
    if "--sha256" in options:
        hexdigest = options["--sha256"].replace(":", "")
        if not _SHA256.fullmatch(hexdigest):
            raise RuleError("--sha256 takes 64 hex digits")
        digest = bytes.fromhex(hexdigest)
    return Rule(
        url=url,
        key=options.get("--key"),
        username=options.get("--uid"),
        password=options.get("--pwd"),
        sha256=digest,
    )
