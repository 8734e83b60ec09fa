"""The curated public API of sippa.rtp."""

from __future__ import annotations

import importlib

import sippa.rtp

MODULES = ("codecs", "dtmf", "jitter", "packet", "rtcp", "srtp")


def _isort(names: list[str]) -> list[str]:
    # Ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    def key(n: str) -> tuple[int, str]:
        return (0 if n.isupper() else 1 if n[0].isupper() else 2, n)

    return sorted(names, key=key)


def test_all_is_sorted_unique_and_complete() -> None:
    names = sippa.rtp.__all__
    assert names == _isort(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(sippa.rtp, name), name
    exported = set()
    for mod in MODULES:
        module = importlib.import_module(f"sippa.rtp.{mod}")
        assert module.__all__ == _isort(module.__all__), mod
        for name in module.__all__:
            assert getattr(module, name) is getattr(sippa.rtp, name)
        exported.update(module.__all__)
    assert exported == set(names)
