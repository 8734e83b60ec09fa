from __future__ import annotations

import subprocess
import sys

from sippa import __version__
from sippa.interfaces.cli import main


def test_help_lists_the_program(capsys) -> None:
    assert main([]) == 0
    assert "secure SIP phone" in capsys.readouterr().out


def test_python_dash_m_reports_the_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sippa", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"sippa {__version__}"


def test_status_shows_the_voicemail_light(capsys, monkeypatch, tmp_path) -> None:
    import sippa.interfaces.cli as cli

    mwi = {"messages_waiting": True, "new": 2, "old": 8, "new_urgent": 0, "old_urgent": 0,
           "account": None, "updated": 1.0, "source": "subscription",
           "subscription": "active", "reason": None}
    answer = {"ok": True, "calls": [], "lines": [
        {"line": 1, "enabled": True, "aor": "sips:alice@example.test", "registered": True,
         "state": "registered", "reason": None, "tls": None, "mwi": mwi},
        {"line": 2, "enabled": True, "aor": "sips:bob@example.test", "registered": False,
         "state": "backoff", "reason": None, "tls": None,
         "mwi": {**mwi, "updated": None, "subscription": "given-up",
                 "reason": "489 Bad Event"}},
    ]}
    monkeypatch.setattr(cli, "_daemon", lambda args, request, timeout=30.0: answer)
    assert main(["status", "--db", str(tmp_path / "x.db")]) == 0
    out = capsys.readouterr().out
    assert "line 1: sips:alice@example.test registered\n  Voicemail: 2 new, 8 old\n" in out
    assert "  Voicemail: given-up (489 Bad Event)\n" in out
