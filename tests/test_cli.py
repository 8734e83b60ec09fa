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
