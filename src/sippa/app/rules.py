"""The provisioning rule syntax: ``[--key K --uid U --pwd P --sha256 H] https://host/$MA.xml``.

One rule names one resource (a profile, a CA bundle, a release manifest) and how to get it:

- options in ONE leading ``[...]`` (Cisco: "URL options"): ``--key`` (the ``openssl enc``
  passphrase of an encrypted profile), ``--uid``/``--pwd`` (HTTP basic authentication, MPP),
  and sippa's ``--sha256 HEX`` (pin the resource's digest; required for a CA bundle over http);
- then an ``http://`` or ``https://`` URL. Macros (:mod:`sippa.app.macros`) are expanded in the
  option values and the URL, after the rule has been split, so a macro value cannot inject an
  option.

Not supported (refused with a message rather than half-implemented): conditional alternatives
``(expr)? url | url``, ``--post``/``--alias``, TFTP and scheme-less URLs (the server would come
from DHCP options 66/150).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from sippa.app.macros import expand

__all__ = ["Rule", "RuleError", "parse_rule"]

MAX_RULE_LENGTH = 2048
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_OPTIONS_WITH_VALUE = {"--key", "--uid", "--pwd", "--sha256"}


class RuleError(ValueError):
    """A rule that cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One parsed and expanded rule."""

    url: str
    """http or https URL, macros expanded."""
    key: str | None = None
    """``--key``: passphrase of an ``openssl enc`` encrypted resource."""
    username: str | None = None
    """``--uid``: HTTP basic authentication user."""
    password: str | None = None
    """``--pwd``: HTTP basic authentication password."""
    sha256: bytes | None = None
    """``--sha256``: the resource's pinned SHA-256 digest."""

    @property
    def https(self) -> bool:
        return self.url.lower().startswith("https://")

    def __repr__(self) -> str:  # never show the key or the password
        hidden = [k for k in ("key", "password") if getattr(self, k)]
        return f"Rule(url={self.url!r}, user={self.username!r}, secrets={hidden})"


def parse_rule(text: str, macros: Mapping[str, str] | None = None) -> Rule | None:
    """Parse one rule; None for an empty rule. Raises :class:`RuleError`."""
    text = text.strip()
    if not text:
        return None
    if len(text) > MAX_RULE_LENGTH:
        raise RuleError(f"a rule is at most {MAX_RULE_LENGTH} characters")
    values = macros or {}
    if text.startswith("("):
        raise RuleError("conditional rules ((expr)? url | url) are not supported")
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
            options[word] = expand(words[i + 1], values)
            i += 2
    if "|" in text:
        raise RuleError("alternative rules (a | b) are not supported")
    url = expand(text, values)
    if any(c.isspace() for c in url):
        raise RuleError("a URL has no spaces")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if not scheme or scheme == "tftp":
            raise RuleError("only http:// and https:// rules are supported (no TFTP)")
        raise RuleError(f"unsupported URL scheme {parts.scheme!r}")
    if not parts.hostname:
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
