"""Call history: one SQLite table beside the settings (the same database file).

A row per finished call: when, which line, which direction, who, how long, how it ended and
whether it was secure (the padlock at the end of the call). Oldest rows go beyond ``limit``.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["CallHistory", "HistoryEntry"]

_CREATE = """
CREATE TABLE IF NOT EXISTS call_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started     REAL NOT NULL,
    line        INTEGER NOT NULL,
    direction   TEXT NOT NULL,
    remote      TEXT NOT NULL,
    answered    INTEGER NOT NULL,
    duration    REAL NOT NULL,
    end_reason  TEXT,
    status_code INTEGER,
    padlock     INTEGER NOT NULL,
    srtp_suite  TEXT
)
"""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One finished call."""

    started: float
    line: int
    direction: str
    remote: str
    answered: bool
    duration: float
    end_reason: str | None
    status_code: int | None
    padlock: bool
    srtp_suite: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "line": self.line,
            "direction": self.direction,
            "remote": self.remote,
            "answered": self.answered,
            "duration": self.duration,
            "end_reason": self.end_reason,
            "status_code": self.status_code,
            "padlock": self.padlock,
            "srtp_suite": self.srtp_suite,
        }


class CallHistory:
    """The history table in ``path`` (``:memory:`` for a phone without a database file)."""

    def __init__(self, path: str = ":memory:", *, limit: int = 1000) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(_CREATE)

    def add(self, entry: HistoryEntry) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO call_history (started, line, direction, remote, answered, "
                    "duration, end_reason, status_code, padlock, srtp_suite) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry.started, entry.line, entry.direction, entry.remote,
                        int(entry.answered), entry.duration, entry.end_reason,
                        entry.status_code, int(entry.padlock), entry.srtp_suite,
                    ),
                )
                self._db.execute(
                    "DELETE FROM call_history WHERE id NOT IN "
                    "(SELECT id FROM call_history ORDER BY id DESC LIMIT ?)",
                    (self.limit,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def recent(self, count: int = 50) -> list[HistoryEntry]:
        """The latest ``count`` calls, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT started, line, direction, remote, answered, duration, end_reason, "
                "status_code, padlock, srtp_suite FROM call_history ORDER BY id DESC LIMIT ?",
                (count,),
            ).fetchall()
        return [
            HistoryEntry(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], bool(r[8]), r[9])
            for r in rows
        ]

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM call_history")

    def close(self) -> None:
        with self._lock:
            self._db.close()
