"""Custom CA Rule: extra trust anchors from a PEM bundle named by a path or a URL.

``Custom_CA_Rule`` takes the rule syntax of :mod:`sippa.app.rules` or a local path:

- ``https://host/ca.pem``: fetched over TLS verified against the CURRENT anchors (a bundle can
  only be replaced through a connection the phone already trusts);
- ``[--sha256 HEX] http://host/ca.pem``: plain http only together with the bundle's pinned
  SHA-256 (an http bundle without a pin is refused: anyone on the path could hand the phone a
  CA of their own); ``--sha256`` may be given for https and paths too;
- ``/etc/sippa/ca.pem`` or ``file:///etc/sippa/ca.pem``: a local file;
- empty: no rule bundle (the file is removed).

The bundle is checked whole before use: size limit, every PEM block a ``CERTIFICATE``, every
certificate a CA (basicConstraints CA:TRUE, keyCertSign when keyUsage is present) and valid now.
It is then written atomically (temporary file + fsync + rename) as ``custom-ca-rule.pem`` in the
custom CA directory beside the database (:func:`sippa.app.webserver.custom_ca_dir`), where the
web pages and the phone's lines find it, and ``on_change()`` lets them reload.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography import x509

from sippa.app.files import atomic_write
from sippa.app.macros import expand
from sippa.app.rules import RuleError, parse_rule
from sippa.app.store import ConfigStore
from sippa.net.http import Fetcher, FetchError, Request
from sippa.net.tls import TrustAnchor, TrustStore

__all__ = [
    "MAX_BUNDLE_BYTES",
    "RULE_BUNDLE_NAME",
    "CaBundleError",
    "CaRuleStatus",
    "CustomCaRule",
    "check_ca_bundle",
]

log = logging.getLogger(__name__)

MAX_BUNDLE_BYTES = 256 * 1024  # a few hundred CA certificates; more is not a CA bundle
RULE_BUNDLE_NAME = "custom-ca-rule.pem"
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


class CaBundleError(ValueError):
    """A CA bundle or rule that cannot be used (the message says why)."""


def check_ca_bundle(data: bytes, *, now: dt.datetime | None = None) -> list[x509.Certificate]:
    """The CA certificates of a PEM bundle; raise :class:`CaBundleError` unless all are usable."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise CaBundleError(f"the bundle is larger than {MAX_BUNDLE_BYTES // 1024} KiB")
    labels = [m.group(1).decode() for m in _PEM_BLOCK.finditer(data)]
    if not labels:
        raise CaBundleError("no PEM certificate in the bundle")
    others = sorted({label for label in labels if label != "CERTIFICATE"})
    if others:
        raise CaBundleError(f"the bundle holds PEM blocks that are not certificates: {others}")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CaBundleError(f"not a valid PEM certificate: {exc}") from None
    if len(certs) != len(labels):
        raise CaBundleError("a PEM block of the bundle is not a valid certificate")
    now = now or dt.datetime.now(dt.UTC)
    for cert in certs:
        subject = cert.subject.rfc4514_string() or "a certificate"
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:  # RFC 5280 §4.2.1.9
            raise CaBundleError(f"{subject} is not a CA certificate")
        try:
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            ku = None
        if ku is not None and not ku.key_cert_sign:  # RFC 5280 §4.2.1.3
            raise CaBundleError(f"{subject} may not sign certificates (keyUsage)")
        if cert.not_valid_after_utc < now:
            raise CaBundleError(f"{subject} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
        if cert.not_valid_before_utc > now:
            start = cert.not_valid_before_utc
            raise CaBundleError(f"{subject} is not valid before {start:%Y-%m-%d}")
    return certs


@dataclass(frozen=True, slots=True)
class CaRuleStatus:
    """The last application of the rule (for the Trust anchors / Provisioning pages)."""

    state: str = "never"
    """never, ok, unchanged, removed, failed."""
    rule: str = ""
    error: str = ""
    count: int = 0


class CustomCaRule:
    """Applies ``Custom_CA_Rule`` into ``directory / custom-ca-rule.pem``."""

    def __init__(
        self,
        directory: Path,
        *,
        fetch: Fetcher,
        macros: Callable[[], Mapping[str, str]] = dict,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.path = directory / RULE_BUNDLE_NAME
        self._fetch = fetch
        self._macros = macros
        self._on_change = on_change
        self.status = CaRuleStatus()

    def anchors(self) -> tuple[TrustAnchor, ...]:
        """The anchors the rule installed (subject, SHA-256, expiry)."""
        if not self.path.is_file():
            return ()
        store = TrustStore()
        store.add_pem_data(self.path.read_bytes(), str(self.path))
        return store.anchors

    async def apply_from_store(self, store: ConfigStore) -> CaRuleStatus:
        return await self.apply(str(store.get("custom_ca_rule")))

    async def apply(self, rule_text: str) -> CaRuleStatus:
        """Fetch, check and install the bundle; on any error nothing changes."""
        rule_text = rule_text.strip()
        try:
            data = await self._get(rule_text)
            if data is None:
                if self.path.exists():
                    self.path.unlink()
                    self._changed()
                    log.info("Custom CA Rule is empty: rule anchors removed")
                self.status = CaRuleStatus("removed", rule_text)
                return self.status
            certs = check_ca_bundle(data)
        except (CaBundleError, RuleError, FetchError, OSError) as exc:
            message = str(exc) if not isinstance(exc, OSError) else f"{exc.strerror}"
            log.warning("Custom CA Rule not applied: %s", message)
            self.status = CaRuleStatus("failed", rule_text, message)
            return self.status
        if self.path.is_file() and self.path.read_bytes() == data:
            self.status = CaRuleStatus("unchanged", rule_text, count=len(certs))
            return self.status
        atomic_write(self.path, data)
        for cert in certs:
            log.info("Custom CA Rule: trust anchor %s", cert.subject.rfc4514_string())
        self._changed()
        self.status = CaRuleStatus("ok", rule_text, count=len(certs))
        return self.status

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                log.exception("reloading the trust anchors failed")

    async def _get(self, text: str) -> bytes | None:
        if not text:
            return None
        pin: bytes | None = None
        local: Path | None = None
        if text.startswith("[") and "]" in text:
            options, rest = text[1 : text.index("]")], text[text.index("]") + 1 :].strip()
        else:
            options, rest = "", text
        if rest.startswith(("/", "file://")):
            rule = parse_rule(f"[{options}] http://localhost/" if options else "")
            pin = rule.sha256 if rule is not None else None
            path = expand(rest, self._macros())
            local = Path(unquote(urlsplit(path).path) if path.startswith("file://") else path)
        if local is not None:
            data = local.read_bytes()[: MAX_BUNDLE_BYTES + 1]
        else:
            parsed = parse_rule(text, self._macros())
            if parsed is None:
                return None
            pin = parsed.sha256
            if not parsed.https and pin is None:
                raise CaBundleError(
                    "a CA bundle over plain http needs its digest: [--sha256 HEX] http://..."
                )
            data = await self._fetch(
                Request(parsed.url, parsed.username, parsed.password, max_bytes=MAX_BUNDLE_BYTES)
            )
        if pin is not None and hashlib.sha256(data).digest() != pin:
            raise CaBundleError("the bundle does not match its pinned --sha256")
        return data
