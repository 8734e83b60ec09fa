from __future__ import annotations

import os
from pathlib import Path

import pytest

from sippa.app.files import atomic_write


def test_atomic_write_replaces_and_is_private_by_default(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.pem"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert (target.stat().st_mode & 0o777) == 0o600
    atomic_write(target, b"three", mode=0o644)
    assert (target.stat().st_mode & 0o777) == 0o644
    assert os.listdir(target.parent) == ["f.pem"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"old")

    def broken(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]
