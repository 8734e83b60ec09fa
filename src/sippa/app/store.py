"""The configuration store: the phone's settings in an embedded SQLite database.

- One row per changed setting (defaults are not stored, so a new default reaches every phone
  that never changed it). A ``meta`` table holds the schema version; :data:`MIGRATIONS` brings an
  older database up to date when it is opened.
- :meth:`ConfigStore.update` validates a whole batch of changes first and writes it in ONE
  SQLite transaction: a bad value changes nothing, and killing the process during a save leaves
  either the old or the new configuration, never half of it (SQLite's journal; tested by killing
  a writer process).
- Passwords never appear in :meth:`ConfigStore.export` unless asked for, nor in ``repr``/logs.
- Listeners are told after each successful save, so a change can apply live.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from platformdirs import user_data_path

from sippa.app.settings import (
    DEFAULT_LINE_COUNT,
    MAX_LINE_COUNT,
    SCHEMA,
    Setting,
    SettingError,
    Value,
    format_value,
    parse_value,
    setting,
)

__all__ = ["SCHEMA_VERSION", "Changes", "ConfigStore", "Key", "default_database_path"]

log = logging.getLogger(__name__)

Key = tuple[str, int]
"""A setting key and its line number (0 for settings that are not per line)."""

Changes = Mapping[Key, Value] | Iterable[tuple[Key, Value]]

SCHEMA_VERSION = 1

# MIGRATIONS[i - 1] takes a database from schema version i to i + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = []

_CREATE = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS setting (
    key   TEXT NOT NULL,
    line  INTEGER NOT NULL DEFAULT 0,
    value TEXT NOT NULL,
    PRIMARY KEY (key, line)
);
"""


def default_database_path() -> Path:
    """``sippa.db`` in the user's data directory (``$XDG_DATA_HOME/sippa`` on Linux)."""
    return user_data_path("sippa", appauthor=False) / "sippa.db"


class ConfigStore:
    """Settings of one phone. Thread-safe; cheap reads from an in-memory copy."""

    def __init__(self, path: Path | str = ":memory:", *, lines: int = DEFAULT_LINE_COUNT) -> None:
        if not 1 <= lines <= MAX_LINE_COUNT:
            raise ValueError(f"a phone has 1 to {MAX_LINE_COUNT} lines")
        self.lines = lines
        self.path = str(path)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[dict[Key, Value]], None]] = []
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # the database holds SIP passwords: readable by its owner only
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._migrate()
        self._values: dict[Key, Value] = {}
        self._load()

    # -- opening ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._transaction() as db:
            for statement in _CREATE.strip().split(";"):
                if statement.strip():
                    db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version == 0:
                version = SCHEMA_VERSION  # a new database starts at the current version
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} was written by a newer sippa (schema {version} > "
                    f"{SCHEMA_VERSION}); refusing to open it"
                )
            while version < SCHEMA_VERSION:
                MIGRATIONS[version - 1](db)
                version += 1
            db.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('schema_version', ?)",
                (str(version),),
            )

    def _load(self) -> None:
        rows = self._db.execute("SELECT key, line, value FROM setting").fetchall()
        for key, line, text in rows:
            s = SCHEMA.get(key)
            if s is None or not self._line_ok(s, line):
                log.warning("ignoring unknown setting %r (line %s) in %s", key, line, self.path)
                continue
            try:
                self._values[(key, line)] = parse_value(s, text)
            except ValueError as exc:
                # a value that a newer rule rejects: keep the default and say so
                log.warning("ignoring stored %s: %s", s.cisco_name(line), exc)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"ConfigStore({self.path!r}, lines={self.lines})"

    # -- reading ---------------------------------------------------------------------------

    def _line_ok(self, s: Setting, line: int) -> bool:
        return 1 <= line <= self.lines if s.per_line else line == 0

    def _key(self, key: str, line: int | None) -> tuple[Setting, int]:
        s = setting(key)
        n = 0 if line is None else line
        if s.per_line and line is None:
            raise KeyError(f"{key} is a per-line setting: give the line (1..{self.lines})")
        if not self._line_ok(s, n):
            raise KeyError(
                f"{key} is a per-line setting of lines 1..{self.lines}"
                if s.per_line
                else f"{key} is not a per-line setting"
            )
        return s, n

    def get(self, key: str, line: int | None = None) -> Value:
        s, n = self._key(key, line)
        with self._lock:
            return self._values.get((key, n), s.default)

    def is_default(self, key: str, line: int | None = None) -> bool:
        self._key(key, line)
        with self._lock:
            return (key, 0 if line is None else line) not in self._values

    def keys(self) -> Iterator[Key]:
        """Every (key, line) of this phone, in schema order."""
        for s in SCHEMA.values():
            if s.per_line:
                for n in range(1, self.lines + 1):
                    yield s.key, n
            else:
                yield s.key, 0

    def snapshot(self) -> dict[Key, Value]:
        """All current values (defaults included)."""
        with self._lock:
            return {k: self._values.get(k, SCHEMA[k[0]].default) for k in self.keys()}

    def export(self, *, include_secrets: bool = False) -> dict[str, str]:
        """Cisco element name → text, for every setting; passwords only when asked for."""
        out: dict[str, str] = {}
        for (key, line), value in self.snapshot().items():
            s = SCHEMA[key]
            if s.secret and not include_secrets:
                continue
            out[s.cisco_name(line)] = format_value(s, value)
        return out

    # -- writing ---------------------------------------------------------------------------

    def validate(self, changes: Changes) -> dict[Key, Value]:
        """Parse and check a batch; raise :class:`SettingError` naming every bad field."""
        items = changes.items() if isinstance(changes, Mapping) else changes
        parsed: dict[Key, Value] = {}
        errors: dict[Key, str] = {}
        for (key, line), raw in items:
            try:
                s, n = self._key(key, line or None)
            except KeyError as exc:
                errors[(key, line)] = str(exc.args[0])
                continue
            try:
                parsed[(key, n)] = parse_value(s, raw)
            except ValueError as exc:
                errors[(key, n)] = str(exc)
        if not errors:
            errors.update(self._cross_check({**self.snapshot(), **parsed}))
        if errors:
            raise SettingError(errors)
        return parsed

    @staticmethod
    def _cross_check(values: Mapping[Key, Value]) -> dict[Key, str]:
        """Rules that span two settings."""
        errors: dict[Key, str] = {}
        for low, high in (
            ("sip_tcp_port_min", "sip_tcp_port_max"),
            ("rtp_port_min", "rtp_port_max"),
        ):
            lo, hi = values[(low, 0)], values[(high, 0)]
            assert isinstance(lo, int) and isinstance(hi, int)
            if lo > hi:
                errors[(low, 0)] = f"must not be above {SCHEMA[high].label} ({hi})"
        expires, min_se = values[("session_expires", 0)], values[("min_se", 0)]
        assert isinstance(expires, int) and isinstance(min_se, int)
        if expires and expires < min_se:
            label = SCHEMA["min_se"].label
            errors[("session_expires", 0)] = f"must be 0 (off) or not below {label} ({min_se})"
        rtp_lo, rtp_hi = values[("rtp_port_min", 0)], values[("rtp_port_max", 0)]
        assert isinstance(rtp_lo, int) and isinstance(rtp_hi, int)
        if not errors and rtp_hi - rtp_lo < 7:
            errors[("rtp_port_max", 0)] = "the RTP range must hold at least 4 even ports"
        return errors

    def update(self, changes: Changes) -> dict[Key, Value]:
        """Validate and save a batch atomically. Returns what changed (new values)."""
        parsed = self.validate(changes)
        with self._transaction() as db:
            changed: dict[Key, Value] = {}
            for (key, line), value in parsed.items():
                s = SCHEMA[key]
                if self._values.get((key, line), s.default) == value and (
                    (key, line) in self._values or value == s.default
                ):
                    continue
                db.execute(
                    "INSERT OR REPLACE INTO setting (key, line, value) VALUES (?, ?, ?)",
                    (key, line, format_value(s, value)),
                )
                changed[(key, line)] = value
        self._values.update(changed)
        if changed:
            names = ", ".join(SCHEMA[k].cisco_name(n) for k, n in changed)
            log.info("settings saved: %s", names)  # names only: values may be secrets
            for listener in list(self._listeners):
                try:
                    listener(dict(changed))
                except Exception:
                    log.exception("a settings listener failed")
        return changed

    def set(self, key: str, value: Value, line: int | None = None) -> None:
        self.update({(key, line or 0): value})

    def reset(self, keys: Iterable[Key]) -> None:
        """Back to the defaults (atomically)."""
        keys = list(keys)
        for key, line in keys:
            self._key(key, line or None)
        with self._transaction() as db:
            for key, line in keys:
                db.execute("DELETE FROM setting WHERE key = ? AND line = ?", (key, line))
        with self._lock:
            for k in keys:
                self._values.pop(k, None)

    def subscribe(self, listener: Callable[[dict[Key, Value]], None]) -> Callable[[], None]:
        """Call ``listener(changes)`` after each save; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)
