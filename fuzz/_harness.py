"""What every atheris harness here does in ``main``: fuzz with atheris when it is installed,
else replay the saved inputs named on the command line (crash files)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

try:
    import atheris
except ImportError:  # replay mode
    atheris = None


def run(test_one_input: Callable[[bytes], None]) -> None:
    if atheris is None:
        for name in sys.argv[1:]:
            test_one_input(Path(name).read_bytes())
            print(f"{name}: ok")
        return
    atheris.instrument_all()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
