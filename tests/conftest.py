from __future__ import annotations

from pathlib import Path

import pytest

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(scope="session")
def vectors() -> Path:
    """The RFC test vectors copied from the public standards (see vectors/README.md)."""
    return VECTORS
