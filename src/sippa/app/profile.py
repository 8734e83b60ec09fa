"""Cisco ``<flat-profile>`` import and export of every setting (Cisco MPP provisioning guide).

Format (Cisco SPA/MPP provisioning guides): each setting is one child element of
``<flat-profile>`` named as on the phone (``Resync_Periodic``, ``Proxy_1_`` for per-line ones),
its text is the value and the ``ua="na|ro|rw"`` attribute says what the ``user`` login may do
with it.

- An empty element (``<Profile_Rule_B/>``) sets an empty value; an element with only attributes
  (``<Proxy_1_ ua="rw"/>``) changes only the access and leaves the value alone.
- ``<flat-profile>`` may sit inside other elements; unknown elements are ignored with a warning.
- Import validates EVERYTHING first and then applies in one :meth:`ConfigStore.update`: a profile
  with one bad value changes nothing and the error names the element and why.
- ``Admin_Password``/``User_Password`` come as plain text and are stored as scrypt hashes
  (:func:`sippa.app.accounts.hash_password`); an exported hash is taken back as it is.
- Parsing is defused (``defusedxml``: no DTD at all, hence no XXE and no entity expansion) and
  size-limited; a profile may be gzip-compressed and/or encrypted with
  ``openssl enc -aes-256-cbc`` (``Salted__`` header), decrypted with the rule's ``--key``:
  the key derivation is found by trying EVP_BytesToKey with MD5 (the classic default) and
  SHA-256 (OpenSSL >= 1.1) and ``-pbkdf2`` (SHA-256, 10000 iterations); a wrong key is told
  by the padding AND the plaintext starting like XML or gzip. ``-nosalt`` is not supported.
- User access (``ua``) overrides live in :class:`AccessMap` (``access.json`` beside the
  database), since the store keeps values only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from defusedxml import DefusedXmlException

from sippa.app.accounts import check_password_policy, hash_password
from sippa.app.files import atomic_write
from sippa.app.settings import SCHEMA, Access, Setting, SettingError, Value, by_cisco_name
from sippa.app.settings import format_value as _format
from sippa.app.store import ConfigStore, Key

__all__ = [
    "MAX_PROFILE_BYTES",
    "AccessMap",
    "ImportResult",
    "PreparedProfile",
    "ProfileEntry",
    "ProfileError",
    "apply_profile",
    "check_profile",
    "decode_profile",
    "export_profile",
    "import_profile",
    "parse_profile",
    "prepare_profile",
]

log = logging.getLogger(__name__)

MAX_PROFILE_BYTES = 1024 * 1024
"""Largest profile accepted (after decryption and decompression): a full profile is ~20 KiB."""
MAX_ELEMENTS = 20000
_GZIP_MAGIC = b"\x1f\x8b"
_SALTED = b"Salted__"
_HASH_RE = re.compile(
    r"scrypt\$\d{1,8}\$\d{1,3}\$\d{1,3}\$[A-Za-z0-9+/=]{4,100}\$[A-Za-z0-9+/=]{4,200}"
)
_LOGIN_PASSWORDS = {"admin_password", "user_password"}


class ProfileError(ValueError):
    """A profile that cannot be used; ``errors`` maps element name -> why (may be empty)."""

    def __init__(self, message: str, errors: Mapping[str, str] | None = None) -> None:
        self.errors = dict(errors or {})
        if self.errors:
            message += ": " + "; ".join(f"<{k}> {v}" for k, v in self.errors.items())
        super().__init__(message)


# -- decoding: openssl enc, gzip -------------------------------------------------------------


def _evp_bytes_to_key(password: bytes, salt: bytes, algorithm: str) -> tuple[bytes, bytes]:
    """OpenSSL's EVP_BytesToKey with one iteration (``openssl enc`` without ``-pbkdf2``)."""
    out = b""
    block = b""
    while len(out) < 48:
        block = hashlib.new(algorithm, block + password + salt).digest()
        out += block
    return out[:32], out[32:48]


def _pbkdf2(password: bytes, salt: bytes, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """``openssl enc -pbkdf2`` (10000 iterations, the default ``-iter``)."""
    kdf = PBKDF2HMAC(algorithm=algorithm, length=48, salt=salt, iterations=10000)
    out = kdf.derive(password)
    return out[:32], out[32:48]


_KDFS: tuple[tuple[str, Callable[[bytes, bytes], tuple[bytes, bytes]]], ...] = (
    ("md5", lambda p, s: _evp_bytes_to_key(p, s, "md5")),  # -md md5: the classic default
    ("sha256", lambda p, s: _evp_bytes_to_key(p, s, "sha256")),  # OpenSSL >= 1.1 default -md
    ("pbkdf2-sha256", lambda p, s: _pbkdf2(p, s, hashes.SHA256())),
)


def _looks_like_profile(data: bytes) -> bool:
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith((b"<", _GZIP_MAGIC))


def _decrypt(data: bytes, key: str) -> bytes:
    """Decrypt ``openssl enc -aes-256-cbc [-md md5|sha256] [-pbkdf2]`` output (``Salted__``)."""
    salt, body = data[8:16], data[16:]
    if len(salt) != 8 or not body or len(body) % 16:
        raise ProfileError("the encrypted profile is truncated")
    for name, kdf in _KDFS:
        k, iv = kdf(key.encode(), salt)
        decryptor = Cipher(algorithms.AES(k), modes.CBC(iv)).decryptor()
        padded = decryptor.update(body) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            plain = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            continue  # wrong key or wrong key derivation
        if _looks_like_profile(plain):
            log.debug("profile decrypted (key derivation %s)", name)
            return plain
    raise ProfileError("cannot decrypt the profile: wrong --key (or not aes-256-cbc)")


def _gunzip(data: bytes) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, MAX_PROFILE_BYTES + 1)
    except zlib.error as exc:
        raise ProfileError(f"bad gzip data: {exc}") from None
    if len(out) > MAX_PROFILE_BYTES or d.unconsumed_tail:
        raise ProfileError(f"the profile is larger than {MAX_PROFILE_BYTES} bytes uncompressed")
    if not d.eof:
        raise ProfileError("the gzip data is truncated")
    return out


def decode_profile(data: bytes, *, key: str | None = None) -> bytes:
    """Decrypt (``Salted__``) and/or decompress (gzip magic) a profile; return the XML bytes."""
    if len(data) > MAX_PROFILE_BYTES:
        raise ProfileError(f"the profile is larger than {MAX_PROFILE_BYTES} bytes")
    for _ in range(3):  # gzip(enc(...)) or enc(gzip(...)): at most a few layers
        if data.startswith(_SALTED):
            if not key:
                raise ProfileError("the profile is encrypted: give the rule a [--key ...]")
            data = _decrypt(data, key)
        elif data.startswith(_GZIP_MAGIC):
            data = _gunzip(data)
        else:
            break
    return data


# -- parsing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    """One element of a flat profile."""

    name: str
    value: str | None
    """The text; None when the element only carries attributes (access change only)."""
    ua: str | None


def _find_flat_profile(root: Element) -> Element | None:
    if root.tag == "flat-profile":
        return root
    return next(iter(root.iter("flat-profile")), None)


def parse_profile(xml: bytes) -> tuple[list[ProfileEntry], list[str]]:
    """The entries of a ``<flat-profile>`` and warnings. Raises :class:`ProfileError`."""
    if len(xml) > MAX_PROFILE_BYTES:
        raise ProfileError(f"the profile is larger than {MAX_PROFILE_BYTES} bytes")
    try:
        # no DTD at all: an internal subset could define entities (billion laughs) and an
        # external one would be fetched (XXE)
        root = SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ProfileError(f"refused XML construct: {type(exc).__name__}") from None
    except SafeET.ParseError as exc:
        raise ProfileError(f"malformed XML: {exc}") from None
    flat = _find_flat_profile(root)
    if flat is None:
        raise ProfileError("no <flat-profile> element")
    entries: list[ProfileEntry] = []
    warnings: list[str] = []
    for count, element in enumerate(flat):
        if count >= MAX_ELEMENTS:
            raise ProfileError(f"more than {MAX_ELEMENTS} elements")
        if not isinstance(element.tag, str):
            continue  # a comment or processing instruction
        if len(element):
            warnings.append(f"<{element.tag}> has child elements: ignored")
            continue
        ua = element.get("ua")
        text = element.text
        # attributes only: change the access, keep the value
        value = None if text is None and element.attrib else text or ""
        entries.append(ProfileEntry(str(element.tag), value, ua))
    return entries, warnings


# -- user access (the ua attribute) ----------------------------------------------------------


class AccessMap:
    """Per-setting overrides of the ``user`` login's access (``ua``), kept in a JSON file.

    The schema gives each setting a default access; a profile's ``ua`` attribute overrides it.
    Saved atomically (temporary file + rename). ``path=None`` keeps them in memory.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._overrides: dict[str, Access] = {}
        if path is not None and path.is_file():
            try:
                raw = json.loads(path.read_text())
                self._overrides = {
                    str(k): Access(v) for k, v in raw.items() if str(k).split("@")[0] in SCHEMA
                }
            except (ValueError, AttributeError) as exc:
                log.warning("ignoring %s: %s", path, exc)

    @staticmethod
    def _name(key: Key) -> str:
        return f"{key[0]}@{key[1]}" if key[1] else key[0]

    def get(self, key: str, line: int = 0) -> Access:
        """What the ``user`` login may do with this setting."""
        return self._overrides.get(self._name((key, line)), SCHEMA[key].access)

    def update(self, changes: Mapping[Key, Access]) -> None:
        new = dict(self._overrides)
        for key, access in changes.items():
            name = self._name(key)
            if access is SCHEMA[key[0]].access:
                new.pop(name, None)
            else:
                new[name] = access
        if self.path is not None and new != self._overrides:
            text = json.dumps({k: v.value for k, v in sorted(new.items())}, indent=1)
            atomic_write(self.path, text.encode())
        self._overrides = new


# -- import ----------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportResult:
    """What an import did."""

    changed: dict[Key, Value] = field(default_factory=dict)
    """Settings that got a new value (passwords hashed)."""
    access: dict[Key, Access] = field(default_factory=dict)
    """``ua`` values found in the profile."""
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PreparedProfile:
    """A profile checked against the schema but not applied yet (see :func:`prepare_profile`)."""

    values: dict[Key, str] = field(default_factory=dict)
    access: dict[Key, Access] = field(default_factory=dict)
    names: dict[Key, str] = field(default_factory=dict)
    """(key, line) -> the element name it came from (to name it in errors)."""
    warnings: list[str] = field(default_factory=list)

    def merge(self, later: PreparedProfile) -> None:
        """Later profiles (Profile_Rule_B after Profile_Rule) win."""
        self.values.update(later.values)
        self.access.update(later.access)
        self.names.update(later.names)
        self.warnings += later.warnings


def prepare_profile(
    data: bytes, store: ConfigStore, *, key: str | None = None, source: str = "profile"
) -> PreparedProfile:
    """Decode and parse a profile and map its elements to settings (no value checks yet)."""
    entries, warnings = parse_profile(decode_profile(data, key=key))
    prepared = PreparedProfile(warnings=[f"{source}: {w}" for w in warnings])
    errors: dict[str, str] = {}
    for entry in entries:
        found = by_cisco_name(entry.name)
        if found is None:
            prepared.warnings.append(f"{source}: unknown element <{entry.name}> ignored")
            continue
        s, line = found
        if s.per_line and not 1 <= line <= store.lines:
            prepared.warnings.append(
                f"{source}: <{entry.name}> ignored: this phone has lines 1..{store.lines}"
            )
            continue
        k = (s.key, line)
        if k in prepared.names:
            prepared.warnings.append(f"{source}: <{entry.name}> given twice, the last one wins")
        prepared.names[k] = entry.name
        if entry.ua is not None:
            try:
                prepared.access[k] = Access(entry.ua.strip().lower())
            except ValueError:
                errors[entry.name] = f'ua="{entry.ua}" is not na, ro or rw'
        if entry.value is not None:
            prepared.values[k] = entry.value
    if errors:
        raise ProfileError(f"{source} is invalid", errors)
    for w in prepared.warnings:
        log.warning("%s", w)
    return prepared


def _login_password(s: Setting, text: str, *, hashed: bool) -> str:
    """Plain text -> scrypt hash (an exported hash is kept); raises ValueError."""
    if _HASH_RE.fullmatch(text):
        return text
    if not text:
        if s.key == "admin_password":
            raise ValueError("the admin password cannot be cleared by a profile")
        return ""
    check_password_policy(text)
    return hash_password(text) if hashed else text


def _checked_changes(
    prepared: PreparedProfile, store: ConfigStore, *, hashed: bool
) -> dict[Key, Value]:
    changes: dict[Key, Value] = {}
    errors: dict[str, str] = {}
    for k, text in prepared.values.items():
        s = SCHEMA[k[0]]
        if s.key in _LOGIN_PASSWORDS:
            if text == str(store.get(s.key)):
                continue
            try:
                value = _login_password(s, text, hashed=hashed)
            except ValueError as exc:
                errors[prepared.names[k]] = str(exc)
                continue
            changes[k] = value if hashed else str(store.get(s.key))
            continue
        changes[k] = text
    if errors:
        raise ProfileError("the profile is invalid", errors)
    try:
        store.validate(changes)
    except SettingError as exc:
        named = {
            prepared.names.get(k, SCHEMA[k[0]].cisco_name(k[1]) if k[0] in SCHEMA else k[0]): m
            for k, m in exc.errors.items()
        }
        raise ProfileError("the profile is invalid", named) from None
    return changes


def check_profile(prepared: PreparedProfile, store: ConfigStore) -> None:
    """Raise :class:`ProfileError` if applying ``prepared`` would fail (changes nothing)."""
    _checked_changes(prepared, store, hashed=False)


def apply_profile(
    prepared: PreparedProfile, store: ConfigStore, access: AccessMap | None = None
) -> ImportResult:
    """Check every value and save them all in one transaction, or raise and change nothing."""
    changes = _checked_changes(prepared, store, hashed=True)
    changed = store.update(changes)
    if access is not None and prepared.access:
        access.update(prepared.access)
    return ImportResult(changed=changed, access=dict(prepared.access), warnings=prepared.warnings)


def import_profile(
    data: bytes,
    store: ConfigStore,
    *,
    key: str | None = None,
    access: AccessMap | None = None,
    source: str = "profile",
) -> ImportResult:
    """Decode, parse, check and apply one profile atomically. Raises :class:`ProfileError`."""
    return apply_profile(prepare_profile(data, store, key=key, source=source), store, access)


# -- export ----------------------------------------------------------------------------------


def export_profile(
    store: ConfigStore, *, include_secrets: bool = False, access: AccessMap | None = None
) -> bytes:
    """Every setting as a ``<flat-profile>`` (passwords only with ``include_secrets``)."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<flat-profile>"]
    section = None
    for (key, line), value in store.snapshot().items():
        s = SCHEMA[key]
        if s.secret and not include_secrets:
            continue
        where = f"{s.page} {line} / {s.section}" if s.per_line else f"{s.page} / {s.section}"
        if where != section:
            out.append(f"  <!-- {escape(where).replace('--', '- -')} -->")
            section = where
        ua = access.get(key, line) if access is not None else s.access
        name = s.cisco_name(line)
        text = escape(_format(s, value))
        out.append(f"  <{name} ua={quoteattr(ua.value)}>{text}</{name}>")
    out.append("</flat-profile>")
    return ("\n".join(out) + "\n").encode()
