"""Cisco/Sipura dial plans (the per-line ``Dial_Plan_n_``), sans-IO.

A dial plan is a list of alternatives between parentheses, separated by ``|``; each
alternative is a pattern a dialled number may have::

    (*xx|[3469]11|0|00|[2-9]xxxxxx|1xxx[2-9]xxxxxxS0|xxxxxxxxxxxx.)

Elements of a pattern (the MGCP/MEGACO digit-map syntax, RFC 3435 §2.1.5, with Cisco's
extensions):

- ``0``-``9``, ``*``, ``#``: that key;
- ``x``: any digit; ``[2-9]``, ``[3469]``, ``[1-3*#]``: one key of a set (ranges and single keys);
- ``.``: zero or more of the element before it (``xx.`` is one digit or more);
- ``<from:to>``: substitution - the keys matched by ``from`` (elements as above, possibly
  none) are replaced by the keys ``to`` (digits, ``*``, ``#``, ``+``): ``<9:>xxx.`` strips a
  leading 9, ``<:+1>xxxxxxxxxx`` inserts ``+1``, ``<*67:>x.`` drops a prefix;
- ``<:@host>`` / ``<:@host:port>``: route the call to that host (the dialled, rewritten
  number becomes ``number@host[:port]``) instead of the line's proxy. Cisco's ``gw0``-``gw4``
  name gateways configured elsewhere on an SPA; sippa has none, so they are refused, and so
  are ``;uid=...;pwd=...`` credentials (a password has no place in a dial plan);
- ``!`` at the start of an alternative: numbers it matches are barred;
- ``S0``-``S9``, ``L0``-``L9``, ``T0``-``T9``: interdigit timer markers (short, long, and
  Cisco's ``T`` "dial now after n seconds"); ``,``: a second dial tone. A number typed on
  the web keypad, the CLI or the API is complete when it is sent, so sippa accepts these and
  exposes the timers but waits for nothing.

Matching (Cisco: "the best match"): the typed number is compared with every alternative in
full. Of those that match, the most explicit wins - each key matched by a literal element
counts 3, by a set 2, by ``x`` 1, by a ``.`` repetition 0 - and the first in the plan wins a
tie; so ``!1900xxxxxxx`` bars 1-900 numbers although ``1xxx[2-9]xxxxxx`` also matches them.
The verdict is:

- allowed: the rewritten number and the route host (if any);
- barred: the best match starts with ``!``;
- incomplete: no alternative matches in full but the number is the beginning of one (a Cisco
  phone would wait for more keys; the number is typed, so there are no more);
- no match: Cisco plays the reorder tone ("invalid number") and places no call - so does
  sippa, with a message.

Everything here has limits (plan length, alternatives, elements, number length), and bad text
raises :class:`DialPlanError` with a message for people; matching walks all alternatives at
once over the number (a set of positions, no backtracking), so its time is linear in the
number length.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "CISCO_DEFAULT",
    "MAX_NUMBER",
    "MAX_PLAN",
    "DialPlan",
    "DialPlanError",
    "Outcome",
    "Verdict",
    "is_dialable",
    "parse_dial_plan",
]

CISCO_DEFAULT = "(*xx|[3469]11|0|00|[2-9]xxxxxx|1xxx[2-9]xxxxxxS0|xxxxxxxxxxxx.)"
"""The phones' default ``Dial_Plan_n_``."""

MAX_PLAN = 2048
"""Longest plan accepted (Cisco: Str2048)."""
MAX_ALTERNATIVES = 100
MAX_ELEMENTS = 64
"""Elements (keys, sets, substitutions) in one alternative."""
MAX_NUMBER = 64
"""Longest number matched; longer ones match nothing."""
MAX_INSERT = 32

KEYS = frozenset("0123456789*#")
_DIGITS = frozenset("0123456789")
_INSERT_CHARS = frozenset("0123456789*#+")
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\]")
_GATEWAY_RE = re.compile(r"gw[0-9]", re.IGNORECASE)
_NUMBER_RE = re.compile(r"[0-9*#]+")


class DialPlanError(ValueError):
    """A dial plan that cannot be used; the message says where and why."""


class Outcome(enum.Enum):
    ALLOWED = "allowed"
    BARRED = "barred"
    INCOMPLETE = "incomplete"
    NO_MATCH = "no match"


@dataclass(frozen=True, slots=True)
class _Key:
    """One key position: the keys it accepts; ``repeat`` for ``.``; ``hidden`` inside the
    ``from`` part of a substitution (matched, not sent)."""

    keys: frozenset[str]
    weight: int
    repeat: bool = False
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class _Insert:
    """``to`` of a substitution: sent where it stands, matches nothing."""

    text: str


_Element = _Key | _Insert


@dataclass(frozen=True, slots=True)
class Alternative:
    """One ``|``-separated pattern of a plan."""

    text: str
    elements: tuple[_Element, ...]
    barred: bool = False
    host: str | None = None
    """``<:@host[:port]>``: where calls matching it go."""
    timers: tuple[tuple[str, int], ...] = ()
    """Timer markers in order: (``S``/``L``/``T``, seconds)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the plan says about one typed number."""

    outcome: Outcome
    dialled: str
    number: str = ""
    """The number to call (rewritten), when allowed."""
    host: str | None = None
    rule: str = ""
    """The alternative that decided (allowed or barred)."""
    dial_now: bool = False
    """Allowed, and no longer number could match (or the rule says ``S0``): a Cisco phone
    would dial at once, without waiting for the interdigit timer."""

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED

    @property
    def target(self) -> str:
        """What to dial: the number, ``number@host`` when the rule routes it."""
        return f"{self.number}@{self.host}" if self.host else self.number

    @property
    def reason(self) -> str:
        """Why the number is not called (for people); empty when it is."""
        if self.outcome is Outcome.BARRED:
            return f"{self.dialled} is barred by the dial plan ({self.rule})"
        if self.outcome is Outcome.INCOMPLETE:
            return f"{self.dialled} is incomplete for the dial plan"
        if self.outcome is Outcome.NO_MATCH:
            return f"{self.dialled} is not a valid number in the dial plan"
        return ""


def is_dialable(text: str) -> bool:
    """``text`` is a plain number the dial plan applies to (keys only: 0-9, ``*``, ``#``)."""
    return _NUMBER_RE.fullmatch(text) is not None


class _Parser:
    def __init__(self, text: str, alt_text: str, position: int) -> None:
        self.s = text
        self.i = 0
        self.alt = alt_text
        self.base = position

    def fail(self, message: str) -> DialPlanError:
        return DialPlanError(f"{message} at position {self.base + self.i + 1} in {self.alt!r}")

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def key_class(self) -> tuple[frozenset[str], int] | None:
        """One ``0-9*#``, ``x`` or ``[...]`` element, or None if there is none here."""
        c = self.peek()
        if c in KEYS:
            self.i += 1
            return frozenset(c), 3
        if c in ("x", "X"):
            self.i += 1
            return _DIGITS, 1
        if c == "[":
            return self.key_set()
        return None

    def key_set(self) -> tuple[frozenset[str], int]:
        self.i += 1
        keys: set[str] = set()
        while True:
            c = self.peek()
            if not c:
                raise self.fail("a [ set is not closed with ]")
            if c == "]":
                self.i += 1
                break
            if c not in KEYS:
                raise self.fail(f"{c!r} cannot be in a [ ] set (0-9, *, #, ranges like 2-9)")
            self.i += 1
            if self.peek() == "-":
                self.i += 1
                hi = self.peek()
                if hi not in _DIGITS or c not in _DIGITS:
                    raise self.fail("a range in [ ] goes from a digit to a digit")
                if hi < c:
                    raise self.fail(f"the range {c}-{hi} is backwards")
                self.i += 1
                keys.update(str(d) for d in range(int(c), int(hi) + 1))
            else:
                keys.add(c)
        if not keys:
            raise self.fail("an empty [ ] set matches nothing")
        return frozenset(keys), 1 if keys == _DIGITS else 2

    def timer(self) -> tuple[str, int]:
        kind = self.s[self.i].upper()
        self.i += 1
        digits = ""
        while self.peek().isdigit() and len(digits) < 2:
            digits += self.peek()
            self.i += 1
        return kind, int(digits) if digits else 0


def _route(text: str, parser: _Parser) -> str:
    if ";" in text:
        raise parser.fail("gateway parameters (;uid=, ;pwd=, ;nat) are not supported")
    host, port = text, ""
    if text.startswith("["):
        end = text.find("]")
        host, port = text[: end + 1], text[end + 1 :]
        if port and not port.startswith(":"):
            raise parser.fail(f"bad route {text!r}")
        port = port[1:]
    elif ":" in text:
        host, port = text.split(":", 1)
    if _GATEWAY_RE.fullmatch(host):
        raise parser.fail(f"gateway {host} is not configured on sippa; route to a host instead")
    if not _HOST_RE.fullmatch(host):
        raise parser.fail(f"{host!r} is not a host name or address")
    if port and not (port.isdigit() and len(port) <= 5 and 0 < int(port) <= 65535):
        raise parser.fail(f"{port!r} is not a port number")
    return f"{host}:{port}" if port else host


def _alternative(text: str, position: int) -> Alternative:
    p = _Parser(text, text, position)
    barred = False
    if p.peek() == "!":
        barred = True
        p.i += 1
    elements: list[_Element] = []
    timers: list[tuple[str, int]] = []
    host: str | None = None
    while p.i < len(p.s):
        c = p.peek()
        if c == ".":
            if not elements or not isinstance(elements[-1], _Key) or elements[-1].repeat:
                raise p.fail(". must follow a key, x or [ ] set")
            last = elements[-1]
            elements[-1] = _Key(last.keys, 0, repeat=True, hidden=last.hidden)
            p.i += 1
        elif c == ",":
            p.i += 1  # second dial tone: nothing to wait for with a typed number
        elif c in "SLTslt":
            timers.append(p.timer())
        elif c == "<":
            p.i += 1
            hidden: list[_Key] = []
            while p.peek() not in (":", ""):
                if p.peek() == ".":
                    if not hidden or hidden[-1].repeat:
                        raise p.fail(". must follow a key, x or [ ] set")
                    hidden[-1] = _Key(hidden[-1].keys, 0, repeat=True, hidden=True)
                    p.i += 1
                    continue
                if p.peek() == ",":
                    p.i += 1
                    continue
                got = p.key_class()
                if got is None:
                    raise p.fail(f"{p.peek()!r} cannot be in the first part of < : >")
                hidden.append(_Key(got[0], got[1], hidden=True))
            if p.peek() != ":":
                raise p.fail("a < substitution needs a : (<from:to>)")
            p.i += 1
            end = p.s.find(">", p.i)
            if end < 0:
                raise p.fail("a < substitution is not closed with >")
            to = p.s[p.i : end]
            if to.startswith("@"):
                if hidden:
                    raise p.fail("a route <:@host> replaces nothing (nothing before the :)")
                if host is not None:
                    raise p.fail("an alternative has one route at most")
                host = _route(to[1:], p)
            else:
                bad = set(to) - _INSERT_CHARS
                if bad:
                    raise p.fail(f"{sorted(bad)[0]!r} cannot be inserted (0-9, *, #, +)")
                if len(to) > MAX_INSERT:
                    raise p.fail(f"an insertion is longer than {MAX_INSERT} keys")
                elements.extend(hidden)
                if to:
                    elements.append(_Insert(to))
            p.i = end + 1
        else:
            got = p.key_class()
            if got is None:
                raise p.fail(f"unexpected {c!r}")
            elements.append(_Key(got[0], got[1]))
        if len(elements) > MAX_ELEMENTS:
            raise p.fail(f"more than {MAX_ELEMENTS} elements in one alternative")
    if not any(isinstance(e, _Key) for e in elements):
        raise DialPlanError(f"the alternative {text!r} matches no keys")
    return Alternative(text, tuple(elements), barred, host, tuple(timers))


def parse_dial_plan(text: str) -> DialPlan:
    """Parse a Cisco dial plan; :class:`DialPlanError` says what is wrong."""
    if len(text) > MAX_PLAN:
        raise DialPlanError(f"a dial plan is at most {MAX_PLAN} characters")
    if any((ord(c) < 0x20 and c not in "\t\r\n") or ord(c) > 0x7E for c in text):
        raise DialPlanError("a dial plan is printable ASCII")
    body = "".join(text.split())
    if not body:
        raise DialPlanError("the dial plan is empty")
    if body.startswith("("):
        if not body.endswith(")"):
            raise DialPlanError("the dial plan's ( is not closed with )")
        body = body[1:-1]
    if "(" in body or ")" in body:
        raise DialPlanError("a dial plan is one ( ) group; no nested parentheses")
    parts = body.split("|")
    if len(parts) > MAX_ALTERNATIVES:
        raise DialPlanError(f"a dial plan has at most {MAX_ALTERNATIVES} alternatives")
    alternatives = []
    position = 1 if text.lstrip().startswith("(") else 0
    for part in parts:
        if not part:
            raise DialPlanError("an empty alternative (|| or a | at an end)")
        alternatives.append(_alternative(part, position))
        position += len(part) + 1
    return DialPlan("".join(text.split()), tuple(alternatives))


@dataclass(frozen=True, slots=True)
class DialPlan:
    """A parsed plan; :meth:`check` applies it to a typed number."""

    text: str
    alternatives: tuple[Alternative, ...]

    def check(self, dialled: str) -> Verdict:
        """The verdict on ``dialled`` (a complete, typed number)."""
        number = dialled.strip()
        if not is_dialable(number) or len(number) > MAX_NUMBER:
            return Verdict(Outcome.NO_MATCH, number)
        best: tuple[int, int, str, Alternative] | None = None
        incomplete = longer = False
        for index, alt in enumerate(self.alternatives):
            ends, alive, more = _run(alt.elements, number)
            longer = longer or more
            if ends is None:
                incomplete = incomplete or alive
                continue
            score, out = ends
            if best is None or score > best[0]:
                best = (score, index, out, alt)
        if best is None:
            return Verdict(Outcome.INCOMPLETE if incomplete else Outcome.NO_MATCH, number)
        _, _, out, alt = best
        if alt.barred:
            return Verdict(Outcome.BARRED, number, rule=alt.text)
        now = not longer or (alt.timers[-1:] == (("S", 0),))
        return Verdict(Outcome.ALLOWED, number, out, alt.host, alt.text, dial_now=now)


_State = dict[int, tuple[int, str]]
"""Element index -> (best score so far, output so far)."""


def _close(elements: tuple[_Element, ...], states: _State) -> _State:
    """Follow the moves that consume no key: past an insertion (it is sent) and past a
    ``.`` element (zero repetitions)."""
    todo = list(states)
    while todo:
        i = todo.pop()
        if i >= len(elements):
            continue
        e = elements[i]
        score, out = states[i]
        nxt: tuple[int, str] | None = None
        if isinstance(e, _Insert):
            nxt = (score, out + e.text)
        elif e.repeat:
            nxt = (score, out)
        if nxt is not None and (i + 1 not in states or states[i + 1][0] < nxt[0]):
            states[i + 1] = nxt
            todo.append(i + 1)
    return states


def _run(
    elements: tuple[_Element, ...], number: str
) -> tuple[tuple[int, str] | None, bool, bool]:
    """Match ``number`` in full: ((score, output) or None, whether it is the beginning of a
    match, whether a longer number could match too)."""
    states = _close(elements, {0: (0, "")})
    for key in number:
        moved: _State = {}
        for i, (score, out) in states.items():
            if i >= len(elements):
                continue
            e = elements[i]
            if not isinstance(e, _Key) or key not in e.keys:
                continue
            sent = out if e.hidden else out + key
            target = i if e.repeat else i + 1
            cand = (score + e.weight, sent)
            if target not in moved or moved[target][0] < cand[0]:
                moved[target] = cand
        if not moved:
            return None, False, False
        states = _close(elements, moved)
    more = any(i < len(elements) and isinstance(elements[i], _Key) for i in states)
    return states.get(len(elements)), True, more
