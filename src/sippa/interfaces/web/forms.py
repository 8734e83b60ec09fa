"""Settings as form fields (built from the schema) and one way to apply a batch of changes.

The pages and the API both go through :func:`apply_changes`: names are Cisco element names
(``Proxy_1_``), the whole batch is validated first and saved atomically by the store, and a bad
value changes nothing (the error maps each bad name to a message for a person).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sippa.app.accounts import PasswordRejected, check_password_policy, hash_password
from sippa.app.settings import (
    SCHEMA,
    Kind,
    Setting,
    SettingError,
    Value,
    by_cisco_name,
    format_value,
)
from sippa.app.store import ConfigStore, Key
from sippa.interfaces.web.auth import can_edit, can_see

__all__ = ["ChangeError", "Field", "apply_changes", "page_fields", "sections"]

LOGIN_PASSWORDS = {"admin_password": "admin", "user_password": "user"}


@dataclass
class Field:
    """One setting on a page."""

    setting: Setting
    line: int
    value: str
    editable: bool
    is_set: bool = False
    error: str | None = None

    @property
    def name(self) -> str:
        return self.setting.cisco_name(self.line)

    @property
    def kind(self) -> str:
        return self.setting.kind.value


class ChangeError(Exception):
    """Bad or forbidden changes: ``errors`` maps Cisco names to messages; nothing was saved."""

    def __init__(self, errors: dict[str, str], *, forbidden: bool = False) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.forbidden = forbidden


def page_fields(store: ConfigStore, page: str, role: str, line: int = 0) -> list[Field]:
    """The settings of ``page`` (of Ext ``line`` for the Ext page) that ``role`` may see."""
    fields = []
    for s in SCHEMA.values():
        if s.page != page or not can_see(role, s):
            continue
        n = line if s.per_line else 0
        value = store.get(s.key, n if s.per_line else None)
        fields.append(
            Field(
                s,
                n,
                "" if s.secret else format_value(s, value),
                can_edit(role, s),
                is_set=bool(value) if s.secret else False,
            )
        )
    return fields


def sections(fields: list[Field]) -> list[tuple[str, list[Field]]]:
    out: dict[str, list[Field]] = {}
    for f in fields:
        out.setdefault(f.setting.section, []).append(f)
    return list(out.items())


def apply_changes(
    store: ConfigStore,
    role: str,
    items: Mapping[str, Value],
    *,
    blank_keeps_secret: bool = True,
) -> tuple[list[str], set[str]]:
    """Validate and save ``items`` (Cisco name → value) as ``role``.

    Returns the names that changed and the logins whose password changed. Raises
    :class:`ChangeError` (``forbidden`` when ``role`` may not change one of them).
    """
    errors: dict[str, str] = {}
    forbidden: dict[str, str] = {}
    changes: dict[Key, Value] = {}
    passwords: dict[Key, str] = {}
    names: dict[Key, str] = {}
    for name, raw in items.items():
        found = by_cisco_name(name)
        if found is None:
            errors[name] = "no such setting"
            continue
        s, line = found
        if s.per_line and not 1 <= line <= store.lines:
            errors[name] = f"this phone has lines 1 to {store.lines}"
            continue
        if not can_edit(role, s):
            forbidden[name] = (
                "the user login may not change this setting"
                if can_see(role, s)
                else "no such setting"
            )
            continue
        names[(s.key, line)] = name
        if s.kind is Kind.PASSWORD and blank_keeps_secret and raw == "":
            continue  # an empty password field keeps the password
        if s.key in LOGIN_PASSWORDS:
            try:
                check_password_policy(str(raw))
            except PasswordRejected as exc:
                errors[name] = str(exc)
            else:
                passwords[(s.key, line)] = str(raw)
            continue
        changes[(s.key, line)] = raw
    if forbidden:
        raise ChangeError(forbidden, forbidden=True)
    try:
        store.validate(changes)
    except SettingError as exc:
        for (key, line), message in exc.errors.items():
            fallback = SCHEMA[key].cisco_name(line) if key in SCHEMA else key
            errors[names.get((key, line), fallback)] = message
    if errors:
        raise ChangeError(errors)
    # the login passwords are stored as scrypt hashes, in the same atomic batch
    for login_key, password in passwords.items():
        changes[login_key] = hash_password(password)
    changed = store.update(changes)
    roles = {LOGIN_PASSWORDS[k] for k, _ in changed if k in LOGIN_PASSWORDS}
    return [SCHEMA[k].cisco_name(n) for k, n in changed], roles
