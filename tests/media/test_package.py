"""The curated public API of sippa.media."""

from __future__ import annotations

import importlib

import sippa.media

MODULES = ("audio", "config", "engine", "events", "playout", "sound", "stream")


def _isort(names: list[str]) -> list[str]:
    # Ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    def key(n: str) -> tuple[int, str]:
        return (0 if n.isupper() else 1 if n[0].isupper() else 2, n)

    return sorted(names, key=key)


def test_all_is_sorted_unique_and_names_real_objects() -> None:
    names = sippa.media.__all__
    assert names == _isort(names)
    assert len(set(names)) == len(names)
    owners = {}
    for mod in MODULES:
        module = importlib.import_module(f"sippa.media.{mod}")
        assert module.__all__ == _isort(module.__all__), mod
        for name in module.__all__:
            assert hasattr(module, name), (mod, name)
            owners[name] = getattr(module, name)
    for name in names:
        assert name in owners, name
        assert getattr(sippa.media, name) is owners[name], name
